"""The privilege-escalation methods the escalation graph knows: services that run code as a passed role, and the
IAM actions by which a principal rewrites its own policies, boundary or another user's credentials.

Sources per entry: Rhino Security Labs' AWS privilege-escalation methods, DataDog's pathfinding.cloud, NCC Group's
Principal Mapper (``*_edges``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PassRoleMethod:
    """Passing a role to a service that then runs code the caller controls as that role."""

    name: str
    service: str  # the service principal the role must trust, and the value of iam:PassedToService
    needs: tuple[tuple[str, ...], ...]  # all of these groups, one action of each group
    instance_profile: bool = False  # the role must be in an instance profile (or the caller can make one)


PASS_ROLE_METHODS = (
    # pathfinding.cloud lambda-001/002; Rhino methods 15-16
    PassRoleMethod("Lambda", "lambda.amazonaws.com", (("lambda:CreateFunction",), (
        "lambda:InvokeFunction", "lambda:CreateEventSourceMapping", "lambda:AddPermission"))),
    # ec2-001; Rhino method 3; PMapper ec2_edges
    PassRoleMethod("EC2", "ec2.amazonaws.com", (("ec2:RunInstances",),), instance_profile=True),
    # PMapper autoscaling_edges
    PassRoleMethod("Auto Scaling", "ec2.amazonaws.com", (
        ("autoscaling:CreateLaunchConfiguration", "ec2:CreateLaunchTemplate"),
        ("autoscaling:CreateAutoScalingGroup",)), instance_profile=True),
    # cloudformation-001; Rhino method 17
    PassRoleMethod("CloudFormation", "cloudformation.amazonaws.com", (("cloudformation:CreateStack",),)),
    # glue-001, glue-003..006; Rhino methods 18-19
    PassRoleMethod("Glue dev endpoint", "glue.amazonaws.com", (("glue:CreateDevEndpoint",),)),
    PassRoleMethod("Glue job", "glue.amazonaws.com", (("glue:CreateJob",), ("glue:StartJobRun", "glue:CreateTrigger"))),
    # datapipeline-001; Rhino method 20
    PassRoleMethod("Data Pipeline", "datapipeline.amazonaws.com", (
        ("datapipeline:CreatePipeline",), ("datapipeline:PutPipelineDefinition",))),
    # codebuild-001; PMapper codebuild_edges
    PassRoleMethod("CodeBuild", "codebuild.amazonaws.com", (("codebuild:CreateProject",), (
        "codebuild:StartBuild", "codebuild:StartBuildBatch"))),
    # sagemaker-001..003; PMapper sagemaker_edges
    PassRoleMethod("SageMaker", "sagemaker.amazonaws.com", ((
        "sagemaker:CreateNotebookInstance", "sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob"),)),
    # ecs-001..005
    PassRoleMethod("ECS", "ecs-tasks.amazonaws.com", (("ecs:RegisterTaskDefinition",), (
        "ecs:RunTask", "ecs:StartTask", "ecs:CreateService"))),
)
CREDENTIAL_ACTIONS = ("iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile")
WRITE_POLICY = {"role": ("iam:AttachRolePolicy", "iam:PutRolePolicy"),
                "user": ("iam:AttachUserPolicy", "iam:PutUserPolicy")}
WRITE_GROUP_POLICY = ("iam:AttachGroupPolicy", "iam:PutGroupPolicy")
DROP_BOUNDARY = {"role": ("iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"),
                 "user": ("iam:DeleteUserPermissionsBoundary", "iam:PutUserPermissionsBoundary")}
MODIFY_ACTIONS = (*WRITE_POLICY["role"], *WRITE_POLICY["user"], *DROP_BOUNDARY["role"], *DROP_BOUNDARY["user"],
                  "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion")

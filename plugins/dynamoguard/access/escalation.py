"""Privilege escalation: which principals can come to act as another principal, or with more permissions.

The graph's nodes are the IAM roles and users of both configured accounts, plus what a node can turn
itself into: *admin* (it can give itself any policy; its permissions boundary still caps it) and
*unbounded* (it can remove or replace its boundary). Every hop is evaluated with :func:`evaluate_access`,
so boundaries, explicit denies and conditions apply on every hop; a condition we cannot decide makes the
hop conditional. Edges, after the published catalogues of IAM privilege-escalation methods
(Rhino Security Labs, https://rhinosecuritylabs.com/aws/aws-privilege-escalation-methods-mitigation/;
DataDog pathfinding.cloud, ``data/paths``; NCC Group Principal Mapper, ``principalmapper/graphing``):

- ``assume``: ``sts:AssumeRole`` on a role whose trust policy admits the principal (by ARN; or its
  account, when the principal's own policies allow the call too); across the two accounts both sides
  must allow (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html).
- ``update_trust``: ``iam:UpdateAssumeRolePolicy`` on a role of the same account, then assume it.
- ``pass_role``: ``iam:PassRole`` (with ``iam:PassedToService`` set to the service) on a role of the same
  account that trusts the service, plus the service's actions that run code as it (:data:`PASS_ROLE_METHODS`;
  https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
- ``credentials``: ``iam:CreateAccessKey``, ``iam:CreateLoginProfile`` or ``iam:UpdateLoginProfile`` on
  another user of the same account.
- ``policy_write`` (to *admin*): ``Attach/Put{Role,User}Policy`` on itself, ``Attach/PutGroupPolicy`` on
  one of its groups, ``iam:CreatePolicyVersion`` (or ``iam:SetDefaultPolicyVersion``, conditional: what
  the other versions grant is not read) on a customer managed policy attached to it; the same on a
  principal it has a direct edge to.
- ``boundary_removal`` (to *unbounded*): ``Delete/Put{Role,User}PermissionsBoundary`` on itself, or a new
  version of its boundary policy.
- ``join_group``: ``iam:AddUserToGroup`` puts a user in a group and gives it the group's policies.

Not modelled (listed in the report's limitations): existing compute that already runs as a role
(UpdateFunctionCode, ssm:SendCommand, UpdateStack and the like), service control and session policies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from dynamoguard.access.collect import policy_document
from dynamoguard.access.evaluate import (
    Access,
    Grant,
    Principal,
    PrincipalPolicies,
    Tri,
    action_match,
    evaluate_access,
    evaluate_policy,
    scope_overlap,
    statement_principals,
    statements,
)

ACTIVE = ("allowed", "conditional")
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "Anything", "Effect": "Allow", "Action": "*",
                                                          "Resource": "*"}]}
IAM_SCOPE = "arn:aws:iam::*"


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


@dataclass(frozen=True, order=True)
class Node:
    """A principal as the escalation leaves it."""

    arn: str
    admin: bool = False
    unbounded: bool = False
    groups: frozenset[str] = frozenset()  # group ARNs it added itself to

    @property
    def base(self) -> Node:
        return Node(self.arn)

    @property
    def label(self) -> str:
        extra = (["with any policy it attaches"] if self.admin else []) + (
            ["without its permissions boundary"] if self.unbounded else []) + [
            f"in group {g.rsplit('/', 1)[-1]}" for g in sorted(self.groups)]
        return f"{self.arn} ({', '.join(extra)})" if extra else self.arn


@dataclass(frozen=True)
class Hop:
    """One step of an escalation path: ``source`` can come to act as ``target``."""

    source: Node
    target: Node
    kind: str
    how: str
    decision: str  # allowed | conditional
    grants: tuple[Grant, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.source.label} -> {self.target.label}: {self.how}"

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source.label, "to": self.target.label, "kind": self.kind, "how": self.how,
                "decision": self.decision, "text": self.text, "evidence": [g.to_dict() for g in self.grants]}


def _tri(access: Access) -> Tri:
    return {"allowed": Tri.YES, "conditional": Tri.MAYBE}.get(access.decision, Tri.NO)


def _decision(tri: Tri) -> str:
    return {Tri.YES: "allowed", Tri.MAYBE: "conditional"}[tri]


@dataclass
class Estate:
    """The IAM estate of both accounts as the escalation needs it (from the snapshots)."""

    principals: dict[str, PrincipalPolicies]
    trust: dict[str, dict[str, Any]] = field(default_factory=dict)  # role ARN -> trust policy
    instance_profiles: set[str] = field(default_factory=set)  # roles in an instance profile
    user_groups: dict[str, list[str]] = field(default_factory=dict)  # user ARN -> group ARNs
    groups: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = field(default_factory=dict)  # group ARN -> docs
    group_accounts: dict[str, str] = field(default_factory=dict)
    attached: dict[str, list[str]] = field(default_factory=dict)  # principal ARN -> customer policy ARNs
    boundary_arn: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # customer policy ARN -> number of versions

    @classmethod
    def from_snapshots(cls, snapshots: Iterable[Mapping[str, Any]],
                       principals_by_account: Mapping[str, Sequence[PrincipalPolicies]]) -> Estate:
        estate = cls({p.arn: p for group in principals_by_account.values() for p in group})
        for snap in snapshots:
            details, account = snap["authorization_details"], snap["account"]
            group_arns = {}
            for group in details["GroupDetailList"]:
                arn = group.get("Arn") or f"arn:aws:iam::{account}:group{group.get('Path', '/')}{group['GroupName']}"
                group_arns[group["GroupName"]] = arn
                docs = [(f"group {group['GroupName']} inline policy {p['PolicyName']}",
                         policy_document(p["PolicyDocument"])) for p in group.get("GroupPolicyList", [])]
                docs += [(p["PolicyArn"], snap["managed_policies"][p["PolicyArn"]])
                         for p in group.get("AttachedManagedPolicies", [])]
                estate.groups[arn] = tuple(docs)
                estate.group_accounts[arn] = account
            for policy in details["Policies"]:
                estate.versions[policy["Arn"]] = len(policy.get("PolicyVersionList", [])) or 1
            for role in details["RoleDetailList"]:
                estate.trust[role["Arn"]] = policy_document(role.get("AssumeRolePolicyDocument") or {})
                if role.get("InstanceProfileList"):
                    estate.instance_profiles.add(role["Arn"])
                estate._attachments(role, [])
            for user in details["UserDetailList"]:
                groups = [group_arns[name] for name in user.get("GroupList", []) if name in group_arns]
                estate.user_groups[user["Arn"]] = groups
                group_policies = [p["PolicyArn"] for g in details["GroupDetailList"]
                                  if g["GroupName"] in user.get("GroupList", [])
                                  for p in g.get("AttachedManagedPolicies", [])]
                estate._attachments(user, group_policies)
        return estate

    def _attachments(self, entity: Mapping[str, Any], inherited: list[str]) -> None:
        arns = [p["PolicyArn"] for p in entity.get("AttachedManagedPolicies", [])] + inherited
        self.attached[entity["Arn"]] = [a for a in arns if ":aws:policy/" not in a]  # AWS managed: no versions
        boundary = (entity.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if boundary:
            self.boundary_arn[entity["Arn"]] = boundary

    def policies(self, node: Node) -> PrincipalPolicies:
        """The policies that apply to ``node``'s requests."""
        base = self.principals[node.arn]
        identity = list(base.identity)
        for group in sorted(node.groups):
            identity.extend(self.groups[group])
        if node.admin:
            identity.append((f"any policy {node.arn} attaches to itself", ADMIN_POLICY))
        return replace(base, identity=tuple(identity), boundary=None if node.unbounded else base.boundary)

    @cached_property
    def roles_by_trusted(self) -> dict[str, list[str]]:
        """Trusted principal ARN / account id / service / ``*`` -> roles whose trust policy names it."""
        index: dict[str, list[str]] = {}
        for role, doc in self.trust.items():
            for _, stmt in statements(doc):
                if stmt.get("Effect") != "Allow" or "NotPrincipal" in stmt:
                    continue
                for p in statement_principals(stmt):
                    key = p.account if p.kind == "account" else p.arn
                    if "*" in key and not p.is_anyone:
                        key = "*"  # a wildcard ARN: checked against every principal
                    index.setdefault(key, [])
                    if role not in index[key]:
                        index[key].append(role)
        return index

    def users(self, account: str) -> list[str]:
        return self._of_kind("user", account)

    def roles(self, account: str) -> list[str]:
        return self._of_kind("role", account)

    def _of_kind(self, kind: str, account: str) -> list[str]:
        return [arn for arn, p in self.principals.items() if (p.principal.kind, p.principal.account) == (kind, account)]


class Graph:
    """Edges out of each node, computed on demand and cached."""

    def __init__(self, estate: Estate):
        self.estate = estate
        self._edges: dict[Node, list[Hop]] = {}
        self._access: dict[tuple, Access] = {}

    def can(self, node: Node, action: str, resource: str, context: Mapping[str, str] | None = None) -> Access:
        key = (node, action, resource, tuple(sorted((context or {}).items())))
        if key not in self._access:
            self._access[key] = evaluate_access(self.estate.policies(node), action, resource, context=context)
        return self._access[key]

    def can_each(self, node: Node, action: str, targets: Sequence[str],
                 context: Mapping[str, str] | None = None) -> dict[str, Access]:
        """The access to each target ARN, evaluated once when no statement tells the targets apart."""
        overall = self.can(node, action, IAM_SCOPE, context)
        if overall.decision in ("not_allowed", "denied") or self._uniform(node, action):
            return dict.fromkeys(targets, overall) if overall.decision in ACTIVE else {}
        return {t: a for t in targets if (a := self.can(node, action, t, context)).decision in ACTIVE}

    def _uniform(self, node: Node, action: str) -> bool:
        """Whether every statement for ``action`` names ``*`` or no IAM resource at all."""
        pp = self.estate.policies(node)
        docs = [d for _, d in pp.identity] + ([pp.boundary[1]] if pp.boundary else [])
        for doc in docs:
            for _, stmt in statements(doc):
                if action_match(stmt, action) is None:
                    continue
                if "NotResource" in stmt:
                    return False
                patterns = stmt.get("Resource")
                for pattern in [patterns] if isinstance(patterns, str) else patterns or []:
                    if pattern != "*" and scope_overlap(pattern, IAM_SCOPE) != Tri.NO:
                        return False
        return True

    def edges(self, node: Node) -> list[Hop]:
        if node not in self._edges:
            self._edges[node] = self._compute(node)
        return self._edges[node]

    def _hop(self, source: Node, target: Node, kind: str, how: str, accesses: Sequence[Access]) -> Hop:
        tri = min(_tri(a) for a in accesses)
        return Hop(source, target, kind, how, _decision(tri), tuple(g for a in accesses for g in a.grants))

    def _compute(self, node: Node) -> list[Hop]:
        hops: list[Hop] = []
        hops += self._assume(node)
        hops += self._update_trust(node)
        hops += self._pass_role(node)
        hops += self._credentials(node)
        direct = {h.target.arn for h in hops}
        hops += self._modify(node, node)
        for arn in sorted(direct):
            hops += self._modify(node, Node(arn))
        hops += self._join_group(node)
        best: dict[Node, Hop] = {}
        for hop in hops:  # one hop per target, an allowed one if there is one
            if hop.target != node and (hop.target not in best or (
                    best[hop.target].decision == "conditional" and hop.decision == "allowed")):
                best[hop.target] = hop
        return list(best.values())

    def _assume(self, node: Node) -> list[Hop]:
        me = self.estate.principals[node.arn].principal
        index = self.estate.roles_by_trusted
        candidates = set(index.get(node.arn, ())) | set(index.get("*", ()))
        if self.can(node, "sts:AssumeRole", IAM_SCOPE).decision in ACTIVE:
            candidates |= set(index.get(me.account, ()))
        out = []
        for role in sorted(candidates - {node.arn}):
            if role not in self.estate.principals:
                continue
            account = self.estate.principals[role].principal.account
            access = evaluate_access(self.estate.policies(node), "sts:AssumeRole", role, self.estate.trust[role],
                                     f"trust policy of {role}", resource_account=account, trust=True)
            if access.decision in ACTIVE:
                out.append(self._hop(node, Node(role), "assume", "sts:AssumeRole, admitted by the role's trust policy",
                                     [access]))
        return out

    def _update_trust(self, node: Node) -> list[Hop]:
        me = self.estate.principals[node.arn].principal
        roles = [r for r in self.estate.roles(me.account) if r != node.arn]
        out = []
        for role, write in self.can_each(node, "iam:UpdateAssumeRolePolicy", roles).items():
            trust = {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": node.arn}, "Action": "sts:AssumeRole"}]}
            assume = evaluate_access(self.estate.policies(node), "sts:AssumeRole", role, trust,
                                     "the trust policy it writes", resource_account=me.account, trust=True)
            if assume.decision in ACTIVE:
                out.append(self._hop(node, Node(role), "update_trust",
                                     "iam:UpdateAssumeRolePolicy naming itself, then sts:AssumeRole", [write, assume]))
        return out

    def _pass_role(self, node: Node) -> list[Hop]:
        me = self.estate.principals[node.arn].principal
        out = []
        for method in PASS_ROLE_METHODS:
            service_access = []
            for group in method.needs:
                options = [a for a in (self.can(node, action, "*") for action in group) if a.decision in ACTIVE]
                if not options:
                    break
                service_access.append(max(options, key=_tri))
            else:
                roles = [r for r in self.estate.roles_by_trusted.get(method.service, ())
                         if r in self.estate.principals and self.estate.principals[r].principal.account == me.account
                         and r != node.arn]
                context = {"iam:passedtoservice": method.service}
                for role, passed in self.can_each(node, "iam:PassRole", roles, context).items():
                    trusted = evaluate_policy(self.estate.trust[role], "sts:AssumeRole", role,
                                              principal=Principal(method.service, "service")).allow
                    if trusted == Tri.NO:
                        continue
                    accesses = [passed, *service_access]
                    if method.instance_profile and role not in self.estate.instance_profiles:
                        profile = [self.can(node, a, IAM_SCOPE) for a in
                                   ("iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile")]
                        if any(a.decision not in ACTIVE for a in profile):
                            continue
                        accesses += profile
                    hop = self._hop(node, Node(role), "pass_role",
                                    f"iam:PassRole to {method.service} and {method.name} running code as the role",
                                    accesses)
                    if trusted == Tri.MAYBE:
                        hop = replace(hop, decision="conditional")
                    out.append(hop)
        return out

    def _credentials(self, node: Node) -> list[Hop]:
        me = self.estate.principals[node.arn].principal
        users = [u for u in self.estate.users(me.account) if u != node.arn]
        found: dict[str, Hop] = {}
        for action in CREDENTIAL_ACTIONS:
            for user, access in self.can_each(node, action, users).items():
                if user not in found or found[user].decision == "conditional":
                    found[user] = self._hop(node, Node(user), "credentials", f"{action} for the user", [access])
        return list(found.values())

    def _modify(self, node: Node, target: Node) -> list[Hop]:
        """``node`` writing ``target``'s policies or boundary (``target`` is ``node`` or one it acts as)."""
        kind = self.estate.principals[target.arn].principal.kind
        if kind not in WRITE_POLICY:
            return []
        out = []
        writes = [(a, target.arn) for a in WRITE_POLICY[kind]]
        writes += [(a, g) for g in self.estate.user_groups.get(target.arn, []) for a in WRITE_GROUP_POLICY]
        writes += [("iam:CreatePolicyVersion", p) for p in self.estate.attached.get(target.arn, [])]
        if not target.admin:
            for action, resource in writes:
                access = self.can(node, action, resource)
                if access.decision in ACTIVE:
                    out.append(self._hop(node, replace(target, admin=True), "policy_write",
                                         f"{action} on {resource}", [access]))
                    break
            else:
                for policy in self.estate.attached.get(target.arn, []):
                    access = self.can(node, "iam:SetDefaultPolicyVersion", policy)
                    if self.estate.versions.get(policy, 1) > 1 and access.decision in ACTIVE:
                        hop = self._hop(node, replace(target, admin=True), "policy_write",
                                        f"iam:SetDefaultPolicyVersion on {policy} (what its other versions grant "
                                        "is not evaluated)", [access])
                        out.append(replace(hop, decision="conditional"))
                        break
        boundary = self.estate.boundary_arn.get(target.arn)
        if boundary and not target.unbounded:
            drops = [(a, target.arn) for a in DROP_BOUNDARY[kind]]
            if ":aws:policy/" not in boundary:
                drops.append(("iam:CreatePolicyVersion", boundary))
            for action, resource in drops:
                access = self.can(node, action, resource)
                if access.decision in ACTIVE:
                    out.append(self._hop(node, replace(target, unbounded=True), "boundary_removal",
                                         f"{action} on {resource}", [access]))
                    break
        return out

    def _join_group(self, node: Node) -> list[Hop]:
        me = self.estate.principals[node.arn].principal
        if me.kind != "user" or node.admin:
            return []
        current = set(self.estate.user_groups.get(node.arn, [])) | node.groups
        groups = [g for g, account in self.estate.group_accounts.items() if account == me.account
                  and g not in current]
        return [self._hop(node, replace(node, groups=node.groups | {group}), "join_group",
                          f"iam:AddUserToGroup on {group}", [access])
                for group, access in self.can_each(node, "iam:AddUserToGroup", groups).items()]


def explore(graph: Graph, starts: Iterable[Node], saturated) -> list[Node]:
    """``starts`` and every node reachable from them; ``saturated(node)``: nothing to gain beyond it."""
    seen = dict.fromkeys(starts)
    queue = list(seen)
    while queue:
        node = queue.pop()
        if saturated(node):
            graph._edges[node] = []
            continue
        for hop in graph.edges(node):
            if hop.target not in seen:
                seen[hop.target] = None
                queue.append(hop.target)
    return list(seen)


def propagate(graph: Graph, nodes: Sequence[Node], masks: Mapping[Node, int],
              allowed_only: bool) -> tuple[dict[Node, int], dict[Node, dict[int, Hop]]]:
    """What each node can reach (bit masks of terminal capabilities) and, per gained bit, its next hop.

    Rounds of relaxation over the edges (round k finds the paths of k hops), so each path is a
    shortest one; ``allowed_only`` follows only hops allowed without conditions.
    """
    best = {n: masks.get(n, 0) for n in nodes}
    via: dict[Node, dict[int, Hop]] = {}
    while True:
        previous = dict(best)
        for node in nodes:
            for hop in graph.edges(node):
                if allowed_only and hop.decision != "allowed":
                    continue
                gain = previous.get(hop.target, 0) & ~best[node]
                if not gain:
                    continue
                best[node] |= gain
                hops = via.setdefault(node, {})
                while gain:
                    low = gain & -gain
                    hops[low.bit_length() - 1] = hop
                    gain ^= low
        if best == previous:
            return best, via


def path_to(via: Mapping[Node, Mapping[int, Hop]], start: Node, bit: int) -> tuple[Hop, ...]:
    """The hops from ``start`` to the node that has capability ``bit`` itself."""
    path, node = [], start
    while bit in via.get(node, {}):
        hop = via[node][bit]
        path.append(hop)
        node = hop.target
    return tuple(path)


def path_decision(path: Sequence[Hop]) -> str:
    return "allowed" if all(h.decision == "allowed" for h in path) else "conditional"

"""Escalation paths, on an IAM estate built to probe them, against hand-computed answers.

For each principal, four questions about the protected estate: can it delete table ``orders``, turn its
PITR off, export it, change the backup bucket's policy? Each answer is ``-`` (no), ``X`` (explicitly
denied), ``D`` (allowed directly), ``D?`` (directly, under a condition), ``P`` (allowed through an
escalation path) or ``P?`` (through a path with a condition on some hop or grant). The estate mixes
direct grants, boundaries, denies, NotAction/NotResource, wildcards, groups, conditions, self-escalation,
PassRole, assume-role chains and a cross-account trust.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dynamoguard.access.escalation import Estate, Graph, Node
from dynamoguard.access.review import run_review
from dynamoguard.config import Config

SRC, BKP = "111111111111", "222222222222"
ORDERS = f"arn:aws:dynamodb:us-east-1:{SRC}:table/orders"
BUCKET = "arn:aws:s3:::dynamoguard-exports"
QUESTIONS = (("table:orders", "dynamodb:DeleteTable"), ("table:orders", "dynamodb:UpdateContinuousBackups"),
             ("table:orders", "dynamodb:ExportTableToPointInTime"),
             ("bucket:dynamoguard-exports", "s3:PutBucketPolicy"))
ALL = ["dynamodb:DeleteTable", "dynamodb:UpdateContinuousBackups", "dynamodb:ExportTableToPointInTime"]
MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*"):
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def arn(kind, name, account=SRC):
    return f"arn:aws:iam::{account}:{kind}/{name}"


def trusts(*principals, service=None):
    principal = {"Service": service} if service else {"AWS": list(principals)}
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


ADMIN = doc(allow("*"))
ROOT_TRUST = trusts(f"arn:aws:iam::{SRC}:root")


class Builder:
    """Snapshots of both accounts in GetAccountAuthorizationDetails' shape."""

    def __init__(self):
        self.accounts = {SRC: {"RoleDetailList": [], "UserDetailList": [], "GroupDetailList": [], "Policies": []},
                         BKP: {"RoleDetailList": [], "UserDetailList": [], "GroupDetailList": [], "Policies": []}}

    def _boundary(self, entity, name, boundary, account=SRC):
        if boundary:
            entity["PermissionsBoundary"] = {"PermissionsBoundaryArn": self.policy(f"{name}-boundary", boundary,
                                                                                   account)}

    def policy(self, name, document, account=SRC):
        self.accounts[account]["Policies"].append({"Arn": arn("policy", name, account), "PolicyName": name,
                                                   "PolicyVersionList": [{"Document": document,
                                                                          "IsDefaultVersion": True}]})
        return arn("policy", name, account)

    def role(self, name, *statements, trust=ROOT_TRUST, boundary=None, account=SRC, managed=(), profile=False):
        role = {"RoleName": name, "Arn": arn("role", name, account), "Path": "/", "AssumeRolePolicyDocument": trust,
                "RolePolicyList": [{"PolicyName": "inline", "PolicyDocument": doc(*statements)}] if statements else [],
                "AttachedManagedPolicies": [{"PolicyArn": m, "PolicyName": m.rsplit("/", 1)[-1]} for m in managed],
                "InstanceProfileList": [{"InstanceProfileName": name}] if profile else []}
        self._boundary(role, name, boundary, account)
        self.accounts[account]["RoleDetailList"].append(role)

    def user(self, name, *statements, groups=(), boundary=None):
        user = {"UserName": name, "Arn": arn("user", name), "Path": "/", "GroupList": list(groups),
                "UserPolicyList": [{"PolicyName": "inline", "PolicyDocument": doc(*statements)}] if statements else [],
                "AttachedManagedPolicies": []}
        self._boundary(user, name, boundary)
        self.accounts[SRC]["UserDetailList"].append(user)

    def group(self, name, *statements):
        self.accounts[SRC]["GroupDetailList"].append({
            "GroupName": name, "Arn": arn("group", name), "Path": "/", "AttachedManagedPolicies": [],
            "GroupPolicyList": [{"PolicyName": "inline", "PolicyDocument": doc(*statements)}]})

    def snapshots(self):
        def snap(account):
            details = self.accounts[account]
            return {"account": account, "authorization_details": details,
                    "managed_policies": {p["Arn"]: p["PolicyVersionList"][0]["Document"] for p in details["Policies"]},
                    "table_policies": {}, "bucket_policies": {}}
        return {"source": snap(SRC), "backup": snap(BKP)}


def estate() -> Builder:
    b = Builder()
    # roles that hold the power, and roles a service can run as
    b.role("admin", *ADMIN["Statement"], trust=trusts(service="ssm.amazonaws.com"))
    b.role("ops-admin", allow("dynamodb:*"), allow("s3:PutBucketPolicy", BUCKET))
    b.role("lambda-admin", *ADMIN["Statement"], trust=trusts(service="lambda.amazonaws.com"))
    b.role("cfn-role", allow("dynamodb:DeleteTable"), trust=trusts(service="cloudformation.amazonaws.com"))
    b.role("glue-role", allow("s3:PutBucketPolicy", BUCKET), trust=trusts(service="glue.amazonaws.com"))
    b.role("ec2-role", allow("dynamodb:UpdateContinuousBackups", ORDERS), trust=trusts(service="ec2.amazonaws.com"),
           profile=True)
    b.role("ec2-role-unprofiled", allow("dynamodb:UpdateContinuousBackups", ORDERS),
           trust=trusts(service="ec2.amazonaws.com"))
    # direct grants: plain, wildcard, NotAction, NotResource, boundary, deny, condition, group
    b.role("reader", allow(["dynamodb:GetItem", "dynamodb:Query"], ORDERS))
    b.role("bounded-admin", allow("dynamodb:*"),
           boundary=doc(allow(["dynamodb:Get*", "dynamodb:Query", "dynamodb:Scan", "dynamodb:Describe*"])))
    b.role("denied-admin", allow("*"), deny("dynamodb:DeleteTable"))
    b.user("notaction", {"Effect": "Allow", "NotAction": ["dynamodb:DeleteTable", "s3:*", "iam:*", "sts:*"],
                         "Resource": "*"})
    b.role("notresource", {"Effect": "Allow", "Action": "dynamodb:*", "NotResource": ORDERS})
    b.role("wild-prefix", allow(["dynamodb:DeleteTable", "dynamodb:ExportTableToPointInTime"],
                                "arn:aws:dynamodb:*:*:table/ord*"))
    b.user("mfa-deleter", allow("dynamodb:DeleteTable", ORDERS, Condition=MFA))
    b.group("ops", allow("s3:PutBucketPolicy", BUCKET))
    b.user("ops-bob", groups=["ops"])
    # self-modification
    b.role("self-attacher", allow("iam:AttachRolePolicy", arn("role", "self-attacher")))
    b.role("self-putter-bounded", allow("iam:PutRolePolicy", arn("role", "self-putter-bounded")),
           boundary=doc(allow(["iam:PutRolePolicy", "dynamodb:Describe*"])))
    b.role("boundary-dropper", allow("dynamodb:*"),
           allow("iam:DeleteRolePermissionsBoundary", arn("role", "boundary-dropper")),
           boundary=doc(allow(["dynamodb:Get*", "iam:DeleteRolePermissionsBoundary"])))
    vw = b.policy("vw-policy", doc(allow("iam:CreatePolicyVersion", arn("policy", "vw-policy"))))
    b.role("version-writer", managed=[vw])
    b.user("group-joiner", allow("iam:AddUserToGroup", arn("group", "ops")))
    # taking over another user, rewriting a trust policy
    b.user("key-maker", allow("iam:CreateAccessKey", arn("user", "ops-bob")))
    b.user("trust-writer", allow("iam:UpdateAssumeRolePolicy", arn("role", "lambda-admin")))
    # PassRole to a service that runs code
    lambda_admin = arn("role", "lambda-admin")
    b.user("lambda-dev", allow("iam:PassRole", lambda_admin),
           allow(["lambda:CreateFunction", "lambda:InvokeFunction"]))
    b.user("lambda-dev-ec2only", allow("iam:PassRole", lambda_admin, Condition={
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
        allow(["lambda:CreateFunction", "lambda:InvokeFunction"]))
    b.user("cfn-dev", allow(["iam:PassRole", "cloudformation:CreateStack"]))
    b.user("glue-dev", allow("iam:PassRole", arn("role", "glue-role"),
                             Condition={"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}}),
           allow(["glue:CreateJob", "glue:StartJobRun"]))
    b.user("ec2-dev", allow("iam:PassRole", arn("role", "ec2-role")), allow("ec2:RunInstances"))
    b.user("ec2-dev-unprofiled", allow("iam:PassRole", arn("role", "ec2-role-unprofiled")),
           allow("ec2:RunInstances"))
    # assuming roles: trust and identity, deny and boundary on the hop, a condition, a chain
    ops_admin = arn("role", "ops-admin")
    b.user("assumer", allow("sts:AssumeRole", ops_admin))
    b.user("assumer-no-trust", allow("sts:AssumeRole", lambda_admin))
    b.user("assumer-denied", allow("sts:AssumeRole", ops_admin), deny("sts:AssumeRole", ops_admin))
    b.user("bounded-assumer", allow("sts:AssumeRole", ops_admin), boundary=doc(allow("dynamodb:Get*")))
    b.user("cond-assumer", allow("sts:AssumeRole", ops_admin, Condition=MFA))
    b.user("chain-start", allow("sts:AssumeRole", arn("role", "chain-mid")))
    b.role("chain-mid", allow("sts:AssumeRole", arn("role", "chain-end")))
    b.role("chain-end", allow("dynamodb:DeleteTable", ORDERS), trust=trusts(arn("role", "chain-mid")))
    # another account: both the trust and the caller's own policies must allow
    auditor, silent = arn("role", "auditor", BKP), arn("role", "auditor-noperm", BKP)
    b.role("xacct-reader", allow("dynamodb:ExportTableToPointInTime", ORDERS), trust=trusts(auditor, silent))
    b.role("auditor", allow("sts:AssumeRole", arn("role", "xacct-reader")), account=BKP,
           trust=trusts(f"arn:aws:iam::{BKP}:root"))
    b.role("auditor-noperm", account=BKP, trust=trusts(f"arn:aws:iam::{BKP}:root"))
    return b


# principal -> (delete orders, PITR off, export orders, change the backup bucket's policy)
EXPECTED = {
    "role/admin": ("D", "D", "D", "D"),
    "role/ops-admin": ("D", "D", "D", "D"),
    "role/lambda-admin": ("D", "D", "D", "D"),
    "role/cfn-role": ("D", "-", "-", "-"),
    "role/glue-role": ("-", "-", "-", "D"),
    "role/ec2-role": ("-", "D", "-", "-"),
    "role/ec2-role-unprofiled": ("-", "D", "-", "-"),
    "role/reader": ("-", "-", "-", "-"),
    "role/bounded-admin": ("-", "-", "-", "-"),
    # its Deny binds its own requests only: as ops-admin (which trusts the account) it can delete
    "role/denied-admin": ("P", "D", "D", "D"),
    "user/notaction": ("-", "D", "D", "-"),
    "role/notresource": ("-", "-", "-", "-"),
    "role/wild-prefix": ("D", "-", "D", "-"),
    "user/mfa-deleter": ("D?", "-", "-", "-"),
    "user/ops-bob": ("-", "-", "-", "D"),
    "role/self-attacher": ("P", "P", "P", "P"),
    "role/self-putter-bounded": ("-", "-", "-", "-"),
    "role/boundary-dropper": ("P", "P", "P", "-"),
    "role/version-writer": ("P", "P", "P", "P"),
    "user/group-joiner": ("-", "-", "-", "P"),
    "user/key-maker": ("-", "-", "-", "P"),
    "user/trust-writer": ("P", "P", "P", "P"),
    "user/lambda-dev": ("P", "P", "P", "P"),
    "user/lambda-dev-ec2only": ("-", "-", "-", "-"),
    "user/cfn-dev": ("P", "-", "-", "-"),
    "user/glue-dev": ("-", "-", "-", "P"),
    "user/ec2-dev": ("-", "P", "-", "-"),
    "user/ec2-dev-unprofiled": ("-", "-", "-", "-"),
    "user/assumer": ("P", "P", "P", "P"),
    "user/assumer-no-trust": ("-", "-", "-", "-"),
    "user/assumer-denied": ("-", "-", "-", "-"),
    "user/bounded-assumer": ("-", "-", "-", "-"),
    "user/cond-assumer": ("P?", "P?", "P?", "P?"),
    "user/chain-start": ("P", "-", "-", "-"),
    "role/chain-mid": ("P", "-", "-", "-"),
    "role/chain-end": ("D", "-", "-", "-"),
    "role/xacct-reader": ("-", "-", "D", "-"),
}
EXPECTED_BACKUP = {"role/auditor": ("-", "-", "P", "-"), "role/auditor-noperm": ("-", "-", "-", "-")}


@pytest.fixture(scope="module")
def config():
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "include" / "dynamoguard.yaml").read_text())
    return Config.model_validate(data)


@pytest.fixture(scope="module")
def report(config):
    return run_review(config, estate().snapshots(), "2026-03-01")


def answer(report, principal, resource, action):
    hits = [e for e in report["matrix"]
            if (e["principal"], e["resource"], e["action"]) == (principal, resource, action)]
    if not hits:
        return "-"
    [e] = hits
    code = {"allowed": "", "conditional": "?", "denied": "X"}[e["decision"]]
    return code if code == "X" else ("P" if e["via"] == "path" else "D") + code


def test_every_answer_matches_the_hand_computed_one(report):
    expected = {f"arn:aws:iam::{SRC}:{k}": v for k, v in EXPECTED.items()}
    expected |= {f"arn:aws:iam::{BKP}:{k}": v for k, v in EXPECTED_BACKUP.items()}
    got = {p: tuple(answer(report, p, r, a) for r, a in QUESTIONS) for p in expected}
    assert got == expected
    assert sum(v != "-" for answers in expected.values() for v in answers) == 63


def path_of(report, name, action="dynamodb:DeleteTable", resource="table:orders", account=SRC):
    [e] = [e for e in report["matrix"] if e["principal"] == f"arn:aws:iam::{account}:{name}"
           and (e["resource"], e["action"]) == (resource, action)]
    return [(h["kind"], h["to"]) for h in e["path"]], e


@pytest.mark.parametrize(("name", "hops"), [
    ("role/self-attacher", [("policy_write", f"{arn('role', 'self-attacher')} (with any policy it attaches)")]),
    ("role/boundary-dropper", [("boundary_removal",
                                f"{arn('role', 'boundary-dropper')} (without its permissions boundary)")]),
    ("user/lambda-dev", [("pass_role", arn("role", "lambda-admin"))]),
    ("user/trust-writer", [("update_trust", arn("role", "lambda-admin"))]),
    ("user/cfn-dev", [("pass_role", arn("role", "cfn-role"))]),
    ("user/assumer", [("assume", arn("role", "ops-admin"))]),
    ("user/chain-start", [("assume", arn("role", "chain-mid")), ("assume", arn("role", "chain-end"))]),
])
def test_paths_are_shown_hop_by_hop_with_the_statement_behind_each(report, name, hops):
    path, entry = path_of(report, name)
    assert path == hops
    assert all(h["evidence"] and h["evidence"][0]["statement"] for h in entry["path"])
    assert entry["grants"], "the statement that grants the final action"


def test_other_kinds_of_hop(report):
    assert path_of(report, "user/key-maker", "s3:PutBucketPolicy", "bucket:dynamoguard-exports")[0] == [
        ("credentials", arn("user", "ops-bob"))]
    assert path_of(report, "user/group-joiner", "s3:PutBucketPolicy", "bucket:dynamoguard-exports")[0] == [
        ("join_group", f"{arn('user', 'group-joiner')} (in group ops)")]
    assert path_of(report, "user/ec2-dev", "dynamodb:UpdateContinuousBackups")[0] == [
        ("pass_role", arn("role", "ec2-role"))]
    path, entry = path_of(report, "role/auditor", "dynamodb:ExportTableToPointInTime", account=BKP)
    assert path == [("assume", arn("role", "xacct-reader"))]
    [hop] = entry["path"]
    assert {g["policy"] for g in hop["evidence"]} == {"role auditor inline policy inline",
                                                       f"trust policy of {arn('role', 'xacct-reader')}"}


def test_a_conditional_hop_keeps_its_condition_as_evidence(report):
    _, entry = path_of(report, "user/cond-assumer")
    assert entry["decision"] == "conditional"
    assert entry["path"][0]["decision"] == "conditional"
    assert entry["path"][0]["evidence"][0]["conditions"] == [
        {"operator": "Bool", "key": "aws:MultiFactorAuthPresent", "values": ["true"]}]


def test_escalation_findings(report):
    def finding(name, resource="table:orders"):
        return [f for f in report["findings"] if f["kind"] == "escalation_path" and f["resource"] == resource
                and f["principal"] == f"arn:aws:iam::{SRC}:{name}"]

    [self_attach] = finding("role/self-attacher")
    assert (self_attach["severity"], self_attach["status"], self_attach["table"]) == ("critical", "allowed", "orders")
    assert set(ALL) <= set(self_attach["actions"])
    assert self_attach["evidence"][0]["hop"] == 1 and "iam:AttachRolePolicy" in self_attach["evidence"][0]["how"]
    [bucket] = finding("user/key-maker", "bucket:dynamoguard-exports")
    assert (bucket["severity"], bucket["table"]) == ("high", None)  # a policy change, not a deletion
    [conditional] = finding("user/cond-assumer")
    assert (conditional["severity"], conditional["status"]) == ("critical", "conditional")
    assert finding("user/assumer-denied") == [] and finding("user/lambda-dev-ec2only") == []


def test_without_escalation_only_direct_answers_remain(config):
    direct = run_review(config, estate().snapshots(), "2026-03-01", escalation=False)
    assert all(e["via"] == "direct" for e in direct["matrix"])
    assert answer(direct, arn("role", "denied-admin"), "table:orders", "dynamodb:DeleteTable") == "X"
    assert answer(direct, arn("user", "lambda-dev"), "table:orders", "dynamodb:DeleteTable") == "-"


def test_new_paths_are_in_the_daily_diff(config):
    before = run_review(config, estate().snapshots(), "2026-03-01")
    b = estate()
    b.user("newcomer", allow("sts:AssumeRole", arn("role", "ops-admin")))
    after = run_review(config, b.snapshots(), "2026-03-02", previous=before)
    newcomer = arn("user", "newcomer")
    texts = [a["text"] for a in after["diff"]["new_access"]]
    assert f"{newcomer} can now DeleteTable orders via assume {arn('role', 'ops-admin')}" in texts
    assert {f["kind"] for f in after["diff"]["new_findings"] if f["principal"] == newcomer} == {"escalation_path"}
    assert all(f["principal"] == newcomer for f in after["diff"]["new_findings"])


def test_the_graph_evaluates_each_kind_negative_cases():
    snaps = estate().snapshots()
    from dynamoguard.access.collect import principals

    by_account = {s["account"]: principals(s) for s in snaps.values()}
    graph = Graph(Estate.from_snapshots(snaps.values(), by_account))

    def targets(kind, name, account=SRC):
        return {h.target.arn for h in graph.edges(Node(arn(kind, name, account)))}

    assert targets("user", "assumer-no-trust") == set()  # trust admits only Lambda
    assert targets("user", "assumer-denied") == set()  # explicit deny on the hop
    assert targets("user", "bounded-assumer") == set()  # boundary blocks the hop
    assert targets("user", "lambda-dev-ec2only") == set()  # PassRole only to EC2
    assert targets("user", "ec2-dev-unprofiled") == set()  # no instance profile, cannot make one
    assert targets("role", "auditor-noperm", BKP) == set()  # named in the trust, but its own policies do not allow
    assert targets("role", "auditor", BKP) == {arn("role", "xacct-reader")}
    # a bounded role may rewrite its own policy, but its boundary still caps it
    [hop] = graph.edges(Node(arn("role", "self-putter-bounded")))
    assert hop.target.admin and graph.edges(hop.target) == []


def test_limitations_say_in_plain_words_what_is_not_modelled(report):
    text = " ".join(report["limitations"])
    for gap in ("Service control policies", "session policies", "resource control policies",
                "updating a function's code", "ssm:SendCommand", "SAML", "access key slot"):
        assert gap in text, gap

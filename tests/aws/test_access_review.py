"""The access review against the emulator: real IAM, DynamoDB resource policies and bucket policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.aws

SRC, BKP = "111111111111", "222222222222"
ARN = f"arn:aws:dynamodb:us-east-1:{SRC}:table/"
ORDERS, CUSTOMERS, INVENTORY = ARN + "orders", ARN + "customers", ARN + "inventory"
BACKUP_OBJECTS = "arn:aws:s3:::dynamoguard-exports/exports/*"
REPLICA = "arn:aws:s3:::dynamoguard-exports-replica"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
ITEM_ACTIONS = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]
DESTRUCTIVE = ["dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:UpdateContinuousBackups"]


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def role_arn(name, account=SRC):
    return f"arn:aws:iam::{account}:role/{name}"


def make_role(iam, name, *statements, boundary=None):
    """A role with one inline policy; a role of that name from the demo seed is replaced."""
    try:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        iam.delete_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        pass
    extra = {"PermissionsBoundary": boundary} if boundary else {}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, **extra)
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName=f"{name}-policy", PolicyDocument=doc(*statements))


@pytest.fixture(scope="module")
def config():
    """The demo config, with fine-grained access required on orders and customers and boundaries required."""
    from dynamoguard.config import Config

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "include" / "dynamoguard.yaml").read_text())
    for table in data["tables"]:
        table["require_fine_grained_access"] = table["name"] in ("orders", "customers")
    data["access_review"]["require_permission_boundary"] = True
    return Config.model_validate(data)


@pytest.fixture(scope="module")
def estate(localaws_server):
    """The demo estate plus one principal for every case the review must tell apart (seeded once per module)."""
    seeded = localaws_server
    seeded.reset()
    seeded.seed()
    iam, ddb = seeded.client("iam"), seeded.client("dynamodb")
    guard = iam.create_policy(PolicyName="app-boundary", PolicyDocument=doc(
        {"Effect": "Allow", "Action": ["dynamodb:Describe*", *ITEM_ACTIONS], "Resource": "*"}))["Policy"]["Arn"]
    # least privilege, allowlisted for orders, item access limited to the caller's own partition
    make_role(iam, "orders-service", {
        "Sid": "OwnItems", "Effect": "Allow", "Action": ITEM_ACTIONS, "Resource": ORDERS,
        "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["${aws:userid}"]}},
    }, boundary=guard)
    # allowlisted for customers, but no LeadingKeys condition although the config requires one
    make_role(iam, "customers-service", {"Sid": "Items", "Effect": "Allow", "Action": ITEM_ACTIONS,
                                         "Resource": CUSTOMERS}, boundary=guard)
    make_role(iam, "wide-open", {"Sid": "Everything", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})
    make_role(iam, "denied-ops",
              {"Sid": "Drop", "Effect": "Allow", "Action": DESTRUCTIVE, "Resource": ORDERS},
              {"Sid": "NeverDrop", "Effect": "Deny", "Action": DESTRUCTIVE, "Resource": "*"}, boundary=guard)
    make_role(iam, "bounded", {"Sid": "Drop", "Effect": "Allow", "Action": DESTRUCTIVE, "Resource": ORDERS},
              boundary=guard)
    admin_guard = iam.create_policy(PolicyName="admin-boundary", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}))["Policy"]["Arn"]
    make_role(iam, "mfa-admin", {"Sid": "DropWithMfa", "Effect": "Allow", "Action": "dynamodb:DeleteTable",
                                 "Resource": ORDERS, "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
              boundary=admin_guard)
    # a user whose group may delete backups in the backup bucket
    iam.create_user(UserName="ops-alice")
    iam.create_group(GroupName="ops")
    iam.add_user_to_group(GroupName="ops", UserName="ops-alice")
    janitor = iam.create_policy(PolicyName="backup-janitor", PolicyDocument=doc(
        {"Sid": "Prune", "Effect": "Allow", "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
         "Resource": "arn:aws:s3:::dynamoguard-exports/exports/2026/*"}))["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="ops", PolicyArn=janitor)
    # inventory's resource policy lets another account read it
    ddb.put_resource_policy(ResourceArn=INVENTORY, Policy=doc({
        "Sid": "PartnerReads", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
        "Action": ["dynamodb:GetItem", "dynamodb:Scan"], "Resource": INVENTORY}))
    # in the backup account, a role that may shorten retention on the replicas
    make_role(seeded.client("iam", account="backup"), "replica-admin", {
        "Sid": "Retention", "Effect": "Allow", "Action": "s3:PutObjectRetention", "Resource": REPLICA + "/*"})
    return seeded


def snapshots(localaws, config):
    from dynamoguard.access.collect import collect_account

    src = {s: localaws.client(s) for s in ("iam", "dynamodb", "s3", "sts")}
    bkp = {s: localaws.client(s, account="backup") for s in ("iam", "s3", "sts")}
    return {
        "source": collect_account(SRC, src["iam"], ddb=src["dynamodb"], s3=src["s3"],
                                  table_arns=[config.table_arn(t) for t in config.table_names],
                                  buckets=[config.backup_bucket.name],
                                  caller_account=src["sts"].get_caller_identity()["Account"]),
        "backup": collect_account(BKP, bkp["iam"], s3=bkp["s3"], buckets=[config.replica_bucket.name],
                                  caller_account=bkp["sts"].get_caller_identity()["Account"]),
    }


def review(localaws, config, run_date="2026-03-01", previous=None):
    from dynamoguard.access.review import run_review

    return run_review(config, snapshots(localaws, config), run_date, previous)


@pytest.fixture(scope="module")
def report(estate, config):
    return review(estate, config)


def cell(report, resource, principal, action):
    hits = [e for e in report["matrix"]
            if (e["resource"], e["principal"], e["action"]) == (resource, principal, action)]
    return hits[0]["decision"] if hits else "not_allowed"


def findings(report, principal=None, kind=None):
    return [f for f in report["findings"]
            if (principal is None or f["principal"] == principal) and (kind is None or f["kind"] == kind)]


def test_least_privilege_app_role_passes(report):
    app = role_arn("orders-service")
    # the LeadingKeys condition cannot be decided without a request: conditional, never "allowed"
    assert cell(report, "table:orders", app, "dynamodb:GetItem") == "conditional"
    assert cell(report, "table:orders", app, "dynamodb:DeleteTable") == "not_allowed"
    assert cell(report, "table:customers", app, "dynamodb:GetItem") == "not_allowed"
    assert findings(report, app) == []


def test_dynamodb_star_on_star_is_flagged(report):
    wide = role_arn("wide-open")
    for table in ("orders", "customers", "inventory"):
        assert cell(report, f"table:{table}", wide, "dynamodb:DeleteTable") == "allowed"
    unlisted = findings(report, wide, "unlisted_destructive")
    assert {f["resource"] for f in unlisted} == {"table:orders", "table:customers", "table:inventory"}
    orders = next(f for f in unlisted if f["resource"] == "table:orders")
    assert (orders["severity"], orders["policy"], orders["statement"]) == (
        "high", "role wide-open inline policy wide-open-policy", "Everything")
    assert "dynamodb:DeleteTable" in orders["actions"] and "dynamodb:GetItem" not in orders["actions"]
    assert {f["resource"] for f in findings(report, wide, "wildcard_grant")} == {
        "table:orders", "table:customers", "table:inventory"}
    assert [f["severity"] for f in findings(report, wide, "missing_permission_boundary")] == ["medium"] * 3


def test_explicit_deny_and_boundary_remove_access(report):
    for name in ("denied-ops", "bounded"):
        assert findings(report, role_arn(name)) == [], name
    assert cell(report, "table:orders", role_arn("denied-ops"), "dynamodb:DeleteTable") == "denied"
    [entry] = [e for e in report["matrix"] if e["principal"] == role_arn("denied-ops")
               and e["action"] == "dynamodb:DeleteTable" and e["resource"] == "table:orders"]
    assert [(d["policy"], d["statement"]) for d in entry["denies"]] == [
        ("role denied-ops inline policy denied-ops-policy", "NeverDrop")]
    assert cell(report, "table:orders", role_arn("bounded"), "dynamodb:DeleteTable") == "not_allowed"


def test_resource_policy_granting_another_account_is_flagged(report):
    partner = "arn:aws:iam::999999999999:root"
    assert cell(report, "table:inventory", partner, "dynamodb:Scan") == "allowed"
    assert cell(report, "table:inventory", partner, "dynamodb:DeleteTable") == "not_allowed"
    [finding] = findings(report, partner, "cross_account")
    assert (finding["severity"], finding["policy"], finding["statement"], finding["actions"]) == (
        "high", "resource policy of table inventory", "PartnerReads", ["dynamodb:GetItem", "dynamodb:Scan"])
    # the seeded bucket policy letting the (allowlisted) backup role read exports is reported, as expected access
    expected = findings(report, role_arn("dynamoguard-backup", BKP), "cross_account")
    assert [(f["severity"], f["resource"], f["statement"]) for f in expected] == [
        ("info", "bucket:dynamoguard-exports", "BackupAccountListsExports"),
        ("info", "bucket:dynamoguard-exports", "BackupAccountReadsExports")]


def test_conditional_grant_is_reported_as_conditional(report):
    mfa = role_arn("mfa-admin")
    assert cell(report, "table:orders", mfa, "dynamodb:DeleteTable") == "conditional"
    [finding] = findings(report, mfa)
    assert (finding["kind"], finding["status"], finding["severity"], finding["statement"]) == (
        "unlisted_destructive", "conditional", "high", "DropWithMfa")
    assert finding["message"].endswith("if Bool aws:MultiFactorAuthPresent true")


def test_fine_grained_access_required_by_config(report):
    app = role_arn("customers-service")
    [finding] = findings(report, app)
    assert (finding["kind"], finding["severity"], finding["resource"], finding["statement"]) == (
        "fine_grained_missing", "high", "table:customers", "Items")
    assert finding["actions"] == sorted(ITEM_ACTIONS)


def test_group_grants_and_backup_account(report):
    alice = f"arn:aws:iam::{SRC}:user/ops-alice"
    # a grant on part of the export prefix is access to the backups
    assert cell(report, "bucket:dynamoguard-exports", alice, "s3:DeleteObject") == "allowed"
    [finding] = findings(report, alice, "unlisted_destructive")
    assert finding["policy"] == f"arn:aws:iam::{SRC}:policy/backup-janitor" and finding["statement"] == "Prune"
    admin = role_arn("replica-admin", BKP)
    assert cell(report, "bucket:dynamoguard-exports-replica", admin, "s3:PutObjectRetention") == "allowed"
    assert findings(report, admin, "unlisted_destructive")[0]["account"] == BKP


def test_collect_pages_through_authorization_details(estate):
    from dynamoguard.access.collect import authorization_details

    iam = estate.client("iam")
    paged, whole = authorization_details(iam, page_size=2), authorization_details(iam)
    assert paged == whole
    assert len(whole["RoleDetailList"]) == len(iam.list_roles()["Roles"]) > 2
    assert {p["PolicyName"] for p in whole["Policies"]} >= {"app-boundary", "backup-janitor"}


def test_attached_policies_missing_from_the_listing_are_fetched(estate, config):
    """Through each reviewer's own connection, so the IAM proof (tests/iam) checks that its role may call
    iam:GetPolicy and iam:GetPolicyVersion."""
    from dynamoguard import aws
    from dynamoguard.access.collect import CollectError, managed_policy_documents

    estate.client("iam", account="backup").create_policy(
        PolicyName="replica-reader", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}))
    for conn_id, account, name in ((config.access_review_conn_id, SRC, "app-boundary"),
                                   (config.accounts.backup.aws_conn_id, BKP, "replica-reader")):
        iam = aws.client(conn_id, "iam", config.region)
        arn = f"arn:aws:iam::{account}:policy/{name}"
        details = {"UserDetailList": [], "GroupDetailList": [], "Policies": [], "RoleDetailList": [
            {"RoleName": "r", "AttachedManagedPolicies": [{"PolicyName": name, "PolicyArn": arn}]}]}
        docs = managed_policy_documents(iam, details)
        assert docs[arn]["Statement"][0]["Action"][0] in ("dynamodb:Describe*", "s3:GetObject")
        details["RoleDetailList"][0]["PermissionsBoundary"] = {"PermissionsBoundaryArn": arn + "-gone"}
        with pytest.raises(CollectError, match=f"{name}-gone"):
            managed_policy_documents(iam, details)


def test_previous_report_is_the_latest_earlier_run(estate, config):
    from dynamoguard.access.report import previous_report, snapshot_key, write_report

    s3 = estate.client("s3")
    bucket, prefix = config.reports_bucket.name, config.reports_bucket.prefix
    for day in ("2026-02-01", "2026-02-03"):
        write_report(s3, bucket, prefix, review_stub(day))
    s3.put_object(Bucket=bucket, Key=snapshot_key(prefix, "2026-02-02", "source"), Body=b"{}")  # failed run
    assert previous_report(s3, bucket, prefix, "2026-02-03")["run_date"] == "2026-02-01"
    assert previous_report(s3, bucket, prefix, "2026-02-04")["run_date"] == "2026-02-03"
    assert previous_report(s3, bucket, prefix, "2026-02-01") is None


def review_stub(run_date):
    from dynamoguard.access.report import build_report

    return build_report(run_date, {"source": SRC}, [], [], [])


def test_new_principal_between_runs_is_in_the_diff(estate, config):
    from dynamoguard.access.report import new_alerts

    first = review(estate, config, "2026-03-01")
    assert first["diff"]["previous_run"] is None
    make_role(estate.client("iam"), "newcomer", {"Sid": "Oops", "Effect": "Allow", "Action": "dynamodb:DeleteTable",
                                                 "Resource": ORDERS})
    second = review(estate, config, "2026-03-02", previous=first)
    diff = second["diff"]
    assert diff["previous_run"] == "2026-03-01"
    assert [a["text"] for a in diff["new_access"]] == [f"{role_arn('newcomer')} can now DeleteTable orders"]
    assert {(f["kind"], f["principal"]) for f in diff["new_findings"]} == {
        ("unlisted_destructive", role_arn("newcomer")), ("missing_permission_boundary", role_arn("newcomer"))}
    assert [f["kind"] for f in new_alerts(second)] == ["unlisted_destructive"]
    assert diff["resolved_findings"] == [] and diff["removed_access"] == []


def test_the_seeded_demo_estate_shows_real_findings(seeded):
    """The demo seed's IAM, reviewed with the demo config: the findings the estate was built to show."""
    from dynamoguard.config import load_config

    config = load_config()
    report = review(seeded, config)

    def kinds(name, account=SRC):
        return {(f["kind"], f["severity"], f["resource"]) for f in findings(report, role_arn(name, account))}

    tables = ("table:orders", "table:customers", "table:inventory")
    exports, replica = "bucket:dynamoguard-exports", "bucket:dynamoguard-exports-replica"
    assert findings(report, role_arn("orders-service")) == []  # least privilege, allowlisted
    assert {("unlisted_data_access", "medium", t) for t in tables} <= kinds("analytics")
    assert {("wildcard_grant", "medium", t) for t in tables} <= kinds("analytics")
    assert {("unlisted_destructive", "high", r) for r in (*tables, exports)} <= kinds("platform-admin")
    assert {("unlisted_destructive", "high", t) for t in tables} <= kinds("table-janitor")
    assert ("unlisted_data_access", "high", replica) in kinds("backup-auditor", BKP)
    # two escalation paths: assuming the admin role, and passing the cleanup role to Lambda
    support = f"arn:aws:iam::{SRC}:user/support-engineer"
    [orders] = [f for f in findings(report, support, "escalation_path") if f["resource"] == "table:orders"]
    assert (orders["severity"], orders["status"], orders["table"]) == ("critical", "allowed", "orders")
    assert orders["evidence"][0]["kind"] == "assume" and orders["evidence"][0]["to"] == role_arn("platform-admin")
    assert orders["evidence"][0]["evidence"][0]["statement"] == "BecomeAdmin"
    assert cell(report, "table:orders", support, "dynamodb:DeleteTable") == "allowed"
    ci = f"arn:aws:iam::{SRC}:user/ci-deployer"
    [path] = [e["path"] for e in report["matrix"] if e["principal"] == ci and e["resource"] == "table:orders"
              and e["action"] == "dynamodb:DeleteTable"]
    assert [(h["kind"], h["to"]) for h in path] == [("pass_role", role_arn("table-janitor"))]
    assert {f["severity"] for f in findings(report, ci, "escalation_path")} == {"critical"}

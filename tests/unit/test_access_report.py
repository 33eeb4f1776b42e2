"""Snapshot parsing, findings and the report (JSON, diff, HTML) on hand-built snapshots in AWS's shapes."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from dynamoguard.access.collect import CollectError, policy_document, principals
from dynamoguard.access.report import diff_reports, render_html, report_keys, snapshot_key
from dynamoguard.access.review import run_review
from dynamoguard.config import Config

SRC, BKP = "111111111111", "222222222222"
ORDERS = f"arn:aws:dynamodb:us-east-1:{SRC}:table/orders"


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


@pytest.fixture
def config():
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "include" / "dynamoguard.yaml").read_text())
    return Config.model_validate(data)


def snapshot(account, roles=(), users=(), groups=(), policies=(), tables=None, buckets=None):
    return {"account": account, "authorization_details": {
        "RoleDetailList": list(roles), "UserDetailList": list(users), "GroupDetailList": list(groups),
        "Policies": list(policies)},
        "managed_policies": {p["Arn"]: policy_document(p["PolicyVersionList"][0]["Document"]) for p in policies},
        "table_policies": tables or {}, "bucket_policies": buckets or {}}


def role(name, *statements, boundary=None, path="/"):
    out = {"RoleName": name, "Arn": f"arn:aws:iam::{SRC}:role{path}{name}", "Path": path,
           "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": quote(json.dumps(doc(*statements)))}],
           "AttachedManagedPolicies": []}
    if boundary:
        out["PermissionsBoundary"] = {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                      "PermissionsBoundaryArn": boundary}
    return out


def managed(name, *statements):
    return {"Arn": f"arn:aws:iam::{SRC}:policy/{name}", "PolicyName": name,
            "PolicyVersionList": [{"Document": doc(*statements), "IsDefaultVersion": True, "VersionId": "v1"}]}


def review(config, source, run_date="2026-03-01", previous=None):
    return run_review(config, {"source": source, "backup": snapshot(BKP)}, run_date, previous)


def test_policy_documents_url_encoded_or_decoded():
    assert policy_document(quote(json.dumps(doc()))) == doc()
    assert policy_document(json.dumps(doc())) == doc()
    assert policy_document(doc()) == doc()


def test_users_get_group_and_attached_policies_and_their_boundary():
    drop = managed("drop", {"Effect": "Allow", "Action": "dynamodb:DeleteTable", "Resource": ORDERS})
    fence = managed("fence", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    user = {"UserName": "bob", "Arn": f"arn:aws:iam::{SRC}:user/bob", "GroupList": ["ops"], "UserPolicyList": [],
            "AttachedManagedPolicies": [],
            "PermissionsBoundary": {"PermissionsBoundaryArn": fence["Arn"]}}
    group = {"GroupName": "ops", "GroupPolicyList": [], "AttachedManagedPolicies": [
        {"PolicyName": "drop", "PolicyArn": drop["Arn"]}]}
    [bob] = principals(snapshot(SRC, users=[user], groups=[group], policies=[drop, fence]))
    assert [name for name, _ in bob.identity] == [drop["Arn"]]
    assert bob.boundary[0] == fence["Arn"]
    with pytest.raises(CollectError, match="group ops"):
        principals(snapshot(SRC, users=[user], policies=[drop, fence]))
    with pytest.raises(CollectError, match="fence"):
        principals(snapshot(SRC, users=[user], groups=[group], policies=[drop]))


def test_public_bucket_policy_and_wildcard_resource(config):
    public = doc({"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                  "Resource": "arn:aws:s3:::dynamoguard-exports/*"})
    wide = role("cleaner", {"Sid": "AllBuckets", "Effect": "Allow", "Action": "s3:DeleteObject",
                            "Resource": "arn:aws:s3:::*"})
    report = review(config, snapshot(SRC, roles=[wide], buckets={"dynamoguard-exports": public}))
    kinds = {(f["kind"], f["severity"], f["statement"]) for f in report["findings"]}
    assert ("cross_account", "critical", "Public") in kinds
    assert ("wildcard_grant", "high", "AllBuckets") in kinds and ("unlisted_destructive", "high", "AllBuckets") in kinds
    anyone = [e for e in report["matrix"] if e["principal"] == "*"]
    assert {(e["resource"], e["action"], e["decision"]) for e in anyone} == {
        ("bucket:dynamoguard-exports", "s3:GetObject", "allowed")}


def test_query_on_an_index_is_access_to_the_table(config):
    index_reader = role("reporting", {"Sid": "Index", "Effect": "Allow",
                                      "Action": ["dynamodb:Query", "dynamodb:GetItem"],
                                      "Resource": ORDERS + "/index/by-status"})
    report = review(config, snapshot(SRC, roles=[index_reader]))
    assert {(e["action"], e["decision"]) for e in report["matrix"]} == {("dynamodb:Query", "allowed")}
    assert report["matrix"][0]["grants"][0]["resource_pattern"] == ORDERS + "/index/by-status"


def test_a_table_name_prefix_reaches_no_other_table_through_its_indexes_or_backups(config):
    prefix = role("ord-reader", {"Sid": "Ord", "Effect": "Allow",
                                 "Action": ["dynamodb:Query", "dynamodb:Scan", "dynamodb:DeleteBackup"],
                                 "Resource": "arn:aws:dynamodb:*:*:table/ord*"})
    report = review(config, snapshot(SRC, roles=[prefix]))
    assert {(e["resource"], e["action"]) for e in report["matrix"]} == {
        ("table:orders", a) for a in ("dynamodb:Query", "dynamodb:Scan", "dynamodb:DeleteBackup")}
    assert {f["resource"] for f in report["findings"]} == {"table:orders"}


def test_conditional_grants_keep_operator_key_and_value_and_their_severity(config):
    office = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    ops = role("ops", {"Sid": "Drop", "Effect": "Allow", "Action": "dynamodb:DeleteTable", "Resource": ORDERS,
                       "Condition": office},
               {"Sid": "Export", "Effect": "Allow", "Action": "dynamodb:ExportTableToPointInTime", "Resource": ORDERS,
                "Condition": office},
               {"Sid": "Read", "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": ORDERS,
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}})
    report = review(config, snapshot(SRC, roles=[ops]))
    by_statement = {f["statement"]: f for f in report["findings"]}
    assert {s: (f["kind"], f["severity"], f["status"], f["table"]) for s, f in by_statement.items()} == {
        "Drop": ("unlisted_destructive", "high", "conditional", "orders"),
        "Export": ("unlisted_data_access", "high", "conditional", "orders"),
        "Read": ("unlisted_data_access", "medium", "conditional", "orders")}
    drop = by_statement["Drop"]
    assert drop["message"].endswith("if IpAddress aws:SourceIp 10.0.0.0/8")
    assert drop["evidence"][0]["conditions"] == [{"operator": "IpAddress", "key": "aws:SourceIp",
                                                  "values": ["10.0.0.0/8"]}]
    [cell] = [e for e in report["matrix"] if e["action"] == "dynamodb:DeleteTable"]
    assert (cell["decision"], cell["via"], cell["grants"][0]["conditions"][0]["values"]) == (
        "conditional", "direct", ["10.0.0.0/8"])
    page = render_html(report)
    assert page.count("IpAddress aws:SourceIp 10.0.0.0/8") >= 4  # two findings' details and evidence, two cells
    assert "Bool aws:MultiFactorAuthPresent true" in page


def test_allowlist_patterns_and_service_linked_roles(config):
    data = config.model_dump()
    data["tables"][0]["allowed_principals"] = [f"arn:aws:iam::{SRC}:role/orders-*"]
    data["access_review"]["require_permission_boundary"] = True
    cfg = Config.model_validate(data)
    statement = {"Effect": "Allow", "Action": "dynamodb:DeleteTable", "Resource": ORDERS}
    roles = [role("orders-admin", statement), role("svc", statement, path="/aws-service-role/dynamodb/")]
    report = review(cfg, snapshot(SRC, roles=roles))
    kinds = {(f["kind"], f["principal"].rsplit("/", 1)[-1]) for f in report["findings"]}
    assert kinds == {("missing_permission_boundary", "orders-admin"), ("unlisted_destructive", "svc")}


def test_diff_reports_removed_and_upgraded_access(config):
    cond = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    before = review(config, snapshot(SRC, roles=[
        role("a", {"Effect": "Allow", "Action": "dynamodb:DeleteTable", "Resource": ORDERS, "Condition": cond}),
        role("b", {"Effect": "Allow", "Action": "dynamodb:UpdateTable", "Resource": ORDERS})]))
    after = review(config, snapshot(SRC, roles=[
        role("a", {"Effect": "Allow", "Action": "dynamodb:DeleteTable", "Resource": ORDERS})]), "2026-03-02", before)
    diff = after["diff"]
    assert [a["text"] for a in diff["new_access"]] == [f"arn:aws:iam::{SRC}:role/a can now DeleteTable orders"]
    assert [a["text"] for a in diff["removed_access"]] == [
        f"arn:aws:iam::{SRC}:role/b can no longer UpdateTable orders"]
    assert {f["principal"].rsplit("/", 1)[-1] for f in diff["resolved_findings"]} == {"b"}
    # the finding for "a" keeps its id (same grant) but is now unconditional, hence more severe: new again
    assert [(f["principal"].rsplit("/", 1)[-1], f["severity"], f["status"]) for f in diff["new_findings"]] == [
        ("a", "high", "allowed")]
    assert diff_reports(None, after)["previous_run"] is None


def test_html_escapes_and_lists_findings_first(config):
    evil = role("x<script>", {"Sid": "<b>", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})
    page = render_html(review(config, snapshot(SRC, roles=[evil])))
    assert "<script>" not in page and "x&lt;script&gt;" in page
    assert page.index("Findings (") < page.index("Who can do what")


def test_report_keys():
    assert report_keys("reports/", "2026-03-01") == ("reports/access-review/2026-03-01/report.json",
                                                      "reports/access-review/2026-03-01/report.html")
    assert report_keys("", "2026-03-01")[0] == "access-review/2026-03-01/report.json"
    assert snapshot_key("r", "2026-03-01", "backup") == "r/access-review/2026-03-01/snapshot-backup.json"

"""Every audit rule against a positive and a negative CloudTrail record (demo config as the context)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dynamoguard.audit.rules import REGISTRY, RULES, context_from_config, evaluate
from dynamoguard.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "include" / "dynamoguard.yaml")
CTX = context_from_config(CONFIG)
SRC = "111111111111"
MALLORY = f"arn:aws:iam::{SRC}:user/mallory"
ORDERS_ARN = f"arn:aws:dynamodb:us-east-1:{SRC}:table/orders"


def ev(source: str, event_name: str, principal: str = MALLORY, error: str | None = None, resources=None, **request):
    """A CloudTrail record; ``principal`` given as a role ARN becomes an assumed-role session of it."""
    identity = {"type": "IAMUser", "arn": principal, "accountId": principal.split(":")[4]}
    if ":role/" in principal:
        role = principal.rsplit("/", 1)[-1]
        identity = {"type": "AssumedRole", "arn": f"arn:aws:sts::{SRC}:assumed-role/{role}/session-1",
                    "accountId": SRC, "sessionContext": {"sessionIssuer": {"type": "Role", "arn": principal}}}
    record = {"eventSource": f"{source}.amazonaws.com", "eventName": event_name, "eventTime": "2026-01-01T10:05:00Z",
              "eventID": "e-1", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
              "recipientAccountId": SRC, "userIdentity": identity, "requestParameters": request}
    if error:
        record["errorCode"] = error
    if resources:
        record["resources"] = resources
    return record


def fire(record, ctx=CTX):
    return evaluate(record, REGISTRY.get((record["eventSource"], record["eventName"]), []), ctx, "logs/k.json.gz")


FULL_SELECTORS = [{"readWriteType": "All", "includeManagementEvents": True, "dataResources": [
    {"type": "AWS::DynamoDB::Table", "values": [CONFIG.table_arn(t) for t in CONFIG.table_names]},
    {"type": "AWS::S3::Object", "values": ["arn:aws:s3:::dynamoguard-exports/",
                                           "arn:aws:s3:::dynamoguard-exports-replica/"]}]}]
DROPPED_SELECTORS = [{"readWriteType": "All", "includeManagementEvents": True, "dataResources": [
    {"type": "AWS::DynamoDB::Table", "values": [ORDERS_ARN]}]}]
BACKUP_ROLE = "arn:aws:iam::222222222222:role/dynamoguard-backup"
FOREIGN_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "s3:GetObject",
     "Resource": "arn:aws:s3:::dynamoguard-exports/*"}]}
OWN_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": BACKUP_ROLE}, "Action": "s3:GetObject",
     "Resource": "arn:aws:s3:::dynamoguard-exports/*"}]}

# rule id, expected severity, positive record, negative record
CASES = [
    ("ddb-delete-table", "high", ev("dynamodb", "DeleteTable", tableName="orders"),
     ev("dynamodb", "DeleteTable", tableName="scratch-table")),
    ("ddb-pitr-disabled", "high",
     ev("dynamodb", "UpdateContinuousBackups", tableName="orders",
        pointInTimeRecoverySpecification={"pointInTimeRecoveryEnabled": False}),
     ev("dynamodb", "UpdateContinuousBackups", tableName="orders",
        pointInTimeRecoverySpecification={"pointInTimeRecoveryEnabled": True})),
    ("ddb-delete-backup", "high",
     ev("dynamodb", "DeleteBackup", backupArn=f"{ORDERS_ARN}/backup/01700000000000-abcdef12"),
     ev("dynamodb", "DeleteBackup", backupArn=f"arn:aws:dynamodb:us-east-1:{SRC}:table/tmp/backup/0170-ab")),
    ("ddb-deletion-protection-off", "high",
     ev("dynamodb", "UpdateTable", tableName="orders", deletionProtectionEnabled=False),
     ev("dynamodb", "UpdateTable", tableName="orders", deletionProtectionEnabled=True)),
    ("ddb-export-foreign", "high",
     ev("dynamodb", "ExportTableToPointInTime", tableArn=ORDERS_ARN, s3Bucket="attacker-bucket"),
     ev("dynamodb", "ExportTableToPointInTime", tableArn=ORDERS_ARN, s3Bucket="dynamoguard-exports",
        s3BucketOwner=SRC)),
    ("ddb-export-foreign", "high",
     ev("dynamodb", "ExportTableToPointInTime", tableArn=ORDERS_ARN, s3Bucket="dynamoguard-exports",
        s3BucketOwner="999999999999"),
     ev("dynamodb", "ExportTableToPointInTime", tableArn=ORDERS_ARN, s3Bucket="dynamoguard-exports")),
    ("ddb-restore-not-allowed", "high",
     ev("dynamodb", "RestoreTableToPointInTime", sourceTableName="orders", targetTableName="copy"),
     ev("dynamodb", "RestoreTableToPointInTime", principal=f"arn:aws:iam::{SRC}:role/dynamoguard-drill",
        sourceTableName="orders", targetTableName="dgdrill-orders")),
    ("ddb-restore-not-allowed", "medium",
     ev("dynamodb", "ImportTable", tableCreationParameters={"tableName": "imported"}),
     ev("dynamodb", "ImportTable", principal=f"arn:aws:iam::{SRC}:role/dynamoguard-nightly",
        tableCreationParameters={"tableName": "imported"})),
    ("ddb-resource-policy", "high",
     ev("dynamodb", "PutResourcePolicy", resourceArn=ORDERS_ARN, policy=json.dumps(
         {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "999999999999"},
                                                  "Action": "dynamodb:Scan", "Resource": ORDERS_ARN}]})),
     ev("dynamodb", "PutResourcePolicy", resourceArn=f"arn:aws:dynamodb:us-east-1:{SRC}:table/tmp", policy="{}")),
    ("ddb-resource-policy", "medium", ev("dynamodb", "DeleteResourcePolicy", resourceArn=ORDERS_ARN),
     ev("dynamodb", "DeleteResourcePolicy", resourceArn="arn:aws:dynamodb:us-east-1:999999999999:table/orders")),
    ("ddb-data-not-allowed", "high",
     ev("dynamodb", "DeleteItem", tableName="orders", resources=[{"type": "AWS::DynamoDB::Table", "ARN": ORDERS_ARN}]),
     ev("dynamodb", "DeleteItem", principal=f"arn:aws:iam::{SRC}:role/orders-service", tableName="orders")),
    ("ddb-data-not-allowed", "high",
     ev("dynamodb", "BatchWriteItem", requestItems={"orders": [{"putRequest": {}}]}),
     ev("dynamodb", "BatchWriteItem", requestItems={"scratch": [{"putRequest": {}}]})),
    ("ddb-data-not-allowed", "high",
     ev("dynamodb", "TransactWriteItems", transactItems=[{"put": {"tableName": "orders"}},
                                                         {"delete": {"tableName": "carts"}}]),
     ev("dynamodb", "TransactWriteItems", principal=f"arn:aws:iam::{SRC}:role/orders-service",
        transactItems=[{"put": {"tableName": "orders"}}])),
    ("ddb-data-not-allowed", "medium",
     ev("dynamodb", "Scan", principal=f"arn:aws:iam::{SRC}:role/customers-service", tableName="orders"),
     ev("dynamodb", "Scan", principal=f"arn:aws:iam::{SRC}:role/customers-service", tableName="customers")),
    ("s3-object-deleted", "high",
     ev("s3", "DeleteObject", bucketName="dynamoguard-exports", key="exports/orders/data/1.json.gz", versionId="v1"),
     ev("s3", "DeleteObject", bucketName="some-other-bucket", key="x", versionId="v1")),
    ("s3-object-deleted", "medium", ev("s3", "DeleteObject", bucketName="dynamoguard-exports-replica", key="a"),
     ev("s3", "GetObject", bucketName="dynamoguard-exports-replica", key="a")),
    ("s3-object-deleted", "high", ev("s3", "DeleteObjects", bucketName="dynamoguard-exports", delete=""),
     ev("s3", "DeleteObjects", bucketName="dynamoguard-reports", delete="")),
    ("s3-retention-changed", "high",
     ev("s3", "PutObjectRetention", bucketName="dynamoguard-exports", key="a",
        **{"x-amz-bypass-governance-retention": "true"}),
     ev("s3", "PutObjectRetention", bucketName="other-bucket", key="a",
        **{"x-amz-bypass-governance-retention": "true"})),
    ("s3-retention-changed", "medium", ev("s3", "PutObjectRetention", bucketName="dynamoguard-exports", key="a"),
     ev("s3", "GetObjectRetention", bucketName="dynamoguard-exports", key="a")),
    ("s3-lock-config-changed", "high", ev("s3", "PutObjectLockConfiguration", bucketName="dynamoguard-exports"),
     ev("s3", "PutObjectLockConfiguration", bucketName="other-bucket")),
    ("s3-bucket-policy-changed", "high",
     ev("s3", "PutBucketPolicy", bucketName="dynamoguard-exports", bucketPolicy=FOREIGN_POLICY),
     ev("s3", "PutBucketPolicy", bucketName="other-bucket", bucketPolicy=FOREIGN_POLICY)),
    ("s3-bucket-policy-changed", "medium",
     ev("s3", "PutBucketPolicy", bucketName="dynamoguard-exports", bucketPolicy=OWN_POLICY),
     ev("s3", "GetBucketPolicy", bucketName="dynamoguard-exports")),
    ("s3-bucket-policy-changed", "medium", ev("s3", "DeleteBucketPolicy", bucketName="dynamoguard-exports-replica"),
     ev("s3", "DeleteBucketPolicy", bucketName="other-bucket")),
    ("s3-lifecycle-changed", "high",
     ev("s3", "PutBucketLifecycle", bucketName="dynamoguard-cloudtrail", LifecycleConfiguration={
         "Rule": {"ID": "wipe", "Status": "Enabled", "Expiration": {"Days": 1}}}),
     ev("s3", "PutBucketLifecycle", bucketName="other-bucket", LifecycleConfiguration={
         "Rule": {"ID": "wipe", "Status": "Enabled", "Expiration": {"Days": 1}}})),
    ("s3-replication-changed", "high",
     ev("s3", "PutBucketReplication", bucketName="dynamoguard-exports", ReplicationConfiguration={
         "Rule": {"Destination": {"Bucket": "arn:aws:s3:::exfil", "Account": "999999999999"}}}),
     ev("s3", "PutBucketReplication", bucketName="other-bucket", ReplicationConfiguration={
         "Rule": {"Destination": {"Bucket": "arn:aws:s3:::exfil", "Account": "999999999999"}}})),
    ("s3-replication-changed", "medium",
     ev("s3", "PutBucketReplication", bucketName="dynamoguard-exports", ReplicationConfiguration={
         "Rule": {"Destination": {"Bucket": "arn:aws:s3:::dynamoguard-exports-replica", "Account": "222222222222"}}}),
     ev("s3", "GetBucketReplication", bucketName="dynamoguard-exports")),
    ("s3-replication-changed", "medium", ev("s3", "DeleteBucketReplication", bucketName="dynamoguard-exports"),
     ev("s3", "DeleteBucketReplication", bucketName="other-bucket")),
    ("s3-versioning-suspended", "high",
     ev("s3", "PutBucketVersioning", bucketName="dynamoguard-exports", VersioningConfiguration={"Status": "Suspended"}),
     ev("s3", "PutBucketVersioning", bucketName="dynamoguard-exports", VersioningConfiguration={"Status": "Enabled"})),
    ("s3-bucket-deleted", "high", ev("s3", "DeleteBucket", bucketName="dynamoguard-exports-replica"),
     ev("s3", "DeleteBucket", bucketName="scratch-bucket")),
    ("kms-key-loss", "medium", ev("kms", "ScheduleKeyDeletion", keyId="1234abcd", pendingWindowInDays=7),
     ev("kms", "DescribeKey", keyId="1234abcd")),
    ("trail-stopped", "high", ev("cloudtrail", "StopLogging", name="dynamoguard-trail"),
     ev("cloudtrail", "StopLogging", name="someone-elses-trail")),
    ("trail-stopped", "high",
     ev("cloudtrail", "DeleteTrail", name=f"arn:aws:cloudtrail:us-east-1:{SRC}:trail/dynamoguard-trail"),
     ev("cloudtrail", "DeleteTrail", name="arn:aws:cloudtrail:us-east-1:999999999999:trail/dynamoguard-trail")),
    ("trail-updated", "high", ev("cloudtrail", "UpdateTrail", name="dynamoguard-trail", s3BucketName="elsewhere"),
     ev("cloudtrail", "UpdateTrail", name="other-trail", s3BucketName="elsewhere")),
    ("trail-updated", "medium", ev("cloudtrail", "UpdateTrail", name="dynamoguard-trail", snsTopicName="t"),
     ev("cloudtrail", "StartLogging", name="dynamoguard-trail")),
    ("trail-selectors-drop-events", "high",
     ev("cloudtrail", "PutEventSelectors", trailName="dynamoguard-trail", eventSelectors=DROPPED_SELECTORS),
     ev("cloudtrail", "PutEventSelectors", trailName="dynamoguard-trail", eventSelectors=FULL_SELECTORS)),
]


@pytest.mark.parametrize("rule_id,severity,positive,negative", CASES,
                         ids=[f"{c[0]}-{c[2]['eventName']}-{i}" for i, c in enumerate(CASES)])
def test_rule_fires_on_positive_and_not_on_negative(rule_id, severity, positive, negative):
    findings = fire(positive)
    assert [(f.rule, f.severity) for f in findings] == [(rule_id, severity)]
    finding = findings[0]
    assert finding.event_id == "e-1" and finding.log_key == "logs/k.json.gz"
    assert finding.source_ip == "203.0.113.7" and finding.event_time == "2026-01-01T10:05:00Z"
    assert finding.principal and finding.resource
    assert [f.rule for f in fire(negative)] == []


def test_every_registered_rule_has_a_positive_case():
    assert {r.id for r in RULES} == {c[0] for c in CASES}


def test_access_denied_attempt_is_one_severity_lower():
    [finding] = fire(ev("dynamodb", "DeleteTable", error="AccessDeniedException", tableName="orders"))
    assert (finding.severity, finding.outcome) == ("medium", "denied")
    [finding] = fire(ev("s3", "DeleteObject", error="AccessDenied", bucketName="dynamoguard-exports", key="k"))
    assert (finding.severity, finding.outcome) == ("low", "denied")


def test_calls_failing_for_other_reasons_are_not_findings():
    assert fire(ev("cloudtrail", "StopLogging", error="TrailNotFoundException", name="dynamoguard-trail")) == []


def test_assumed_role_principal_is_the_role():
    [finding] = fire(ev("dynamodb", "DeleteTable", principal=f"arn:aws:iam::{SRC}:role/orders-service",
                        tableName="orders"))
    assert finding.principal == f"arn:aws:iam::{SRC}:role/orders-service"


def test_watched_kms_key_is_high_and_other_keys_are_ignored():
    key_arn = f"arn:aws:kms:us-east-1:{SRC}:key/1234abcd"
    ctx = replace(CTX, kms_keys=frozenset({key_arn}))
    [finding] = fire(ev("kms", "DisableKey", keyId="1234abcd", resources=[{"ARN": key_arn}]), ctx)
    assert finding.severity == "high"
    assert fire(ev("kms", "DisableKey", keyId="9999", resources=[{"ARN": key_arn[:-8] + "9999"}]), ctx) == []


def test_data_events_by_aws_services_and_allowlisted_roles_pass():
    service = ev("dynamodb", "PutItem", tableName="orders")
    service["userIdentity"] = {"type": "AWSService", "invokedBy": "dynamodb.amazonaws.com"}
    assert fire(service) == []
    common = f"arn:aws:iam::{SRC}:role/dynamoguard-nightly"  # audit.allowed_principals apply to every table
    assert fire(ev("dynamodb", "UpdateItem", principal=common, tableName="inventory")) == []


def test_advanced_selectors_are_understood():
    advanced = [{"name": "ddb", "fieldSelectors": [
        {"field": "eventCategory", "equals": ["Data"]},
        {"field": "resources.type", "equals": ["AWS::DynamoDB::Table"]}]},
        {"name": "s3", "fieldSelectors": [
            {"field": "eventCategory", "equals": ["Data"]},
            {"field": "resources.type", "equals": ["AWS::S3::Object"]},
            {"field": "resources.ARN", "startsWith": ["arn:aws:s3:::dynamoguard-exports/",
                                                      "arn:aws:s3:::dynamoguard-exports-replica/"]}]},
        {"name": "mgmt", "fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}]
    ok = ev("cloudtrail", "PutEventSelectors", trailName="dynamoguard-trail", advancedEventSelectors=advanced)
    assert fire(ok) == []
    writes_only = [dict(s, fieldSelectors=[*s["fieldSelectors"], {"field": "readOnly", "equals": ["false"]}])
                   if s["name"] == "s3" else s for s in advanced]
    [finding] = fire(ev("cloudtrail", "PutEventSelectors", trailName="dynamoguard-trail",
                        advancedEventSelectors=writes_only))
    assert finding.detail["uncovered"] == ["arn:aws:s3:::dynamoguard-exports/ (reads)",
                                           "arn:aws:s3:::dynamoguard-exports-replica/ (reads)"]

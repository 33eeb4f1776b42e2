"""Every audit rule against a positive and a negative CloudTrail record (demo config as the context).

Record shapes follow AWS's documentation, cited per case: [DDB] DynamoDB developer guide, "Understanding
DynamoDB log file entries"; [DDBAPI] the DynamoDB API reference (member names, first letter lowered);
[S3I] S3 user guide, "Amazon S3 CloudTrail events"; [S3E] S3 user guide, "CloudTrail log file entries for
Amazon S3"; [UID] CloudTrail user guide, "CloudTrail userIdentity element"; [NET] CloudTrail user guide,
"Logging network activity events"; [REC] CloudTrail user guide, "CloudTrail record contents".
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dynamoguard.audit.context import principal_key
from dynamoguard.audit.reader import LogResult
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


def table_resource(name: str = "orders", region: str = "us-east-1") -> list[dict]:
    """``resources[]`` of a DynamoDB data event [DDB]."""
    return [{"accountId": SRC, "type": "AWS::DynamoDB::Table",
             "ARN": f"arn:aws:dynamodb:{region}:{SRC}:table/{name}"}]


def role(name: str) -> str:
    return f"arn:aws:iam::{SRC}:role/{name}"


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
    # [DDB] DeleteTable {tableName}
    ("ddb-delete-table", "critical", ev("dynamodb", "DeleteTable", tableName="orders"),
     ev("dynamodb", "DeleteTable", tableName="scratch-table")),
    # [DDBAPI] UpdateContinuousBackups PointInTimeRecoverySpecification
    ("ddb-pitr-disabled", "critical",
     ev("dynamodb", "UpdateContinuousBackups", tableName="orders",
        pointInTimeRecoverySpecification={"pointInTimeRecoveryEnabled": False}),
     ev("dynamodb", "UpdateContinuousBackups", tableName="orders",
        pointInTimeRecoverySpecification={"pointInTimeRecoveryEnabled": True})),
    # [DDBAPI] PointInTimeRecoverySpecification.RecoveryPeriodInDays (1-35)
    ("ddb-pitr-period-cut", "high",
     ev("dynamodb", "UpdateContinuousBackups", tableName="orders",
        pointInTimeRecoverySpecification={"pointInTimeRecoveryEnabled": True, "recoveryPeriodInDays": 1}),
     ev("dynamodb", "UpdateContinuousBackups", tableName="orders",
        pointInTimeRecoverySpecification={"pointInTimeRecoveryEnabled": True, "recoveryPeriodInDays": 35})),
    ("ddb-delete-backup", "critical",
     ev("dynamodb", "DeleteBackup", backupArn=f"{ORDERS_ARN}/backup/01700000000000-abcdef12"),
     ev("dynamodb", "DeleteBackup", backupArn=f"arn:aws:dynamodb:us-east-1:{SRC}:table/tmp/backup/0170-ab")),
    # [DDB] UpdateTable; [DDBAPI] DeletionProtectionEnabled
    ("ddb-deletion-protection-off", "high",
     ev("dynamodb", "UpdateTable", tableName="orders", deletionProtectionEnabled=False),
     ev("dynamodb", "UpdateTable", tableName="orders", deletionProtectionEnabled=True)),
    # [DDBAPI] UpdateTable ReplicaUpdates[].Delete.RegionName
    ("ddb-replica-deleted", "critical",
     ev("dynamodb", "UpdateTable", tableName="orders", replicaUpdates=[{"delete": {"regionName": "us-west-2"}}]),
     ev("dynamodb", "UpdateTable", tableName="orders", replicaUpdates=[{"create": {"regionName": "us-west-2"}}])),
    ("ddb-export-foreign", "high",
     ev("dynamodb", "ExportTableToPointInTime", principal=role("dynamoguard-nightly"), tableArn=ORDERS_ARN,
        s3Bucket="attacker-bucket"),
     ev("dynamodb", "ExportTableToPointInTime", principal=role("dynamoguard-nightly"), tableArn=ORDERS_ARN,
        s3Bucket="dynamoguard-exports", s3BucketOwner=SRC)),
    ("ddb-export-foreign", "high",
     ev("dynamodb", "ExportTableToPointInTime", principal=role("dynamoguard-nightly"), tableArn=ORDERS_ARN,
        s3Bucket="dynamoguard-exports", s3BucketOwner="999999999999"),
     ev("dynamodb", "ExportTableToPointInTime", principal=role("dynamoguard-nightly"), tableArn=ORDERS_ARN,
        s3Bucket="dynamoguard-exports")),
    ("ddb-restore-not-allowed", "high",
     ev("dynamodb", "RestoreTableToPointInTime", sourceTableName="orders", targetTableName="copy"),
     ev("dynamodb", "RestoreTableToPointInTime", principal=role("dynamoguard-drill"),
        sourceTableName="orders", targetTableName="dgdrill-orders")),
    ("ddb-restore-not-allowed", "medium",
     ev("dynamodb", "ImportTable", tableCreationParameters={"tableName": "imported"}),
     ev("dynamodb", "ImportTable", principal=role("dynamoguard-nightly"),
        tableCreationParameters={"tableName": "imported"})),
    ("ddb-resource-policy", "high",
     ev("dynamodb", "PutResourcePolicy", resourceArn=ORDERS_ARN, policy=json.dumps(
         {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "999999999999"},
                                                  "Action": "dynamodb:Scan", "Resource": ORDERS_ARN}]})),
     ev("dynamodb", "PutResourcePolicy", resourceArn=f"arn:aws:dynamodb:us-east-1:{SRC}:table/tmp", policy="{}")),
    ("ddb-resource-policy", "medium", ev("dynamodb", "DeleteResourcePolicy", resourceArn=ORDERS_ARN),
     ev("dynamodb", "DeleteResourcePolicy", resourceArn="arn:aws:dynamodb:us-east-1:999999999999:table/orders")),
    # [DDB] data events carry resources[] with the table ARN
    ("ddb-data-not-allowed", "high",
     ev("dynamodb", "DeleteItem", tableName="orders", resources=table_resource()),
     ev("dynamodb", "DeleteItem", principal=role("orders-service"), tableName="orders",
        resources=table_resource())),
    ("ddb-data-not-allowed", "high",
     ev("dynamodb", "BatchWriteItem", requestItems={"orders": [{"putRequest": {}}]}),
     ev("dynamodb", "BatchWriteItem", requestItems={"scratch": [{"putRequest": {}}]})),
    # [DDB] TransactWriteItems: requestItems is a list, mixing tableName and TableName; no resources[] here
    ("ddb-data-not-allowed", "high",
     ev("dynamodb", "TransactWriteItems", requestItems=[
         {"operation": "Put", "tableName": "scratch", "key": {"id": {"S": "1"}}, "item": ["id"]},
         {"operation": "Update", "TableName": "orders", "key": {"id": {"S": "2"}}}]),
     ev("dynamodb", "TransactWriteItems", principal=role("orders-service"), requestItems=[
         {"operation": "Update", "TableName": "orders", "key": {"id": {"S": "2"}}}])),
    # [DDB] BatchExecuteStatement: requestItems is a list of {statement}
    ("ddb-data-not-allowed", "high",
     ev("dynamodb", "BatchExecuteStatement", requestItems=[
         {"statement": 'UPDATE "orders" SET status=***(Redacted) WHERE customer_id=\'c-1\''}]),
     ev("dynamodb", "BatchExecuteStatement", requestItems=[
         {"statement": 'SELECT * FROM "orders" WHERE customer_id=\'c-1\''}])),
    # [DDB] ExecuteStatement {statement}
    ("ddb-data-not-allowed", "high",
     ev("dynamodb", "ExecuteStatement", statement='DELETE FROM "inventory" WHERE sku=\'s-1\'',
        resources=table_resource("inventory")),
     ev("dynamodb", "ExecuteStatement", principal=role("inventory-service"),
        statement='DELETE FROM "inventory" WHERE sku=\'s-1\'', resources=table_resource("inventory"))),
    # Reads [DDB]: GetItem, Query, Scan, BatchGetItem, PartiQL SELECT, stream GetRecords
    ("ddb-read-not-allowed", "medium",
     ev("dynamodb", "GetItem", principal=role("customers-service"), tableName="orders",
        key={"customer_id": {"S": "c-1"}}, resources=table_resource()),
     ev("dynamodb", "GetItem", principal=role("orders-service"), tableName="orders",
        key={"customer_id": {"S": "c-1"}}, resources=table_resource())),
    ("ddb-read-not-allowed", "high",
     ev("dynamodb", "Scan", principal=role("customers-service"), tableName="orders", resources=table_resource()),
     ev("dynamodb", "Scan", principal=role("customers-service"), tableName="customers",
        resources=table_resource("customers"))),
    ("ddb-read-not-allowed", "medium",
     ev("dynamodb", "Query", tableName="customers", resources=table_resource("customers")),
     ev("dynamodb", "Query", tableName="customers", resources=table_resource("customers", "eu-west-1"))),
    ("ddb-read-not-allowed", "medium",
     ev("dynamodb", "BatchGetItem", requestItems={"orders": {"keys": [{"customer_id": {"S": "c-1"}}]}}),
     ev("dynamodb", "BatchGetItem", principal=role("orders-service"),
        requestItems={"orders": {"keys": [{"customer_id": {"S": "c-1"}}]}})),
    ("ddb-read-not-allowed", "medium",
     ev("dynamodb", "ExecuteStatement", statement='SELECT * FROM "orders" WHERE customer_id=\'c-1\'',
        resources=table_resource()),
     ev("dynamodb", "ExecuteStatement", statement='SELECT * FROM "orders" WHERE customer_id=\'c-1\'',
        principal=role("dynamoguard-drill"), resources=table_resource())),
    ("ddb-read-not-allowed", "medium",
     ev("dynamodb", "GetRecords", shardIterator="arn:aws:dynamodb:us-east-1:111111111111:table/orders/stream/x|1|AA",
        resources=[{"accountId": SRC, "type": "AWS::DynamoDB::Table",
                    "ARN": f"{ORDERS_ARN}/stream/2026-01-01T00:00:00.000"}]),
     ev("dynamodb", "GetRecords", shardIterator="x", principal=role("orders-service"),
        resources=[{"accountId": SRC, "type": "AWS::DynamoDB::Table",
                    "ARN": f"{ORDERS_ARN}/stream/2026-01-01T00:00:00.000"}])),
    ("ddb-read-not-allowed", "high",
     ev("dynamodb", "ExportTableToPointInTime", tableArn=ORDERS_ARN, s3Bucket="dynamoguard-exports"),
     ev("dynamodb", "ExportTableToPointInTime", principal=role("dynamoguard-nightly"), tableArn=ORDERS_ARN,
        s3Bucket="dynamoguard-exports")),
    ("s3-object-deleted", "critical",
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
    ("s3-legal-hold-removed", "medium",
     ev("s3", "PutObjectLegalHold", bucketName="dynamoguard-exports", key="a", LegalHold={"Status": "OFF"}),
     ev("s3", "PutObjectLegalHold", bucketName="dynamoguard-exports", key="a", LegalHold={"Status": "ON"})),
    # [S3I] PutObjectLockConfiguration is logged as PutBucketObjectLockConfiguration
    ("s3-lock-config-changed", "high",
     ev("s3", "PutBucketObjectLockConfiguration", bucketName="dynamoguard-exports"),
     ev("s3", "PutBucketObjectLockConfiguration", bucketName="other-bucket")),
    ("s3-lock-config-changed", "high", ev("s3", "PutObjectLockConfiguration", bucketName="dynamoguard-exports"),
     ev("s3", "GetObjectLockConfiguration", bucketName="dynamoguard-exports")),
    ("s3-bucket-policy-changed", "high",
     ev("s3", "PutBucketPolicy", bucketName="dynamoguard-exports", bucketPolicy=FOREIGN_POLICY),
     ev("s3", "PutBucketPolicy", bucketName="other-bucket", bucketPolicy=FOREIGN_POLICY)),
    ("s3-bucket-policy-changed", "medium",
     ev("s3", "PutBucketPolicy", bucketName="dynamoguard-exports", bucketPolicy=OWN_POLICY),
     ev("s3", "GetBucketPolicy", bucketName="dynamoguard-exports")),
    ("s3-bucket-policy-changed", "medium", ev("s3", "DeleteBucketPolicy", bucketName="dynamoguard-exports-replica"),
     ev("s3", "DeleteBucketPolicy", bucketName="other-bucket")),
    # [S3I] PutBucketLifecycleConfiguration is logged as PutBucketLifecycle; XML body, numbers as strings
    ("s3-lifecycle-changed", "high",
     ev("s3", "PutBucketLifecycle", bucketName="dynamoguard-cloudtrail", LifecycleConfiguration={
         "Rule": {"ID": "wipe", "Status": "Enabled", "Expiration": {"Days": "1"}}}),
     ev("s3", "PutBucketLifecycle", bucketName="other-bucket", LifecycleConfiguration={
         "Rule": {"ID": "wipe", "Status": "Enabled", "Expiration": {"Days": 1}}})),
    ("s3-lifecycle-changed", "high",
     ev("s3", "PutBucketLifecycle", bucketName="dynamoguard-exports", LifecycleConfiguration={
         "Rule": [{"ID": "old", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": "7"}}]}),
     ev("s3", "PutBucketLifecycle", bucketName="dynamoguard-reports", LifecycleConfiguration={
         "Rule": [{"ID": "old", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": "7"}}]})),
    ("s3-lifecycle-changed", "low",
     ev("s3", "PutBucketLifecycle", bucketName="dynamoguard-exports", LifecycleConfiguration={
         "Rule": {"ID": "keep", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": "400"}}}),
     ev("s3", "GetBucketLifecycle", bucketName="dynamoguard-exports")),
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
    ("s3-bucket-deleted", "critical", ev("s3", "DeleteBucket", bucketName="dynamoguard-exports-replica"),
     ev("s3", "DeleteBucket", bucketName="scratch-bucket")),
    ("kms-key-loss", "medium", ev("kms", "ScheduleKeyDeletion", keyId="1234abcd", pendingWindowInDays=7),
     ev("kms", "DescribeKey", keyId="1234abcd")),
    ("trail-stopped", "critical", ev("cloudtrail", "StopLogging", name="dynamoguard-trail"),
     ev("cloudtrail", "StopLogging", name="someone-elses-trail")),
    ("trail-stopped", "critical",
     ev("cloudtrail", "DeleteTrail", name=f"arn:aws:cloudtrail:us-east-1:{SRC}:trail/dynamoguard-trail"),
     ev("cloudtrail", "DeleteTrail", name="arn:aws:cloudtrail:us-east-1:999999999999:trail/dynamoguard-trail")),
    ("trail-updated", "high", ev("cloudtrail", "UpdateTrail", name="dynamoguard-trail", s3BucketName="elsewhere"),
     ev("cloudtrail", "UpdateTrail", name="other-trail", s3BucketName="elsewhere")),
    ("trail-updated", "medium", ev("cloudtrail", "UpdateTrail", name="dynamoguard-trail", snsTopicName="t"),
     ev("cloudtrail", "StartLogging", name="dynamoguard-trail")),
    ("trail-selectors-drop-events", "high",
     ev("cloudtrail", "PutEventSelectors", trailName="dynamoguard-trail", eventSelectors=DROPPED_SELECTORS),
     ev("cloudtrail", "PutEventSelectors", trailName="dynamoguard-trail", eventSelectors=FULL_SELECTORS)),
    ("trail-selectors-drop-events", "critical",
     ev("cloudtrail", "PutEventSelectors", trailName="dynamoguard-trail", eventSelectors=[
         dict(FULL_SELECTORS[0], includeManagementEvents=False)]),
     ev("cloudtrail", "PutEventSelectors", trailName="other-trail", eventSelectors=[
         dict(FULL_SELECTORS[0], includeManagementEvents=False)])),
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
    assert rule_id not in [f.rule for f in fire(negative)]


def test_every_registered_rule_has_a_positive_case():
    assert {r.id for r in RULES} == {c[0] for c in CASES}


def test_access_denied_attempt_is_one_severity_lower():
    [finding] = fire(ev("dynamodb", "DeleteTable", error="AccessDeniedException", tableName="orders"))
    assert (finding.severity, finding.outcome) == ("high", "denied")
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


def test_assumed_role_without_session_context_is_matched_by_its_role():
    # [UID] an AssumedRole identity without sessionContext: arn is the STS session ARN
    record = ev("dynamodb", "DeleteItem", tableName="orders", resources=table_resource())
    record["userIdentity"] = {"type": "AssumedRole", "principalId": "AROAEXAMPLE:i-0abc",
                              "arn": f"arn:aws:sts::{SRC}:assumed-role/orders-service/i-0abc", "accountId": SRC,
                              "accessKeyId": "ASIAEXAMPLE"}
    assert fire(record) == []
    record["userIdentity"]["arn"] = f"arn:aws:sts::{SRC}:assumed-role/web-frontend/i-0abc"
    [finding] = fire(record)
    assert (finding.rule, finding.principal) == ("ddb-data-not-allowed", role("web-frontend"))


def test_allowlisted_role_with_a_path_matches_its_sessions():
    ctx = replace(CTX, tables={**CTX.tables, "orders": CTX.tables["orders"] | {
        principal_key(f"arn:aws:iam::{SRC}:role/service-role/web-frontend")}})
    assert fire(ev("dynamodb", "PutItem", principal=role("web-frontend"), resources=table_resource()), ctx) == []


def test_network_activity_copy_is_not_the_call():
    # [NET] a VPC endpoint event of a call: eventCategory NetworkActivity, eventType AwsVpceEvent
    copy = ev("dynamodb", "DeleteTable", tableName="orders", error="VpceAccessDenied")
    copy.update(eventCategory="NetworkActivity", eventType="AwsVpceEvent", vpcEndpointId="vpce-0123")
    assert fire(copy) == []
    del copy["errorCode"]
    assert fire(copy) == []
    copy.update(eventCategory="Management", eventType="AwsApiCall")
    assert [f.rule for f in fire(copy)] == ["ddb-delete-table"]


@pytest.mark.parametrize("error,severity", [("ConditionalCheckFailedException", "high"),
                                            ("TransactionCanceledException", "high"),
                                            ("ValidationException", "medium")])
def test_failed_but_authorised_data_calls_by_unlisted_principals_are_reported(error, severity):
    [finding] = fire(ev("dynamodb", "DeleteItem", error=error, tableName="orders", resources=table_resource()))
    assert (finding.rule, finding.severity, finding.outcome) == ("ddb-data-not-allowed", severity, "failed")
    assert finding.detail["errorCode"] == error
    # a control-plane call that failed changed nothing
    assert fire(ev("dynamodb", "DeleteTable", error="ResourceInUseException", tableName="orders")) == []


def test_same_named_table_in_another_region_is_not_ours():
    other = ev("dynamodb", "DeleteTable", tableName="orders")
    other["awsRegion"] = "eu-west-1"
    assert fire(other) == []
    arn = ev("dynamodb", "DeleteItem", resources=table_resource("orders", "eu-west-1"))
    assert fire(arn) == []
    assert fire(ev("dynamodb", "DeleteBackup", backupArn=ORDERS_ARN.replace("us-east-1", "eu-west-1") +
                   "/backup/01700000000000-abcdef12")) == []


def test_every_event_finding_names_the_table_and_principal():
    for rule_id, _, positive, _ in CASES:
        [finding] = [f for f in fire(positive) if f.rule == rule_id]
        if rule_id.startswith("ddb-") and rule_id != "ddb-restore-not-allowed":
            assert finding.table in CTX.tables, rule_id
        elif not rule_id.startswith("ddb-"):
            assert finding.table is None, rule_id
        assert finding.principal, rule_id


def test_every_registered_s3_name_is_one_cloudtrail_logs():
    # [S3I] event names CloudTrail logs for S3; the API names of renamed calls are accepted beside them
    logged = {"DeleteObject", "DeleteObjects", "PutObjectRetention", "PutObjectLegalHold",
              "PutBucketObjectLockConfiguration", "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketLifecycle",
              "PutBucketReplication", "DeleteBucketReplication", "PutBucketVersioning", "DeleteBucket"}
    api_spellings = {"PutObjectLockConfiguration", "PutBucketLifecycleConfiguration"}
    names = {name for source, name in REGISTRY if source == "s3.amazonaws.com"}
    assert logged <= names and names <= logged | api_spellings


def test_reads_are_grouped_per_principal_and_table_and_high_above_the_hourly_volume():
    reader_ctx = replace(CTX, max_reads_per_hour=3)
    result = LogResult()
    for n in range(3):
        record = ev("dynamodb", "GetItem", principal=role("customers-service"), resources=table_resource())
        record.update(eventID=f"e-{n}", eventTime=f"2026-01-01T10:0{n}:00Z")
        result.add(fire(record, reader_ctx))
    [finding] = result.all_findings(reader_ctx)
    assert (finding.severity, finding.detail["count"], finding.table) == ("medium", 3, "orders")
    assert (finding.event_id, finding.detail["last_event_time"]) == ("e-0", "2026-01-01T10:02:00Z")
    record["eventID"] = "e-3"
    result.add(fire(record, reader_ctx))
    [finding] = result.all_findings(reader_ctx)
    assert (finding.severity, finding.detail["count"]) == ("high", 4)


def test_audit_finding_converts_to_the_shared_shape():
    [finding] = fire(ev("dynamodb", "DeleteTable", tableName="orders"))
    shared = finding.to_shared()
    assert (shared.job, shared.check, shared.severity, shared.table, shared.resource) == (
        "audit", "ddb-delete-table", "critical", "orders", "orders")
    assert shared.evidence["principal"] == MALLORY and shared.evidence["event_id"] == "e-1"
    other = replace(finding, event_id="e-2").to_shared()
    assert other.id != shared.id  # one shared finding per event

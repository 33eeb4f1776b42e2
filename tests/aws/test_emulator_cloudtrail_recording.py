"""The emulator records every API call it serves as CloudTrail documents it, and delivers the records to
the logging trails as their event selectors say (see include/localaws/fixes/cloudtrail_recording.py).

[REC] CloudTrail user guide, "CloudTrail record contents"; [UID] "CloudTrail userIdentity element";
[DDB] DynamoDB developer guide, "Understanding DynamoDB log file entries"; [S3I] S3 user guide, "Amazon S3
CloudTrail events"; [DE] CloudTrail user guide, "Logging data events"; [DIG] "CloudTrail digest file
structure"; [CLI] aws-cli customizations/cloudtrail/validation.py (backfill digests).
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from include.localaws import SOURCE_ACCOUNT
from tests.aws.audit_helpers import TRAIL, assume, deliver, delivered_records, digest, flush_trail

pytestmark = pytest.mark.aws

BUCKET = "dynamoguard-cloudtrail"
ORDERS_ARN = f"arn:aws:dynamodb:us-east-1:{SOURCE_ACCOUNT}:table/orders"


def _records(seeded, **kwargs) -> list[dict]:
    return delivered_records(seeded.client("s3"), flush_trail(seeded.endpoint, **kwargs)["logs"])


def test_calls_are_recorded_in_the_documented_shape(seeded):
    flush_trail(seeded.endpoint)  # what the seed did
    intruder = assume(seeded.endpoint, "intruder", "evil")
    ddb = intruder.client("dynamodb", endpoint_url=seeded.endpoint)
    ddb.update_continuous_backups(TableName="orders",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    ddb.put_item(TableName="inventory", Item={"sku": {"S": "sku-1"}, "secret": {"S": "never logged"}})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.delete_item(TableName="inventory", Key={"sku": {"S": "sku-1"}},
                        ConditionExpression="attribute_not_exists(sku)")
    ddb.transact_write_items(TransactItems=[{"Update": {
        "TableName": "inventory", "Key": {"sku": {"S": "sku-1"}}, "UpdateExpression": "SET n = :n",
        "ExpressionAttributeValues": {":n": {"N": "1"}}}}])
    admin_s3 = seeded.client("s3")
    admin_s3.put_bucket_lifecycle_configuration(Bucket="dynamoguard-reports", LifecycleConfiguration={"Rules": [
        {"ID": "short", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 3}}]})
    admin_s3.put_object_lock_configuration(Bucket="dynamoguard-exports", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 40}}})
    records = {r["eventName"]: r for r in _records(seeded)}

    pitr = records["UpdateContinuousBackups"]
    assert pitr["userIdentity"]["type"] == "AssumedRole"  # [UID]
    assert pitr["userIdentity"]["arn"] == f"arn:aws:sts::{SOURCE_ACCOUNT}:assumed-role/intruder/evil"
    assert pitr["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] == \
        f"arn:aws:iam::{SOURCE_ACCOUNT}:role/intruder"
    assert pitr["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] == "false"
    assert pitr["requestParameters"] == {"tableName": "orders",
                                         "pointInTimeRecoverySpecification": {"pointInTimeRecoveryEnabled": False}}
    assert (pitr["eventSource"], pitr["managementEvent"], pitr["readOnly"], pitr["eventCategory"]) == (
        "dynamodb.amazonaws.com", True, False, "Management")
    assert pitr["responseElements"]["continuousBackupsDescription"]  # [DDB] lowered member names
    assert pitr["recipientAccountId"] == SOURCE_ACCOUNT and pitr["eventType"] == "AwsApiCall"

    put = records["PutItem"]
    assert put["requestParameters"]["item"] == ["secret", "sku"]  # [DDB] attribute names only
    assert "never logged" not in json.dumps(put)
    assert (put["eventCategory"], put["managementEvent"], put["responseElements"]) == ("Data", False, None)
    assert put["resources"] == [{"accountId": SOURCE_ACCOUNT, "type": "AWS::DynamoDB::Table",
                                 "ARN": f"arn:aws:dynamodb:us-east-1:{SOURCE_ACCOUNT}:table/inventory"}]
    failed = records["DeleteItem"]
    assert failed["errorCode"] == "ConditionalCheckFailedException" and failed["errorMessage"]
    transact = records["TransactWriteItems"]
    assert transact["requestParameters"]["requestItems"][0]["operation"] == "Update"  # [DDB] a list
    assert transact["requestParameters"]["requestItems"][0]["tableName"] == "inventory"
    assert "expressionAttributeValues" not in json.dumps(transact)

    lifecycle = records["PutBucketLifecycle"]  # [S3I] not PutBucketLifecycleConfiguration
    assert lifecycle["userIdentity"]["type"] == "IAMUser" and "sessionContext" not in lifecycle["userIdentity"]
    assert lifecycle["requestParameters"]["bucketName"] == "dynamoguard-reports"
    assert lifecycle["requestParameters"]["LifecycleConfiguration"]["Rule"]["Expiration"] == {"Days": "3"}
    assert lifecycle["resources"] == [{"accountId": SOURCE_ACCOUNT, "type": "AWS::S3::Bucket",
                                       "ARN": "arn:aws:s3:::dynamoguard-reports"}]
    assert "PutBucketObjectLockConfiguration" in records  # [S3I]


def test_data_events_follow_the_trail_selectors(seeded):
    cloudtrail, s3 = seeded.client("cloudtrail"), seeded.client("s3")
    ddb = seeded.client("dynamodb")
    # [DE] basic selectors: only the orders table's data events, writes only
    cloudtrail.put_event_selectors(TrailName=TRAIL, EventSelectors=[{
        "ReadWriteType": "WriteOnly", "IncludeManagementEvents": True, "DataResources": [
            {"Type": "AWS::DynamoDB::Table", "Values": [ORDERS_ARN]}]}])
    flush_trail(seeded.endpoint)
    ddb.get_item(TableName="orders", Key={"customer_id": {"S": "c"}, "order_id": {"S": "o"}})
    ddb.put_item(TableName="orders", Item={"customer_id": {"S": "c"}, "order_id": {"S": "o"}})
    ddb.put_item(TableName="inventory", Item={"sku": {"S": "s"}})
    s3.put_object(Bucket="dynamoguard-reports", Key="x", Body=b"1")
    names = [(r["eventName"], r["resources"][0]["ARN"].rsplit("/", 1)[-1]) for r in _records(seeded)]
    assert names == [("PutItem", "orders")]

    # advanced selectors: S3 object reads of one bucket, and management events
    cloudtrail.put_event_selectors(TrailName=TRAIL, AdvancedEventSelectors=[
        {"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
        {"Name": "reports", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::dynamoguard-reports/"]},
            {"Field": "readOnly", "Equals": ["true"]}]}])
    flush_trail(seeded.endpoint)
    s3.get_object(Bucket="dynamoguard-reports", Key="x")["Body"].read()
    s3.put_object(Bucket="dynamoguard-reports", Key="y", Body=b"2")
    ddb.put_item(TableName="orders", Item={"customer_id": {"S": "c"}, "order_id": {"S": "p"}})
    ddb.describe_table(TableName="orders")
    records = _records(seeded)
    assert [(r["eventName"], r["eventCategory"]) for r in records] == [("GetObject", "Data"),
                                                                        ("DescribeTable", "Management")]
    assert records[0]["requestParameters"]["key"] == "x"
    assert records[0]["resources"][0] == {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::dynamoguard-reports/x"}


def test_stop_logging_is_itself_delivered_and_nothing_after_it(seeded):
    cloudtrail = seeded.client("cloudtrail")
    flush_trail(seeded.endpoint)
    cloudtrail.stop_logging(Name=TRAIL)
    seeded.client("dynamodb").delete_table(TableName="inventory")
    assert [r["eventName"] for r in _records(seeded)] == ["StopLogging"]  # [DIG] the final files include it
    assert _records(seeded) == []


def test_control_endpoints_are_not_recorded_and_delivery_lands_at_the_documented_key(seeded):
    flush_trail(seeded.endpoint)
    seeded.client("dynamodb").describe_table(TableName="orders")
    at = datetime(2026, 1, 1, 10, 7, tzinfo=UTC)
    out = flush_trail(seeded.endpoint, at=at, digest=True)
    [key] = out["logs"]
    assert key.startswith(f"AWSLogs/{SOURCE_ACCOUNT}/CloudTrail/us-east-1/2026/01/01/"
                          f"{SOURCE_ACCOUNT}_CloudTrail_us-east-1_20260101T1007Z_")
    assert [r["eventName"] for r in delivered_records(seeded.client("s3"), [key])] == ["DescribeTable"]
    [digest_key] = out["digests"]
    document = json.loads(gzip.decompress(seeded.client("s3").get_object(Bucket=BUCKET, Key=digest_key)["Body"].read()))
    assert [f["s3Object"] for f in document["logFiles"]] == [key]


def test_backfill_digest_lists_the_files_delivered_late(seeded):
    hour = datetime(2026, 1, 1, 10, tzinfo=UTC)
    on_time = deliver(seeded.endpoint, [], hour + timedelta(minutes=5))
    digest(seeded.endpoint, hour + timedelta(minutes=59))
    late = deliver(seeded.endpoint, [], hour + timedelta(minutes=40))  # delivered into a period already digested
    key = digest(seeded.endpoint, hour + timedelta(hours=1, minutes=5), backfill=True)
    assert key.endswith("_20260101T110500Z_backfill.json.gz")
    obj = seeded.client("s3").get_object(Bucket=BUCKET, Key=key)
    document = json.loads(gzip.decompress(obj["Body"].read()))
    assert [f["s3Object"] for f in document["logFiles"]] == [late] and on_time != late
    assert document["previousDigestS3Object"] is None  # a chain of its own [CLI]
    assert obj["Metadata"]["backfill-generation-timestamp"] and obj["Metadata"]["signature"]

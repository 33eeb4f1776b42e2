"""Seed the emulator with the demo estate that ``include/dynamoguard.yaml`` describes.

``python -m include.localaws.seed [--endpoint URL] [--config PATH]``

Source account (111111111111): the protected tables with PITR on (one with a composite key and a
GSI; items using every DynamoDB type), the backup bucket with Object Lock (COMPLIANCE default
retention) and a bucket policy letting the backup role read exports, the reports bucket, the
CloudTrail trail and its bucket, and the SNS alerts topic.
Backup account (222222222222): the role the ``aws_backup`` connection assumes and the replica
bucket with Object Lock.
IAM as a real estate has it (:data:`SOURCE_IAM`, :data:`BACKUP_IAM`), so the access review has real
findings out of the box: per-table service roles, an analytics role reading every table, an over-broad
platform admin, a cleanup function role, a CI user that can pass roles to Lambda and a support user who
can assume the admin role (two escalation paths), and a backup-account role trusted to read the backups.
Seeding is idempotent: running it twice leaves the same estate.

The emulated estate has had PITR on for a month: each table's EarliestRestorableDateTime is set
``PITR_HISTORY_DAYS`` back through the emulator's ``POST /_localaws/pitr`` control, so exports and
restores at past times (backfills) are accepted; the seeded items count as present since then (the
emulator's item history starts with them), so such an export holds them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import ClientError

from include.localaws import ACCESS_KEY, BACKUP_ACCOUNT, DEFAULT_PORT, REGION, SECRET_KEY, SOURCE_ACCOUNT
from include.localaws.connections import BACKUP_ROLE_ARN

PITR_HISTORY_DAYS = 35
HIGH_PRECISION = "3.1415926535897932384626433832795028841"  # 38 significant digits, DynamoDB's maximum


def source_session() -> boto3.Session:
    """A session acting in the source account with the emulator's static keys."""
    return boto3.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION)


def backup_session(endpoint_url: str, role_arn: str = BACKUP_ROLE_ARN) -> boto3.Session:
    """A session in the backup account, reached by AssumeRole as in production."""
    sts = source_session().client("sts", endpoint_url=endpoint_url)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="dynamoguard-seed")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


def order_item(i: int) -> dict[str, Any]:
    """An orders item using every DynamoDB attribute type."""
    return {
        "customer_id": {"S": f"cust-{i % 17:03d}"},
        "order_id": {"S": f"ord-{i:06d}"},
        "status": {"S": ("NEW", "PAID", "SHIPPED", "RETURNED")[i % 4]},
        "total": {"N": f"{i * 7 % 1000}.{i % 100:02d}"},
        "exact_ratio": {"N": HIGH_PRECISION if i % 5 == 0 else f"0.{i:035d}"},
        "big_count": {"N": "9" * 38},
        "receipt_pdf": {"B": f"%PDF-receipt-{i}".encode() + bytes(range(8))},
        "gift": {"BOOL": i % 3 == 0},
        "coupon": {"NULL": True},
        "tags": {"SS": sorted({f"tag{i % 4}", "demo"})},
        "line_qty": {"NS": sorted({str(i % 9 + 1), "12.5"})},
        "thumbnails": {"BS": [b"\x89PNG" + bytes([i % 256]), b"\xff\xd8" + bytes([(i + 1) % 256])]},
        "lines": {"L": [
            {"M": {"sku": {"S": f"sku-{i % 40:04d}"}, "qty": {"N": str(i % 5 + 1)}}},
            {"M": {"sku": {"S": f"sku-{(i + 7) % 40:04d}"}, "qty": {"N": "1"}}},
        ]},
        "shipping": {"M": {
            "address": {"M": {"city": {"S": "Lisbon"}, "zip": {"S": f"1{i % 900:03d}-001"}}},
            "express": {"BOOL": i % 2 == 0},
            "notes": {"L": [{"S": "leave at door"}, {"NULL": True}]},
        }},
    }


def customer_item(i: int) -> dict[str, Any]:
    return {
        "customer_id": {"S": f"cust-{i:03d}"},
        "name": {"S": f"Customer {i}"},
        "email": {"S": f"customer{i}@example.com"},
        "balance": {"N": str(Decimal(i) / Decimal(7))[:40]},
        "vip": {"BOOL": i % 5 == 0},
        "preferences": {"M": {"newsletter": {"BOOL": True}, "languages": {"SS": ["en", "pt"]}}},
    }


def inventory_item(i: int) -> dict[str, Any]:
    return {
        "sku": {"S": f"sku-{i:04d}"},
        "on_hand": {"N": str(i * 3 % 250)},
        "warehouses": {"SS": [f"wh-{i % 3}", "wh-main"]},
        "barcode": {"B": i.to_bytes(8, "big")},
    }


TABLES: dict[str, dict[str, Any]] = {
    "orders": {
        "KeySchema": [{"AttributeName": "customer_id", "KeyType": "HASH"},
                      {"AttributeName": "order_id", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "customer_id", "AttributeType": "S"},
                                 {"AttributeName": "order_id", "AttributeType": "S"},
                                 {"AttributeName": "status", "AttributeType": "S"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": "by-status",
            "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                          {"AttributeName": "order_id", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        "DeletionProtectionEnabled": True,
        "items": (order_item, 250),
    },
    "customers": {
        "KeySchema": [{"AttributeName": "customer_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "customer_id", "AttributeType": "S"}],
        "items": (customer_item, 40),
    },
    "inventory": {
        "KeySchema": [{"AttributeName": "sku", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "sku", "AttributeType": "S"}],
        "items": (inventory_item, 60),
    },
}


def _exists(error: ClientError, *codes: str) -> bool:
    return error.response["Error"]["Code"] in codes


def seed_table(ddb, name: str, spec: dict[str, Any]) -> None:
    """Create the table with PITR on and write its items (existing tables are left as they are)."""
    make_item, count = spec["items"]
    create = {k: v for k, v in spec.items() if k != "items"}
    try:
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **create)
    except ClientError as error:
        if not _exists(error, "ResourceInUseException"):
            raise
        return
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    ddb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    for start in range(0, count, 25):
        batch = [{"PutRequest": {"Item": make_item(i)}} for i in range(start, min(start + 25, count))]
        ddb.batch_write_item(RequestItems={name: batch})


def backdate_pitr(endpoint_url: str, table: str, days: int = PITR_HISTORY_DAYS) -> None:
    """Make the emulator report PITR of ``table`` (source account) as enabled ``days`` ago."""
    earliest = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    body = json.dumps({"account": SOURCE_ACCOUNT, "region": REGION, "table": table, "earliest_restorable": earliest})
    request = urllib.request.Request(f"{endpoint_url}/_localaws/pitr", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def create_locked_bucket(s3, name: str, mode: str, days: int) -> None:
    """A versioned bucket with Object Lock and a default retention of ``mode`` for ``days``."""
    try:
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    except ClientError as error:
        if not _exists(error, "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        return
    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
        },
    )


def create_bucket(s3, name: str, versioned: bool = False) -> None:
    try:
        s3.create_bucket(Bucket=name)
    except ClientError as error:
        if not _exists(error, "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def export_read_policy(bucket: str, prefix: str, reader_role_arn: str) -> dict[str, Any]:
    """Bucket policy letting the backup account's role read (and list) the exports."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BackupAccountReadsExports",
                "Effect": "Allow",
                "Principal": {"AWS": reader_role_arn},
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention",
                           "s3:GetObjectAttributes"],
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*",
            },
            {
                "Sid": "BackupAccountListsExports",
                "Effect": "Allow",
                "Principal": {"AWS": reader_role_arn},
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
            },
        ],
    }


def trail_bucket_policy(bucket: str, account: str) -> dict[str, Any]:
    """The bucket policy CloudTrail needs to deliver logs (AWS docs, create-s3-bucket-policy-for-cloudtrail)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Sid": "AWSCloudTrailWrite", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{account}/*",
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
        ],
    }


def seed(endpoint_url: str, config=None) -> dict[str, Any]:
    """Create the demo estate described by ``config`` (default: the project's config file)."""
    if config is None:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "plugins"))
        from dynamoguard.config import load_config

        config = load_config()
    src = source_session()
    ddb = src.client("dynamodb", endpoint_url=endpoint_url)
    s3 = src.client("s3", endpoint_url=endpoint_url)
    iam = src.client("iam", endpoint_url=endpoint_url)

    for table in config.tables:
        spec = TABLES.get(table.name) or {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "items": (lambda i: {"pk": {"S": f"item-{i:04d}"}, "n": {"N": str(i)}}, 20),
        }
        seed_table(ddb, table.name, spec)
        backdate_pitr(endpoint_url, table.name)

    bb = config.backup_bucket
    create_locked_bucket(s3, bb.name, bb.lock_mode, bb.min_retention_days)
    s3.put_bucket_policy(Bucket=bb.name, Policy=json.dumps(export_read_policy(bb.name, bb.prefix, BACKUP_ROLE_ARN)))
    create_bucket(s3, config.reports_bucket.name, versioned=True)

    audit = config.audit
    create_bucket(s3, audit.trail_bucket, versioned=True)
    s3.put_bucket_policy(Bucket=audit.trail_bucket,
                         Policy=json.dumps(trail_bucket_policy(audit.trail_bucket, SOURCE_ACCOUNT)))
    cloudtrail = src.client("cloudtrail", endpoint_url=endpoint_url)
    try:
        cloudtrail.create_trail(Name=audit.trail_name, S3BucketName=audit.trail_bucket,
                                IsMultiRegionTrail=True, EnableLogFileValidation=True)
    except ClientError as error:
        if not _exists(error, "TrailAlreadyExistsException"):
            raise
    data_resources = [
        {"Type": "AWS::DynamoDB::Table", "Values": [config.table_arn(t.name) for t in config.tables]},
        {"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{bb.name}/",
                                                f"arn:aws:s3:::{config.replica_bucket.name}/"]},
    ]
    cloudtrail.put_event_selectors(TrailName=audit.trail_name, EventSelectors=[{
        "ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": data_resources,
    }])
    cloudtrail.start_logging(Name=audit.trail_name)

    topic_arn = None
    if config.notifications.sns_topic_arn:
        topic_name = config.notifications.sns_topic_arn.rsplit(":", 1)[-1]
        topic_arn = src.client("sns", endpoint_url=endpoint_url).create_topic(Name=topic_name)["TopicArn"]

    for role in ("dynamoguard-nightly", "dynamoguard-drill", "dynamoguard-audit", "dynamoguard-access-review"):
        _ensure_role(iam, role, SOURCE_ACCOUNT)
    seed_iam(iam, SOURCE_ACCOUNT, SOURCE_IAM)

    bkp = backup_session(endpoint_url)
    bkp_iam = bkp.client("iam", endpoint_url=endpoint_url)
    _ensure_role(bkp_iam, BACKUP_ROLE_ARN.rsplit("/", 1)[-1], SOURCE_ACCOUNT)
    seed_iam(bkp_iam, BACKUP_ACCOUNT, BACKUP_IAM)
    rb = config.replica_bucket
    create_locked_bucket(bkp.client("s3", endpoint_url=endpoint_url), rb.name, rb.lock_mode, rb.min_retention_days)

    return {
        "source_account": SOURCE_ACCOUNT,
        "backup_account": BACKUP_ACCOUNT,
        "tables": config.table_names,
        "buckets": [bb.name, config.reports_bucket.name, audit.trail_bucket, rb.name],
        "trail": audit.trail_name,
        "topic": topic_arn,
    }


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _trust(principal: dict[str, str]) -> str:
    return _doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


ITEM_ACTIONS = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
                "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
                "dynamodb:DescribeTable"]


def _table(name: str, account: str = SOURCE_ACCOUNT) -> str:
    return f"arn:aws:dynamodb:{REGION}:{account}:table/{name}"


def _service_role(table: str) -> dict[str, Any]:
    """An application's role: item reads and writes on its own table and that table's indexes."""
    return {"kind": "role", "name": f"{table}-service", "trust": {"Service": "ecs-tasks.amazonaws.com"},
            "inline": {f"{table}-read-write": _doc({"Sid": "ItemAccess", "Effect": "Allow", "Action": ITEM_ACTIONS,
                                                    "Resource": [_table(table), _table(table) + "/index/*"]})}}


SOURCE_IAM: list[dict[str, Any]] = [
    *(_service_role(t) for t in ("orders", "customers", "inventory")),
    {"kind": "role", "name": "analytics", "trust": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"},
     "managed": {"analytics-read-all-tables": _doc({
         "Sid": "ReadEveryTable", "Effect": "Allow",
         "Action": ["dynamodb:Scan", "dynamodb:Query", "dynamodb:GetItem", "dynamodb:DescribeTable"],
         "Resource": _table("*")})}},
    {"kind": "role", "name": "platform-admin", "trust": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"},
     "managed": {"platform-admin": _doc({"Sid": "DataPlatform", "Effect": "Allow",
                                         "Action": ["dynamodb:*", "s3:*"], "Resource": "*"})}},
    {"kind": "role", "name": "table-janitor", "trust": {"Service": "lambda.amazonaws.com"},
     "inline": {"drop-stale-tables": _doc({"Sid": "DropStale", "Effect": "Allow",
                                           "Action": ["dynamodb:ListTables", "dynamodb:DescribeTable",
                                                      "dynamodb:DeleteTable", "dynamodb:ListBackups",
                                                      "dynamodb:DeleteBackup"],
                                           "Resource": _table("*")})}},
    {"kind": "user", "name": "ci-deployer",
     "inline": {"deploy-functions": _doc(
         {"Sid": "PassAnyRole", "Effect": "Allow", "Action": "iam:PassRole",
          "Resource": f"arn:aws:iam::{SOURCE_ACCOUNT}:role/*"},
         {"Sid": "ManageFunctions", "Effect": "Allow",
          "Action": ["lambda:CreateFunction", "lambda:UpdateFunctionCode", "lambda:InvokeFunction"], "Resource": "*"},
     )}},
    {"kind": "user", "name": "support-engineer",
     "inline": {"break-glass": _doc({"Sid": "BecomeAdmin", "Effect": "Allow", "Action": "sts:AssumeRole",
                                     "Resource": f"arn:aws:iam::{SOURCE_ACCOUNT}:role/platform-admin"})}},
]
BACKUP_IAM: list[dict[str, Any]] = [
    {"kind": "role", "name": "backup-auditor", "trust": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"},
     "inline": {"read-replicas": _doc({"Sid": "ReadReplicas", "Effect": "Allow",
                                       "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"],
                                       "Resource": ["arn:aws:s3:::dynamoguard-exports-replica",
                                                    "arn:aws:s3:::dynamoguard-exports-replica/*"]})}},
]


def seed_iam(iam, account: str, principals: list[dict[str, Any]]) -> None:
    """Create roles and users with their inline and customer managed policies (existing ones are kept)."""
    for spec in principals:
        name = spec["name"]
        try:
            if spec["kind"] == "role":
                iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust(spec["trust"]))
            else:
                iam.create_user(UserName=name)
        except ClientError as error:
            if not _exists(error, "EntityAlreadyExists"):
                raise
            continue
        for policy_name, document in spec.get("inline", {}).items():
            put = iam.put_role_policy if spec["kind"] == "role" else iam.put_user_policy
            put(**{"RoleName" if spec["kind"] == "role" else "UserName": name}, PolicyName=policy_name,
                PolicyDocument=document)
        for policy_name, document in spec.get("managed", {}).items():
            arn = f"arn:aws:iam::{account}:policy/{policy_name}"
            try:
                iam.create_policy(PolicyName=policy_name, PolicyDocument=document)
            except ClientError as error:
                if not _exists(error, "EntityAlreadyExists"):
                    raise
            attach = iam.attach_role_policy if spec["kind"] == "role" else iam.attach_user_policy
            attach(**{"RoleName" if spec["kind"] == "role" else "UserName": name}, PolicyArn=arn)


def _ensure_role(iam, name: str, trusted_account: str) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{trusted_account}:root"}, "Action": "sts:AssumeRole",
    }]}
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    except ClientError as error:
        if not _exists(error, "EntityAlreadyExists"):
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Seed the local AWS emulator with the demo estate.")
    parser.add_argument("--endpoint", default=f"http://127.0.0.1:{os.environ.get('LOCALAWS_PORT', DEFAULT_PORT)}")
    args = parser.parse_args(argv)
    summary = seed(args.endpoint)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The emulator has two accounts, as production does (fixes/accounts.py).

AWS resolves a request's credentials to the account that owns them: the static keys act in the source account
(111111111111), and credentials from sts:AssumeRole act in the role's account (222222222222 for the backup role).
"""

from __future__ import annotations

import pytest

from include.localaws import BACKUP_ACCOUNT, SOURCE_ACCOUNT
from include.localaws.connections import BACKUP_ROLE_ARN

pytestmark = pytest.mark.aws


def test_static_keys_act_in_the_source_account(localaws):
    assert localaws.client("sts").get_caller_identity()["Account"] == SOURCE_ACCOUNT
    arn = localaws.client("sns").create_topic(Name="t")["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:{SOURCE_ACCOUNT}:t"


def test_assumed_role_acts_in_the_backup_account(seeded):
    identity = seeded.client("sts", account="backup").get_caller_identity()
    assert identity["Account"] == BACKUP_ACCOUNT
    assert identity["Arn"].startswith(f"arn:aws:sts::{BACKUP_ACCOUNT}:assumed-role/dynamoguard-backup/")
    backup_ddb, source_ddb = seeded.client("dynamodb", account="backup"), seeded.client("dynamodb")
    table = backup_ddb.create_table(TableName="only-in-backup", BillingMode="PAY_PER_REQUEST",
                                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    assert f":{BACKUP_ACCOUNT}:table/only-in-backup" in table["TableDescription"]["TableArn"]
    assert "only-in-backup" not in source_ddb.list_tables()["TableNames"]
    assert "only-in-backup" in backup_ddb.list_tables()["TableNames"]


def test_seed_creates_the_estate_in_both_accounts(seeded):
    assert {"orders", "customers", "inventory"} <= set(seeded.client("dynamodb").list_tables()["TableNames"])
    assert seeded.client("dynamodb", account="backup").list_tables()["TableNames"] == []

    source_buckets = {b["Name"] for b in seeded.client("s3").list_buckets()["Buckets"]}
    backup_buckets = {b["Name"] for b in seeded.client("s3", account="backup").list_buckets()["Buckets"]}
    assert {"dynamoguard-exports", "dynamoguard-reports", "dynamoguard-cloudtrail"} <= source_buckets
    assert "dynamoguard-exports-replica" in backup_buckets
    assert "dynamoguard-exports-replica" not in source_buckets and "dynamoguard-exports" not in backup_buckets

    replica_lock = seeded.client("s3", account="backup").get_object_lock_configuration(
        Bucket="dynamoguard-exports-replica")["ObjectLockConfiguration"]
    assert replica_lock["ObjectLockEnabled"] == "Enabled"
    assert replica_lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    role = seeded.client("iam", account="backup").get_role(RoleName="dynamoguard-backup")["Role"]
    assert role["Arn"] == BACKUP_ROLE_ARN
    trails = seeded.client("cloudtrail").describe_trails()["trailList"]
    assert [t["TrailARN"] for t in trails] == [f"arn:aws:cloudtrail:us-east-1:{SOURCE_ACCOUNT}:trail/dynamoguard-trail"]

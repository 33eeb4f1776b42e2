"""Restore-drill logic against the emulator: restores, validation, guard rails, sweeper (no Airflow)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from dynamoguard import drills
from dynamoguard.config import load_config
from dynamoguard.drills.restore_points import ExportRef, latest_verified_export, read_export
from dynamoguard.drills.schema import compare_schema, table_creation_parameters
from dynamoguard.drills.scratch import delete_scratch_table, drill_tags, list_tables, sweep, tag_table
from dynamoguard.drills.sources._imports import client_token, import_problem, start_import
from dynamoguard.drills.sources.pitr import start_pitr_restore
from dynamoguard.drills.validate import validate_full, validate_sample
from dynamoguard.timeutil import parse_time, utcnow

pytestmark = pytest.mark.aws

CONFIG = load_config()
PREFIX = CONFIG.drills.scratch_prefix
PROTECTED = CONFIG.table_names


def make_export(localaws, table: str) -> ExportRef:
    """A real export of ``table`` at its latest restorable time, in the nightly job's layout; waits for it."""
    ddb, s3 = localaws.client("dynamodb"), localaws.client("s3")
    latest = ddb.describe_continuous_backups(TableName=table)[
        "ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
    prefix = f"{CONFIG.backup_bucket.prefix}/{table}/{latest:%Y-%m-%d}"
    arn = ddb.export_table_to_point_in_time(
        TableArn=CONFIG.table_arn(table), S3Bucket=CONFIG.backup_bucket.name, S3Prefix=prefix, ExportTime=latest,
        ExportFormat="DYNAMODB_JSON")["ExportDescription"]["ExportArn"]
    deadline = time.monotonic() + 60
    while (desc := ddb.describe_export(ExportArn=arn)["ExportDescription"])["ExportStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert desc["ExportStatus"] == "COMPLETED", desc
    return read_export(s3, CONFIG.backup_bucket.name, desc["ExportManifest"])


def replicate(localaws, export: ExportRef) -> None:
    """Copy the export's objects to the replica bucket in the backup account, same keys."""
    src, dst = localaws.client("s3"), localaws.client("s3", account="backup")
    folder = export.summary_key.rsplit("/", 1)[0] + "/"
    for obj in src.list_objects_v2(Bucket=export.bucket, Prefix=folder)["Contents"]:
        body = src.get_object(Bucket=export.bucket, Key=obj["Key"])["Body"].read()
        dst.put_object(Bucket=CONFIG.replica_bucket.name, Key=obj["Key"], Body=body)


def schema(ddb, table: str) -> dict:
    return ddb.describe_table(TableName=table)["Table"]


def import_export(ddb, table: str, export: ExportRef, scratch: str, run_id: str = "run-1") -> str:
    creation = table_creation_parameters(schema(ddb, table), scratch)
    desc = start_import(ddb, export, creation, client_token(run_id, scratch))
    deadline = time.monotonic() + 30
    while (desc := ddb.describe_import(ImportArn=desc["ImportArn"])["ImportTableDescription"])[
            "ImportStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert import_problem(desc) is None, desc
    return desc["TableArn"]


def key_names(ddb, table: str) -> tuple[str, ...]:
    return tuple(k["AttributeName"] for k in schema(ddb, table)["KeySchema"])


def test_latest_verified_export_is_found_and_a_tampered_newer_one_skipped(seeded):
    s3 = seeded.client("s3")
    first = make_export(seeded, "customers")
    found, skipped = latest_verified_export(s3, CONFIG.backup_bucket.name, "exports/customers/",
                                                   CONFIG.table_arn("customers"))
    assert found.export_arn == first.export_arn and skipped == []
    assert found.item_count == 40 and sum(c for _, c in found.files) == 40

    second = make_export(seeded, "customers")
    data_key = second.files[0][0]
    s3.put_object(Bucket=second.bucket, Key=data_key, Body=b"not the exported bytes")  # new version, wrong MD5
    found, skipped = latest_verified_export(s3, CONFIG.backup_bucket.name, "exports/customers/",
                                                   CONFIG.table_arn("customers"))
    assert found.export_arn == first.export_arn
    assert len(skipped) == 1 and data_key in skipped[0].reason and skipped[0].export_arn == second.export_arn

    with pytest.raises(drills.DrillError, match="no verified export"):
        latest_verified_export(s3, CONFIG.backup_bucket.name, "exports/customers/",
                                      CONFIG.table_arn("customers"),
                                      at_or_before=parse_time(first.export_time) - timedelta(days=1))


@pytest.mark.parametrize("mode", ["full", "sample"])
def test_import_of_an_export_validates(seeded, mode):
    ddb, s3 = seeded.client("dynamodb"), seeded.client("s3")
    export = make_export(seeded, "orders")
    scratch = f"{PREFIX}orders-import-{mode}"
    import_export(ddb, "orders", export, scratch)
    problems, notes = compare_schema(schema(ddb, "orders"), schema(ddb, scratch), imported=True)
    assert problems == [] and notes == []
    names = key_names(ddb, "orders")
    if mode == "full":
        result = validate_full(ddb, s3, scratch, export, names, segments=4)
        assert result.items_validated == 250 and result.digest_restored == result.digest_export
    else:
        result = validate_sample(ddb, s3, scratch, export, names, size=30, seed="s")
        assert result.items_validated == 30 and result.items_restored == 250
    assert result.ok, result.problems


def test_full_validation_names_changed_missing_and_unexpected_keys(seeded):
    ddb, s3 = seeded.client("dynamodb"), seeded.client("s3")
    export = make_export(seeded, "orders")
    scratch = f"{PREFIX}orders-tampered"
    import_export(ddb, "orders", export, scratch)
    changed = {"customer_id": {"S": "cust-003"}, "order_id": {"S": "ord-000003"}}
    ddb.update_item(TableName=scratch, Key=changed, UpdateExpression="SET shipping.express = :t",
                    ExpressionAttributeValues={":t": {"BOOL": True}})  # was False: one nested attribute
    missing = {"customer_id": {"S": "cust-010"}, "order_id": {"S": "ord-000010"}}
    ddb.delete_item(TableName=scratch, Key=missing)
    extra = {"customer_id": {"S": "cust-999"}, "order_id": {"S": "ord-999999"}}
    ddb.put_item(TableName=scratch, Item={**extra, "status": {"S": "NEW"}})

    result = validate_full(ddb, s3, scratch, export, key_names(ddb, "orders"), segments=3)
    assert not result.ok
    assert {(m["key"]["order_id"]["S"], m["problem"]) for m in result.mismatches} == {
        ("ord-000003", "changed"), ("ord-000010", "missing"), ("ord-999999", "unexpected")}
    assert any("content differs" in p for p in result.problems)
    assert result.items_restored == 250  # one deleted, one added

    sample = validate_sample(ddb, s3, scratch, export, key_names(ddb, "orders"), size=250, seed="x")
    assert {(m["key"]["order_id"]["S"], m["problem"]) for m in sample.mismatches} == {
        ("ord-000003", "changed"), ("ord-000010", "missing")}


def test_pitr_restore_at_the_export_time_validates(seeded):
    ddb, s3 = seeded.client("dynamodb"), seeded.client("s3")
    export = make_export(seeded, "orders")
    scratch = f"{PREFIX}orders-pitr"
    desc = start_pitr_restore(ddb, "orders", scratch, parse_time(export.export_time))
    ddb.get_waiter("table_exists").wait(TableName=scratch, WaiterConfig={"Delay": 1})
    tag_table(ddb, desc["TableArn"], drill_tags("run-p", "orders", utcnow()))
    problems, _ = compare_schema(schema(ddb, "orders"), schema(ddb, scratch), imported=False)
    assert problems == []
    assert validate_full(ddb, s3, scratch, export, key_names(ddb, "orders")).ok


def test_replica_import_runs_in_the_backup_account(seeded):
    export = make_export(seeded, "inventory")
    replicate(seeded, export)
    ddb_b, s3_b = seeded.client("dynamodb", account="backup"), seeded.client("s3", account="backup")
    replica, skipped = latest_verified_export(s3_b, CONFIG.replica_bucket.name, "exports/inventory/",
                                                     CONFIG.table_arn("inventory"), copied=True)
    assert replica.export_arn == export.export_arn and skipped == []
    scratch = f"{PREFIX}inventory-replica"
    creation = table_creation_parameters(schema(seeded.client("dynamodb"), "inventory"), scratch)
    desc = start_import(ddb_b, replica, creation, client_token("r", scratch))
    assert ":222222222222:" in desc["TableArn"]
    ddb_b.get_waiter("table_exists").wait(TableName=scratch, WaiterConfig={"Delay": 1})
    assert validate_full(ddb_b, s3_b, scratch, replica, ("sku",)).ok


def test_schema_differences_are_problems(seeded):
    ddb = seeded.client("dynamodb")
    source = schema(ddb, "orders")
    other = {**source, "GlobalSecondaryIndexes": []}
    problems, _ = compare_schema(source, other, imported=True)
    assert problems == ["GlobalSecondaryIndexes by-status missing from the restored table"]
    keyed = {**source, "KeySchema": [{"AttributeName": "customer_id", "KeyType": "HASH"}]}
    assert any("key schema" in p for p in compare_schema(source, keyed, imported=False)[0])
    with_lsi = {**source, "LocalSecondaryIndexes": [{"IndexName": "l", "KeySchema": source["KeySchema"],
                                                     "Projection": {"ProjectionType": "ALL"}}]}
    problems, notes = compare_schema(with_lsi, source, imported=True)
    assert problems == [] and "cannot create LSIs" in notes[0]
    assert compare_schema(with_lsi, source, imported=False)[0] == [
        "LocalSecondaryIndexes l missing from the restored table"]


def _scratch(ddb, name: str, tags: list[dict] | None, protection: bool = False) -> None:
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", DeletionProtectionEnabled=protection,
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    if tags:
        ddb.tag_resource(ResourceArn=ddb.describe_table(TableName=name)["Table"]["TableArn"], Tags=tags)


def test_sweeper_removes_only_expired_drill_tables(seeded):
    ddb = seeded.client("dynamodb")
    past, future = utcnow() - timedelta(minutes=1), utcnow() + timedelta(hours=1)
    _scratch(ddb, f"{PREFIX}orders-expired", drill_tags("run-old", "orders", past))
    _scratch(ddb, f"{PREFIX}orders-running", drill_tags("run-now", "orders", future))
    _scratch(ddb, f"{PREFIX}orders-untagged", None)
    _scratch(ddb, f"{PREFIX}orders-protected", drill_tags("run-old", "orders", past), protection=True)
    _scratch(ddb, "notascratch-orders", drill_tags("run-old", "orders", past))
    before = set(list_tables(ddb))

    results = {r["table"]: r for r in sweep(ddb, prefix=PREFIX, protected=PROTECTED)}
    after = set(list_tables(ddb))
    assert before - after == {f"{PREFIX}orders-expired"}
    assert results[f"{PREFIX}orders-expired"]["deleted"]
    assert "expires at" in results[f"{PREFIX}orders-running"]["reason"]
    assert "no dynamoguard:drill tag" in results[f"{PREFIX}orders-untagged"]["reason"]
    assert "deletion protection" in results[f"{PREFIX}orders-protected"]["reason"]
    assert "notascratch-orders" not in results and set(PROTECTED) <= after


def test_cleanup_deletes_only_this_runs_table(seeded):
    ddb = seeded.client("dynamodb")
    later = utcnow() + timedelta(hours=1)
    _scratch(ddb, f"{PREFIX}customers-a", drill_tags("run-a", "customers", later))
    other = delete_scratch_table(ddb, f"{PREFIX}customers-a", prefix=PREFIX, protected=PROTECTED,
                                        run_id="run-b")
    assert not other["deleted"] and "belongs to drill" in other["reason"]
    mine = delete_scratch_table(ddb, f"{PREFIX}customers-a", prefix=PREFIX, protected=PROTECTED,
                                       run_id="run-a")
    assert mine["deleted"] and f"{PREFIX}customers-a" not in set(list_tables(ddb))
    again = delete_scratch_table(ddb, f"{PREFIX}customers-a", prefix=PREFIX, protected=PROTECTED,
                                        run_id="run-a")
    assert again == {"table": f"{PREFIX}customers-a", "deleted": False, "reason": "does not exist"}
    protected = delete_scratch_table(ddb, "orders", prefix=PREFIX, protected=PROTECTED, run_id="run-a")
    assert not protected["deleted"] and "orders" in set(list_tables(ddb))

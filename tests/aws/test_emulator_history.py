"""The emulator keeps item history: exports and restores at a past time T see the table as it was at T, and
INCREMENTAL_EXPORT writes AWS's layout (fixes/dynamodb_history.py, fixes/dynamodb_export.py, fixes/pitr.py).

References: API reference RestoreTableToPointInTime, ExportTableToPointInTime, IncrementalExportSpecification,
DescribeExport; https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html;
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/PointInTimeRecovery_Howitworks.html.

Timing knobs: ``pitr_lag_seconds`` 0 makes LatestRestorableDateTime = now; ``POST /_localaws/backdate`` moves
everything a table has recorded so far some seconds into the past.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from tests.aws.test_emulator_export import b64md5, control, make_table, wait

pytestmark = pytest.mark.aws

BUCKET = "history-bucket"
STEP = 60  # seconds each write step is moved back


@pytest.fixture
def settings(localaws):
    """Set run-time settings for one test; the previous values are restored afterwards."""
    previous = control(localaws.endpoint, "config")
    yield lambda **values: control(localaws.endpoint, "config", values)
    control(localaws.endpoint, "config", previous)


@pytest.fixture
def ddb(localaws, settings):
    """Instant exports, PITR lag 0 (Latest = now), a bucket; the DynamoDB client."""
    settings(export_seconds=0, pitr_lag_seconds=0)
    localaws.client("s3").create_bucket(Bucket=BUCKET)
    return localaws.client("dynamodb")


def ledger(ddb, name: str = "ledger") -> str:
    """A table with a composite key (pk, sk) and PITR on."""
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "N"}])
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    return ddb.describe_table(TableName=name)["Table"]["TableArn"]


def backdate(localaws, table: str, seconds: float) -> dict:
    return control(localaws.endpoint, "backdate", {"table": table, "seconds": seconds})


def key(pk: str, sk: int = 1) -> dict:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


def item(pk: str, v: int, sk: int = 1) -> dict:
    return {**key(pk, sk), "v": {"N": str(v)}}


def state(ddb, table: str) -> list[dict]:
    return sorted(ddb.scan(TableName=table)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["N"]))


def now_s() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def read_lines(s3, desc: dict) -> tuple[dict, list[dict], list[str]]:
    """(manifest summary, data lines, data file keys) of a completed export, checking checksums and counts."""
    summary_raw = s3.get_object(Bucket=BUCKET, Key=desc["ExportManifest"])["Body"].read()
    assert s3.get_object(Bucket=BUCKET, Key=desc["ExportManifest"].replace(".json", ".md5"))["Body"].read().decode() \
        == b64md5(summary_raw)
    summary = json.loads(summary_raw)
    files_raw = s3.get_object(Bucket=BUCKET, Key=summary["manifestFilesS3Key"])["Body"].read()
    lines, keys = [], []
    for entry in map(json.loads, files_raw.decode().splitlines()):
        obj = s3.get_object(Bucket=BUCKET, Key=entry["dataFileS3Key"])
        body = obj["Body"].read()
        assert b64md5(body) == entry["md5Checksum"] and obj["ETag"].strip('"') == entry["etag"]
        chunk = gzip.decompress(body).decode().splitlines()
        assert len(chunk) == entry["itemCount"]
        lines += chunk
        keys.append(entry["dataFileS3Key"])
    assert summary["itemCount"] == desc["ItemCount"] == len(lines)
    return summary, [json.loads(line) for line in lines], keys


def test_restore_at_t_sees_every_write_path(localaws, ddb):
    """Each step writes through another API; a restore at a time inside each step's span returns the table as the
    step left it (a rolled-back transaction changes nothing)."""
    ledger(ddb)
    steps = [
        lambda: ddb.put_item(TableName="ledger", Item=item("a", 1)),
        lambda: ddb.update_item(TableName="ledger", Key=key("a"), UpdateExpression="SET v = v + :one",
                                ExpressionAttributeValues={":one": {"N": "1"}}),
        lambda: ddb.update_item(TableName="ledger", Key=key("new"), UpdateExpression="SET v = :v",
                                ExpressionAttributeValues={":v": {"N": "7"}}),
        lambda: ddb.batch_write_item(RequestItems={"ledger": [
            {"PutRequest": {"Item": item("b", 1)}}, {"PutRequest": {"Item": item("c", 1)}},
            {"DeleteRequest": {"Key": key("new")}}]}),
        lambda: ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "ledger", "Item": item("d", 1)}},
            {"Update": {"TableName": "ledger", "Key": key("b"), "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}}}},
            {"Delete": {"TableName": "ledger", "Key": key("c")}}]),
        lambda: pytest.raises(ClientError, ddb.transact_write_items, TransactItems=[
            {"Put": {"TableName": "ledger", "Item": item("e", 1)}},
            {"Delete": {"TableName": "ledger", "Key": key("a"), "ConditionExpression": "v = :nine",
                        "ExpressionAttributeValues": {":nine": {"N": "9"}}}}]),
        lambda: ddb.delete_item(TableName="ledger", Key=key("d")),
        lambda: ddb.execute_statement(Statement="INSERT INTO ledger VALUE {'pk': 'p', 'sk': 1, 'v': 1}"),
        lambda: ddb.execute_statement(Statement="UPDATE ledger SET v = ? WHERE pk = ? AND sk = ?",
                                      Parameters=[{"N": "5"}, {"S": "a"}, {"N": "1"}]),
        lambda: ddb.batch_execute_statement(Statements=[  # (moto's PartiQL parser fails DELETEs on a number key)
            {"Statement": "INSERT INTO ledger VALUE {'pk': 'q', 'sk': 2, 'v': 3}"},
            {"Statement": "INSERT INTO ledger VALUE {'pk': 'r', 'sk': 2, 'v': 4}"}]),
    ]
    snapshots = []
    for step in steps:
        step()
        snapshots.append(state(ddb, "ledger"))
        backdate(localaws, "ledger", STEP)  # this step's changes now lie STEP seconds further back
    assert [len(s) for s in snapshots] == [1, 1, 2, 3, 3, 3, 2, 3, 3, 5]
    end = now_s()
    for n, expected in enumerate(snapshots):
        # step n happened between (len(steps) - n) * STEP and (len(steps) - n - 1) * STEP seconds before the end
        at = end - timedelta(seconds=(len(steps) - n) * STEP - STEP // 2)
        target = f"ledger-at-{n}"
        desc = ddb.restore_table_to_point_in_time(SourceTableName="ledger", TargetTableName=target,
                                                  RestoreDateTime=at)["TableDescription"]
        assert desc["RestoreSummary"]["RestoreDateTime"] == at
        assert state(ddb, target) == expected, f"restore after step {n}"


def test_full_export_at_t_and_restore_by_arn(localaws, ddb):
    arn = ledger(ddb)
    s3 = localaws.client("s3")
    for pk in "abc":
        ddb.put_item(TableName="ledger", Item=item(pk, 1))
    backdate(localaws, "ledger", 600)
    then = now_s() - timedelta(seconds=300)
    ddb.put_item(TableName="ledger", Item=item("a", 2))
    ddb.delete_item(TableName="ledger", Key=key("b"))
    ddb.put_item(TableName="ledger", Item=item("d", 1))

    desc = wait(ddb, ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET, ExportTime=then)[
        "ExportDescription"]["ExportArn"])
    summary, lines, _ = read_lines(s3, desc)
    assert {(line["Item"]["pk"]["S"], line["Item"]["v"]["N"]) for line in lines} == {("a", "1"), ("b", "1"), ("c", "1")}
    assert summary["exportTime"] == then.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    # the same export without ExportTime sees today's table
    now_desc = wait(ddb, ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET)["ExportDescription"][
        "ExportArn"])
    assert {(li["Item"]["pk"]["S"], li["Item"]["v"]["N"]) for li in read_lines(s3, now_desc)[1]} == {
        ("a", "2"), ("c", "1"), ("d", "1")}

    ddb.restore_table_to_point_in_time(SourceTableArn=arn, TargetTableName="ledger-then", RestoreDateTime=then)
    assert [(i["pk"]["S"], i["v"]["N"]) for i in state(ddb, "ledger-then")] == [("a", "1"), ("b", "1"), ("c", "1")]
    ddb.restore_table_to_point_in_time(SourceTableName="ledger", TargetTableName="ledger-latest",
                                       UseLatestRestorableTime=True)
    assert state(ddb, "ledger-latest") == state(ddb, "ledger")
    for bad in (now_s() - timedelta(days=1), now_s() + timedelta(minutes=5)):
        with pytest.raises(ClientError) as invalid:
            ddb.restore_table_to_point_in_time(SourceTableName="ledger", TargetTableName="x-bad", RestoreDateTime=bad)
        assert invalid.value.response["Error"]["Code"] == "InvalidRestoreTimeException"
    make_table(ddb, "no-pitr", pitr=False)
    with pytest.raises(ClientError) as off:
        ddb.restore_table_to_point_in_time(SourceTableName="no-pitr", TargetTableName="x-off",
                                           UseLatestRestorableTime=True)
    assert off.value.response["Error"]["Code"] == "PointInTimeRecoveryUnavailableException"


def test_pitr_lag_setting_and_rebased_history(localaws, settings):
    ddb = localaws.client("dynamodb")
    ledger(ddb)
    ddb.put_item(TableName="ledger", Item=item("a", 1))

    def latest() -> datetime:
        return ddb.describe_continuous_backups(TableName="ledger")["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]

    control(localaws.endpoint, "pitr", {"table": "ledger", "earliest_restorable": "2000-01-01T00:00:00Z"})
    settings(pitr_lag_seconds=300)
    assert abs(latest() - (datetime.now(UTC) - timedelta(minutes=5))) < timedelta(seconds=30)
    settings(pitr_lag_seconds=0)
    assert abs(latest() - datetime.now(UTC)) < timedelta(seconds=30)
    # POST /_localaws/pitr: the items present then count as present since the (clamped) earliest time
    month_ago = datetime.now(UTC) - timedelta(days=30)
    ddb.restore_table_to_point_in_time(SourceTableName="ledger", TargetTableName="month-ago", RestoreDateTime=month_ago)
    assert [i["pk"]["S"] for i in state(ddb, "month-ago")] == ["a"]


def test_incremental_export_layout_and_images(localaws, ddb):
    arn = ledger(ddb)
    s3 = localaws.client("s3")
    for pk in ("a", "c", "e"):
        ddb.put_item(TableName="ledger", Item=item(pk, 1))
    backdate(localaws, "ledger", 3600)  # baseline: an hour ago
    ddb.update_item(TableName="ledger", Key=key("a"), UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": {"N": "2"}})
    ddb.put_item(TableName="ledger", Item=item("a", 3))  # two changes of a: one line, its final state
    ddb.put_item(TableName="ledger", Item={**item("b", 1), "bin": {"B": b"\x00\xff"}})
    ddb.delete_item(TableName="ledger", Key=key("c"))
    ddb.put_item(TableName="ledger", Item=item("x", 1))
    ddb.delete_item(TableName="ledger", Key=key("x"))  # created and deleted inside the window: no line
    backdate(localaws, "ledger", 900)  # the changes: 15 minutes ago
    ddb.put_item(TableName="ledger", Item=item("g", 1))  # after ExportToTime
    start, end = now_s() - timedelta(minutes=30), now_s() - timedelta(minutes=5)

    started = ddb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket=BUCKET, S3Prefix="incr", ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification={"ExportFromTime": start, "ExportToTime": end})["ExportDescription"]
    export_id = re.fullmatch(re.escape(arn) + r"/export/(\d{11}000-[0-9a-f]{8})", started["ExportArn"]).group(1)
    desc = wait(ddb, started["ExportArn"])
    assert desc["ExportStatus"] == "COMPLETED" and desc["ExportType"] == "INCREMENTAL_EXPORT"
    assert desc["IncrementalExportSpecification"] == {"ExportFromTime": start, "ExportToTime": end,
                                                      "ExportViewType": "NEW_AND_OLD_IMAGES"}
    assert "ExportTime" not in desc and desc["ItemCount"] == 3 and desc["BilledSizeBytes"] >= 10_000_000
    assert desc["ExportManifest"] == f"incr/AWSDynamoDB/{export_id}/manifest-summary.json"

    summary, lines, data_keys = read_lines(s3, desc)
    assert list(summary) == ["version", "exportArn", "startTime", "endTime", "tableArn", "tableId", "exportFromTime",
                             "exportToTime", "s3Bucket", "s3Prefix", "s3SseAlgorithm", "s3SseKmsKeyId",
                             "manifestFilesS3Key", "billedSizeBytes", "itemCount", "outputFormat", "outputView",
                             "exportType"]
    assert summary["version"] == "2023-08-01" and summary["exportType"] == "INCREMENTAL_EXPORT"
    assert summary["outputView"] == "NEW_AND_OLD_IMAGES" and summary["outputFormat"] == "DYNAMODB_JSON"
    assert summary["exportFromTime"] == start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert summary["exportToTime"] == end.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert summary["manifestFilesS3Key"] == f"incr/AWSDynamoDB/{export_id}/manifest-files.json"
    # data files live in the folder shared by all incremental exports; the manifests beside _started
    assert all(re.fullmatch(r"incr/AWSDynamoDB/data/[a-z2-7]{26}\.json\.gz", k) for k in data_keys)
    names = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"incr/AWSDynamoDB/{export_id}/")["Contents"]}
    assert {n.rsplit("/", 1)[1] for n in names} == {"_started", "manifest-files.json", "manifest-files.md5",
                                                    "manifest-summary.json", "manifest-summary.md5"}

    by_key = {line["Keys"]["pk"]["S"]: line for line in lines}
    assert set(by_key) == {"a", "b", "c"}
    assert all(list(line)[:2] == ["Metadata", "Keys"] for line in lines)
    assert by_key["a"]["Keys"] == key("a") and list(by_key["a"]) == ["Metadata", "Keys", "OldImage", "NewImage"]
    assert by_key["a"]["OldImage"] == dict(sorted(item("a", 1).items()))
    assert by_key["a"]["NewImage"] == dict(sorted(item("a", 3).items()))
    assert list(by_key["b"]) == ["Metadata", "Keys", "NewImage"] and by_key["b"]["NewImage"]["bin"] == {"B": "AP8="}
    assert list(by_key["c"]) == ["Metadata", "Keys", "OldImage"]
    stamps = {pk: int(line["Metadata"]["WriteTimestampMicros"]["N"]) for pk, line in by_key.items()}
    assert all(start.timestamp() * 1e6 <= t < end.timestamp() * 1e6 for t in stamps.values())
    assert stamps["a"] < stamps["b"] < stamps["c"]  # each key's last write, in the order written

    new_image = wait(ddb, ddb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket=BUCKET, ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification={"ExportFromTime": start, "ExportToTime": end,
                                        "ExportViewType": "NEW_IMAGE"})["ExportDescription"]["ExportArn"])
    _, lines, data_keys = read_lines(s3, new_image)
    assert all(k.startswith("AWSDynamoDB/data/") for k in data_keys)
    assert {line["Keys"]["pk"]["S"]: sorted(line) for line in lines} == {
        "a": ["Keys", "Metadata", "NewImage"], "b": ["Keys", "Metadata", "NewImage"], "c": ["Keys", "Metadata"]}

    # ExportToTime omitted: the latest restorable time (now, with pitr_lag_seconds 0), so g is in this window
    latest = ddb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket=BUCKET, ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification={"ExportFromTime": now_s() - timedelta(minutes=16)})["ExportDescription"]
    resolved = latest["IncrementalExportSpecification"]["ExportToTime"]
    assert abs(resolved - datetime.now(UTC)) < timedelta(seconds=30)
    assert sorted(li["Keys"]["pk"]["S"] for li in read_lines(s3, wait(ddb, latest["ExportArn"]))[1]) == [
        "a", "b", "c", "g"]
    assert {s["ExportType"] for s in ddb.list_exports(TableArn=arn)["ExportSummaries"]} == {"INCREMENTAL_EXPORT"}


def test_incremental_window_rules(localaws, ddb):
    arn = ledger(ddb)
    backdate(localaws, "ledger", 3 * 86400)  # PITR on for three days
    now = now_s()

    def refused(spec: dict | None, **extra) -> tuple[str, str]:
        request = {"TableArn": arn, "S3Bucket": BUCKET, "ExportType": "INCREMENTAL_EXPORT", **extra}
        if spec is not None:
            request["IncrementalExportSpecification"] = spec
        with pytest.raises(ClientError) as error:
            ddb.export_table_to_point_in_time(**request)
        return error.value.response["Error"]["Code"], error.value.response["Error"]["Message"]

    hour = timedelta(hours=1)
    assert refused({"ExportFromTime": now - hour, "ExportToTime": now - hour + timedelta(minutes=14)}) == (
        "InvalidExportTimeException",
        "Difference between export period from time and export period to time is less than 15 minutes")
    assert refused({"ExportFromTime": now - 26 * hour, "ExportToTime": now - hour}) == (
        "InvalidExportTimeException",
        "Difference between export period from time and export period to time is greater than 24 hours")
    assert refused({"ExportFromTime": now - hour, "ExportToTime": now - 2 * hour})[1].startswith("Difference")
    code, message = refused({"ExportFromTime": now - 4 * 24 * hour, "ExportToTime": now - 3 * 24 * hour})
    assert code == "InvalidExportTimeException" and message.startswith(
        "Incremental export period from time cannot be less than the table creation time : ")
    code, message = refused({"ExportFromTime": now - hour, "ExportToTime": now + hour})
    assert code == "InvalidExportTimeException" and "to time cannot be greater than the current time" in message
    assert refused({"ExportFromTime": now - hour}, ExportTime=now - hour)[0] == "InvalidExportTimeException"
    assert refused(None) == ("ValidationException", "Invalid Request: Incremental Export Specification expected "
                                                    "when export type is set as Incremental Export")
    assert refused({"ExportViewType": "NEW_IMAGE"}) == (
        "ValidationException", "Invalid Request: ExportFromTime must be provided in IncrementalExportSpecification")
    code, message = refused({"ExportFromTime": now - hour, "ExportViewType": "NEW_IMAGES"})
    assert code == "ValidationException" and "'incrementalExportSpecification.exportViewType'" in message
    assert refused({"ExportFromTime": now - hour}, ExportType="FULL_EXPORT")[0] == "ValidationException"
    with pytest.raises(ClientError) as untyped:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET,
                                          IncrementalExportSpecification={"ExportFromTime": now - hour})
    assert "Export Type expected to be Incremental Export" in untyped.value.response["Error"]["Message"]
    make_table(ddb, "no-pitr", pitr=False)
    off_arn = ddb.describe_table(TableName="no-pitr")["Table"]["TableArn"]
    assert refused({"ExportFromTime": now - hour}, TableArn=off_arn)[0] == "InvalidExportTimeException"
    # a valid window right at the 15-minute minimum is accepted
    ok = ddb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket=BUCKET, ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification={"ExportFromTime": now - hour,
                                        "ExportToTime": now - hour + timedelta(minutes=15)})
    assert ok["ExportDescription"]["ExportStatus"] in {"IN_PROGRESS", "COMPLETED"}


def test_export_started_before_the_table_is_deleted_completes(localaws, ddb, settings):
    arn = ledger(ddb)
    for pk in "ab":
        ddb.put_item(TableName="ledger", Item=item(pk, 1))
    backdate(localaws, "ledger", 1800)
    ddb.put_item(TableName="ledger", Item=item("c", 1))
    settings(export_seconds=1)
    full = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET)["ExportDescription"]["ExportArn"]
    incremental = ddb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket=BUCKET, ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification={"ExportFromTime": now_s() - timedelta(minutes=20)})["ExportDescription"][
        "ExportArn"]
    ddb.delete_table(TableName="ledger")
    time.sleep(1.5)
    s3 = localaws.client("s3")
    assert len(read_lines(s3, wait(ddb, full))[1]) == 3
    assert [li["Keys"]["pk"]["S"] for li in read_lines(s3, wait(ddb, incremental))[1]] == ["c"]
    assert ddb.list_exports()["ExportSummaries"] == []  # AWS lists no exports of deleted tables


def test_history_compacts_entries_older_than_the_window():
    """In-process: entries before the cutoff fold into the state at the cutoff; deleted keys disappear."""
    from include.localaws.fixes.dynamodb_history import History

    history = History(["pk"])
    for t, value in ((10, "v1"), (20, "v2"), (30, "v3")):
        history.record('{"pk":{"S":"a"}}', value, t)
    history.record('{"pk":{"S":"b"}}', "b1", 5)
    history.record('{"pk":{"S":"b"}}', None, 15)
    before = {t: dict(history.state_at(t)) for t in (25, 30, 40)}
    history.compact(25)
    assert history.size() == 2 and '{"pk":{"S":"b"}}' not in history.entries
    assert {t: dict(history.state_at(t)) for t in (25, 30, 40)} == before
    assert list(history.changes(25, 35)) == [('{"pk":{"S":"a"}}', 30, "v2", "v3")]

"""The emulator's DynamoDB export behaves as AWS documents it (fixes/dynamodb_export.py, fixes/pitr.py).

References: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html and the
API reference of ExportTableToPointInTime, DescribeExport, ListExports, DescribeContinuousBackups.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.aws

BUCKET = "export-bucket"


def control(endpoint: str, name: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if data is None else "POST"
    request = urllib.request.Request(f"{endpoint}/_localaws/{name}", data=data, method=method)
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


@pytest.fixture
def export_seconds(localaws):
    """Set how long exports stay IN_PROGRESS for one test; the previous value is restored afterwards."""
    previous = control(localaws.endpoint, "config")["export_seconds"]
    yield lambda seconds: control(localaws.endpoint, "config", {"export_seconds": seconds})
    control(localaws.endpoint, "config", {"export_seconds": previous})


@pytest.fixture
def env(localaws, export_seconds):
    """A table with PITR (5 items of every awkward type), an Object Lock bucket, instant exports."""
    export_seconds(0)
    ddb, s3 = localaws.client("dynamodb"), localaws.client("s3")
    make_table(ddb, "books")
    for i in range(5):
        ddb.put_item(TableName="books", Item={
            "pk": {"S": f"book-{i}"}, "cover": {"B": bytes([i, 0, 255])},
            "price": {"N": "12.3456789012345678901234567890123456"}, "tags": {"SS": ["a", "b"]},
            "scans": {"BS": [b"\x00\x01", b"\xff"]},
            "meta": {"M": {"raw": {"B": b"\x10"}, "l": {"L": [{"NULL": True}]}}},
        })
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=BUCKET, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 3}}})
    return ddb, s3, ddb.describe_table(TableName="books")["Table"]["TableArn"]


def make_table(ddb, name: str, pitr: bool = True) -> str:
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    if pitr:
        ddb.update_continuous_backups(TableName=name,
                                      PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    return ddb.describe_table(TableName=name)["Table"]["TableArn"]


def wait(ddb, arn: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = ddb.describe_export(ExportArn=arn)["ExportDescription"]
        if desc["ExportStatus"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return desc
        time.sleep(0.2)


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def verify(s3, desc: dict) -> list[dict]:
    """What a correct export verifier checks; returns the exported items."""
    bucket, summary_key = desc["S3Bucket"], desc["ExportManifest"]
    summary_raw = s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read()
    assert s3.get_object(Bucket=bucket, Key=summary_key.replace(".json", ".md5"))["Body"].read().decode() == \
        b64md5(summary_raw)
    summary = json.loads(summary_raw)
    files_key = summary["manifestFilesS3Key"]
    files_raw = s3.get_object(Bucket=bucket, Key=files_key)["Body"].read()
    assert s3.get_object(Bucket=bucket, Key=files_key.replace(".json", ".md5"))["Body"].read().decode() == \
        b64md5(files_raw)
    items = []
    entries = [json.loads(line) for line in files_raw.decode().splitlines()]
    for entry in entries:
        obj = s3.get_object(Bucket=bucket, Key=entry["dataFileS3Key"])
        body = obj["Body"].read()
        assert b64md5(body) == entry["md5Checksum"]
        assert obj["ETag"].strip('"') == entry["etag"]
        lines = gzip.decompress(body).decode().splitlines()
        assert len(lines) == entry["itemCount"]
        items += [json.loads(line)["Item"] for line in lines]
    assert summary["itemCount"] == sum(e["itemCount"] for e in entries) == desc["ItemCount"] == len(items)
    assert summary["exportArn"] == desc["ExportArn"] and summary["tableArn"] == desc["TableArn"]
    return items


def test_export_arn_describe_fields_and_layout(env):
    ddb, s3, table_arn = env
    started = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=BUCKET, S3Prefix="nightly/2026-11-28/")
    arn = started["ExportDescription"]["ExportArn"]
    match = re.fullmatch(re.escape(table_arn) + r"/export/(\d{14})-([0-9a-f]{8})", arn)
    assert match, arn
    export_id = match.group(1) + "-" + match.group(2)
    assert abs(int(match.group(1)) / 1000 - time.time()) < 60

    desc = wait(ddb, arn)
    assert desc["ExportStatus"] == "COMPLETED"
    root = f"nightly/2026-11-28/AWSDynamoDB/{export_id}"
    assert desc["ExportManifest"] == f"{root}/manifest-summary.json"
    assert desc["ExportFormat"] == "DYNAMODB_JSON" and desc["ItemCount"] == 5
    assert desc["StartTime"] <= desc["EndTime"] and desc["ExportTime"] <= desc["StartTime"] + timedelta(seconds=1)
    assert desc["ClientToken"] and desc["TableId"] and desc["S3SseAlgorithm"] == "AES256"
    item_bytes = sum(len(k) + 1 for k in ("pk", "cover", "price", "tags", "scans", "meta"))
    assert item_bytes * 5 < desc["BilledSizeBytes"] < 1000  # bytes, not an item count

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert not any("//" in k for k in keys)
    names = [k[len(root) + 1:] for k in keys]
    data = [n for n in names if n.startswith("data/")]
    assert sorted(set(names) - set(data)) == ["_started", "manifest-files.json", "manifest-files.md5",
                                               "manifest-summary.json", "manifest-summary.md5"]
    assert 2 <= len(data) <= 4 and all(re.fullmatch(r"data/[a-z0-9]+\.json\.gz", n) for n in data)
    assert s3.head_object(Bucket=BUCKET, Key=f"{root}/_started")["ContentLength"] == 0

    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=desc["ExportManifest"])["Body"].read())
    assert set(summary) == {"version", "exportArn", "startTime", "endTime", "tableArn", "tableId", "exportTime",
                            "s3Bucket", "s3Prefix", "s3SseAlgorithm", "s3SseKmsKeyId", "manifestFilesS3Key",
                            "billedSizeBytes", "itemCount", "outputFormat"}
    assert summary["version"] == "2020-06-30" and summary["outputFormat"] == "DYNAMODB_JSON"
    assert summary["tableId"] == desc["TableId"] == ddb.describe_table(TableName="books")["Table"]["TableId"]
    assert summary["s3Prefix"] == "nightly/2026-11-28/"
    assert summary["manifestFilesS3Key"] == f"{root}/manifest-files.json"
    assert summary["billedSizeBytes"] == desc["BilledSizeBytes"]
    assert datetime.fromisoformat(summary["exportTime"]) == desc["ExportTime"]
    for entry in s3.get_object(Bucket=BUCKET, Key=summary["manifestFilesS3Key"])["Body"].read().decode().splitlines():
        assert re.fullmatch(r"[0-9a-f]{32}-1", json.loads(entry)["etag"])  # single-part multipart, as AWS

    items = verify(s3, desc)
    scanned = ddb.scan(TableName="books")["Items"]
    as_wire = [json.loads(json.dumps(i, default=lambda b: base64.b64encode(b).decode())) for i in scanned]
    assert sorted(items, key=lambda i: i["pk"]["S"]) == sorted(as_wire, key=lambda i: i["pk"]["S"])
    assert {base64.b64decode(i["cover"]["B"])[0] for i in items} == set(range(5))


def test_no_prefix_and_empty_table(env):
    ddb, s3, _ = env
    empty_arn = make_table(ddb, "empty")
    desc = wait(ddb, ddb.export_table_to_point_in_time(TableArn=empty_arn, S3Bucket=BUCKET)["ExportDescription"]
                ["ExportArn"])
    assert desc["ExportStatus"] == "COMPLETED" and "S3Prefix" not in desc
    assert desc["ExportManifest"].startswith("AWSDynamoDB/")
    entries = s3.get_object(Bucket=BUCKET, Key=desc["ExportManifest"].replace("summary", "files"))["Body"].read()
    assert len(entries.splitlines()) == 1 and json.loads(entries)["itemCount"] == 0
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=desc["ExportManifest"])["Body"].read())["s3Prefix"] is None
    assert verify(s3, desc) == []


def test_export_stays_in_progress_then_writes(env, export_seconds):
    ddb, s3, table_arn = env
    export_seconds(1.5)
    arn = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=BUCKET, S3Prefix="p")["ExportDescription"][
        "ExportArn"]
    desc = ddb.describe_export(ExportArn=arn)["ExportDescription"]
    assert desc["ExportStatus"] == "IN_PROGRESS"
    assert not {"EndTime", "ExportManifest", "ItemCount"} & set(desc)
    assert [o["Key"].rsplit("/", 1)[-1] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["_started"]
    time.sleep(2)
    # Objects are written when the export completes, even if nobody asks for its status.
    assert len(s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == 9
    assert ddb.describe_export(ExportArn=arn)["ExportDescription"]["ExportStatus"] == "COMPLETED"


def test_exported_objects_get_default_retention(env):
    ddb, s3, table_arn = env
    desc = wait(ddb, ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=BUCKET)["ExportDescription"]
                ["ExportArn"])
    for obj in s3.list_object_versions(Bucket=BUCKET)["Versions"]:
        head = s3.head_object(Bucket=BUCKET, Key=obj["Key"], VersionId=obj["VersionId"])
        assert head["ObjectLockMode"] == "COMPLIANCE"
        until = head["ObjectLockRetainUntilDate"] - datetime.now(UTC)
        assert timedelta(days=2, hours=23) < until <= timedelta(days=3)
    with pytest.raises(ClientError) as denied:
        key = desc["ExportManifest"]
        version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_client_token_idempotency(env):
    ddb, _, table_arn = env
    request = {"TableArn": table_arn, "S3Bucket": BUCKET, "S3Prefix": "p", "ClientToken": "orders-2026-11-28"}
    first = ddb.export_table_to_point_in_time(**request)["ExportDescription"]
    again = ddb.export_table_to_point_in_time(**request)["ExportDescription"]
    assert again["ExportArn"] == first["ExportArn"] and again["ClientToken"] == "orders-2026-11-28"
    with pytest.raises(ClientError) as conflict:
        ddb.export_table_to_point_in_time(**{**request, "S3Prefix": "other"})
    assert conflict.value.response["Error"]["Code"] == "ExportConflictException"
    other = ddb.export_table_to_point_in_time(**{**request, "ClientToken": "orders-2026-11-29"})["ExportDescription"]
    assert other["ExportArn"] != first["ExportArn"]
    # Without a token of the caller's choosing every request is a new export (botocore generates one each time).
    no_token = {k: v for k, v in request.items() if k != "ClientToken"}
    arns = {ddb.export_table_to_point_in_time(**no_token)["ExportDescription"]["ExportArn"] for _ in range(2)}
    assert len(arns) == 2
    assert len(ddb.list_exports(TableArn=table_arn)["ExportSummaries"]) == 4


def test_missing_bucket_fails_after_starting(env):
    ddb, _, table_arn = env
    started = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket="no-such-bucket")["ExportDescription"]
    assert started["ExportStatus"] in {"IN_PROGRESS", "FAILED"}
    desc = wait(ddb, started["ExportArn"])
    assert desc["ExportStatus"] == "FAILED" and desc["FailureCode"] == "S3NoSuchBucket"
    assert "no-such-bucket" in desc["FailureMessage"] and "ExportManifest" not in desc


def test_describe_unknown_or_malformed_export(env):
    ddb, _, table_arn = env
    with pytest.raises(ClientError) as missing:
        ddb.describe_export(ExportArn=f"{table_arn}/export/01668227450456-b6733290")
    assert missing.value.response["Error"]["Code"] == "ExportNotFoundException"
    with pytest.raises(ClientError) as malformed:
        ddb.describe_export(ExportArn=f"{table_arn}/import/01668227450456-b6733290")
    assert malformed.value.response["Error"]["Code"] == "ValidationException"


def test_export_time_must_lie_in_pitr_window(env, localaws):
    ddb, _, table_arn = env
    now = datetime.now(UTC)
    for when in (now + timedelta(minutes=5), now - timedelta(days=1)):
        with pytest.raises(ClientError) as invalid:
            ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=BUCKET, ExportTime=when)
        assert invalid.value.response["Error"]["Code"] == "InvalidExportTimeException"
    off_arn = make_table(ddb, "no-pitr", pitr=False)
    with pytest.raises(ClientError) as unavailable:
        ddb.export_table_to_point_in_time(TableArn=off_arn, S3Bucket=BUCKET)
    assert unavailable.value.response["Error"]["Code"] == "PointInTimeRecoveryUnavailableException"
    with pytest.raises(ClientError) as not_arn:
        ddb.export_table_to_point_in_time(TableArn="books", S3Bucket=BUCKET)
    assert not_arn.value.response["Error"]["Code"] == "ValidationException"

    forty_days_ago = (now - timedelta(days=40)).isoformat()
    control(localaws.endpoint, "pitr", {"table": "books", "earliest_restorable": forty_days_ago})
    window = ddb.describe_continuous_backups(TableName="books")["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]
    # Earliest is clamped to the 35-day recovery period; latest trails now by about 5 minutes.
    assert abs(window["EarliestRestorableDateTime"] - (now - timedelta(days=35))) < timedelta(minutes=1)
    assert abs(window["LatestRestorableDateTime"] - (now - timedelta(minutes=5))) < timedelta(minutes=1)
    with pytest.raises(ClientError) as too_recent:
        ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=BUCKET, ExportTime=now - timedelta(minutes=1))
    assert too_recent.value.response["Error"]["Code"] == "InvalidExportTimeException"

    past = (now - timedelta(days=3)).replace(microsecond=0)
    desc = wait(ddb, ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=BUCKET, ExportTime=past)[
        "ExportDescription"]["ExportArn"])
    assert desc["ExportTime"] == past
    summary = json.loads(localaws.client("s3").get_object(Bucket=BUCKET, Key=desc["ExportManifest"])["Body"].read())
    assert datetime.fromisoformat(summary["exportTime"]) == past


def test_pitr_control_rejects_bad_requests(env, localaws):
    for body, problem in (({"table": "books"}, "earliest_restorable"),
                          ({"table": "nope", "earliest_restorable": "2026-01-01T00:00:00Z"}, "nope"),
                          ({"table": "books", "earliest_restorable": "yesterday"}, "ISO 8601")):
        with pytest.raises(urllib.error.HTTPError) as bad:
            control(localaws.endpoint, "pitr", body)
        assert bad.value.code == 400 and problem in json.loads(bad.value.read())["error"]


def test_list_exports_without_table_arn_paginates_and_hides_deleted_tables(env):
    ddb, _, books_arn = env
    other_arn = make_table(ddb, "other")
    arns = [ddb.export_table_to_point_in_time(TableArn=t, S3Bucket=BUCKET)["ExportDescription"]["ExportArn"]
            for t in (books_arn, other_arn, books_arn)]
    seen, token, pages = [], None, 0
    while True:
        page = ddb.list_exports(MaxResults=2, **({"NextToken": token} if token else {}))
        seen += [s["ExportArn"] for s in page["ExportSummaries"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(arns) and pages == 2
    assert len(ddb.list_exports(TableArn=books_arn)["ExportSummaries"]) == 2
    ddb.delete_table(TableName="other")
    assert {s["ExportArn"] for s in ddb.list_exports()["ExportSummaries"]} == {arns[0], arns[2]}


def test_seeded_tables_have_a_month_of_pitr_and_backfills_verify(seeded, export_seconds):
    export_seconds(0)
    ddb, s3 = seeded.client("dynamodb"), seeded.client("s3")
    now = datetime.now(UTC)
    for table in ("orders", "customers", "inventory"):
        window = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"][
            "PointInTimeRecoveryDescription"]
        assert abs(window["EarliestRestorableDateTime"] - (now - timedelta(days=35))) < timedelta(minutes=5)
    orders_arn = ddb.describe_table(TableName="orders")["Table"]["TableArn"]
    backfill = now - timedelta(days=30)
    desc = wait(ddb, ddb.export_table_to_point_in_time(
        TableArn=orders_arn, S3Bucket="dynamoguard-exports", S3Prefix="exports", ExportTime=backfill,
        ClientToken="orders-backfill")["ExportDescription"]["ExportArn"])
    assert desc["ExportStatus"] == "COMPLETED", desc.get("FailureMessage")
    items = verify(s3, desc)
    assert len(items) == 250 and len({i["order_id"]["S"] for i in items}) == 250
    head = s3.head_object(Bucket="dynamoguard-exports", Key=desc["ExportManifest"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > now + timedelta(days=34)


def test_config_control(localaws, export_seconds):
    assert control(localaws.endpoint, "config", {"export_seconds": 0.25})["export_seconds"] == 0.25
    assert control(localaws.endpoint, "config")["export_seconds"] == 0.25
    for body, problem in (({"export_secs": 1}, "export_secs"), ({"export_seconds": -1}, "non-negative")):
        with pytest.raises(urllib.error.HTTPError) as bad:
            control(localaws.endpoint, "config", body)
        assert bad.value.code == 400 and problem in json.loads(bad.value.read())["error"]


def test_export_pending_at_reset_writes_nothing_afterwards(env, export_seconds, localaws):
    ddb, s3, table_arn = env
    export_seconds(1)
    ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=BUCKET)
    localaws.reset()
    localaws.client("s3").create_bucket(Bucket=BUCKET)
    time.sleep(1.5)
    assert "Contents" not in localaws.client("s3").list_objects_v2(Bucket=BUCKET)

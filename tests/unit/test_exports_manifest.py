"""Manifest parsing, checksums, export-time choice and naming, on the verbatim real AWS export sample."""

from __future__ import annotations

import base64
import gzip
import hashlib
import zlib
from datetime import datetime, timedelta, timezone

import pytest

from dynamoguard.exports.manifest import (
    ManifestError,
    ManifestSummary,
    checksum_matches,
    export_folder,
    parse_manifest_files,
)
from dynamoguard.exports.start import (
    ExportNotYetRestorable,
    ExportTimeOutsideWindow,
    TableState,
    choose_export_time,
    client_token,
)
from dynamoguard.exports.verify import count_json_lines
from dynamoguard.layout import export_prefix
from dynamoguard.timeutil import iso_ms
from tests.fixtures.real_export import EXPORT_ARN, FILES, FILES_MD5, SUMMARY, SUMMARY_MD5

UTC = timezone.utc


def test_real_summary_parses():
    summary = ManifestSummary.parse(SUMMARY, "manifest-summary.json")
    assert summary.export_arn == EXPORT_ARN
    assert summary.table_arn == "arn:aws:dynamodb:sa-east-1:326717626617:table/livros_por_ler"
    assert summary.export_time == datetime(2022, 11, 12, 4, 30, 50, 456000, tzinfo=UTC)
    assert summary.s3_bucket == "outroslivros" and summary.s3_prefix is None
    assert summary.manifest_files_key == "AWSDynamoDB/01668227450456-b6733290/manifest-files.json"
    assert summary.item_count == 6 and summary.output_format == "DYNAMODB_JSON"


def test_real_files_manifest_parses():
    [data_file] = parse_manifest_files(FILES, "manifest-files.json")
    assert data_file.key == "AWSDynamoDB/01668227450456-b6733290/data/enpvklgbwq7gta42yshirxd6ea.json.gz"
    assert (data_file.item_count, data_file.md5_checksum) == (6, "EV+2HwdmZ3AyD9j+Yxd+Mg==")
    # The manifest's ETag is the single-part multipart ETag of the object whose MD5 is md5Checksum.
    md5 = base64.b64decode(data_file.md5_checksum)
    assert hashlib.md5(md5).hexdigest() + "-1" == data_file.etag


def test_real_companion_checksums_match_and_tampering_is_caught():
    assert checksum_matches(SUMMARY_MD5, SUMMARY)
    assert checksum_matches(FILES_MD5 + "\n", FILES)
    assert not checksum_matches(SUMMARY_MD5, SUMMARY.replace(b'"itemCount":6', b'"itemCount":7'))
    assert not checksum_matches(FILES_MD5, FILES[:-1])
    assert checksum_matches(hashlib.sha256(FILES).hexdigest(), FILES)  # .checksum content variants


def test_export_folder_comes_from_the_arn_and_prefix():
    assert export_folder(EXPORT_ARN, None) == "AWSDynamoDB/01668227450456-b6733290/"
    assert export_folder(EXPORT_ARN, "exports/orders/2026-11-27/") == \
        "exports/orders/2026-11-27/AWSDynamoDB/01668227450456-b6733290/"
    with pytest.raises(ManifestError, match="not a DynamoDB export ARN"):
        export_folder("arn:aws:dynamodb:us-east-1:111111111111:table/orders", None)


@pytest.mark.parametrize("raw, message", [
    (SUMMARY[: len(SUMMARY) // 2], "not valid JSON"),
    (b"[]", "expected a JSON object"),
    (SUMMARY.replace(b'"itemCount":6,', b""), "field 'itemCount' is missing"),
    (SUMMARY.replace(b'"itemCount":6', b'"itemCount":"6"'), "field 'itemCount' has the wrong type"),
    (SUMMARY.replace(b'"exportTime":"2022-11-12T04:30:50.456Z"', b'"exportTime":"yesterday"'),
     "field 'exportTime' is not a timestamp"),
])
def test_invalid_summaries_name_the_problem(raw, message):
    with pytest.raises(ManifestError, match=message):
        ManifestSummary.parse(raw, "s/manifest-summary.json")


@pytest.mark.parametrize("raw, message", [
    (FILES[:40], "line 1 is not valid JSON"),
    (FILES + b'{"itemCount":1}\n', "line 2: field 'dataFileS3Key' is missing"),
    (FILES.replace(b'"itemCount":6', b'"itemCount":-1'), "line 1: field 'itemCount' is negative"),
])
def test_invalid_files_manifests_name_the_line(raw, message):
    with pytest.raises(ManifestError, match=message):
        parse_manifest_files(raw, "manifest-files.json")


def _chunks(data: bytes, size: int = 7):
    return (data[i:i + size] for i in range(0, len(data), size))


def test_count_json_lines_streams_gzip():
    lines = b"".join(b'{"Item":{"pk":{"S":"%d"}}}\n' % i for i in range(1000))
    assert count_json_lines(_chunks(gzip.compress(lines))) == 1000
    assert count_json_lines(_chunks(gzip.compress(lines.rstrip(b"\n")))) == 1000  # no final newline
    assert count_json_lines(_chunks(gzip.compress(lines) + gzip.compress(lines))) == 2000  # two members
    assert count_json_lines(iter([])) == 0  # empty partition: empty object
    assert count_json_lines(iter([gzip.compress(b"")])) == 0
    # highly compressible input inflating to far more than one inflate step, in one chunk
    big = b'{"Item":{"pk":{"S":"same"}}}\n' * 300_000
    assert count_json_lines(iter([gzip.compress(big) + gzip.compress(lines)])) == 301_000
    with pytest.raises(zlib.error):
        count_json_lines(_chunks(gzip.compress(lines)[:-20]))
    with pytest.raises(zlib.error):
        count_json_lines(iter([b"plain text\n"]))


def _state(earliest, latest):
    return TableState("orders", "arn:aws:dynamodb:us-east-1:111111111111:table/orders", "ACTIVE", True,
                      "ENABLED", earliest, latest)


def test_export_time_choice():
    now = datetime(2026, 11, 28, 2, 0, 30, tzinfo=UTC)
    state = _state(now - timedelta(days=35), now - timedelta(minutes=5))
    night = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert choose_export_time(state, night, now) == night
    assert choose_export_time(state, None, now) == state.latest_restorable
    with pytest.raises(ExportTimeOutsideWindow) as error:
        choose_export_time(state, now - timedelta(days=40), now)
    assert "outside the point-in-time recovery window 2026-10-24T02:00:30.000Z .. 2026-11-28T01:55:30.000Z" \
        in str(error.value)
    with pytest.raises(ExportTimeOutsideWindow):
        choose_export_time(state, now + timedelta(hours=1), now)
    with pytest.raises(ExportNotYetRestorable) as pending:
        choose_export_time(state, datetime(2026, 11, 28, 2, 0, tzinfo=UTC), now)
    assert pending.value.retry_at == datetime(2026, 11, 28, 2, 5, tzinfo=UTC)  # lag of 5 min


def test_client_token_is_deterministic_and_request_specific():
    arn = "arn:aws:dynamodb:us-east-1:111111111111:table/orders"
    t = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    token = client_token(arn, t, "b", "exports/orders/2026-11-27")
    assert token == client_token(arn, t.astimezone(timezone(timedelta(hours=2))), "b", "exports/orders/2026-11-27")
    assert len(token) == 64
    others = {
        client_token(arn.replace("orders", "customers"), t, "b", "exports/orders/2026-11-27"),
        client_token(arn, t + timedelta(days=1), "b", "exports/orders/2026-11-27"),
        client_token(arn, t, "b2", "exports/orders/2026-11-27"),
        client_token(arn, t, "b", "exports/orders/2026-11-28"),
        client_token(arn, t, "b", "exports/orders/2026-11-27", attempt=1),
    }
    assert token not in others and len(others) == 5


def test_dated_prefix_and_iso():
    t = datetime(2026, 11, 27, 23, 59, 59, 999999, tzinfo=UTC)
    assert export_prefix("exports/", "orders", t) == "exports/orders/2026-11-27"
    assert export_prefix("", "orders", t) == "orders/2026-11-27"
    assert iso_ms(t) == "2026-11-27T23:59:59.999Z"

"""The emulator's export API answers as AWS's does: request validation, DescribeExport of foreign ARNs,
ListExports order and summaries, ION output (fixes/dynamodb_export.py).

References: API reference ExportTableToPointInTime (request parameters and their constraints, errors),
DescribeExport, ListExports (ExportSummary: ExportArn, ExportStatus, ExportType), and
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html (Amazon Ion section).
"""

from __future__ import annotations

import gzip
import json
import re

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.aws.test_emulator_export import make_table, wait

pytestmark = pytest.mark.aws

BUCKET = "api-bucket"


@pytest.fixture
def ddb(localaws, export_seconds_zero):
    """A DynamoDB client that sends what it is given (no client-side checks), a PITR table, a bucket."""
    localaws.client("s3").create_bucket(Bucket=BUCKET)
    client = localaws.client("dynamodb", config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    make_table(client, "books")
    return client


@pytest.fixture
def export_seconds_zero(localaws):
    from tests.aws.test_emulator_export import control

    previous = control(localaws.endpoint, "config")["export_seconds"]
    control(localaws.endpoint, "config", {"export_seconds": 0})
    yield
    control(localaws.endpoint, "config", {"export_seconds": previous})


def arn_of(ddb, table: str = "books") -> str:
    return ddb.describe_table(TableName=table)["Table"]["TableArn"]


# ExportTableToPointInTime request parameters: ClientToken pattern ^[^$]+$; S3Bucket pattern
# ^[a-z0-9A-Z]+[\.\-\w]*[a-z0-9A-Z]+$; S3BucketOwner pattern [0-9]{12}; S3SseAlgorithm AES256 | KMS;
# S3SseKmsKeyId length 1-2048; ExportFormat DYNAMODB_JSON | ION; ExportType FULL_EXPORT | INCREMENTAL_EXPORT.
INVALID = [
    ("ClientToken", "", r"Value '' at 'clientToken' failed to satisfy constraint: Member must satisfy regular "
                        r"expression pattern"),
    ("S3Prefix", "", r"at 's3Prefix' failed to satisfy constraint"),
    ("S3Prefix", "   ", r"at 's3Prefix' failed to satisfy constraint"),
    ("S3Bucket", "", r"Value '' at 's3Bucket' failed to satisfy constraint"),
    ("S3Bucket", "  ", r"at 's3Bucket' failed to satisfy constraint"),
    ("S3Bucket", None, r"Value null at 's3Bucket' failed to satisfy constraint: Member must not be null"),
    ("S3BucketOwner", "", r"at 's3BucketOwner' failed to satisfy constraint"),
    ("S3BucketOwner", "not-an-account", r"Value 'not-an-account' at 's3BucketOwner'"),
    ("S3SseAlgorithm", "", r"at 's3SseAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: "
                           r"\[AES256, KMS\]"),
    ("S3SseAlgorithm", "aws:kms", r"Value 'aws:kms' at 's3SseAlgorithm'"),
    ("ExportFormat", "CSV", r"^1 validation error detected: Value 'CSV' at 'exportFormat' failed to satisfy "
                            r"constraint: Member must satisfy enum value set: \[DYNAMODB_JSON, ION\]$"),
    ("ExportFormat", "", r"Value '' at 'exportFormat'"),
    ("ExportType", "QWERTY", r"Value 'QWERTY' at 'exportType' failed to satisfy constraint: Member must satisfy "
                             r"enum value set: \[FULL_EXPORT, INCREMENTAL_EXPORT\]"),
    ("TableArn", "QWERTY", r"tableArn is not a valid ARN"),
    ("TableArn", "\t", r"tableArn is not a valid ARN"),
    ("TableArn", "", r"at 'tableArn'"),
]


def test_invalid_parameters_are_validation_exceptions_naming_the_field(ddb):
    arn = arn_of(ddb)
    for field, value, message in INVALID:
        request = {"TableArn": arn, "S3Bucket": BUCKET, field: value}
        with pytest.raises(ClientError) as error:
            ddb.export_table_to_point_in_time(**{k: v for k, v in request.items() if v is not None})
        answer = error.value.response["Error"]
        assert answer["Code"] == "ValidationException", (field, value, answer)
        assert re.search(message, answer["Message"]), (field, value, answer)
    assert ddb.list_exports()["ExportSummaries"] == []


def test_kms_key_rules_and_rejected_requests_reserve_no_token(ddb):
    arn = arn_of(ddb)
    with pytest.raises(ClientError) as empty_key:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET, S3SseAlgorithm="KMS", S3SseKmsKeyId="")
    assert empty_key.value.response["Error"]["Code"] == "ValidationException"
    assert "'s3SseKmsKeyId'" in empty_key.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as key_without_kms:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET, S3SseKmsKeyId="alias/backup")
    assert key_without_kms.value.response["Error"]["Message"] == \
        "Invalid Request: KMS Key Id is not supported for this encryption type"
    with pytest.raises(ClientError):
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="", ClientToken="tok-1")
    desc = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET, ClientToken="tok-1", S3SseAlgorithm="KMS",
                                             S3SseKmsKeyId="alias/backup")["ExportDescription"]
    assert desc["ClientToken"] == "tok-1" and desc["S3SseKmsKeyId"] == "alias/backup"
    with pytest.raises(ClientError) as conflict:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET, ClientToken="tok-1")
    assert conflict.value.response["Error"]["Code"] == "ExportConflictException"
    assert "Duplicate request detected" in conflict.value.response["Error"]["Message"]


def test_export_time_errors_use_aws_wording(ddb):
    arn = arn_of(ddb)
    for when in (-1, 4102444800):  # before the PITR window, in the future
        with pytest.raises(ClientError) as invalid:
            ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET, ExportTime=when)
        assert invalid.value.response["Error"]["Code"] == "InvalidExportTimeException"
        assert invalid.value.response["Error"]["Message"] == "Export Time is invalid"


FOREIGN_OR_MALFORMED = [
    ("qwerty:aws:dynamodb:us-east-1:111111111111:table/books", "ValidationException"),
    ("arn:qwerty:dynamodb:us-east-1:111111111111:table/books/export/01668227450456-b6733290", "AccessDeniedException"),
    ("arn:aws:qwerty:us-east-1:111111111111:table/books/export/01668227450456-b6733290", "AccessDeniedException"),
    ("arn:aws:dynamodb:qwerty:000000000000:table/books", "AccessDeniedException"),
    ("arn:aws:dynamodb:us-east-1:qwerty:table/books", "AccessDeniedException"),
    ("arn:aws:dynamodb:us-east-1:222222222222:table/books/export/01668227450456-b6733290", "AccessDeniedException"),
    ("arn:aws:dynamodb:us-east-1:111111111111:table/books", "ValidationException"),
    ("arn:aws:dynamodb:us-east-1:111111111111:table/books/export/01668227450456-b6733290", "ExportNotFoundException"),
]


def test_describe_export_of_foreign_or_malformed_arns(ddb):
    for arn, code in FOREIGN_OR_MALFORMED:
        with pytest.raises(ClientError) as error:
            ddb.describe_export(ExportArn=arn)
        assert error.value.response["Error"]["Code"] == code, arn
        if code == "ValidationException":
            assert error.value.response["Error"]["Message"] == "Invalid Export ARN"


def test_export_of_another_accounts_table_is_access_denied(ddb):
    with pytest.raises(ClientError) as error:
        ddb.export_table_to_point_in_time(TableArn="arn:aws:dynamodb:us-east-1:222222222222:table/books",
                                          S3Bucket=BUCKET)
    assert error.value.response["Error"]["Code"] == "AccessDeniedException"


def test_list_exports_newest_first_with_export_type(ddb):
    arn = arn_of(ddb)
    first = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET)["ExportDescription"]
    typed = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET, ExportType="FULL_EXPORT")[
        "ExportDescription"]
    assert "ExportType" not in first and typed["ExportType"] == "FULL_EXPORT"  # echoed only when sent
    third = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket=BUCKET)["ExportDescription"]
    seen, token = [], None
    while True:
        page = ddb.list_exports(TableArn=arn, MaxResults=2, **({"NextToken": token} if token else {}))
        seen += page["ExportSummaries"]
        if not (token := page.get("NextToken")):
            break
    assert [s["ExportArn"] for s in seen] == [third["ExportArn"], typed["ExportArn"], first["ExportArn"]]
    assert all(set(s) == {"ExportArn", "ExportStatus", "ExportType"} and s["ExportType"] == "FULL_EXPORT"
               for s in seen)
    with pytest.raises(ClientError) as bad_token:
        ddb.list_exports(NextToken="0123456789abcdef" * 4)
    assert bad_token.value.response["Error"]["Code"] == "ValidationException"


def test_ion_export_encodes_each_type_as_documented(localaws, ddb):
    """Output format page: S string, N decimal (``103.``, ``6d2``), B blob, BOOL bool, sets lists annotated
    $dynamodb_SS/$dynamodb_NS/$dynamodb_BS, L list, M struct; one ``$ion_1_0 {Item:{...}}`` per line, .ion.gz."""
    ddb.put_item(TableName="books", Item={
        "pk": {"S": "ion-1"}, "n": {"N": "600"}, "d": {"N": "12.50"}, "neg": {"N": "-0.001"}, "b": {"B": b"\x00\xff"},
        "t": {"BOOL": True}, "z": {"NULL": True}, "ss": {"SS": ["a"]}, "ns": {"NS": ["2.5"]}, "bs": {"BS": [b"\x01"]},
        "l": {"L": [{"S": "x\"y"}, {"N": "3"}]}, "m": {"M": {"k": {"S": "v"}, "field name": {"N": "1"}}}})
    desc = wait(ddb, ddb.export_table_to_point_in_time(TableArn=arn_of(ddb), S3Bucket=BUCKET, ExportFormat="ION")[
        "ExportDescription"]["ExportArn"])
    assert desc["ExportStatus"] == "COMPLETED" and desc["ExportFormat"] == "ION" and desc["ItemCount"] == 1
    s3 = localaws.client("s3")
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=desc["ExportManifest"])["Body"].read())
    assert summary["outputFormat"] == "ION"
    files = s3.get_object(Bucket=BUCKET, Key=summary["manifestFilesS3Key"])["Body"].read().decode().splitlines()
    (entry,) = [json.loads(f) for f in files if json.loads(f)["itemCount"]]
    assert re.fullmatch(r"AWSDynamoDB/\d{14}-[0-9a-f]{8}/data/[a-z2-7]{26}\.ion\.gz", entry["dataFileS3Key"])
    line = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=entry["dataFileS3Key"])["Body"].read()).decode()
    assert line == ('$ion_1_0 {Item:{pk:"ion-1",n:6d2,d:12.5,neg:-1d-3,b:{{AP8=}},t:true,z:null,'
                    'ss:$dynamodb_SS::["a"],ns:$dynamodb_NS::[2.5],bs:$dynamodb_BS::[{{AQ==}}],l:["x\\"y",3.],'
                    'm:{k:"v","field name":1.}}}\n')

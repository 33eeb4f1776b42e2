"""The emulator honours conditional writes on CopyObject and can answer 409 ConditionalRequestConflict
(fixes/s3_conditional_writes.py).

Reference: API reference of CopyObject (``IfNoneMatch``, ``IfMatch``) and
https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html.
"""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError

pytestmark = pytest.mark.aws

BUCKET = "conditional"


def error_of(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(ClientError) as error:
        call(*args, **kwargs)
    response = error.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


@pytest.fixture
def s3(localaws):
    client = localaws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="src", Body=b"source")
    return client


def conflict(localaws, key: str, count: int = 1) -> None:
    answer = requests.post(f"{localaws.endpoint}/_localaws/s3/conflicts",
                           json={"bucket": BUCKET, "key": key, "count": count}, timeout=10)
    assert answer.status_code == 200, answer.text


def copy(s3, key: str, **kwargs):
    return s3.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": "src"}, **kwargs)


def test_copy_with_if_none_match_never_overwrites(s3):
    copy(s3, "dst", IfNoneMatch="*")
    s3.put_object(Bucket=BUCKET, Key="dst", Body=b"someone else's")
    assert error_of(copy, s3, "dst", IfNoneMatch="*") == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=BUCKET, Key="dst")["Body"].read() == b"someone else's"


def test_copy_with_if_match_needs_that_version(s3):
    assert error_of(copy, s3, "absent", IfMatch='"0123"') == (404, "NoSuchKey")
    etag = s3.put_object(Bucket=BUCKET, Key="dst", Body=b"old")["ETag"]
    assert error_of(copy, s3, "dst", IfMatch='"0123"') == (412, "PreconditionFailed")
    copy(s3, "dst", IfMatch=etag)
    assert s3.get_object(Bucket=BUCKET, Key="dst")["Body"].read() == b"source"


def test_injected_conflict_answers_409_once_without_writing(localaws, s3):
    conflict(localaws, "dst", count=2)
    assert error_of(copy, s3, "dst", IfNoneMatch="*") == (409, "ConditionalRequestConflict")
    assert error_of(s3.put_object, Bucket=BUCKET, Key="dst", Body=b"x", IfNoneMatch="*") == \
        (409, "ConditionalRequestConflict")
    assert error_of(s3.head_object, Bucket=BUCKET, Key="dst")[0] == 404
    copy(s3, "dst", IfNoneMatch="*")  # the retry succeeds
    assert s3.get_object(Bucket=BUCKET, Key="dst")["Body"].read() == b"source"
    copy(s3, "other")  # unconditional writes are never answered with a conflict


def test_conflict_endpoint_names_bad_input(localaws):
    answer = requests.post(f"{localaws.endpoint}/_localaws/s3/conflicts", json={"bucket": BUCKET, "count": 0},
                           timeout=10)
    assert answer.status_code == 400 and "key" in answer.json()["error"]


def test_reset_forgets_pending_conflicts(localaws, s3):
    conflict(localaws, "dst", count=3)
    localaws.reset()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="src", Body=b"source")
    copy(s3, "dst", IfNoneMatch="*")

"""The emulator delivers CloudTrail log and signed digest files as AWS documents, and serves ListPublicKeys."""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.error
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.aws.audit_helpers import TRAIL, deliver, digest, event

pytestmark = pytest.mark.aws

HOUR = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)


def _get(s3, key):
    obj = s3.get_object(Bucket="dynamoguard-cloudtrail", Key=key)
    return gzip.decompress(obj["Body"].read()), obj["Metadata"]


def test_log_file_lands_at_documented_key_with_records(seeded):
    s3 = seeded.client("s3")
    records = [event("DeleteTable", tableName="orders")]
    key = deliver(seeded.endpoint, records, HOUR.replace(minute=7))
    assert key.startswith("AWSLogs/111111111111/CloudTrail/us-east-1/2026/01/01/"
                          "111111111111_CloudTrail_us-east-1_20260101T1007Z_")
    assert key.endswith(".json.gz") and len(key.rsplit("_", 1)[1]) == len("0123456789abcdef.json.gz")
    raw, _ = _get(s3, key)
    assert json.loads(raw) == {"Records": records}


def test_digest_is_signed_chained_and_hashes_the_uncompressed_logs(seeded):
    s3, cloudtrail = seeded.client("s3"), seeded.client("cloudtrail")
    log_key = deliver(seeded.endpoint, [event("PutItem")], HOUR.replace(minute=5))
    first = digest(seeded.endpoint, HOUR.replace(hour=11))
    second = digest(seeded.endpoint, HOUR.replace(hour=12))
    assert first == ("AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2026/01/01/111111111111_CloudTrail-Digest_"
                     f"us-east-1_{TRAIL}_us-east-1_20260101T110000Z.json.gz")

    raw1, meta1 = _get(s3, first)
    doc1 = json.loads(raw1)
    log_raw, _ = _get(s3, log_key)
    assert [f["s3Object"] for f in doc1["logFiles"]] == [log_key]
    assert doc1["logFiles"][0]["hashValue"] == hashlib.sha256(log_raw).hexdigest()
    assert doc1["previousDigestSignature"] is None and doc1["digestS3Object"] == first
    assert meta1["signature-algorithm"] == "SHA256withRSA"

    raw2, meta2 = _get(s3, second)
    doc2 = json.loads(raw2)
    assert doc2["logFiles"] == []
    assert doc2["previousDigestS3Object"] == first
    assert doc2["previousDigestHashValue"] == hashlib.sha256(raw1).hexdigest()
    assert doc2["previousDigestSignature"] == meta1["signature"]

    keys = cloudtrail.list_public_keys(StartTime=HOUR, EndTime=HOUR.replace(hour=12))["PublicKeyList"]
    assert len(keys) == 1
    der = keys[0]["Value"]
    assert keys[0]["Fingerprint"] == hashlib.md5(der).hexdigest() == doc2["digestPublicKeyFingerprint"]
    public_key = serialization.load_der_public_key(der)
    for doc, raw, meta in ((doc1, raw1, meta1), (doc2, raw2, meta2)):
        message = (f"{doc['digestEndTime']}\n{doc['digestS3Bucket']}/{doc['digestS3Object']}\n"
                   f"{hashlib.sha256(raw).hexdigest()}\n{doc['previousDigestSignature'] or 'null'}").encode()
        public_key.verify(bytes.fromhex(meta["signature"]), message, padding.PKCS1v15(), hashes.SHA256())


def test_nothing_is_delivered_while_the_trail_is_not_logging(seeded):
    seeded.client("cloudtrail").stop_logging(Name=TRAIL)
    with pytest.raises(urllib.error.HTTPError) as caught:
        deliver(seeded.endpoint, [event("PutItem")], HOUR)
    assert caught.value.code == 409


def test_no_digest_without_log_file_validation(seeded):
    seeded.client("cloudtrail").update_trail(Name=TRAIL, EnableLogFileValidation=False)
    with pytest.raises(urllib.error.HTTPError) as caught:
        digest(seeded.endpoint, HOUR)
    assert caught.value.code == 409

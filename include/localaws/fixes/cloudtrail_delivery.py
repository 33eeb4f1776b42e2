"""CloudTrail log and digest delivery, and ``ListPublicKeys``.

moto 5.2.5 keeps trails and their status but never writes anything into the trail bucket, and has
no ``ListPublicKeys``. AWS (CloudTrail user guide: "CloudTrail log file examples", "Finding your
CloudTrail log files", "CloudTrail digest file structure", "Validating CloudTrail log file
integrity"; API reference ``ListPublicKeys``) delivers:

* log files ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_
  <YYYYMMDDTHHmmZ>_<unique>.json.gz``, a gzip of ``{"Records": [...]}``, with the delivery time in the key;
* about hourly, when log file validation is on, a digest ``AWSLogs/<account>/CloudTrail-Digest/<region>/
  YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home-region>_<YYYYMMDDTHHmmssZ>.json.gz``
  listing the SHA-256 of each uncompressed log file delivered in its period, chained to the previous
  digest, signed SHA256withRSA over ``digestEndTime\\nbucket/key\\nhex(sha256(digest))\\nprevious-signature``
  (``null`` for the first) with the hex signature in the object metadata ``x-amz-meta-signature``;
* ``ListPublicKeys`` returning the region's public keys (DER) with ``Fingerprint`` = MD5 of the DER.

API calls made against the emulator are recorded and delivered by ``cloudtrail_recording``; tests can
also inject records:

* ``POST /moto-api/localaws/cloudtrail/deliver`` ``{"account", "region", "trail", "home_region"?,
  "delivery_time" (ISO), "records": [...]}`` writes one log file (``{"key": ...}``);
* ``POST /moto-api/localaws/cloudtrail/digest`` ``{"account", "region", "trail", "home_region"?,
  "end_time" (ISO), "backfill"?}`` writes the digest of the log files delivered in its period (since the
  previous digest); with ``"backfill": true`` the backfill digest (``_backfill`` suffix, metadata
  ``backfill-generation-timestamp``, its own chain) of the files delivered late into the period of the
  last digest, which it left out (aws-cli ``customizations/cloudtrail/validation.py`` validates these).

Like AWS, nothing is delivered while the trail is not logging, and no digest without log file
validation. The emulator signs with its own RSA key per region, kept for the process's lifetime.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import string
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

_LOCK = threading.Lock()
_KEYS: dict[str, Any] = {}  # region -> RSA private key
_CHAINS: dict[tuple[str, str, str], dict[str, Any]] = {}  # (account, region, trail) -> previous digest, pending logs
KEY_VALID_FROM = datetime(2000, 1, 1, tzinfo=timezone.utc)
KEY_VALID_TO = datetime(2100, 1, 1, tzinfo=timezone.utc)
_ALPHABET = string.ascii_letters + string.digits


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def private_key(region: str):
    from cryptography.hazmat.primitives.asymmetric import rsa

    with _LOCK:
        if region not in _KEYS:
            _KEYS[region] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _KEYS[region]


def public_key_der(region: str) -> bytes:
    """The region's public key as PKCS#1 DER (one of the two forms AWS's keys come in)."""
    from cryptography.hazmat.primitives import serialization

    return private_key(region).public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.PKCS1)


def fingerprint(der: bytes) -> str:
    return hashlib.md5(der, usedforsecurity=False).hexdigest()


def _sign(region: str, message: bytes) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return private_key(region).sign(message, padding.PKCS1v15(), hashes.SHA256()).hex()


def _trail(account: str, home_region: str, name: str):
    from moto.cloudtrail.models import cloudtrail_backends

    return cloudtrail_backends[account][home_region].get_trail(name)


def _put(bucket_name: str, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
    from moto.s3.models import s3_backends

    location = s3_backends.bucket_accounts.get(bucket_name)
    if location is None:
        raise LookupError(f"trail bucket {bucket_name} does not exist")
    partition, owner = location
    backend = s3_backends[owner][partition]
    stored = backend.put_object(bucket_name, key, body)
    if metadata:
        stored.set_metadata({f"x-amz-meta-{k}": v for k, v in metadata.items()})


def _base(trail, account: str) -> str:
    prefix = (trail.s3_key_prefix or "").strip("/")
    return (f"{prefix}/" if prefix else "") + f"AWSLogs/{account}/"


def write_log(account: str, region: str, trail_name: str, home_region: str, bucket: str, prefix: str,
              records: list[dict], delivery_time: datetime) -> str:
    """Write one log file of ``records`` into ``bucket`` as delivered at ``delivery_time``; return its key."""
    stamp = delivery_time.astimezone(timezone.utc)
    unique = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    base = (f"{prefix.strip('/')}/" if prefix.strip("/") else "") + f"AWSLogs/{account}/"
    key = (f"{base}CloudTrail/{region}/{stamp:%Y/%m/%d}/"
           f"{account}_CloudTrail_{region}_{stamp:%Y%m%dT%H%MZ}_{unique}.json.gz")
    raw = json.dumps({"Records": records}, separators=(",", ":")).encode()
    _put(bucket, key, gzip.compress(raw, mtime=0))
    times = sorted(r["eventTime"] for r in records if isinstance(r, dict) and isinstance(r.get("eventTime"), str))
    with _LOCK:
        chain = _CHAINS.setdefault((account, region, trail_name), _new_chain(home_region))
        chain["pending"].append({
            "s3Bucket": bucket, "s3Object": key, "hashValue": hashlib.sha256(raw).hexdigest(),
            "hashAlgorithm": "SHA-256", "newestEventTime": times[-1] if times else None,
            "oldestEventTime": times[0] if times else None, "_delivered": stamp,
        })
    return key


def _new_chain(home_region: str) -> dict:
    return {"previous": None, "previous_backfill": None, "pending": [], "home": home_region}


def deliver(account: str, region: str, trail_name: str, records: list[dict], delivery_time: datetime,
            home_region: str = "us-east-1") -> str:
    """Write one log file of ``records`` as delivered at ``delivery_time``; return its key."""
    trail = _trail(account, home_region, trail_name)
    if not trail.status.is_logging:
        raise PermissionError(f"trail {trail_name} is not logging")
    return write_log(account, region, trail_name, home_region, trail.bucket_name, trail.s3_key_prefix or "",
                     records, delivery_time)


def digest(account: str, region: str, trail_name: str, end_time: datetime, home_region: str = "us-east-1",
           backfill: bool = False) -> str:
    """Write the signed digest of the log files delivered in its period (since the previous digest, at
    most an hour); with ``backfill``, the backfill digest of the files delivered late, before the period of
    the last digest had ended, which that digest left out."""
    trail = _trail(account, home_region, trail_name)
    if not trail.log_validation:
        raise PermissionError(f"trail {trail_name} does not have log file validation enabled")
    end = end_time.astimezone(timezone.utc)
    link = "previous_backfill" if backfill else "previous"
    with _LOCK:
        chain = _CHAINS.setdefault((account, region, trail_name), _new_chain(home_region))
        previous, last = chain[link], chain["previous"]
        if backfill:
            if last is None:
                raise PermissionError("no digest yet: nothing can have been left out of one")
            start = last["start"]
            covered = [p for p in chain["pending"] if p["_delivered"] < last["end"]]
        else:
            start = last["end"] if last and last["end"] < end else end - timedelta(hours=1)
            covered = [p for p in chain["pending"] if start <= p["_delivered"] < end]
        chain["pending"] = [p for p in chain["pending"] if p not in covered]
    suffix = "_backfill" if backfill else ""
    key = (f"{_base(trail, account)}CloudTrail-Digest/{region}/{end:%Y/%m/%d}/"
           f"{account}_CloudTrail-Digest_{region}_{trail_name}_{home_region}_{end:%Y%m%dT%H%M%SZ}{suffix}.json.gz")
    times = sorted(t for p in covered for t in (p["oldestEventTime"], p["newestEventTime"]) if t)
    der = public_key_der(region)
    document = {
        "awsAccountId": account,
        "digestStartTime": _iso(start),
        "digestEndTime": _iso(end),
        "digestS3Bucket": trail.bucket_name,
        "digestS3Object": key,
        "digestPublicKeyFingerprint": fingerprint(der),
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": times[-1] if times else None,
        "oldestEventTime": times[0] if times else None,
        "previousDigestS3Bucket": previous["bucket"] if previous else None,
        "previousDigestS3Object": previous["key"] if previous else None,
        "previousDigestHashValue": previous["hash"] if previous else None,
        "previousDigestHashAlgorithm": "SHA-256" if previous else None,
        "previousDigestSignature": previous["signature"] if previous else None,
        "logFiles": [{k: v for k, v in p.items() if not k.startswith("_")} for p in covered],
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    digest_hash = hashlib.sha256(raw).hexdigest()
    to_sign = (f"{document['digestEndTime']}\n{trail.bucket_name}/{key}\n{digest_hash}\n"
               f"{document['previousDigestSignature'] or 'null'}").encode()
    signature = _sign(region, to_sign)
    metadata = {"signature": signature, "signature-algorithm": "SHA256withRSA"}
    if backfill:
        metadata["backfill-generation-timestamp"] = _iso(datetime.now(timezone.utc))
    _put(trail.bucket_name, key, gzip.compress(raw, mtime=0), metadata)
    with _LOCK:
        chain[link] = {"bucket": trail.bucket_name, "key": key, "hash": digest_hash, "signature": signature,
                       "start": start, "end": end}
    return key


def digest_all(end_time: datetime) -> list[str]:
    """The digest ending at ``end_time`` of every trail with log file validation, for each region it
    delivered to (and its home region): logging trails every hour, a stopped trail once more for the files
    it delivered before it stopped."""
    from moto.cloudtrail.models import cloudtrail_backends

    keys = []
    for account, regions in list(cloudtrail_backends.items()):
        for backend in list(regions.values()):
            for trail in list(backend.trails.values()):
                if not trail.log_validation:
                    continue
                with _LOCK:
                    chains = {r: c for (a, r, n), c in _CHAINS.items() if (a, n) == (account, trail.trail_name)}
                regions_due = {r for r, c in chains.items() if c["pending"]}
                if trail.status.is_logging:
                    regions_due |= {trail.region_name, *chains}
                for region in sorted(regions_due):
                    keys.append(digest(account, region, trail.trail_name, end_time, trail.region_name))
    return keys


def _json_body(request) -> dict:
    data = request.data if hasattr(request, "data") else request.body
    return json.loads(data or b"{}")


def _control(action):
    def handler(request, full_url, headers):
        if request.method != "POST":
            return 405, {}, json.dumps({"error": "POST only"})
        try:
            body = _json_body(request)
            return 200, {"Content-Type": "application/json"}, json.dumps(action(body))
        except (KeyError, ValueError, TypeError) as exc:
            return 400, {}, json.dumps({"error": f"bad request: {exc!r}"})
        except PermissionError as exc:
            return 409, {}, json.dumps({"error": str(exc)})
        except Exception as exc:  # e.g. moto's TrailNotFoundException, missing bucket
            return 404, {}, json.dumps({"error": f"{type(exc).__name__}: {exc}"})

    return handler


def _deliver_action(body: dict) -> dict:
    key = deliver(body["account"], body["region"], body["trail"], list(body["records"]),
                  _parse(body["delivery_time"]), body.get("home_region", "us-east-1"))
    return {"key": key}


def _digest_action(body: dict) -> dict:
    key = digest(body["account"], body["region"], body["trail"], _parse(body["end_time"]),
                 body.get("home_region", "us-east-1"), bool(body.get("backfill")))
    return {"key": key}


def _list_public_keys(self) -> str:
    """CloudTrail ListPublicKeys: the emulator's key for this region if it overlaps the asked range."""
    params = json.loads(self.body or "{}")
    start = datetime.fromtimestamp(float(params["StartTime"]), timezone.utc) if params.get("StartTime") else None
    end = datetime.fromtimestamp(float(params["EndTime"]), timezone.utc) if params.get("EndTime") else None
    keys = []
    if (start is None or start < KEY_VALID_TO) and (end is None or end > KEY_VALID_FROM):
        der = public_key_der(self.region)
        keys.append({"Value": base64.b64encode(der).decode(), "ValidityStartTime": KEY_VALID_FROM.timestamp(),
                     "ValidityEndTime": KEY_VALID_TO.timestamp(), "Fingerprint": fingerprint(der)})
    return json.dumps({"PublicKeyList": keys})


def _reset_chains() -> None:
    with _LOCK:
        _CHAINS.clear()


def apply() -> None:
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.moto_api._internal import urls
    from moto.moto_api._internal.models import moto_api_backend

    CloudTrailResponse.list_public_keys = _list_public_keys
    urls.url_paths["{0}/moto-api/localaws/cloudtrail/deliver"] = _control(_deliver_action)
    urls.url_paths["{0}/moto-api/localaws/cloudtrail/digest"] = _control(_digest_action)
    original_reset = moto_api_backend.reset

    def reset() -> None:
        original_reset()
        _reset_chains()

    moto_api_backend.reset = reset

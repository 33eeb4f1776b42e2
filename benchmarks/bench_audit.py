"""Benchmark the CloudTrail log audit against gunzip alone and against parsing every record.

    .venv/bin/python benchmarks/bench_audit.py [--dir DIR] [--gb 1.0] [--mix default|ddb-half]

Generates (once per mix, then reuses) realistic CloudTrail log files on local disk: gzip of
``{"Records": [...]}``, ~2,000 records (~2.5 MB uncompressed) per file, a mix of DynamoDB and S3 data
events, KMS, STS, EC2/SSM/IAM management events and a few attacks, with the fields and nesting of real
records (``--mix ddb-half``: half the records are DynamoDB data events instead of 40%). For the first
0.25 GB and for the full volume (uncompressed) it runs, each in a fresh process:

* ``gunzip``: ``zlib.decompress(file, wbits=31)`` per file, nothing else (the floor);
* ``parse``: gunzip + ``orjson.loads`` of every file, nothing else;
* ``full``: :func:`dynamoguard.audit.reader.audit_stream` with ``fast=False``: every record parsed with
  orjson, field checks, dispatch by (eventSource, eventName), every rule, findings, counts;
* ``audit``: the same with the fast path (record heads read with msgspec, only records a rule may match
  parsed), which is what the DAG runs. Its findings must equal ``full``'s; the script checks it.

The files are read from local disk through file objects, the same stream interface as an S3 body, so
network time is left out of both. With ``--s3`` the files are also uploaded to a local emulator and
audited from S3 by :func:`dynamoguard.audit.reader.audit_objects` (32 concurrent GETs, one file
decompressed and parsed at a time), as the DAG's ``audit_unit`` does. Each local mode runs ``--repeat``
times, alternating; reported are the best MB/s (uncompressed) by wall clock and by the process's CPU
time (steadier on a shared machine), and the highest peak RSS.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import time
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

SRC = "111111111111"
REGION = "us-east-1"
RECORDS_PER_FILE = 2000
ROLES = ["orders-service", "customers-service", "inventory-service", "dynamoguard-nightly", "web-frontend",
         "batch-reports", "ec2-instance-role"]
TABLES = ["orders", "customers", "inventory", "sessions", "carts"]
BUCKETS = ["dynamoguard-exports", "assets-prod", "web-static", "data-lake-raw"]
AGENTS = ["aws-sdk-java/2.25.11 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com",
          "Boto3/1.35.10 md/Botocore#1.35.10 ua/2.0 os/linux#5.10.225 md/arch#x86_64 lang/python#3.11.9 "
          "cfg/retry-mode#adaptive Botocore/1.35.10",
          "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python"]
OWNER = {"orders": "orders-service", "customers": "customers-service", "inventory": "inventory-service"}


def _identity(rng: random.Random, role: str) -> dict:
    principal = f"AROA{rng.getrandbits(64):016X}"
    return {
        "type": "AssumedRole", "principalId": f"{principal}:i-{rng.getrandbits(48):012x}",
        "arn": f"arn:aws:sts::{SRC}:assumed-role/{role}/i-{rng.getrandbits(48):012x}", "accountId": SRC,
        "accessKeyId": f"ASIA{rng.getrandbits(64):016X}",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": principal, "arn": f"arn:aws:iam::{SRC}:role/{role}",
                              "accountId": SRC, "userName": role},
            "attributes": {"creationDate": "2026-01-01T09:12:44Z", "mfaAuthenticated": "false"},
            "ec2RoleDelivery": "2.0"},
    }


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


MIXES = {"default": 0.40, "ddb-half": 0.50}  # share of DynamoDB data events


def _record(rng: random.Random, moment: datetime, ddb_share: float = 0.40) -> dict:
    roll = rng.random()
    # Map the roll so that [0, ddb_share) are DynamoDB data events and the other kinds keep their proportions.
    roll = roll * 0.40 / ddb_share if roll < ddb_share else 0.40 + (roll - ddb_share) * 0.60 / (1 - ddb_share)
    table = rng.choice(TABLES)
    role = rng.choice(ROLES)
    if roll < 0.40:  # the tables' own services, and now and then someone else
        role = OWNER.get(table, role) if rng.random() > 0.001 else "web-frontend"
    base = {
        "eventVersion": "1.09", "userIdentity": _identity(rng, role),
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "awsRegion": REGION,
        "sourceIPAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "userAgent": rng.choice(AGENTS), "requestID": _uuid(rng), "eventID": _uuid(rng),
        "eventType": "AwsApiCall", "apiVersion": None, "managementEvent": False, "recipientAccountId": SRC,
        "eventCategory": "Data", "readOnly": True,
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": f"dynamodb.{REGION}.amazonaws.com"},
    }
    if roll < 0.40:  # DynamoDB data events, mostly by the tables' own services
        name = rng.choices(["GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "Scan"],
                           [30, 25, 20, 10, 3, 10, 2])[0]
        key = {"customer_id": {"S": f"cust-{rng.randrange(10**6):06d}"}}
        params = {"tableName": table, "key": key, "consistentRead": False}
        if name in ("Query", "Scan"):
            params = {"tableName": table, "keyConditionExpression": "customer_id = :c", "limit": 100}
        base.update(eventSource="dynamodb.amazonaws.com", eventName=name, requestParameters=params,
                    responseElements=None, readOnly=name in ("GetItem", "Query", "BatchGetItem", "Scan"),
                    resources=[{"accountId": SRC, "type": "AWS::DynamoDB::Table",
                                "ARN": f"arn:aws:dynamodb:{REGION}:{SRC}:table/{table}"}])
    elif roll < 0.62:  # S3 data events
        bucket = rng.choice(BUCKETS)
        if bucket == "dynamoguard-exports":
            role = "dynamoguard-nightly"
            base["userIdentity"] = _identity(rng, role)
        key = f"exports/orders/AWSDynamoDB/{rng.getrandbits(40):013d}/data/{rng.getrandbits(40):x}.json.gz"
        name = rng.choices(["GetObject", "PutObject", "HeadObject", "DeleteObject"], [60, 25, 14, 0.1])[0]
        base.update(eventSource="s3.amazonaws.com", eventName=name, readOnly=name != "PutObject",
                    requestParameters={"bucketName": bucket, "Host": f"{bucket}.s3.{REGION}.amazonaws.com",
                                       "key": key},
                    responseElements=None, additionalEventData={
                        "SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                        "bytesTransferredIn": 0, "AuthenticationMethod": "AuthHeader",
                        "x-amz-id-2": f"{rng.getrandbits(256):064x}", "bytesTransferredOut": rng.randrange(10**7)},
                    resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                               {"accountId": SRC, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])
    elif roll < 0.78:  # KMS
        key_arn = f"arn:aws:kms:{REGION}:{SRC}:key/{_uuid(rng)}"
        base.update(eventSource="kms.amazonaws.com", eventName=rng.choice(["Decrypt", "GenerateDataKey"]),
                    managementEvent=True, eventCategory="Management",
                    requestParameters={"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                                       "encryptionContext": {"aws:dynamodb:tableName": rng.choice(TABLES),
                                                             "aws:dynamodb:subscriberId": SRC}},
                    responseElements=None, resources=[{"accountId": SRC, "type": "AWS::KMS::Key", "ARN": key_arn}])
    elif roll < 0.88:  # STS
        base.update(eventSource="sts.amazonaws.com", eventName="AssumeRole", managementEvent=True,
                    eventCategory="Management",
                    requestParameters={"roleArn": f"arn:aws:iam::{SRC}:role/{role}",
                                       "roleSessionName": f"i-{rng.getrandbits(48):012x}", "durationSeconds": 3600},
                    responseElements={"credentials": {"accessKeyId": f"ASIA{rng.getrandbits(64):016X}",
                                                      "sessionToken": f"{rng.getrandbits(512):0128x}",
                                                      "expiration": "Jan 1, 2026, 11:12:44 AM"}})
    elif roll < 0.9995:  # other management events
        source, name = rng.choice([("ec2.amazonaws.com", "DescribeInstances"), ("ssm.amazonaws.com",
                                   "UpdateInstanceInformation"), ("iam.amazonaws.com", "GetRole"),
                                   ("dynamodb.amazonaws.com", "DescribeTable"),
                                   ("cloudtrail.amazonaws.com", "LookupEvents"), ("s3.amazonaws.com", "GetBucketAcl")])
        base.update(eventSource=source, eventName=name, managementEvent=True, eventCategory="Management",
                    requestParameters={"instancesSet": {"items": [{"instanceId": f"i-{rng.getrandbits(48):012x}"}]},
                                       "filterSet": {}}, responseElements=None)
    else:  # attacks
        name, params = rng.choice([
            ("DeleteTable", {"tableName": "orders"}),
            ("UpdateContinuousBackups", {"tableName": "customers",
                                         "pointInTimeRecoverySpecification": {"pointInTimeRecoveryEnabled": False}}),
            ("ExportTableToPointInTime", {"tableArn": f"arn:aws:dynamodb:{REGION}:{SRC}:table/orders",
                                          "s3Bucket": "exfil-bucket", "s3BucketOwner": "999999999999"})])
        base.update(eventSource="dynamodb.amazonaws.com", eventName=name, requestParameters=params,
                    managementEvent=True, eventCategory="Management", readOnly=False)
    return base


def generate(directory: Path, target_bytes: int, ddb_share: float = 0.40) -> list[tuple[Path, int]]:
    """Log files totalling at least ``target_bytes`` uncompressed (reused if already there)."""
    directory.mkdir(parents=True, exist_ok=True)
    index_path = directory / "index.json"
    if index_path.exists():
        index = json.loads(index_path.read_text())
        if sum(size for _, size in index) >= target_bytes:
            return [(directory / name, size) for name, size in index]
    import orjson

    rng = random.Random(20260101)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    files, total, n = [], 0, 0
    while total < target_bytes:
        delivered = start + timedelta(minutes=5 * n)
        records = [_record(rng, delivered - timedelta(seconds=rng.randrange(600)), ddb_share)
                   for _ in range(RECORDS_PER_FILE)]
        raw = orjson.dumps({"Records": records})
        name = f"{SRC}_CloudTrail_{REGION}_{delivered:%Y%m%dT%H%MZ}_{n:016d}.json.gz"
        (directory / name).write_bytes(gzip.compress(raw, compresslevel=6, mtime=0))
        files.append((name, len(raw)))
        total += len(raw)
        n += 1
        if n % 50 == 0:
            print(f"  generated {n} files, {total / 1e9:.2f} GB", file=sys.stderr)
    index_path.write_text(json.dumps(files))
    return [(directory / name, size) for name, size in files]


def measure(mode: str, paths: list[str]) -> dict:
    """Run one mode over ``paths`` in this process; seconds, bytes, records, findings, peak RSS."""
    import orjson

    from dynamoguard.audit.context import context_from_config
    from dynamoguard.audit.reader import LogResult, audit_stream
    from dynamoguard.config import load_config

    ctx = context_from_config(load_config(ROOT / "include" / "dynamoguard.yaml"))
    total, raw_bytes, records = LogResult(), 0, 0
    started, cpu_started = time.perf_counter(), time.process_time()
    if mode == "s3":
        from dynamoguard.audit.reader import audit_objects

        total = audit_objects(_s3(os.environ["BENCH_S3_ENDPOINT"]), S3_BUCKET,
                              [os.path.basename(p) for p in paths], ctx, max_workers=32)
        paths = []
    for path in paths:
        with open(path, "rb") as stream:
            if mode in ("gunzip", "parse"):
                data = zlib.decompress(stream.read(), wbits=31)  # the fastest plain gunzip
                raw_bytes += len(data)
                if mode == "parse":
                    records += len(orjson.loads(data)["Records"])
                del data
            else:
                total.merge(audit_stream(stream, os.path.basename(path), ctx, fast=mode == "audit"))
    findings = sorted(orjson.dumps(f.to_dict(), option=orjson.OPT_SORT_KEYS).decode()
                      for f in total.all_findings(ctx))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    counts = total.counts
    if mode not in ("gunzip", "parse"):
        raw_bytes, records = counts.bytes_read, counts.records_read
    return {"mode": mode, "seconds": seconds, "cpu_seconds": cpu_seconds, "bytes": raw_bytes, "records": records,
            "findings": len(findings), "findings_digest": hashlib.sha256("\n".join(findings).encode()).hexdigest(),
            "parsed": counts.records_parsed, "matched": counts.records_matched,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(mode: str, paths: list[Path], env: dict | None = None) -> dict:
    listing = "\n".join(str(p) for p in paths)
    out = subprocess.run([sys.executable, __file__, "--child", mode], input=listing, capture_output=True, text=True,
                         check=True, env={**os.environ, **(env or {})})
    return json.loads(out.stdout)


S3_BUCKET = "bench-cloudtrail"


def _s3(endpoint: str):
    from dynamoguard.aws import client_config
    from include.localaws.seed import source_session

    return source_session().client("s3", endpoint_url=endpoint, config=client_config(32))


def s3_run(files: list[tuple[Path, int]], volumes: list[float]) -> None:
    """The same files from the local emulator's S3 through ``audit_objects`` (32 concurrent GETs)."""
    from concurrent.futures import ThreadPoolExecutor

    from include.localaws import process

    port = process.free_port()
    emulator = process.start(port, log_path="/tmp/bench-audit-localaws.log")
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3 = _s3(endpoint)
        s3.create_bucket(Bucket=S3_BUCKET)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda f: s3.put_object(Bucket=S3_BUCKET, Key=f[0].name, Body=f[0].read_bytes()), files))
        for volume in volumes:
            subset = _subset(files, volume)
            _row(volume, len(subset), run_child("s3", subset, {"BENCH_S3_ENDPOINT": endpoint}))
    finally:
        process.stop(emulator)


def _row(volume: float, files: int, r: dict) -> None:
    mb = r["bytes"] / 1e6
    audited = r["mode"] in ("full", "audit", "s3")
    print(f"{volume:>6.2f}GB {r['mode']:>6} {files:>6} {r['records']:>9} {mb / r['seconds']:>7.1f} "
          f"{mb / r['cpu_seconds']:>7.1f} {r['peak_rss_mb']:>8.1f} {r['findings'] if audited else '':>8} "
          f"{r['parsed'] if audited else '':>9}")


def _subset(files: list[tuple[Path, int]], volume: float) -> list[Path]:
    subset, total = [], 0
    for path, size in files:
        if total >= volume * 1e9:
            break
        subset.append(path)
        total += size
    return subset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where the generated logs are kept "
                        "(default /tmp/dynamoguard-bench-audit[-<mix>])")
    parser.add_argument("--gb", type=float, default=1.0, help="uncompressed GB for the large run (default 1)")
    parser.add_argument("--mix", choices=sorted(MIXES), default="default",
                        help="record mix: default (40%% DynamoDB data events) or ddb-half (50%%)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode and volume, best kept (default 2)")
    parser.add_argument("--s3", action="store_true",
                        help="also audit the files from the local emulator's S3 (concurrent GETs, bounded parsing)")
    parser.add_argument("--skip-local", action="store_true", help="with --s3: only the S3 runs")
    parser.add_argument("--child", choices=["gunzip", "parse", "full", "audit", "s3"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, sys.stdin.read().split())))
        return 0

    directory = args.dir or Path("/tmp/dynamoguard-bench-audit" + ("" if args.mix == "default" else f"-{args.mix}"))
    files = generate(directory, int(args.gb * 1e9), MIXES[args.mix])
    print(f"mix {args.mix}: {len(files)} files, {sum(s for _, s in files) / 1e9:.2f} GB uncompressed, "
          f"{sum(p.stat().st_size for p, _ in files) / 1e9:.3f} GB gzip, in {directory}")
    print(f"{'volume':>8} {'mode':>6} {'files':>6} {'records':>9} {'MB/s':>7} {'MB/cpu':>7} {'peak MB':>8} "
          f"{'findings':>8} {'parsed':>9}")
    for volume in () if args.skip_local else (0.25, args.gb):
        subset = _subset(files, volume)
        runs: dict[str, list[dict]] = {"gunzip": [], "parse": [], "full": [], "audit": []}
        for _ in range(args.repeat):  # alternate the modes so all see the same machine load
            for mode, done in runs.items():
                done.append(run_child(mode, subset))
        results = {mode: {**done[0], "seconds": min(r["seconds"] for r in done),
                          "cpu_seconds": min(r["cpu_seconds"] for r in done),
                          "peak_rss_mb": max(r["peak_rss_mb"] for r in done)} for mode, done in runs.items()}
        for r in results.values():
            _row(volume, len(subset), r)
        full, audit = results["full"], results["audit"]
        if (full["findings_digest"], full["findings"]) != (audit["findings_digest"], audit["findings"]):
            raise SystemExit("the fast path's findings differ from parsing every record")
        print(f"{'':>8} audit/full {full['cpu_seconds'] / audit['cpu_seconds']:.2f}x by CPU time "
              f"({full['seconds'] / audit['seconds']:.2f}x wall); audit at "
              f"{results['gunzip']['cpu_seconds'] / audit['cpu_seconds']:.0%} of gunzip's speed (CPU); "
              f"same {audit['findings']} findings; {audit['parsed']} of {audit['records']} records parsed")
    if args.s3:
        s3_run(files, [0.25, args.gb])
    return 0


if __name__ == "__main__":
    sys.exit(main())

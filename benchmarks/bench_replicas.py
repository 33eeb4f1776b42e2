"""Replica copy and verify throughput and memory against the local emulator with 20 ms of round-trip latency.

``python -m benchmarks.bench_replicas [--objects 2000] [--sequential 200] [--workers 32] [--rounds 2]``

Starts its own emulator process and a latency proxy process (10 ms each way, benchmarks/latency_proxy.py),
writes one export of ``--objects`` small objects into the locked source bucket (directly, without the
proxy), and creates locked replica buckets in the backup account (reached by AssumeRole). Then, through
the proxy and in one run, it reports objects/s for:

* copy - the project (``dynamoguard.replicas.copy_export``: both listings merged, conditional CopyObject with
  SHA-256 and Object Lock retention, the copy's SHA-256 compared with the one the export verification computed
  and handed over, ``verified``; computing those is part of the verification, not timed here), a bare
  concurrent ``copy_object`` loop over a pre-listed key list with the same pool size (no checksum, no lock,
  no comparison: the limit), and a sequential ``copy_object`` loop (timed on ``--sequential`` keys);
* verify - the project (``verify_export``: replication configuration, both listings, HEAD of every replica,
  size/ETag/lock checks), a bare concurrent ``head_object`` loop and a sequential one;
* peak traced Python memory (tracemalloc) of a project copy and of a project verify.

Each round copies into fresh replica buckets; the concurrent variants are interleaved so drift on a shared
machine hits them alike. The emulator is one process on a 2-core machine and caps every variant.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import os
import statistics
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "plugins"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchmarks.latency_proxy import spawn  # noqa: E402
from dynamoguard.aws import client_config  # noqa: E402
from dynamoguard.replicas import LockPolicy, Replicator, copy_export, verify_export  # noqa: E402
from include.localaws import process as emulator  # noqa: E402
from include.localaws.seed import backup_session, create_locked_bucket, source_session  # noqa: E402

SOURCE = "bench-exports"
EXPORT_TIME = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
PREFIX = f"exports/orders/AWSDynamoDB/{int(EXPORT_TIME.timestamp() * 1000):014d}-0b0e0c0d/"
LOCK = LockPolicy.from_export_time("COMPLIANCE", 35, EXPORT_TIME)


def clients(endpoint: str, pool: int):
    """(source, backup) S3 clients through ``endpoint``, the backup one by AssumeRole as in production."""
    config = client_config(pool)
    return (source_session().client("s3", endpoint_url=endpoint, config=config),
            backup_session(endpoint).client("s3", endpoint_url=endpoint, config=config))


def setup(source, backup, count: int, buckets: list[str], workers: int) -> None:
    create_locked_bucket(source, SOURCE, "COMPLIANCE", 35)
    for name in buckets:
        create_locked_bucket(backup, name, "COMPLIANCE", 35)
    body = b'{"Item":{"pk":{"S":"k"},"payload":{"S":"' + b"x" * 1000 + b'"}}}\n'
    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda i: source.put_object(Bucket=SOURCE, Key=f"{PREFIX}data/{i:08d}.json.gz",
                                                      Body=body * (1 + i % 4)), range(count), chunksize=64):
            pass
    print(f"created {count} objects in {time.perf_counter() - began:.0f} s", flush=True)


def list_keys(s3) -> list[str]:
    return [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=SOURCE, Prefix=PREFIX)
            for obj in page.get("Contents", ())]


def bare_copy(backup, keys: list[str], bucket: str, workers: int) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda k: backup.copy_object(Bucket=bucket, Key=k, CopySource={"Bucket": SOURCE, "Key": k}),
                          keys, chunksize=16):
            pass
    return len(keys) / (time.perf_counter() - began)


def sequential_copy(backup, keys: list[str], bucket: str) -> float:
    began = time.perf_counter()
    for key in keys:
        backup.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": SOURCE, "Key": key})
    return len(keys) / (time.perf_counter() - began)


def bare_head(backup, keys: list[str], bucket: str, workers: int) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda k: backup.head_object(Bucket=bucket, Key=k), keys, chunksize=16):
            pass
    return len(keys) / (time.perf_counter() - began)


def sequential_head(backup, keys: list[str], bucket: str) -> float:
    began = time.perf_counter()
    for key in keys:
        backup.head_object(Bucket=bucket, Key=key)
    return len(keys) / (time.perf_counter() - began)


def replicator(source, backup, bucket: str, workers: int, verified: dict | None = None) -> Replicator:
    return Replicator(source_s3=source, backup_s3=backup, source_bucket=SOURCE, replica_bucket=bucket, lock=LOCK,
                      max_workers=workers, source_account="111111111111", backup_account="222222222222",
                      verified=verified or {})


def verified_checksums(source, keys: list[str], workers: int) -> dict:
    """What the export verification hands the replica step: each object's ETag and SHA-256, computed while it
    streams the object for its MD5 (not timed here: the nightly verify reads every object anyway)."""
    def one(key: str) -> tuple[str, dict]:
        response = source.get_object(Bucket=SOURCE, Key=key)
        body = response["Body"].read()
        return key, {"etag": response["ETag"].strip('"'),
                     "sha256": base64.b64encode(hashlib.sha256(body).digest()).decode()}

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, keys))


def project(run, expected: int, outcome: str) -> float:
    began = time.perf_counter()
    result = run()
    rate = result.checked / (time.perf_counter() - began)
    if result.checked != expected or result.counts[outcome] != expected or result.config_problems:
        raise SystemExit(f"unexpected result:\n{result.summary()}")
    return rate


def peak_memory(run) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def set_replication(source, bucket: str) -> None:
    source.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration={
        "Role": "arn:aws:iam::111111111111:role/replication",
        "Rules": [{"ID": "exports", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": "exports/"},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": f"arn:aws:s3:::{bucket}", "Account": "222222222222",
                                   "AccessControlTranslation": {"Owner": "Destination"}}}]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--sequential", type=int, default=200, help="keys timed in the sequential loops")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--delay-ms", type=float, default=10.0, help="latency added each way")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds of the concurrent variants (median)")
    args = parser.parse_args(argv)
    n, workers = args.objects, args.workers
    buckets = [f"bench-{kind}-{r}" for r in range(args.rounds) for kind in ("bare", "project")]
    buckets += ["bench-sequential", "bench-memory"]

    port = emulator.free_port()
    proc = emulator.start(port, log_path=os.devnull)
    try:
        setup(*clients(f"http://127.0.0.1:{port}", workers), n, buckets, workers)
        with spawn(port, args.delay_ms / 1000) as endpoint:
            source, backup = clients(endpoint, workers)
            keys = list_keys(source)
            assert len(keys) == n, len(keys)
            verified = verified_checksums(source, keys, workers)
            sequential = sequential_copy(backup, keys[: args.sequential], "bench-sequential")
            copy_bare, copy_project = [], []
            for r in range(args.rounds):
                copy_bare.append(bare_copy(backup, keys, f"bench-bare-{r}", workers))
                fresh = replicator(source, backup, f"bench-project-{r}", workers, verified)
                copy_project.append(project(lambda rep=fresh: copy_export(rep, "orders", PREFIX), n, "copied"))
            target = "bench-project-0"
            set_replication(source, target)
            rep = replicator(source, backup, target, workers)
            verify_sequential = sequential_head(backup, keys[: args.sequential], target)
            verify_bare, verify_project = [], []
            for _ in range(args.rounds):
                verify_bare.append(bare_head(backup, keys, target, workers))
                verify_project.append(project(lambda: verify_export(rep, "orders", PREFIX), n, "skipped"))
            del keys
            memory_rep = replicator(source, backup, "bench-memory", workers, verified)
            memory = {"copy": peak_memory(lambda: copy_export(memory_rep, "orders", PREFIX)),
                      "verify": peak_memory(lambda: verify_export(rep, "orders", PREFIX))}
    finally:
        emulator.stop(proc)

    print(f"\nReplicas, {n} objects, +{2 * args.delay_ms:g} ms per round trip, {workers} workers, "
          f"{os.cpu_count()} CPUs")
    for name, mine, bare, seq in (("copy", copy_project, copy_bare, sequential),
                                  ("verify", verify_project, verify_bare, verify_sequential)):
        mine_rate, bare_rate = statistics.median(mine), statistics.median(bare)
        print(f"  {name}: project {mine_rate:6.0f} objects/s (rounds " + ", ".join(f"{r:.0f}" for r in mine)
              + f"), bare concurrent loop {bare_rate:6.0f} (rounds " + ", ".join(f"{r:.0f}" for r in bare)
              + f"), sequential {seq:5.1f} (timed on {args.sequential} keys)")
        print(f"        project / bare = {mine_rate / bare_rate:.0%}   project / sequential = {mine_rate / seq:.1f}x"
              f"   peak traced memory {memory[name]:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

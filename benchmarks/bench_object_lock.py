"""Object Lock scan throughput and memory against the local emulator with 20 ms of round-trip latency.

``python -m benchmarks.bench_object_lock [--objects 10000] [--large 40000] [--sequential 500] [--workers 32]``

Starts its own emulator process and a latency proxy process (10 ms each way, see
benchmarks/latency_proxy.py), writes one export of ``--objects`` objects into an Object Lock bucket
(COMPLIANCE, 35-day default retention; written directly, concurrently, without the proxy), then
reports, in one run and through the proxy:

* objects/s of the project's scan (``dynamoguard.object_lock.check_export``: bucket check, summary
  read, paged listing, concurrent HEAD, rules, report);
* objects/s of a plain sequential ``head_object`` loop (timed on ``--sequential`` keys and
  extrapolated - it is the same per-object cost whatever the count);
* objects/s of a bare concurrent ``head_object`` loop over a pre-listed key list, same pool size,
  no project logic;
* peak Python memory (tracemalloc) of the scan at ``--objects`` and, after topping the export up,
  at ``--large`` objects.

The emulator runs in one process on a 2-core machine, so it caps throughput for every variant.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "plugins"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchmarks.latency_proxy import spawn  # noqa: E402
from dynamoguard.aws import client_config  # noqa: E402
from dynamoguard.object_lock import LockPolicy, check_export  # noqa: E402
from include.localaws import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402
from include.localaws import process as emulator  # noqa: E402

BUCKET = "bench-object-lock"
EXPORT_TIME = datetime.now(timezone.utc) - timedelta(minutes=10)
EXPORT_ROOT = f"exports/orders/AWSDynamoDB/{int(EXPORT_TIME.timestamp() * 1000):014d}-0b0e0c0d/"
POLICY = LockPolicy("COMPLIANCE", 35)


def s3_client(endpoint: str, pool: int):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, config=client_config(pool))


def data_key(i: int) -> str:
    return f"{EXPORT_ROOT}data/{i:08d}.json.gz"


def create_objects(s3, start: int, stop: int, workers: int) -> float:
    """Write data objects [start, stop) concurrently; returns seconds taken."""
    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda i: s3.put_object(Bucket=BUCKET, Key=data_key(i), Body=b"{}\n"),
                          range(start, stop), chunksize=256):
            pass
    return time.perf_counter() - began


def setup(s3, count: int, workers: int) -> None:
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=BUCKET, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 35}}})
    summary = {"exportTime": EXPORT_TIME.isoformat().replace("+00:00", "Z"), "s3Bucket": BUCKET}
    for name, body in (("_started", b""), ("manifest-summary.json", json.dumps(summary).encode()),
                       ("manifest-summary.md5", b"x"), ("manifest-files.json", b"{}\n"), ("manifest-files.md5", b"x")):
        s3.put_object(Bucket=BUCKET, Key=EXPORT_ROOT + name, Body=body)
    seconds = create_objects(s3, 0, count - 5, workers)
    print(f"created {count} objects in {seconds:.0f} s", flush=True)


def list_keys(s3) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=EXPORT_ROOT):
        keys.extend(obj["Key"] for obj in page.get("Contents", ()))
    return keys


def bench_sequential(s3, keys: list[str]) -> float:
    began = time.perf_counter()
    for key in keys:
        s3.head_object(Bucket=BUCKET, Key=key)
    return len(keys) / (time.perf_counter() - began)


def bench_bare(s3, keys: list[str], workers: int) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda key: s3.head_object(Bucket=BUCKET, Key=key), keys, chunksize=64):
            pass
    return len(keys) / (time.perf_counter() - began)


def bench_scan(s3, workers: int, expected: int) -> float:
    began = time.perf_counter()
    report = check_export(s3, BUCKET, EXPORT_ROOT, POLICY, max_concurrency=workers)
    rate = report.objects_checked / (time.perf_counter() - began)
    if not report.ok or report.objects_checked != expected:
        raise SystemExit(f"scan result unexpected ({report.objects_checked} objects):\n{report.summary()}")
    return rate


def scan_peak_memory(s3, workers: int, expected: int) -> float:
    """Peak traced Python memory (MiB) allocated during one scan."""
    gc.collect()
    tracemalloc.start()
    try:
        report = check_export(s3, BUCKET, EXPORT_ROOT, POLICY, max_concurrency=workers)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if report.objects_checked != expected or not report.ok:
        raise SystemExit(f"scan result unexpected:\n{report.summary()}")
    return peak / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=40_000, help="second size for the memory figure (0: skip)")
    parser.add_argument("--sequential", type=int, default=500, help="keys timed in the sequential loop")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--delay-ms", type=float, default=10.0, help="latency added each way")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds of the concurrent variants (median)")
    args = parser.parse_args(argv)

    port = emulator.free_port()
    proc = emulator.start(port, log_path=os.devnull)
    try:
        direct = s3_client(f"http://127.0.0.1:{port}", args.workers)
        setup(direct, args.objects, args.workers)
        with spawn(port, args.delay_ms / 1000) as endpoint:
            s3 = s3_client(endpoint, args.workers)
            keys = list_keys(s3)
            assert len(keys) == args.objects, len(keys)
            s3.head_object(Bucket=BUCKET, Key=keys[0])  # warm up
            sequential = bench_sequential(s3, keys[: args.sequential])
            print(f"sequential: {sequential:.1f} objects/s", flush=True)
            bare, scan = [], []
            for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits both alike
                bare.append(bench_bare(s3, keys, args.workers))
                scan.append(bench_scan(s3, args.workers, args.objects))
                print(f"bare: {bare[-1]:.0f} objects/s, scan: {scan[-1]:.0f} objects/s", flush=True)
            del keys
            memory = {args.objects: scan_peak_memory(s3, args.workers, args.objects)}
            print(f"scan peak memory at {args.objects}: {memory[args.objects]:.1f} MiB", flush=True)
            if args.large > args.objects:
                seconds = create_objects(direct, args.objects - 5, args.large - 5, args.workers)
                print(f"topped up to {args.large} objects in {seconds:.0f} s", flush=True)
                memory[args.large] = scan_peak_memory(s3, args.workers, args.large)
    finally:
        emulator.stop(proc)

    bare_rate, scan_rate = statistics.median(bare), statistics.median(scan)
    print(f"\nObject Lock scan, {args.objects} objects, +{2 * args.delay_ms:g} ms per round trip, "
          f"{args.workers} workers, {os.cpu_count()} CPUs")
    print(f"  project scan (check_export)      {scan_rate:8.0f} objects/s  (rounds: "
          + ", ".join(f"{r:.0f}" for r in scan) + ")")
    print(f"  bare concurrent HEAD loop        {bare_rate:8.0f} objects/s  (rounds: "
          + ", ".join(f"{r:.0f}" for r in bare) + ")")
    print(f"  sequential HEAD loop             {sequential:8.1f} objects/s  "
          f"(timed on {args.sequential} keys; {args.objects} would take ~{args.objects / sequential:.0f} s)")
    print(f"  scan / bare = {scan_rate / bare_rate:.0%}   scan / sequential = {scan_rate / sequential:.1f}x")
    for count, mib in memory.items():
        print(f"  peak traced memory of the scan at {count:>6} objects: {mib:6.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

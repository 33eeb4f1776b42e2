"""Re-verification throughput and memory against the local emulator with 20 ms of round-trip latency.

``python -m benchmarks.bench_reverify [--nights 35] [--tables 3] [--files 4] [--large 100000] [--workers 32]``

Starts its own emulator process and a latency proxy process (10 ms each way, see benchmarks/latency_proxy.py)
and writes, directly (concurrently, without the proxy, not timed), exports in DynamoDB's layout into an
Object Lock bucket (COMPLIANCE, 35-day default retention): ``--nights`` x ``--tables`` exports of ``--files``
data files each (plus ``_started``, both manifests and their ``.md5`` files), then, for the second size, more
tables of 25 nights x 1,000 objects until ``--large`` objects. At each size it measures, through the proxy and
in one run (rounds alternating, median):

* objects/s of the project's re-verification (``dynamoguard.reverify.reverify``: folder walk, version listing
  of each export's manifests and of the whole export, original manifests and checksum files read, every
  object's history and current ETag judged, findings collected);
* objects/s of a bare concurrent loop issuing the same per-export requests (two version listings, four GETs)
  over a pre-made list of export folders, same pool size, no project logic;
* peak Python memory (tracemalloc) of one re-verification.

Data files are written with PutObject, so their ETag is the plain MD5 the manifest lists (DynamoDB writes
one-part multipart uploads instead; the comparison costs the same). The emulator runs in one process on a
2-core machine, so it caps throughput for both variants.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
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
from dynamoguard.reverify import Target, reverify  # noqa: E402
from include.localaws import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402
from include.localaws import process as emulator  # noqa: E402

BUCKET = "bench-reverify"
BASE = "exports"
NOW = datetime.now(timezone.utc)
DATA = b'{"Item":{"pk":{"S":"k"}}}\n'


def s3_client(endpoint: str, pool: int):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, config=client_config(pool))


def b64_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def export_objects(table: str, night: int, files: int) -> tuple[str, dict[str, bytes]]:
    """The objects of one export of ``table`` ``night`` nights back, ``files`` data files."""
    export_time = (NOW - timedelta(days=night)).replace(hour=2, minute=0, second=0, microsecond=0)
    export_id = f"{int(NOW.timestamp() * 1000):014d}-{hashlib.md5(f'{table}{night}'.encode()).hexdigest()[:8]}"
    root = f"{BASE}/{table}/{export_time:%Y-%m-%d}/AWSDynamoDB/{export_id}/"
    objects = {root + "_started": b""}
    lines = []
    for i in range(files):
        body = DATA * (1 + i % 3)
        key = f"{root}data/{i:06d}.json.gz"
        objects[key] = body
        lines.append(json.dumps({"itemCount": 1 + i % 3, "md5Checksum": b64_md5(body),
                                 "etag": hashlib.md5(body).hexdigest(), "dataFileS3Key": key}))
    manifest = ("\n".join(lines) + "\n").encode()
    table_arn = f"arn:aws:dynamodb:{REGION}:111111111111:table/{table}"
    summary = json.dumps({
        "version": "2020-06-30", "exportArn": f"{table_arn}/export/{export_id}", "tableArn": table_arn,
        "exportTime": export_time.isoformat().replace("+00:00", "Z"), "s3Bucket": BUCKET,
        "s3Prefix": root.split("/AWSDynamoDB/")[0], "manifestFilesS3Key": root + "manifest-files.json",
        "itemCount": sum(1 + i % 3 for i in range(files)), "outputFormat": "DYNAMODB_JSON"}).encode()
    objects.update({root + "manifest-files.json": manifest, root + "manifest-files.md5": b64_md5(manifest).encode(),
                    root + "manifest-summary.json": summary, root + "manifest-summary.md5": b64_md5(summary).encode()})
    return root, objects


def write(s3, exports: list[tuple[str, int, int]], workers: int) -> list[str]:
    """Write ``(table, night, files)`` exports; return their folders."""
    roots = []
    with ThreadPoolExecutor(workers) as pool:
        for table, night, files in exports:
            root, objects = export_objects(table, night, files)
            roots.append(root)
            for _ in pool.map(lambda item: s3.put_object(Bucket=BUCKET, Key=item[0], Body=item[1]),
                              objects.items(), chunksize=64):
                pass
    return roots


def setup(s3) -> None:
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=BUCKET, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 35}}})


def bench_bare(s3, roots: list[str], workers: int) -> tuple[float, int]:
    """The same per-export requests as the project, no logic: objects/s and objects seen."""
    paginator = s3.get_paginator("list_object_versions")

    def one(root: str) -> int:
        for _ in paginator.paginate(Bucket=BUCKET, Prefix=root + "manifest-"):
            pass
        for name in ("manifest-summary.json", "manifest-summary.md5", "manifest-files.json", "manifest-files.md5"):
            s3.get_object(Bucket=BUCKET, Key=root + name)["Body"].read()
        return sum(len(page.get("Versions", ())) for page in paginator.paginate(Bucket=BUCKET, Prefix=root))

    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        objects = sum(pool.map(one, roots))
    return objects / (time.perf_counter() - began), objects


def target() -> Target:
    return Target(BUCKET, BASE, 35, "reverify_exports")


def bench_project(s3, workers: int, expected: int) -> float:
    began = time.perf_counter()
    report = reverify(s3, target(), max_concurrency=workers)
    rate = report.totals().get("objects", 0) / (time.perf_counter() - began)
    check(report, expected)
    return rate


def check(report, expected: int) -> None:
    if report.findings.total() or report.totals().get("objects") != expected:
        raise SystemExit(f"unexpected re-verification result:\n{report.summary_text()}")


def peak_memory(s3, workers: int, expected: int) -> float:
    """Peak traced Python memory (MiB) allocated during one re-verification."""
    gc.collect()
    tracemalloc.start()
    try:
        report = reverify(s3, target(), max_concurrency=workers)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    check(report, expected)
    return peak / 2**20


def measure(s3, roots: list[str], workers: int, rounds: int, expected: int) -> dict:
    bare, project = [], []
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits both alike
        rate, seen = bench_bare(s3, roots, workers)
        assert seen == expected, (seen, expected)
        bare.append(rate)
        project.append(bench_project(s3, workers, expected))
        print(f"  {expected} objects: bare {bare[-1]:.0f} objects/s, project {project[-1]:.0f} objects/s", flush=True)
    memory = peak_memory(s3, workers, expected)
    print(f"  {expected} objects: peak traced memory {memory:.1f} MiB", flush=True)
    return {"objects": expected, "exports": len(roots), "bare": bare, "project": project, "memory": memory}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nights", type=int, default=35)
    parser.add_argument("--tables", type=int, default=3)
    parser.add_argument("--files", type=int, default=4, help="data files per export of the first size")
    parser.add_argument("--large", type=int, default=100_000, help="objects of the second size (0: skip)")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--delay-ms", type=float, default=10.0, help="latency added each way")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    port = emulator.free_port()
    proc = emulator.start(port, log_path=os.devnull)
    results = []
    try:
        direct = s3_client(f"http://127.0.0.1:{port}", args.workers)
        setup(direct)
        began = time.perf_counter()
        # nights 0..N-1 back: all still under the 35-day retention for N <= 35
        small = [(f"table{t}", night, args.files) for t in range(args.tables) for night in range(args.nights)]
        roots = write(direct, small, args.workers)
        objects = len(roots) * (args.files + 5)
        print(f"wrote {len(roots)} exports, {objects} objects in {time.perf_counter() - began:.0f} s", flush=True)
        with spawn(port, args.delay_ms / 1000) as endpoint:
            s3 = s3_client(endpoint, args.workers)
            results.append(measure(s3, roots, args.workers, args.rounds, objects))
            if args.large > objects:
                began = time.perf_counter()
                more, table = [], 0
                while objects + sum(f + 5 for _, _, f in more) < args.large:
                    for night in range(25):
                        left = args.large - objects - sum(f + 5 for _, _, f in more)
                        if left <= 5:
                            break
                        more.append((f"bulk{table}", night, min(995, left - 5)))
                    table += 1
                roots += write(direct, more, args.workers)
                objects += sum(f + 5 for _, _, f in more)
                print(f"wrote {len(more)} more exports, {objects} objects in all, in "
                      f"{time.perf_counter() - began:.0f} s", flush=True)
                results.append(measure(s3, roots, args.workers, args.rounds, objects))
    finally:
        emulator.stop(proc)

    print(f"\nRe-verification, +{2 * args.delay_ms:g} ms per round trip, {args.workers} workers, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for result in results:
        bare, project = statistics.median(result["bare"]), statistics.median(result["project"])
        print(f"  {result['objects']:>7} objects in {result['exports']} exports: project {project:.0f} objects/s "
              f"(rounds {', '.join(f'{r:.0f}' for r in result['project'])}), bare {bare:.0f} objects/s "
              f"(rounds {', '.join(f'{r:.0f}' for r in result['bare'])}): {project / bare:.0%} of bare; "
              f"peak traced memory {result['memory']:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

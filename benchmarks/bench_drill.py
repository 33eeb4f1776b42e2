"""Benchmark: full drill validation of a restored table against its export, next to a plain parallel scan.

``python -m benchmarks.bench_drill [--items 200000] [--segments 8] [--files 8]``

Starts its own emulator, writes an export of ``--items`` items (every DynamoDB type, the seed's orders
items) in AWS's layout and the same items into the "restored" table, then in the same run measures:

* plain: a parallel Scan of the restored table with the same segments, items only counted (the limit);
* validate: ``drills.validate.validate_full`` (the same scan plus the export's files streamed, every item digested).

For each: items/s by wall clock and by this process's CPU time (the emulator's server, not our code, is
the bottleneck of the wall clock locally; against AWS the client's parsing CPU is the limit), and peak RSS
growth above the resident size before the phase (sampled every 20 ms). ``--modes validate`` measures one mode in
a fresh process (a previous phase leaves its heap behind, which hides the next phase's growth); ``--trace`` adds
the peak of live Python objects (tracemalloc) and the allocation sites holding most of it, which separates what
the code holds from what the allocator keeps (run with ``MALLOC_ARENA_MAX=2`` to compare glibc's per-thread arenas).
Goal: validation at >= 70% of the plain scan's items/s, memory flat (independent of --items).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import sys
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import orjson  # noqa: E402
import psutil  # noqa: E402
from botocore.config import Config  # noqa: E402

from dynamoguard.aws import client_config  # noqa: E402
from dynamoguard.drills import digest, restore_points, schema, validate  # noqa: E402
from include.localaws import process as emulator  # noqa: E402
from include.localaws.seed import TABLES, order_item, source_session  # noqa: E402

BUCKET = "bench-exports"
TABLE = "bench-orders"
EXPORT_ID = "01764300000000-0badcafe"
ARN = f"arn:aws:dynamodb:us-east-1:111111111111:table/{TABLE}"


def export_json(value):
    """A client item value in export spelling (binary as base64)."""
    if isinstance(value, dict):
        return {k: export_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [export_json(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


def write_export(s3, items: int, files: int) -> restore_points.ExportRef:
    """An export of ``items`` orders items in AWS's layout (data files, manifest-files, manifest-summary)."""
    folder = f"exports/{TABLE}/2026-11-28/AWSDynamoDB/{EXPORT_ID}/"
    per_file = -(-items // files)

    def one(index: int) -> dict:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1) as gz:
            for i in range(index * per_file, min(items, (index + 1) * per_file)):
                gz.write(json.dumps({"Item": export_json(order_item(i))}, separators=(",", ":")).encode() + b"\n")
        body = buf.getvalue()
        key = f"{folder}data/file{index:04d}.json.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return {"itemCount": min(items, (index + 1) * per_file) - index * per_file,
                "md5Checksum": base64.b64encode(hashlib.md5(body).digest()).decode(),
                "etag": hashlib.md5(body).hexdigest(), "dataFileS3Key": key}

    with ThreadPoolExecutor(max_workers=min(files, 4)) as pool:
        entries = list(pool.map(one, range(files)))
    manifest = "".join(json.dumps(e) + "\n" for e in entries)
    s3.put_object(Bucket=BUCKET, Key=folder + "manifest-files.json", Body=manifest.encode())
    summary = {"version": "2020-06-30", "exportArn": f"{ARN}/export/{EXPORT_ID}", "startTime": "2026-11-28T02:00:00Z",
               "endTime": "2026-11-28T02:10:00Z", "tableArn": ARN, "tableId": "bench",
               "exportTime": "2026-11-28T02:00:00Z", "s3Bucket": BUCKET, "s3Prefix": f"exports/{TABLE}/2026-11-28",
               "s3SseAlgorithm": "AES256", "s3SseKmsKeyId": None, "manifestFilesS3Key": folder + "manifest-files.json",
               "billedSizeBytes": 0, "itemCount": items, "outputFormat": "DYNAMODB_JSON"}
    s3.put_object(Bucket=BUCKET, Key=folder + "manifest-summary.json", Body=json.dumps(summary).encode())
    return restore_points.read_export(s3, BUCKET, folder + "manifest-summary.json")


class PeakRss:
    """Peak resident set size growth (MiB) of this process while the block runs."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.growth_mib = (self.peak - self.base) / 2**20


class PythonPeak:
    """Peak of live Python allocations (tracemalloc) while the block runs, with a snapshot taken near that peak
    (whenever the traced size grows by 4 MiB past the highest so far)."""

    def __enter__(self):
        tracemalloc.start(8)
        self.best, self.snapshot, self.stop = 0, None, threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stop.wait(0.05):
            current = tracemalloc.get_traced_memory()[0]
            if current > self.best + 4 * 2**20:
                self.best, self.snapshot = current, tracemalloc.take_snapshot()

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()

    def report(self, top: int = 4) -> str:
        lines = [f"  live Python objects: peak {self.peak_mib:.1f} MiB"]
        if self.snapshot is not None:
            for stat in self.snapshot.statistics("lineno")[:top]:
                frame = stat.traceback[0]
                lines.append(f"    {stat.size / 2**20:6.1f} MiB in {stat.count} blocks at "
                             f"{frame.filename}:{frame.lineno}")
        return "\n".join(lines)


def load_table(ddb, spec: dict, items: int) -> None:
    """The restored table: created like ImportTable would, filled by concurrent BatchWriteItem calls (moto's
    ImportTable parses JSON in pure Python and takes minutes for this many items)."""
    ddb.create_table(**schema.table_creation_parameters(spec, TABLE))

    def write(start: int) -> None:
        request = {TABLE: [{"PutRequest": {"Item": order_item(i)}} for i in range(start, min(items, start + 25))]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or None

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(0, items, 25)))


def plain_scan(ddb, segments: int) -> int:
    def run(segment: int) -> int:
        return sum(len(page.get("Items", [])) for page in digest.scan_pages(ddb, TABLE, segment, segments))

    with ThreadPoolExecutor(max_workers=segments) as pool:
        return sum(pool.map(run, range(segments)))


def client_only(items: int, page_items: int = 1500) -> dict:
    """The client's share of the work, without any server: the same Scan response pages (DynamoDB's wire
    JSON, generated page by page) parsed by botocore as a plain scan does, versus what validation does per
    page (wire JSON + digest) plus per export line (gunzip + JSON + digest). Single thread, CPU-bound."""
    import botocore.session
    from botocore.parsers import create_parser

    model = botocore.session.get_session().get_service_model("dynamodb").operation_model("Scan")
    parser = create_parser("json")
    key_names = ("customer_id", "order_id")

    def pages():
        for start in range(0, items, page_items):
            wire = [export_json(order_item(i)) for i in range(start, min(items, start + page_items))]
            yield json.dumps({"Items": wire, "Count": len(wire), "ScannedCount": len(wire)}).encode(), wire

    out = {}
    for name in ("plain", "validate"):
        buckets = digest.DigestBuckets(digest.bucket_count(items))
        spent = 0.0
        with PeakRss() as mem:
            for body, wire in pages():
                gz = gzip.compress(b"".join(json.dumps({"Item": w}).encode() + b"\n" for w in wire), 1)
                cpu = time.process_time()
                if name == "plain":
                    parser.parse({"body": body, "headers": {}, "status_code": 200}, model.output_shape)
                else:
                    response = {"body": body, "status_code": 200}
                    custom: dict = {}
                    digest._keep_wire_items(response, custom)
                    parser.parse({**response, "headers": {}}, model.output_shape)
                    buckets.add(digest._digest_batch(custom["WireItems"], key_names, buckets, None, None))
                    lines = (orjson.loads(line)["Item"] for line in gzip.decompress(gz).splitlines())
                    buckets.add(digest._digest_batch(lines, key_names, buckets, None, None))
                spent += time.process_time() - cpu
        out[name] = (items / spent, mem.growth_mib)
        print(f"client-only {name:9s} {items} items {items / spent:9.0f} items/s (CPU) "
              f"peak RSS +{mem.growth_mib:.0f} MiB", flush=True)
    return {"client_only_plain_items_per_cpu_s": round(out["plain"][0]),
            "client_only_validate_items_per_cpu_s": round(out["validate"][0]),
            "client_only_ratio": round(out["validate"][0] / out["plain"][0], 3),
            "client_only_validate_peak_rss_mib": round(out["validate"][1], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="alternating plain/validate rounds; best is kept")
    parser.add_argument("--client-only", action="store_true", help="only the client's CPU share, no emulator")
    parser.add_argument("--modes", default="plain,validate", help="comma-separated: plain, validate")
    parser.add_argument("--trace", action="store_true",
                        help="also trace Python allocations (tracemalloc): peak of live Python objects and the "
                             "allocation sites holding most at that peak (RSS growth then includes tracemalloc's own)")
    args = parser.parse_args(argv)
    if args.client_only:
        print(json.dumps({"items": args.items, **client_only(args.items)}))
        return 0

    port = emulator.free_port()
    proc = emulator.start(port, log_path=os.devnull)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        session = source_session()
        # The emulator serialises a 1 MB Scan page slowly on a busy machine: allow it minutes, not 60 s.
        cfg = client_config(max(32, args.segments + 8)).merge(Config(read_timeout=900))
        ddb = session.client("dynamodb", endpoint_url=endpoint, config=cfg)
        s3 = session.client("s3", endpoint_url=endpoint, config=cfg)
        s3.create_bucket(Bucket=BUCKET)

        t = time.monotonic()
        export = write_export(s3, args.items, args.files)
        print(f"export written: {args.items} items in {args.files} files, {time.monotonic() - t:.1f}s", flush=True)
        spec = {k: v for k, v in TABLES["orders"].items() if k in ("KeySchema", "AttributeDefinitions",
                                                                     "GlobalSecondaryIndexes")}
        t = time.monotonic()
        load_table(ddb, spec, args.items)
        print(f"restored table loaded: {args.items} items, {time.monotonic() - t:.1f}s", flush=True)

        key_names = ("customer_id", "order_id")
        results = {}
        for name in args.modes.split(",") * args.rounds:
            watch = PythonPeak() if args.trace else contextlib.nullcontext()
            with PeakRss() as mem, watch:
                t, cpu = time.monotonic(), time.process_time()
                if name == "plain":
                    count = plain_scan(ddb, args.segments)
                else:
                    result = validate.validate_full(ddb, s3, TABLE, export, key_names, segments=args.segments)
                    assert result.ok, result.problems
                    count = result.items_validated
                seconds, cpu = time.monotonic() - t, time.process_time() - cpu
            assert count == args.items, (name, count)
            results.setdefault(name, []).append((count / seconds, count / cpu, mem.growth_mib))
            print(f"{name:9s} {count} items {seconds:6.1f}s {count / seconds:9.0f} items/s (wall) "
                  f"{count / cpu:9.0f} items/s (client CPU) peak RSS +{mem.growth_mib:.0f} MiB", flush=True)
            if args.trace:
                print(watch.report(), flush=True)
        best = {name: (max(r[0] for r in rows), max(r[1] for r in rows), max(r[2] for r in rows))
                for name, rows in results.items()}
        summary = {"items": args.items, "segments": args.segments,
                   "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX")}
        for name, (wall, cpu, rss) in best.items():
            summary.update({f"{name}_items_per_s": round(wall), f"{name}_items_per_cpu_s": round(cpu),
                            f"{name}_peak_rss_mib": round(rss, 1)})
        if len(best) == 2:
            summary.update({"wall_ratio": round(best["validate"][0] / best["plain"][0], 3),
                            "cpu_ratio": round(best["validate"][1] / best["plain"][1], 3)})
        print(json.dumps(summary))
        return 0
    finally:
        emulator.stop(proc)


if __name__ == "__main__":
    sys.exit(main())

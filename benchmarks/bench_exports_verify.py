"""Export verification throughput and memory against the local emulator with 20 ms of round-trip latency.

``python -m benchmarks.bench_exports_verify [--files 200] [--items 2000] [--workers 32]``

Starts its own emulator process and a latency proxy process (10 ms each way, see
benchmarks/latency_proxy.py), writes one export in DynamoDB's layout (``--files`` gzip JSON Lines data
files of ``--items`` items each, single-part multipart uploads, manifests and .md5 companions; written
directly, without the proxy), then verifies it through the proxy with ``dynamoguard.exports.verify_export``
once with one worker and once with ``--workers``, reporting files/s, MB/s (compressed bytes hashed and
inflated) and peak Python memory (tracemalloc) of the concurrent run.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
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
from dynamoguard.exports.manifest import export_folder  # noqa: E402
from dynamoguard.exports.verify import verify_export  # noqa: E402
from dynamoguard.timeutil import iso_ms  # noqa: E402
from include.localaws import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402
from include.localaws import process as emulator  # noqa: E402

BUCKET = "bench-exports-verify"
TABLE_ARN = "arn:aws:dynamodb:us-east-1:111111111111:table/orders"
EXPORT_TIME = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0)
EXPORT_ARN = f"{TABLE_ARN}/export/{int(EXPORT_TIME.timestamp() * 1000):014d}-0b0e0c0d"
PREFIX = f"exports/orders/{EXPORT_TIME.date().isoformat()}"


def s3_client(endpoint: str, pool: int):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, config=client_config(pool))


def b64_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def data_file(index: int, items: int) -> bytes:
    lines = (json.dumps({"Item": {"customer_id": {"S": f"c{index}-{i}"}, "order_id": {"S": f"o{i:08d}"},
                                  "total": {"N": str(i * 7 % 1000)}, "note": {"S": "x" * (i % 200)}}},
                        separators=(",", ":")) for i in range(items))
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6)


def write_export(s3, files: int, items: int, workers: int) -> int:
    """Write the export; returns the total bytes of the data files."""
    folder = export_folder(EXPORT_ARN, PREFIX)
    s3.create_bucket(Bucket=BUCKET)

    def put(index: int) -> dict:
        body = data_file(index, items)
        key = f"{folder}data/{index:06d}.json.gz"
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        part = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=1, Body=body)
        done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload,
                                            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
        return {"itemCount": items, "md5Checksum": b64_md5(body), "etag": done["ETag"].strip('"'),
                "dataFileS3Key": key, "size": len(body)}

    with ThreadPoolExecutor(workers) as pool:
        listed = list(pool.map(put, range(files)))
    manifest = b"".join(json.dumps({k: v for k, v in f.items() if k != "size"}, separators=(",", ":")).encode()
                        + b"\n" for f in listed)
    summary = json.dumps({
        "version": "2020-06-30", "exportArn": EXPORT_ARN, "startTime": iso_ms(EXPORT_TIME),
        "endTime": iso_ms(EXPORT_TIME + timedelta(minutes=9)), "tableArn": TABLE_ARN, "tableId": "bench",
        "exportTime": iso_ms(EXPORT_TIME), "s3Bucket": BUCKET, "s3Prefix": PREFIX, "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None, "manifestFilesS3Key": folder + "manifest-files.json", "billedSizeBytes": 0,
        "itemCount": files * items, "outputFormat": "DYNAMODB_JSON",
    }, separators=(",", ":")).encode()
    for name, body in (("_started", b""), ("manifest-files.json", manifest),
                       ("manifest-files.md5", b64_md5(manifest).encode()), ("manifest-summary.json", summary),
                       ("manifest-summary.md5", b64_md5(summary).encode())):
        s3.put_object(Bucket=BUCKET, Key=folder + name, Body=body)
    return sum(f["size"] for f in listed)


def run_verify(s3, workers: int, files: int, items: int) -> float:
    began = time.perf_counter()
    result = verify_export(s3, BUCKET, EXPORT_ARN, TABLE_ARN, EXPORT_TIME, PREFIX, max_workers=workers)
    seconds = time.perf_counter() - began
    if not result.ok or result.files != files or result.item_count != files * items:
        raise SystemExit(f"unexpected verification result: {result.problems[:5]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args(argv)

    port = emulator.free_port()
    proc = emulator.start(port)
    try:
        direct = f"http://127.0.0.1:{port}"
        total = write_export(s3_client(direct, args.workers), args.files, args.items, args.workers)
        mb = total / 1e6
        print(f"export: {args.files} files x {args.items} items, {mb:.1f} MB compressed", flush=True)
        with spawn(port, delay=0.010) as endpoint:
            one = run_verify(s3_client(endpoint, 1), 1, args.files, args.items)
            print(f"1 worker:  {one:6.2f} s  {args.files / one:7.1f} files/s  {mb / one:6.2f} MB/s", flush=True)
            tracemalloc.start()
            many = run_verify(s3_client(endpoint, args.workers), args.workers, args.files, args.items)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(f"{args.workers} workers: {many:6.2f} s  {args.files / many:7.1f} files/s  {mb / many:6.2f} MB/s"
                  f"  (x{one / many:.1f}; peak Python memory {peak:.1f} MiB)", flush=True)
    finally:
        emulator.stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

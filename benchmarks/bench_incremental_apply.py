"""Applying incremental windows (the restore step of the ``incremental`` drill sources) against a bare concurrent
BatchWriteItem loop writing the same items, in one run.

``python -m benchmarks.bench_incremental_apply [--items 20000] [--windows 4] [--deletes 0.1] [--workers 16]``

Starts its own emulator process, creates two tables and writes ``--windows`` windows to S3 in DynamoDB's
incremental export layout (gzip JSON lines with ``Metadata``, ``Keys``, ``OldImage``, ``NewImage``; a share of
``--deletes`` lines without ``NewImage``), ``--items`` lines in all, keys unique per window and repeated across
windows. Then times :func:`dynamoguard.incremental.apply.apply_windows` (read and parse the files, convert the
values, BatchWriteItem 25 at a time with ``--workers`` threads, windows in order) and a bare loop sending the
same requests, prepared in memory beforehand, with the same number of threads, alternating for ``--rounds``
rounds on fresh tables. Reports the best time of each, their ratio, and checks that the tables end equal.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from dynamoguard.incremental.apply import apply_windows, batch_write, write_request  # noqa: E402
from include.localaws import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402
from include.localaws import process as emulator  # noqa: E402

BUCKET = "bench-incremental"


def lines_of(window: int, items: int, keys: int, deletes: float, rng: random.Random) -> list[dict]:
    chosen = rng.sample(range(keys), items)
    out = []
    for k in chosen:
        key = {"pk": {"S": f"key-{k:07d}"}}
        line = {"Metadata": {"WriteTimestampMicros": {"N": str(1_700_000_000_000_000 + window)}}, "Keys": key}
        if rng.random() >= deletes:
            line["NewImage"] = {**key, "window": {"N": str(window)}, "payload": {"S": "x" * 80},
                                "tags": {"SS": ["a", "b"]}, "blob": {"B": "AAEC"}}
        out.append(line)
    return out


def scan(ddb, table: str) -> list:
    items, kwargs = [], {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda i: i["pk"]["S"])
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--deletes", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    port = emulator.free_port()
    proc = emulator.start(port)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        session = boto3.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION)
        config = boto3.session.Config(max_pool_connections=args.workers + 8)
        ddb = session.client("dynamodb", endpoint_url=endpoint, config=config)
        s3 = session.client("s3", endpoint_url=endpoint, config=config)
        s3.create_bucket(Bucket=BUCKET)
        for table in [f"{kind}{r}" for r in range(args.rounds) for kind in ("applied", "bare")]:
            ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        rng = random.Random(17)
        per_window = args.items // args.windows
        windows, all_lines = [], []
        for w in range(args.windows):
            lines = lines_of(w, per_window, per_window * 2, args.deletes, rng)
            all_lines.append(lines)
            keys = []
            for part in range(4):  # one file per "partition", as DynamoDB writes them
                key = f"incremental/w{w}/AWSDynamoDB/data/part{part}.json.gz"
                body = b"".join(json.dumps(li).encode() + b"\n" for li in lines[part::4])
                s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(body))
                keys.append(key)
            windows.append((f"w{w}", BUCKET, keys))

        prepared = [[[write_request(li) for li in lines[i:i + 25]] for i in range(0, len(lines), 25)]
                    for lines in all_lines]
        applied, bare = [], []
        for r in range(args.rounds):  # alternating, each on a fresh table: neither side gets a warmer emulator
            started = time.monotonic()
            stats = apply_windows(ddb, s3, f"applied{r}", windows, workers=args.workers)
            applied.append(time.monotonic() - started)
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                for batches in prepared:  # windows in order here too: a key written twice ends with its last image
                    list(pool.map(lambda batch, r=r: batch_write(ddb, f"bare{r}", batch), batches))
            bare.append(time.monotonic() - started)
        applied, bare = min(applied), min(bare)
        equal = all(scan(ddb, f"applied{r}") == scan(ddb, f"bare{r}") for r in range(args.rounds))
        total = stats.puts + stats.deletes
        print(json.dumps({
            "lines": total, "windows": stats.windows, "puts": stats.puts, "deletes": stats.deletes,
            "workers": args.workers, "rounds": args.rounds,
            "apply_seconds": round(applied, 2), "bare_seconds": round(bare, 2),
            "apply_items_per_second": round(total / applied), "bare_items_per_second": round(total / bare),
            "ratio_apply_to_bare": round(applied / bare, 2), "tables_equal": equal}, indent=1))
        return 0 if equal else 1
    finally:
        emulator.stop(proc)


if __name__ == "__main__":
    sys.exit(main())

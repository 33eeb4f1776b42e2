"""Memory the emulator's item history costs: RSS growth of the emulator process for 100,000 item changes.

``python -m benchmarks.bench_emulator_history [--changes 100000] [--keys 10000] [--item-bytes 100]``

Starts its own emulator process, creates a table with PITR on, then writes ``--changes`` item changes with
BatchWriteItem (25 puts a request): first one insert per key for ``--keys`` keys, then updates of those keys
(each a new version of about ``--item-bytes`` bytes), so that the table itself stays at ``--keys`` items while
the history holds every change. Reports the emulator's RSS (psutil) before, after the inserts and after all
changes, and the growth per change; finally checks that a restore at a time between two rounds of updates
returns the older version (the history is really there). RSS growth also holds what moto and the other fixes
keep per request, so the history's own share is measured too: the same changes recorded into a ``History``
in this process, traced with tracemalloc.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from include.localaws import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402
from include.localaws import process as emulator  # noqa: E402

TABLE = "bench-history"


def rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


def write_round(ddb, keys: int, version: int, item_bytes: int) -> None:
    payload = "x" * max(0, item_bytes - 40)
    for start in range(0, keys, 25):
        batch = [{"PutRequest": {"Item": {"pk": {"S": f"key-{k:07d}"}, "version": {"N": str(version)},
                                          "payload": {"S": payload}}}} for k in range(start, min(keys, start + 25))]
        ddb.batch_write_item(RequestItems={TABLE: batch})


def backdate(endpoint: str, seconds: int) -> None:
    body = json.dumps({"table": TABLE, "seconds": seconds}).encode()
    request = urllib.request.Request(f"{endpoint}/_localaws/backdate", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()


def history_bytes(changes: int, keys: int, item_bytes: int) -> int:
    """Python memory of a History holding ``changes`` changes of ``keys`` keys (items as the emulator stores them)."""
    from include.localaws.fixes.dynamodb_history import History

    payload = "x" * max(0, item_bytes - 40)
    tracemalloc.start()
    history = History(["pk"])
    for n in range(changes):
        k = n % keys
        key = json.dumps({"pk": {"S": f"key-{k:07d}"}}, separators=(",", ":"))
        item = json.dumps({"pk": {"S": f"key-{k:07d}"}, "version": {"N": str(n // keys)}, "payload": {"S": payload}},
                          separators=(",", ":"))
        history.record(key, item, n)
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert history.size() == changes
    return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--item-bytes", type=int, default=100)
    args = parser.parse_args(argv)
    rounds = max(1, args.changes // args.keys)

    port = emulator.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = emulator.start(port)
    try:
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY)
        ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        ddb.update_continuous_backups(TableName=TABLE,
                                      PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        process = psutil.Process(proc.pid)
        before = rss_mb(process)
        started = time.perf_counter()
        write_round(ddb, args.keys, 0, args.item_bytes)
        after_inserts = rss_mb(process)
        for version in range(1, rounds):
            if version == rounds - 1:
                backdate(endpoint, 120)  # the last round comes 2 minutes after the others
            write_round(ddb, args.keys, version, args.item_bytes)
        elapsed = time.perf_counter() - started
        after = rss_mb(process)
        changes = rounds * args.keys

        control = urllib.request.Request(f"{endpoint}/_localaws/config", data=b'{"pitr_lag_seconds": 0}',
                                         method="POST")
        urllib.request.urlopen(control, timeout=10).read()
        at = datetime.now(UTC) - timedelta(seconds=60)
        ddb.restore_table_to_point_in_time(SourceTableName=TABLE, TargetTableName=f"{TABLE}-restored",
                                           RestoreDateTime=at)
        sample = ddb.get_item(TableName=f"{TABLE}-restored", Key={"pk": {"S": "key-0000000"}})["Item"]
        assert sample["version"]["N"] == str(rounds - 2), sample

        print(f"item changes: {changes} ({args.keys} keys x {rounds} versions, ~{args.item_bytes} B items), "
              f"written in {elapsed:.1f} s ({changes / elapsed:.0f} changes/s)")
        print(f"emulator RSS: {before:.1f} MiB before, {after_inserts:.1f} MiB after {args.keys} inserts, "
              f"{after:.1f} MiB after all changes")
        per_update = (after - after_inserts) * 2**20 / max(1, changes - args.keys)
        print(f"RSS growth: {after - before:.1f} MiB in total, {per_update:.0f} bytes per update request")
        own = history_bytes(changes, args.keys, args.item_bytes)
        print(f"the history's own memory for {changes} changes: {own / 2**20:.1f} MiB ({own / changes:.0f} bytes "
              "per change, tracemalloc)")
        print(f"restore at T between the last two rounds returned version {sample['version']['N']} as expected")
    finally:
        emulator.stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

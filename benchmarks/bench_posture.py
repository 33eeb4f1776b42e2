"""How fast the posture page and its JSON answer for a large estate.

A synthetic estate of ``--tables`` tables (default 500), each with 35 nights of export history, six drills and
every job's state (every tenth table with a CloudTrail finding), in the findings store's stored shape. Measured
in one process, median of ``--rounds``:

- build: the posture document from the collected states (done by the cache's background rebuild, not per request);
- page / table page / JSON: what one authenticated request costs, through the FastAPI app (Starlette's test
  client, the auth dependency stubbed), from the cached document to the response body.

Usage: ``PYTHONPATH=.:plugins .venv/bin/python -m benchmarks.bench_posture [--tables 500] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from fastapi.testclient import TestClient  # noqa: E402

from dynamoguard.posture.aggregate import build  # noqa: E402
from dynamoguard.posture.app import create_app, reader  # noqa: E402
from tests.fixtures.posture_estate import estate  # noqa: E402


def timed(fn, rounds: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    now = datetime.now(timezone.utc)
    tables, collected = estate(args.tables, now)
    build_s, doc = timed(lambda: build(tables, collected, now, ["dynamoguard-exports"]), args.rounds)
    app = create_app(loader=lambda: doc, ttl=3600)
    app.dependency_overrides[reader] = lambda: object()
    client = TestClient(app)
    client.get("/api/posture")  # the first request builds the cache
    results = {"build (background)": (build_s, None)}
    for name, path in (("page", "/"), ("table page", f"/table/{tables[0]}"), ("JSON", "/api/posture")):
        seconds, response = timed(lambda p=path: client.get(p), args.rounds)
        assert response.status_code == 200, response.text[:200]
        results[name] = (seconds, len(response.content))
    print(f"{args.tables} tables, {len(doc['findings'])} findings, 35 nights; median of {args.rounds} rounds")
    for name, (seconds, size) in results.items():
        print(f"  {name:<20} {seconds * 1000:8.0f} ms" + (f"  {size / 1e6:6.2f} MB" if size else ""))


if __name__ == "__main__":
    main()

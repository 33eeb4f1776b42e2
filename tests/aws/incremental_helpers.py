"""Driving incremental chains against the emulator: full exports and windows in the jobs' layout, history moved
back with ``/_localaws/backdate`` so that windows of an hour exist without waiting one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dynamoguard.config import load_config
from dynamoguard.drills.digest import canonical_item
from dynamoguard.exports.start import start_export
from dynamoguard.incremental import chain
from dynamoguard.incremental.start import start_incremental
from dynamoguard.incremental.verify import verify_incremental
from dynamoguard.incremental.windows import plan_window
from dynamoguard.layout import export_prefix, incremental_prefix
from tests.aws.test_emulator_export import control, wait

CONFIG = load_config()
BUCKET = CONFIG.backup_bucket.name
BASE = CONFIG.backup_bucket.prefix
HOUR = timedelta(hours=1)


def backdate(localaws, table: str, seconds: float) -> None:
    """Move everything ``table`` has recorded so far ``seconds`` into the past."""
    control(localaws.endpoint, "backdate", {"table": table, "seconds": seconds})


def now_s() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def full_export(localaws, table: str, at: datetime) -> dict:
    """A completed full export of ``table`` at ``at`` under the nightly job's prefix."""
    ddb = localaws.client("dynamodb")
    started = start_export(ddb, CONFIG.table_arn(table), at, BUCKET, export_prefix(BASE, table, at))
    desc = wait(ddb, started.export_arn)
    assert desc["ExportStatus"] == "COMPLETED", desc
    return desc


def run_window(localaws, table: str, bound: datetime):
    """Plan the next window from what the bucket holds, export it, wait, verify: (plan, description, verification)."""
    ddb, s3 = localaws.client("dynamodb"), localaws.client("s3")
    stored = chain.stored_windows(s3, BUCKET, BASE, table)
    plan = plan_window(bound=bound, interval=HOUR, window_ends=[w.window.end for w in stored if w.summary_key],
                       full_export_times=chain.full_export_times(s3, BUCKET, BASE, table, at_or_before=bound))
    assert plan.window is not None, plan
    prefix = incremental_prefix(BASE, table, plan.window.start, plan.window.end)
    desc = wait(ddb, start_incremental(ddb, CONFIG.table_arn(table), plan.window, BUCKET, prefix)["ExportArn"])
    assert desc["ExportStatus"] == "COMPLETED", desc
    result = verify_incremental(s3, BUCKET, desc["ExportArn"], CONFIG.table_arn(table), plan.window, prefix,
                                view="NEW_AND_OLD_IMAGES", description=desc)
    return plan, desc, result


def scan_all(ddb, table: str) -> list[dict]:
    """Every item of ``table`` in canonical form (sets sorted), in a stable order."""
    items, kwargs = [], {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            items = [canonical_item(i) for i in items]
            return sorted(items, key=lambda i: repr(sorted(i.items())))
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

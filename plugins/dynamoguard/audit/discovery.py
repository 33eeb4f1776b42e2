"""Which CloudTrail objects belong to an audit interval.

Layout (AWS CloudTrail user guide, "Finding your CloudTrail log files")::

    [<prefix>/]AWSLogs/[<o-org-id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz
    [<prefix>/]AWSLogs/[<o-org-id>/]<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/
        <account>_CloudTrail-Digest_<region>_<trail>_<home-region>_<YYYYMMDDTHHmmssZ>.json.gz

**The rule that no file is counted twice:** an object belongs to the interval ``[start, end)`` that
contains the timestamp in its key (the time CloudTrail delivered it), never to the interval of the
events inside it. Intervals do not overlap, so every object belongs to exactly one interval. A file
delivered at 10:07 holding events from 09:58 is audited with the 10:00-11:00 interval, so events
delivered late are still read once; the interval for hour H is complete once H+1h has passed
(the run for an hour starts at its end). Digest files follow the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dynamoguard.timeutil import iso, parse_time

LOG_KEY = re.compile(
    r"(?P<account>\d{12})_CloudTrail_(?P<region>[a-z0-9-]+)_(?P<ts>\d{8}T\d{4}Z)_[A-Za-z0-9]+\.json\.gz$")
DIGEST_KEY = re.compile(
    r"(?P<account>\d{12})_CloudTrail-Digest_(?P<region>[a-z0-9-]+)_(?P<trail>.+)_(?P<home>[a-z0-9-]+)_"
    r"(?P<ts>\d{8}T\d{6}Z)(?:_backfill)?\.json\.gz$")


@dataclass(frozen=True)
class Unit:
    """One piece of audit work: an account and region for ``[start, end)``, at most one clock hour."""

    account: str
    region: str
    start: datetime
    end: datetime

    def to_dict(self) -> dict:
        return {"account": self.account, "region": self.region, "start": iso(self.start), "end": iso(self.end)}

    @classmethod
    def from_dict(cls, data: dict) -> Unit:
        return cls(data["account"], data["region"], parse_time(data["start"]), parse_time(data["end"]))

    @classmethod
    def hour(cls, account: str, region: str, start: datetime) -> Unit:
        return cls(account, region, start, start + timedelta(hours=1))


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    """The hours overlapping ``[start, end)``, each as its first instant."""
    hour = start.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        yield hour
        hour += timedelta(hours=1)


def plan(accounts: list[str], regions: list[str], start: datetime, end: datetime) -> list[Unit]:
    """The (account, region, hour) units of the interval ``[start, end)``, clipped to it."""
    return [Unit(a, r, max(h, start), min(h + timedelta(hours=1), end))
            for h in hours(start, end) for a in accounts for r in regions]


def base_prefix(trail_prefix: str, organization_id: str | None, account: str) -> str:
    parts = [p for p in (trail_prefix.strip("/"), "AWSLogs", organization_id, account) if p]
    return "/".join(parts) + "/"


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def log_prefix(base: str, account: str, region: str, hour: datetime) -> str:
    """Key prefix of the log files delivered during ``hour``."""
    return f"{base}CloudTrail/{region}/{hour:%Y/%m/%d}/{account}_CloudTrail_{region}_{hour:%Y%m%dT%H}"


def digest_prefix(base: str, account: str, region: str, hour: datetime) -> str:
    """Key prefix of the digest files of ``hour``'s day (filtered by timestamp afterwards)."""
    return f"{base}CloudTrail-Digest/{region}/{hour:%Y/%m/%d}/{account}_CloudTrail-Digest_{region}_"


def key_time(key: str) -> datetime | None:
    """The delivery timestamp in a log or digest key, or None if the name is not CloudTrail's."""
    name = key.rsplit("/", 1)[-1]
    match = LOG_KEY.match(name) or DIGEST_KEY.match(name)
    if not match:
        return None
    ts = match["ts"]
    fmt = "%Y%m%dT%H%M%SZ" if len(ts) == 16 else "%Y%m%dT%H%MZ"
    return datetime.strptime(ts, fmt).replace(tzinfo=timezone.utc)


def in_interval(key: str, start: datetime, end: datetime) -> bool:
    moment = key_time(key)
    return moment is not None and start <= moment < end


def list_keys(s3, bucket: str, prefix: str) -> Iterator[dict]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", ())


def discover_logs(s3, bucket: str, base: str, unit: Unit) -> tuple[list[dict], list[str]]:
    """Log objects of ``unit`` (``Key``, ``Size``), and keys under its prefix that are not log files."""
    logs, strange = [], []
    for obj in list_keys(s3, bucket, log_prefix(base, unit.account, unit.region, _hour(unit.start))):
        key = obj["Key"]
        name_ok = LOG_KEY.match(key.rsplit("/", 1)[-1])
        if name_ok and in_interval(key, unit.start, unit.end):
            logs.append({"Key": key, "Size": obj.get("Size", 0)})
        elif not name_ok:
            strange.append(key)
    return logs, strange


def discover_digests(s3, bucket: str, base: str, unit: Unit) -> list[str]:
    """Digest keys delivered during ``unit``'s hour, oldest first."""
    keys = [obj["Key"] for obj in list_keys(s3, bucket, digest_prefix(base, unit.account, unit.region, unit.start))
            if in_interval(obj["Key"], unit.start, unit.end)]
    return sorted(keys, key=lambda k: key_time(k))

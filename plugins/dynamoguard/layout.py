"""Where things live in S3: the one definition of each key layout (also used by ``iam_policies``).

Every function joins non-empty parts with ``/``, so an empty configured prefix gives ``orders/...``,
never ``/orders/...``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from dynamoguard.timeutil import utc


def join(*parts: str) -> str:
    """``parts`` stripped of surrounding slashes and joined with ``/``; empty parts are left out."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def table_prefix(base_prefix: str, table: str) -> str:
    """The folder of every export of ``table``: ``<base>/<table>/`` (with the trailing slash)."""
    return join(base_prefix, table) + "/"


def export_prefix(base_prefix: str, table: str, export_time: datetime) -> str:
    """The S3Prefix of a nightly export: ``<base>/<table>/<YYYY-MM-DD>`` (UTC date of the export time)."""
    return join(base_prefix, table, utc(export_time).date().isoformat())


STAMP = "%Y%m%dT%H%M%SZ"


def incremental_root(base_prefix: str, table: str) -> str:
    """The folder of every incremental export of ``table``: ``<base>/<table>/incremental/``."""
    return join(base_prefix, table, "incremental") + "/"


def incremental_prefix(base_prefix: str, table: str, start: datetime, end: datetime) -> str:
    """The S3Prefix of one incremental window: ``<base>/<table>/incremental/<from>_<to>`` (compact UTC stamps,
    so that the folders list in window order)."""
    return join(base_prefix, table, "incremental", f"{utc(start).strftime(STAMP)}_{utc(end).strftime(STAMP)}")


def incremental_window(folder: str) -> tuple[datetime, datetime]:
    """The (from, to) a window folder name (``…/<from>_<to>[/]``) stands for; ValueError if it is not one."""
    start, _, end = folder.rstrip("/").rsplit("/", 1)[-1].partition("_")
    return (datetime.strptime(start, STAMP).replace(tzinfo=timezone.utc),
            datetime.strptime(end, STAMP).replace(tzinfo=timezone.utc))

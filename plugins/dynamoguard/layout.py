"""Where things live in S3: the one definition of each key layout (also used by ``iam_policies``).

Every function joins non-empty parts with ``/``, so an empty configured prefix gives ``orders/...``,
never ``/orders/...``.
"""

from __future__ import annotations

import re
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


_EXPORT_ROOT = re.compile(r"^(?P<root>(?:.*/)?AWSDynamoDB/(?P<export_id>[^/]+)/)")


def export_root(key: str) -> tuple[str, str] | None:
    """``(root prefix, ExportId)`` of an object inside a DynamoDB export, else None."""
    match = _EXPORT_ROOT.match(key)
    return (match["root"], match["export_id"]) if match else None


_INCREMENTAL_SHARED = re.compile(r"^(?P<window>[^/].*?)/(?:AWSDynamoDB/data/[^/]+|table-schema\.json)$")


def incremental_window_end(key: str) -> datetime | None:
    """The window end (the export time) of an object an incremental window keeps outside its export folder.

    AWS writes an incremental export's data files to ``<S3Prefix>/AWSDynamoDB/data/``, beside (not inside)
    its ``AWSDynamoDB/<ExportId>/`` folder, and the incremental job writes ``table-schema.json`` beside it;
    each window has its own prefix (``layout.incremental_prefix``), whose name gives the window. None for
    any other key.
    """
    match = _INCREMENTAL_SHARED.match(key)
    if match is None:
        return None
    try:
        return incremental_window(match["window"])[1]
    except ValueError:
        return None

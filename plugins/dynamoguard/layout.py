"""Where things live in S3: the one definition of each key layout (also used by ``iam_policies``).

Every function joins non-empty parts with ``/``, so an empty configured prefix gives ``orders/...``,
never ``/orders/...``.
"""

from __future__ import annotations

from datetime import datetime

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

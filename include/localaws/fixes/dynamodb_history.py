"""Item history for point-in-time reads: a table as it was at time T.

AWS: with point-in-time recovery on, DynamoDB keeps continuous backups, so that
RestoreTableToPointInTime and ExportTableToPointInTime return the table "as it was" at any second of the
recovery window, and an incremental export returns the items changed in a window
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/PointInTimeRecovery_Howitworks.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.HowItWorks.html).
moto 5.2.5 keeps only the current items.

Here every item change is recorded with its time (microseconds), whatever API made it: the hooks sit on
moto's ``Table.put_item`` / ``Table.delete_item`` (used by PutItem, BatchWriteItem, TransactWriteItems,
PartiQL statements, imports) and on the backend's ``update_item`` (which changes items in place).
Changes made inside TransactWriteItems are recorded when the transaction commits, all at one time, and
dropped when moto rolls it back.

A table's ``History`` lives on the moto table object (so a moto reset forgets it) and is shared, not copied,
when moto deep-copies a table. Exports and restores read it when they start, so deleting the table later does
not change them. Memory stays bounded: every few thousand changes the entries older than the table's
earliest restorable time (35 days at most; all of them when PITR is off) are folded into one per key.

RestoreTableToPointInTime (replacing moto's, which copies the current items and ignores the time) restores the
items as of RestoreDateTime, or of the latest restorable time with UseLatestRestorableTime; SourceTableArn or
SourceTableName; a time outside the source's PITR window -> InvalidRestoreTimeException, PITR off ->
PointInTimeRecoveryUnavailableException (API reference RestoreTableToPointInTime). RestoreSummary reports
that time. Overrides (billing mode, indexes, SSE) stay as moto handles them.

Test knobs (``fixes/control.py``): ``POST /_localaws/pitr`` moves the PITR window back and makes the items
present at that moment count as present since the new earliest time (``rebase``); ``POST /_localaws/backdate``
moves a table's whole recorded past (and its PITR enable time) some seconds back (``shift``).
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, PointInTimeRecoveryUnavailable, SourceTableNotFoundException
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.utilities import DynamoJsonEncoder

from include.localaws.fixes import pitr

COMPACT_EVERY = 5000
_local = threading.local()


def now_micros() -> int:
    return time.time_ns() // 1000


def _dumps(value: Any) -> str:
    return json.dumps(value, cls=DynamoJsonEncoder, separators=(",", ":"))


class History:
    """Per key, the list of (time in µs, item JSON or None for deleted), oldest first."""

    def __init__(self, key_names: list[str]):
        self.key_names = key_names
        self.lock = threading.RLock()
        self.entries: dict[str, list[tuple[int, str | None]]] = {}
        self.recorded = 0

    def __deepcopy__(self, memo: dict) -> History:
        return self  # moto deep-copies tables (transactions, backups): they share one history

    def key_of(self, attrs: dict[str, Any]) -> str:
        return _dumps({name: attrs[name] for name in self.key_names})

    def record(self, key: str, item: str | None, at: int) -> None:
        with self.lock:
            entries = self.entries.setdefault(key, [])
            if entries and entries[-1][0] > at:
                at = entries[-1][0]  # never before the key's previous change
            entries.append((at, item))
            self.recorded += 1

    def state_at(self, at: int) -> Iterator[tuple[str, str]]:
        """(key, item JSON) of every item present at ``at`` (µs), changes at ``at`` included."""
        with self.lock:
            snapshot = list(self.entries.items())
        for key, entries in snapshot:
            index = bisect.bisect_right(entries, at, key=lambda e: e[0])
            if index and entries[index - 1][1] is not None:
                yield key, entries[index - 1][1]

    def changes(self, start: int, end: int) -> Iterator[tuple[str, int, str | None, str | None]]:
        """(key, time of its last change, item before ``start``, item before ``end``) of every key changed in
        [start, end); keys created and deleted inside the window are left out."""
        with self.lock:
            snapshot = list(self.entries.items())
        for key, entries in snapshot:
            first = bisect.bisect_left(entries, start, key=lambda e: e[0])
            last = bisect.bisect_left(entries, end, key=lambda e: e[0])
            if first == last:
                continue
            old = entries[first - 1][1] if first else None
            when, new = entries[last - 1]
            if old is not None or new is not None:
                yield key, when, old, new

    def compact(self, cutoff: int) -> None:
        """Fold the entries before ``cutoff`` into the one that was current at ``cutoff``."""
        with self.lock:
            for key in list(self.entries):
                entries = self.entries[key]
                index = bisect.bisect_right(entries, cutoff, key=lambda e: e[0])
                if index > 1 or (index == 1 and entries[0][1] is None):
                    kept = entries[index - 1:index] if entries[index - 1][1] is not None else []
                    entries[:index] = kept
                if not entries:
                    del self.entries[key]
            self.recorded = 0

    def rebase(self, current: dict[str, str], at: int) -> None:
        """Forget the recorded past: ``current`` items count as present since ``at``."""
        with self.lock:
            self.entries = {k: [(at, v)] for k, v in current.items()}
            self.recorded = 0

    def shift(self, seconds: float) -> None:
        """Move every recorded change ``seconds`` into the past."""
        delta = int(seconds * 1_000_000)
        with self.lock:
            self.entries = {k: [(t - delta, v) for t, v in entries] for k, entries in self.entries.items()}

    def size(self) -> int:
        with self.lock:
            return sum(len(e) for e in self.entries.values())


def item_json(item: Item) -> str:
    return _dumps(item.to_json()["Attributes"])


def make_item(table: Any, attrs_json: str) -> Item:
    """A moto Item from recorded JSON (B values stay base64 strings, as moto keeps them from the wire)."""
    attrs = json.loads(attrs_json)
    range_name = table.range_key_attr
    return Item(DynamoType(attrs[table.hash_key_attr]), DynamoType(attrs[range_name]) if range_name else None, attrs)


def _key_names(table: Any) -> list[str]:
    return [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])


def _created_micros(table: Any) -> int:
    created = getattr(table, "created_at", None)
    if created is None:
        return now_micros()
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return int(created.timestamp() * 1_000_000)


def history_of(table: Any) -> History:
    """The table's history; a table holding items no hook saw (restored, imported) starts from them as of its
    creation."""
    history = table.__dict__.get("localaws_history")
    if history is None:
        history = History(_key_names(table))
        history.rebase(current_items(table, history), _created_micros(table))
        table.localaws_history = history
    return history


def current_items(table: Any, history: History | None = None) -> dict[str, str]:
    """Key -> item JSON of the table's items now."""
    history = history or history_of(table)
    return {history.key_of(i.to_json()["Attributes"]): item_json(i) for i in table.all_items()}


def _cutoff(table: Any) -> int:
    span = pitr.window(table)
    return now_micros() if span is None else int(span[0] * 1_000_000)


def _record(table: Any, attrs: dict[str, Any], item: str | None) -> None:
    history = history_of(table)
    key = history.key_of(attrs)
    pending = getattr(_local, "pending", None)
    if pending is not None:
        pending.append((history, key, item))
        return
    history.record(key, item, now_micros())
    if history.recorded >= COMPACT_EVERY:
        history.compact(_cutoff(table))


def _suppressed() -> bool:
    return getattr(_local, "suppress", 0) > 0


def restore_table_to_point_in_time(self) -> Any:
    """DynamoHandler.restore_table_to_point_in_time, restoring the items as of the requested time."""
    from moto.dynamodb.responses import DynamoResult

    body, backend = self.body, self.dynamodb_backend
    source_arn, source_name = body.get("SourceTableArn"), body.get("SourceTableName")
    if source_arn:
        source = next((t for t in backend.tables.values() if t.table_arn == source_arn), None)
    else:
        source = backend.tables.get(source_name)
    if source is None:
        raise SourceTableNotFoundException(source_arn or source_name)
    span = pitr.window(source)
    if span is None:
        raise PointInTimeRecoveryUnavailable(name=source.name)
    if body.get("UseLatestRestorableTime") or body.get("RestoreDateTime") is None:
        at = span[1]
    else:
        requested = body["RestoreDateTime"]
        at = requested.timestamp() if isinstance(requested, datetime) else float(requested)
        if not span[0] <= at <= span[1]:
            raise JsonRESTError(ERROR_TYPE_PREFIX + "InvalidRestoreTimeException",
                                "An invalid restore time was specified. RestoreDateTime must be between "
                                "EarliestRestorableDateTime and LatestRestorableDateTime.")
    items = [make_item(source, item) for _, item in history_of(source).state_at(int(at * 1_000_000))]
    restored = backend.restore_table_to_point_in_time(body.get("TargetTableName"), source.name)
    restored.items = defaultdict(dict)
    for item in items:
        if item.range_key is None:
            restored.items[item.hash_key] = item
        else:
            restored.items[item.hash_key][item.range_key] = item
    restored.restore_date_time = datetime.fromtimestamp(at, UTC).replace(tzinfo=None)
    restored.__dict__.pop("localaws_history", None)
    history_of(restored)  # the restored table's own history starts with these items
    return DynamoResult(restored.describe())


def apply() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    original_put, original_delete = Table.put_item, Table.delete_item
    original_update, original_transact = DynamoDBBackend.update_item, DynamoDBBackend.transact_write_items

    def put_item(self, item_attrs, *args, **kwargs):
        history_of(self)
        item = original_put(self, item_attrs, *args, **kwargs)
        if not _suppressed():
            _record(self, item.to_json()["Attributes"], item_json(item))
        return item

    def delete_item(self, hash_key, range_key):
        history_of(self)
        item = original_delete(self, hash_key, range_key)
        if item is not None and not _suppressed():
            _record(self, item.to_json()["Attributes"], None)
        return item

    def update_item(self, table_name, key, *args, **kwargs):
        table = self.get_table(table_name)
        history_of(table)
        try:
            hash_value, range_value = self.get_keys_value(table, key)
        except Exception:
            return original_update(self, table_name, key, *args, **kwargs)  # moto reports the bad key
        before = table.get_item(hash_value, range_value)
        before_json = None if before is None else item_json(before)
        _local.suppress = getattr(_local, "suppress", 0) + 1
        try:
            item = original_update(self, table_name, key, *args, **kwargs)
        except Exception:
            _local.suppress -= 1
            after = table.get_item(hash_value, range_value)  # moto may have created the item before failing
            if after is not None and item_json(after) != before_json:
                _record(table, after.to_json()["Attributes"], item_json(after))
            raise
        _local.suppress -= 1
        _record(table, item.to_json()["Attributes"], item_json(item))
        return item

    def transact_write_items(self, transact_items):
        outer = getattr(_local, "pending", None)
        _local.pending = [] if outer is None else outer
        try:
            result = original_transact(self, transact_items)
        except Exception:
            if outer is None:
                _local.pending = None
            raise
        if outer is None:
            pending, _local.pending = _local.pending, None
            at = now_micros()
            for history, key, item in pending:
                history.record(key, item, at)
        return result

    Table.put_item, Table.delete_item = put_item, delete_item
    DynamoHandler.restore_table_to_point_in_time = restore_table_to_point_in_time
    DynamoDBBackend.update_item, DynamoDBBackend.transact_write_items = update_item, transact_write_items

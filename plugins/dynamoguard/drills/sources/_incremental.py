"""Restore to any point: ImportTable of the full export, then the incremental windows after it up to the restore
point, applied in order (:mod:`dynamoguard.incremental.apply`). Shared by ``incremental`` (backup bucket) and
``incremental_replica`` (the replica bucket, in the backup account)."""

from __future__ import annotations

import logging
from typing import Any

from dynamoguard.drills.sources._imports import ImportSource

log = logging.getLogger(__name__)

APPLY_ACTIONS = ("dynamodb:BatchWriteItem",)
APPLY_WORKERS = 16


class IncrementalSource(ImportSource):
    """Full export + incremental windows. The restore point becomes the end of the last window applied; windows
    are verified first (the chain stops before the first that fails, which is reported as a skipped export)."""

    iam_actions = (*ImportSource.iam_actions, *APPLY_ACTIONS)

    def stored_schema(self, config, s3, table: str) -> dict[str, Any] | None:
        from dynamoguard.incremental.chain import stored_schema

        return stored_schema(s3, self.bucket(config), config.backup_bucket.prefix, table)

    def extend(self, config, s3, drill: dict[str, Any], at_or_before) -> None:
        from dynamoguard.drills.restore_points import SkippedExport
        from dynamoguard.exports.manifest import ManifestError
        from dynamoguard.incremental.chain import stored_windows
        from dynamoguard.incremental.verify import IncrementalSummary, verify_incremental
        from dynamoguard.incremental.windows import chained
        from dynamoguard.timeutil import iso, parse_time

        bucket = self.bucket(config)
        stored = {w.window: w for w in stored_windows(s3, bucket, config.backup_bucket.prefix, drill["table"])
                  if w.summary_key}
        windows, gap = chained(stored, parse_time(drill["export"]["export_time"]), at_or_before)
        applied = []
        for window in windows:
            entry = stored[window]
            location = f"s3://{bucket}/{entry.summary_key}"
            try:
                summary = IncrementalSummary.parse(s3.get_object(Bucket=bucket, Key=entry.summary_key)["Body"].read(),
                                                   entry.summary_key)
                result = verify_incremental(s3, bucket, summary.export_arn, drill["table_arn"], window, entry.prefix,
                                            copied=self.copied)
                problems = [str(p) for p in result.problems]
            except ManifestError as error:
                summary, problems = None, [str(error)]
            if problems:
                drill["skipped_exports"].append(SkippedExport(location, "; ".join(problems[:5]),
                                                              getattr(summary, "export_arn", None),
                                                              iso(window.end)).as_dict())
                break
            applied.append({"from": iso(window.start), "to": iso(window.end), "export_arn": summary.export_arn,
                            "summary_key": entry.summary_key, "items": result.item_count,
                            "data_keys": result.data_keys})
        if gap and len(applied) == len(windows):
            log.warning("%s: %s", drill["table"], gap)
        drill["incremental"] = {"bucket": bucket, "windows": applied, "gap": gap,
                                "full_export_time": drill["export"]["export_time"]}
        if applied:
            drill["restore_point"] = applied[-1]["to"]

    def _windows(self, drill: dict[str, Any]) -> list[dict[str, Any]]:
        return (drill.get("incremental") or {}).get("windows") or []

    def finish(self, ddb, s3, drill: dict[str, Any]) -> dict[str, Any]:
        from dynamoguard.incremental.apply import apply_windows

        bucket = drill["incremental"]["bucket"]
        stats = apply_windows(ddb, s3, drill["scratch_table"],
                              [(f"{w['from']} .. {w['to']}", bucket, w["data_keys"]) for w in self._windows(drill)],
                              workers=APPLY_WORKERS)
        return {"apply": stats.as_dict()}

    def changes(self, s3, drill: dict[str, Any]) -> dict[bytes, dict[str, Any] | None]:
        from dynamoguard.drills.digest import canonical_json, item_key
        from dynamoguard.drills.schema import key_names
        from dynamoguard.incremental.apply import window_lines

        keys = key_names(drill["schema"])
        found: dict[bytes, dict[str, Any] | None] = {}
        for window in self._windows(drill):
            for line in window_lines(s3, drill["incremental"]["bucket"], window["data_keys"]):
                found[canonical_json(item_key(line["Keys"], keys))] = line.get("NewImage")
        return found

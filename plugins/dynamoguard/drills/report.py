"""What a drill and the scratch-table sweep report: findings, the per-table summary and its history point.

A drill's findings come from its record: the exports skipped on the way to the restore point, no verified export
at all, a failed restore, schema or content differing from the export, any other failure. The sweep reports
tables that look like scratch tables but carry no drill tag (never deleted), expired scratch tables it deleted,
and drill tables it had to leave in place.
"""

from __future__ import annotations

from typing import Any

from dynamoguard.drills.scratch import TAG_DRILL
from dynamoguard.findings import Finding

JOB = "drill"
SWEEP_JOB = "drill_sweep"

# failure check -> severity
FAILURE_SEVERITY = {
    "no_verified_export": "critical",  # no backup of the table can be restored
    "restore_failed": "high",
    "drill_failed": "high",
}


def _finding(record: dict[str, Any], check: str, severity: str, title: str, resource: str,
             evidence: dict[str, Any], dedup: str | None = None) -> Finding:
    return Finding(job=JOB, check=check, severity=severity, title=title, resource=resource, table=record["table"],
                   evidence={"source": record["source"], "run_id": record["run_id"], **evidence},
                   dedup=record["source"] if dedup is None else dedup)


def _export_evidence(record: dict[str, Any]) -> dict[str, Any] | None:
    export = record.get("export") or {}
    return {k: export.get(k) for k in ("export_arn", "export_time", "bucket", "summary_key")} if export else None


def drill_findings(record: dict[str, Any]) -> list[Finding]:
    """The findings of one drill record."""
    table, export = record["table"], _export_evidence(record)
    found = []
    for skipped in record.get("skipped_exports") or []:
        found.append(_finding(
            record, "skipped_export", "high" if skipped.get("export_arn") else "medium",
            f"Export of {table} skipped as a restore point: {skipped['reason'][:200]}", skipped["location"],
            {"skipped": skipped, "restored_instead": export}, dedup=""))
    failure = record.get("failure")
    if failure:
        check = failure["check"]
        found.append(_finding(record, check, FAILURE_SEVERITY[check],
                              f"Restore drill of {table} failed: {failure['message'][:200]}", f"table/{table}",
                              {"message": failure["message"], "export": export,
                               "skipped": record.get("skipped_exports") or [],
                               "restore": record.get("restore") or None}))
    validation = record.get("validation") or {}
    schema = [p for p in validation.get("problems", []) if p.startswith("schema: ")]
    content = [p for p in validation.get("problems", []) if not p.startswith("schema: ")]
    if schema:
        found.append(_finding(record, "schema_mismatch", "high",
                              f"Restored {table} differs from the source's key schema or indexes", f"table/{table}",
                              {"problems": schema, "export": export}))
    if content:
        found.append(_finding(
            record, "validation_mismatch", "critical", f"Restored {table} differs from its export: {content[0][:200]}",
            f"table/{table}",
            {"problems": content, "export": export, "mode": validation.get("mode"),
             "expected": {"items": validation.get("items_expected"), "digest": validation.get("digest_export")},
             "found": {"items": validation.get("items_restored"), "digest": validation.get("digest_restored")},
             "keys": validation.get("mismatches", [])}))
    return found


def summary(record: dict[str, Any], record_key: str) -> dict[str, Any]:
    """The table's drill summary (what the posture page shows)."""
    return {"result": record["result"], "source": record["source"], "restore_point": record["restore_point"],
            "rto_seconds": record["rto_seconds"], "rpo_seconds": record["rpo_seconds"],
            "items_validated": record["items_validated"], "recorded_at": record["recorded_at"],
            "record_key": record_key}


def history_point(record: dict[str, Any]) -> dict[str, Any]:
    return {"at": record["recorded_at"], "rto_seconds": record["rto_seconds"], "rpo_seconds": record["rpo_seconds"],
            "result": record["result"], "source": record["source"]}


# ----------------------------------------------------------------------------- sweep


def sweep_findings(results: list[dict[str, Any]]) -> list[Finding]:
    """Findings of one sweep; ``results`` as :func:`dynamoguard.drills.service.sweep` returns them."""
    found, deleted = [], []
    for result in results:
        arn = result["table_arn"]
        evidence = {"account": result["account"], "table": result["table"], "reason": result["reason"]}
        if result["deleted"]:
            deleted.append({"account": result["account"], "table": result["table"], "drill": result["drill_tag"]})
        elif result["reason"] == "does not exist" or "expires at" in result["reason"]:
            continue
        elif not result.get("drill_tag"):
            found.append(Finding(
                job=SWEEP_JOB, check="scratch_impostor", severity="medium", resource=arn,
                title=f"{result['table']} has the scratch prefix but no {TAG_DRILL} tag: not a drill's, left alone",
                evidence={**evidence, "expected": f"tag {TAG_DRILL}", "found": "no such tag"}))
        else:
            found.append(Finding(job=SWEEP_JOB, check="scratch_left", severity="low", resource=arn,
                                 title=f"Expired drill scratch table {result['table']} left in place: "
                                       f"{result['reason']}", evidence={**evidence, "drill": result["drill_tag"]}))
    if deleted:
        found.append(Finding(job=SWEEP_JOB, check="scratch_swept", severity="info", resource="scratch tables",
                             title=f"{len(deleted)} expired drill scratch table(s) deleted",
                             evidence={"deleted": deleted}))
    return found

"""One access review: protected resources from the config, snapshots of both accounts -> report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dynamoguard.access.collect import principals
from dynamoguard.access.escalation import Estate
from dynamoguard.access.findings import all_findings
from dynamoguard.access.report import build_report
from dynamoguard.access.resources import (
    ProtectedResource,
    bucket_resource,
    build_matrix,
    table_resource,
    with_escalation,
)


def protected_resources(config, snapshots: Mapping[str, Mapping[str, Any]]) -> list[ProtectedResource]:
    """The protected tables and backup buckets, with the resource policies found in the snapshots."""
    source, backup = config.accounts.source.account_id, config.accounts.backup.account_id
    ours = [*config.audit.allowed_principals, *config.access_review.allowed_principals]
    src, bkp = snapshots["source"], snapshots["backup"]
    resources = []
    for table in config.tables:
        arn = config.table_arn(table.name)
        resources.append(table_resource(
            table.name, arn, source, allowed=[*table.allowed_principals, *ours],
            fine_grained=table.require_fine_grained_access, policy=src["table_policies"].get(arn),
        ))
    bb, rb = config.backup_bucket, config.replica_bucket
    resources.append(bucket_resource(bb.name, source, prefix=bb.prefix, allowed=ours,
                                     policy=src["bucket_policies"].get(bb.name)))
    resources.append(bucket_resource(rb.name, backup, allowed=ours, policy=bkp["bucket_policies"].get(rb.name)))
    return resources


def run_review(config, snapshots: Mapping[str, Mapping[str, Any]], run_date: str,
               previous: Mapping[str, Any] | None = None, *, escalation: bool = True) -> dict[str, Any]:
    """Evaluate both accounts' snapshots (keys ``source`` and ``backup``) into the run's report.

    ``escalation=False`` leaves out access gained through escalation paths (direct grants only).
    """
    resources = protected_resources(config, snapshots)
    by_account = {snap["account"]: principals(snap) for snap in snapshots.values()}
    entries = build_matrix(resources, by_account)
    if escalation:
        entries = with_escalation(resources, entries, Estate.from_snapshots(snapshots.values(), by_account))
    everyone = [p for group in by_account.values() for p in group]
    findings = all_findings(entries, resources, everyone, config.access_review.require_permission_boundary)
    accounts = {name: snap["account"] for name, snap in snapshots.items()}
    return build_report(run_date, accounts, resources, entries, findings, previous,
                        generated_at=datetime.now(UTC).isoformat())

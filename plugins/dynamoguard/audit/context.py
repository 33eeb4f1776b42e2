"""What the audit rules protect, built once from the config."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache


@lru_cache(maxsize=4096)
def principal_key(arn: str | None) -> str | None:
    """The identity an allowlist entry and a caller are compared by.

    A role is known by account and name: ``arn:aws:iam::A:role/path/R`` and an assumed-role session
    ``arn:aws:sts::A:assumed-role/R/session`` (how CloudTrail names the session when the record has no
    ``sessionContext``; CloudTrail user guide, "CloudTrail userIdentity element") both give
    ``arn:aws:iam::A:role/R``. Other ARNs are compared as they are."""
    if not arn or not arn.startswith("arn:"):
        return arn
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return arn
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    if service == "iam" and resource.startswith("role/"):
        return f"arn:{partition}:iam::{account}:role/{resource.rsplit('/', 1)[-1]}"
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    return arn


def principal_keys(arns) -> frozenset[str]:
    return frozenset(principal_key(a) for a in arns)


@dataclass(frozen=True)
class Context:
    """What the rules protect, built from the config by :func:`context_from_config`."""

    accounts: frozenset[str]
    source_account: str
    tables: dict[str, frozenset[str]]  # protected table name -> principal keys allowed to touch its data
    allowed_principals: frozenset[str]  # principal keys that may restore/import (and touch any table's data)
    buckets: frozenset[str]  # backup, replica and trail buckets
    export_buckets: frozenset[str]  # where exports of our tables may go
    trail_names: frozenset[str]
    kms_keys: frozenset[str] = frozenset()  # key ids or ARNs; empty means every key is watched
    required_data_resources: tuple[tuple[str, str], ...] = ()  # (resources.type, ARN) our trail must log
    region: str | None = None  # the protected tables' region; None: any
    bucket_retention_days: dict[str, int] = field(default_factory=dict)  # bucket -> how long it must keep data
    min_pitr_days: int = 35  # PITR recovery period the tables must keep
    max_reads_per_hour: int = 1000  # reads by an unlisted principal above which the finding is high
    arn_tables: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)  # memo

    def allowed(self, table: str, principal: str | None) -> bool:
        return principal_key(principal) in self.tables[table]

    def table_of_arn(self, arn: str) -> str | None:
        """The protected table a table, index, stream or backup ARN names (source account, our region)."""
        if arn in self.arn_tables:
            return self.arn_tables[arn]
        parts = arn.split(":", 5)
        table = None
        if len(parts) == 6 and parts[0] == "arn" and parts[4] == self.source_account and \
                parts[5].startswith("table/") and (not self.region or parts[3] == self.region):
            name = parts[5].split("/")[1]
            table = name if name in self.tables else None
        if len(self.arn_tables) < 100_000:
            self.arn_tables[arn] = table
        return table


def context_from_config(config) -> Context:
    audit = config.audit
    common = principal_keys(audit.allowed_principals)
    accounts = {config.accounts.source.account_id, config.accounts.backup.account_id, *audit.accounts}
    if config.accounts.audit:
        accounts.add(config.accounts.audit.account_id)
    return Context(
        accounts=frozenset(accounts),
        source_account=config.accounts.source.account_id,
        tables={t.name: principal_keys(t.allowed_principals) | common for t in config.tables},
        allowed_principals=common,
        buckets=frozenset({config.backup_bucket.name, config.replica_bucket.name, audit.trail_bucket}),
        export_buckets=frozenset({config.backup_bucket.name}),
        trail_names=frozenset({audit.trail_name}),
        kms_keys=frozenset(audit.kms_key_arns),
        required_data_resources=required_data_resources(config),
        region=config.region,
        bucket_retention_days={config.backup_bucket.name: config.backup_bucket.min_retention_days,
                               config.replica_bucket.name: config.replica_bucket.min_retention_days,
                               audit.trail_bucket: audit.min_log_retention_days},
        min_pitr_days=audit.min_pitr_recovery_days,
        max_reads_per_hour=audit.max_reads_per_hour,
    )


def required_data_resources(config) -> tuple[tuple[str, str], ...]:
    """The data events our trail must capture: every protected table, the backup and replica buckets."""
    tables = [("AWS::DynamoDB::Table", config.table_arn(t.name)) for t in config.tables]
    buckets = [("AWS::S3::Object", f"arn:aws:s3:::{name}/")
               for name in (config.backup_bucket.name, config.replica_bucket.name)]
    return tuple(tables + buckets)

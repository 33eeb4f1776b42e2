"""The protected estate, read from one YAML file and validated into typed objects.

The file is ``include/dynamoguard.yaml`` unless ``DYNAMOGUARD_CONFIG`` names another one.
DAG files call :func:`load_config` at parse time, so it stays cheap: one YAML parse,
cached per (path, modification time), no AWS calls.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dynamoguard.drills import sources

CONFIG_ENV_VAR = "DYNAMOGUARD_CONFIG"
# libyaml's safe loader when PyYAML was built with it (same results, about ten times faster: the config is read
# at every DAG parse, and with hundreds of tables the pure-Python loader dominates the parse time)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "include" / "dynamoguard.yaml"

_TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")


class ConfigError(ValueError):
    """The config file is missing, unreadable or invalid; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Account(_Strict):
    """An AWS account reached through an Airflow AWS connection."""

    aws_conn_id: str
    account_id: str

    @field_validator("account_id")
    @classmethod
    def _account_id(cls, value: str) -> str:
        if not _ACCOUNT_ID.match(value):
            raise ValueError("must be a 12-digit AWS account id (quote it in YAML)")
        return value


class Accounts(_Strict):
    source: Account
    backup: Account
    audit: Account | None = None


def _bucket_name(value: str) -> str:
    if not _BUCKET_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid S3 bucket name")
    return value


class BackupBucket(_Strict):
    """Where nightly exports land, and the Object Lock policy they must carry."""

    name: str
    prefix: str = "exports"
    lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    allow_governance: bool = False
    min_retention_days: int = Field(35, ge=1, le=36500)
    enforce_retention: bool = False
    sweep_schedule: str | None = "0 4 * * 6"  # weekly re-check of every export still under retention

    _name = field_validator("name")(_bucket_name)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")


class ReplicaBucket(_Strict):
    """The bucket in the backup account that holds a locked copy of every export."""

    name: str
    mode: Literal["copy", "verify"] = "copy"
    lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    min_retention_days: int = Field(35, ge=1, le=36500)
    replication_lag_minutes: int = Field(15, ge=0)
    # copy mode: objects larger than this are copied in parts (UploadPartCopy) of part_size_mib
    multipart_threshold_mib: int = Field(100, ge=5, le=5120)
    part_size_mib: int = Field(64, ge=5, le=5120)

    _name = field_validator("name")(_bucket_name)


class ReportsBucket(_Strict):
    name: str
    prefix: str = "reports"

    _name = field_validator("name")(_bucket_name)


class Notifications(_Strict):
    sns_topic_arn: str | None = None


class Nightly(_Strict):
    schedule: str = "0 2 * * *"
    export_timeout_minutes: int = Field(180, ge=1)
    poll_interval_seconds: int = Field(30, ge=1)
    max_concurrency: int = Field(32, ge=1, le=512)
    retries: int = Field(2, ge=1)  # per task; >= 1 also covers Airflow's deferral race (apache/airflow#72716)
    retry_delay_seconds: int = Field(300, ge=1)
    max_wait_restorable_minutes: int = Field(30, ge=0)  # wait this long for PITR to reach the export time
    deadline_hours: float = Field(4, gt=0, le=168)  # each night's export verified by this long after the night
    deadline_check_schedule: str = "15 * * * *"  # when the deadline check runs
    max_item_drop_percent: float = Field(20, ge=0, le=100)  # fewer items than the previous export: a finding


class Incremental(_Strict):
    """Hourly incremental exports (INCREMENTAL_EXPORT), chained from the last full export."""

    enabled: bool = False
    interval_minutes: int = Field(60, ge=15, le=1440)  # DynamoDB takes windows of 15 minutes to 24 hours
    view_type: Literal["NEW_IMAGE", "NEW_AND_OLD_IMAGES"] = "NEW_AND_OLD_IMAGES"
    max_wait_restorable_minutes: int = Field(15, ge=0)  # wait this long for PITR to reach the window's end
    max_rpo_minutes: int | None = Field(None, ge=15)  # off-account RPO above this is a finding (default 2 intervals)

    @property
    def rpo_limit_minutes(self) -> int:
        return self.max_rpo_minutes or 2 * self.interval_minutes


DrillSource = Literal[sources.names()]  # the restore sources of dynamoguard.drills.sources


class TableDrill(_Strict):
    source: DrillSource | None = None
    validation: Literal["full", "sample"] | None = None


class Table(_Strict):
    """A protected DynamoDB table."""

    name: str
    ensure_pitr: bool = False
    allowed_principals: list[str] = Field(default_factory=list)
    require_fine_grained_access: bool = False
    drill: TableDrill = Field(default_factory=TableDrill)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _TABLE_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid DynamoDB table name")
        return value


class Drills(_Strict):
    schedule: str | None = "0 5 * * 0"
    aws_conn_id: str | None = None  # the drill role's connection; default: accounts.source
    scratch_prefix: str = "dgdrill-"
    default_source: DrillSource = "export"
    validation: Literal["full", "sample"] = "full"
    sample_size: int = Field(100, ge=1)
    keep_minutes: int = Field(0, ge=0)
    all_tables: bool = False
    restore_timeout_minutes: int = Field(360, ge=1)  # how long to wait for a restore/import to finish
    poll_interval_seconds: int = Field(30, ge=1)  # DescribeImport/DescribeTable polling while deferred
    max_drill_hours: int = Field(24, ge=1)  # a scratch table older than this (+ keep_minutes) is abandoned
    scan_segments: int = Field(8, ge=1, le=1000)  # parallel Scan segments when validating

    @field_validator("scratch_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if len(value) < 3 or not re.match(r"^[a-zA-Z0-9_.-]+$", value):
            raise ValueError("must be at least 3 characters of a-z, A-Z, 0-9, '_', '-', '.'")
        return value


class Audit(_Strict):
    schedule: str = "@hourly"
    trail_name: str
    trail_bucket: str
    trail_prefix: str = ""
    organization_id: str | None = None
    accounts: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    allowed_principals: list[str] = Field(default_factory=list)
    fail_on_high: bool = True
    kms_key_arns: list[str] = Field(default_factory=list)
    min_log_retention_days: int = Field(365, ge=1)  # trail-bucket lifecycle must not expire logs sooner
    max_concurrency: int = Field(32, ge=1, le=512)  # concurrent S3 reads per audit unit
    settle_minutes: int = Field(5, ge=0, le=120)  # wait after the interval ends for its last log files to land
    min_pitr_recovery_days: int = Field(35, ge=1, le=35)  # a protected table's PITR period cut below this is a finding
    max_reads_per_hour: int = Field(1000, ge=1)  # reads of a table by an unlisted principal in an hour above: high
    max_top_findings: int = Field(20, ge=1, le=200)  # findings named in the XCom summary and the alert

    _bucket = field_validator("trail_bucket")(_bucket_name)


class AccessReview(_Strict):
    schedule: str = "@daily"
    aws_conn_id: str | None = None  # the reviewer role's connection; default: accounts.source
    require_permission_boundary: bool = False
    # besides audit.allowed_principals: who may change the backup buckets, and expected cross-account principals
    allowed_principals: list[str] = Field(default_factory=list)


class Tasks(_Strict):
    """Retry policy of every job's tasks (the nightly backup has its own in ``nightly``)."""

    retries: int = Field(2, ge=1)  # >= 1 also covers Airflow's deferral race (apache/airflow#72716)
    retry_delay_seconds: int = Field(120, ge=1)


class Config(_Strict):
    """The whole protected estate."""

    region: str = "us-east-1"
    accounts: Accounts
    backup_bucket: BackupBucket
    replica_bucket: ReplicaBucket
    reports_bucket: ReportsBucket
    notifications: Notifications = Field(default_factory=Notifications)
    tasks: Tasks = Field(default_factory=Tasks)
    nightly: Nightly = Field(default_factory=Nightly)
    incremental: Incremental = Field(default_factory=Incremental)
    tables: list[Table] = Field(min_length=1)
    drills: Drills = Field(default_factory=Drills)
    audit: Audit
    access_review: AccessReview = Field(default_factory=AccessReview)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        names = [t.name for t in self.tables]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tables: duplicate table names {duplicates}")
        clashing = [n for n in names if n.startswith(self.drills.scratch_prefix)]
        if clashing:
            raise ValueError(
                f"drills.scratch_prefix {self.drills.scratch_prefix!r} matches protected tables {clashing}"
            )
        if self.backup_bucket.lock_mode == "GOVERNANCE" and not self.backup_bucket.allow_governance:
            raise ValueError("backup_bucket.lock_mode is GOVERNANCE but backup_bucket.allow_governance is false")
        if self.accounts.source.account_id == self.accounts.backup.account_id:
            raise ValueError("accounts.backup.account_id must differ from accounts.source.account_id")
        return self

    @property
    def drill_conn_id(self) -> str:
        """Connection of the drill role (scratch tables, restores, imports)."""
        return self.drills.aws_conn_id or self.accounts.source.aws_conn_id

    @property
    def audit_conn_id(self) -> str:
        """Connection of the audit role (trail status, trail bucket)."""
        return (self.accounts.audit or self.accounts.source).aws_conn_id

    @property
    def access_review_conn_id(self) -> str:
        """Connection of the access-review role in the source account."""
        return self.access_review.aws_conn_id or self.accounts.source.aws_conn_id

    def table(self, name: str) -> Table:
        """The protected table called ``name``; KeyError names it if it is not protected."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"{name!r} is not a protected table in the config")

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]

    def table_arn(self, name: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.accounts.source.account_id}:table/{name}"


def config_path() -> Path:
    """The config file in use: ``$DYNAMOGUARD_CONFIG`` or ``include/dynamoguard.yaml``."""
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "missing":
            lines.append(f"{key}: required key is missing")
        elif item["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key")
        else:
            lines.append(f"{key}: {item['msg']}")
    return "\n  ".join(lines)


def parse_config(text: str, source: str = "<string>") -> Config:
    """Validate YAML text; ConfigError names ``source`` and each offending key."""
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid config:\n  {_format_errors(exc)}") from None


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> Config:
    return parse_config(Path(path).read_text(), source=path)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read and validate the config file (cached until the file changes)."""
    resolved = Path(path) if path else config_path()
    try:
        mtime = resolved.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"{resolved}: cannot read config file ({exc.strerror})") from None
    return _load_cached(str(resolved), mtime)

"""ImportTable of an export's ``data/`` files: shared by the sources that restore from an export."""

from __future__ import annotations

import hashlib
from typing import Any

from dynamoguard.drills.schema import table_creation_parameters
from dynamoguard.drills.sources._base import Source

IMPORT_ACTIONS = ("dynamodb:ImportTable", "dynamodb:DescribeImport", "s3:ListBucket", "s3:GetObject")


def client_token(*parts: str) -> str:
    """A deterministic idempotency token (so that a retried task does not start a second import)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:36]


def start_import(ddb, export, creation: dict[str, Any], token: str, bucket_owner: str | None = None) -> dict[str, Any]:
    """ImportTable of the export's ``data/`` files (DynamoDB JSON, gzip) into a new table; the import description."""
    source: dict[str, Any] = {"S3Bucket": export.bucket, "S3KeyPrefix": export.data_prefix}
    if bucket_owner:
        source["S3BucketOwner"] = bucket_owner
    return ddb.import_table(
        ClientToken=token,
        S3BucketSource=source,
        InputFormat="DYNAMODB_JSON",
        InputCompressionType="GZIP",
        TableCreationParameters=creation,
    )["ImportTableDescription"]


def import_problem(description: dict[str, Any]) -> str | None:
    """AWS's reason when an import did not load everything (FAILED/CANCELLED, or ErrorCount > 0)."""
    status = description.get("ImportStatus")
    if status != "COMPLETED":
        return (f"import {description.get('ImportArn')} {status}: "
                f"{description.get('FailureCode', '')} {description.get('FailureMessage', '')}".strip())
    errors = int(description.get("ErrorCount") or 0)
    if errors:
        log_group = description.get("CloudWatchLogGroupArn") or "the import's CloudWatch log group"
        return (f"import {description.get('ImportArn')} COMPLETED with ErrorCount {errors} "
                f"(processed {description.get('ProcessedItemCount')}, imported {description.get('ImportedItemCount')};"
                f" see {log_group})")
    return None


class ImportSource(Source):
    """Restores by ImportTable of the restore point's export files, waits until the import is COMPLETED."""

    iam_actions = IMPORT_ACTIONS

    def start(self, ddb, s3, drill: dict[str, Any]) -> dict[str, Any]:
        from dynamoguard.drills.restore_points import read_export

        export = read_export(s3, drill["export"]["bucket"], drill["export"]["summary_key"])
        creation = table_creation_parameters(drill["schema"], drill["scratch_table"])
        description = start_import(ddb, export, creation, client_token(drill["run_id"], drill["scratch_table"]))
        return {"table_arn": description["TableArn"], "import_arn": description["ImportArn"]}

    def trigger(self, drill: dict[str, Any], restore: dict[str, Any], **waits: Any):
        from dynamoguard.triggers import ImportCompletedTrigger

        return ImportCompletedTrigger(import_arn=restore["import_arn"], restore=restore, **waits)

    def outcome(self, ddb, restore: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        description = ddb.describe_import(ImportArn=restore["import_arn"])["ImportTableDescription"]
        facts = {k: description.get(k)
                 for k in ("ImportStatus", "ProcessedItemCount", "ImportedItemCount", "ErrorCount")}
        return facts, import_problem(description)

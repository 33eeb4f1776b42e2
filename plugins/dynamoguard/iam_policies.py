"""Least-privilege IAM policies for every dynamoguard role, rendered from the config.

One identity policy per role (the role behind each job's Airflow connection), the bucket policies of the
backup and replica buckets, and a permissions boundary for all roles. Everything is derived from
``include/dynamoguard.yaml`` (tables, buckets, prefixes, trail, topic, accounts), so the policies name
exactly what the DAGs touch. Render them with ``python -m dynamoguard.iam_policies --out include/iam``.

Rules: actions are never wildcards; resources are ARNs wherever the action supports resource-level
permissions (the few that do not are listed in ``STAR_ONLY``); ``s3:ListBucket`` is limited by
``s3:prefix``; scratch tables may be deleted only while they carry the ``dynamoguard:drill`` tag.
Every statement has a ``Sid`` and a one-sentence reason in ``WHY`` (rendered into the README).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynamoguard.config import Config, load_config

VERSION = "2012-10-17"
DRILL_TAG = "dynamoguard:drill"  # the tag every drill puts on its scratch table (dynamoguard.drills.TAG_DRILL)
BOUNDARY_NAME = "dynamoguard-boundary"

# Actions AWS authorises only against "*" (no resource types in the Service Authorization Reference).
STAR_ONLY = {"dynamodb:ListExports", "dynamodb:ListTables", "cloudtrail:ListPublicKeys",
             "iam:GetAccountAuthorizationDetails"}

WHY: dict[str, str] = {
    # nightly
    "ReadProtectedTables": "Preflight reads each protected table's status and PITR window before exporting.",
    "ExportProtectedTables": "Starts the nightly point-in-time export of each protected table.",
    "EnablePitr": "Turns PITR on for the tables configured with ensure_pitr (only those).",
    "TrackExports": "Polls the export (DescribeExport) until DynamoDB finishes writing it.",
    "FindExports": "Finds an export already started for the same time, so a retry never starts a second one "
                   "(ListExports has no resource-level permission).",
    "WriteExports": "DynamoDB writes the export files with the caller's permissions, under the table's prefix only.",
    "ListExportPrefixes": "Lists the export files (verification, Object Lock check and retention sweep, replica "
                          "comparison), only under the backup prefix.",
    "ReadExports": "Reads manifests and data files and HEADs every object under the backup prefix (the sweep "
                   "re-checks every export still under retention); the retention and legal-hold reads make S3 return "
                   "the lock fields in HEAD.",
    "CheckBackupBucket": "Checks that the backup bucket is versioned and has Object Lock enabled.",
    "EnforceRetention": "Extends retention of export objects below the policy (enforce_retention only).",
    "ReadReplicationConfig": "Verify mode: checks that S3 replication covers the export prefix.",
    "PublishAlerts": "Publishes failure and finding notifications to the configured SNS topic.",
    # backup account
    "ListReplicaPrefixes": "Lists the replicas under the protected tables' prefixes to compare them with the "
                           "exports.",
    "ReadReplicas": "HEADs and reads replicas to compare checksums and lock state (and to restore them in a "
                    "replica drill).",
    "WriteReplicas": "Copies each export object into the replica bucket with its Object Lock retention, aborting a "
                     "failed multipart copy.",
    "ReadReplicaBucketPolicy": "Access review of the backup account: reads the replica bucket's policy.",
    "ReadSourceExports": "Reads the export objects in the source account as the source of the cross-account copy.",
    "ReviewBackupAccount": "Access review of the backup account: every principal and policy "
                           "(GetAccountAuthorizationDetails has no resource-level permission).",
    "ListSourceExports": "Lets S3 answer 404, not 403, when an export object the copy reads is missing (S3 needs "
                         "s3:ListBucket on the key for that; the bucket policy must allow it too).",
    "ReadReplicaOwnership": "Verify mode: replicas belong to the backup account if the replica bucket enforces "
                            "bucket-owner ownership (S3 Object Ownership).",
    "ReadBackupAccountPolicies": "Reads an attached managed policy of the backup account that "
                                 "GetAccountAuthorizationDetails left out (its own or an AWS managed one).",
    "ReplicaDrillTables": "Replica drills: imports the replica into a scratch table, tags, reads and describes it.",
    "ReplicaDrillDeleteScratch": "Replica drills: deletes a scratch table, only while it carries the drill tag.",
    "ReplicaDrillFindScratch": "The sweeper lists tables to find abandoned scratch tables (ListTables has no "
                               "resource-level permission).",
    "ReplicaDrillImportLogs": "ImportTable finds and writes its error log in CloudWatch Logs (/aws-dynamodb/* log "
                              "groups) with the caller's permissions.",
    "ReplicaDrillApplyIncrementals": "incremental_replica drills write the incremental windows onto the imported "
                                     "scratch table (BatchWriteItem of puts and deletes).",
    "IncrementalFindings": "The hourly incremental exports keep their findings and the off-account RPO per table "
                           "(job incremental).",
    "ListIncrementalFindings": "Reading a table's incremental findings for the first time: a missing object reads "
                               "as 404, not 403.",
    # drill
    "DescribeSourceTables": "Reads the protected table's key schema and indexes to compare the restored table with "
                            "it.",
    "RestoreFromPitr": "PITR drills restore the protected table (read-only for the source) into a scratch table.",
    "ScratchTables": "Creates (import or restore), tags, describes, reads and validates scratch tables; restores "
                     "need the item actions on the target table.",
    "DeleteScratchTables": "Deletes a scratch table, only while it carries the drill tag.",
    "FindScratchTables": "The sweeper lists tables to find abandoned scratch tables (ListTables has no "
                         "resource-level permission).",
    "ListDrillExports": "Finds the newest verified export of the drilled table.",
    "ReadDrillExports": "Reads the export's manifests and data files (and DynamoDB reads them for ImportTable).",
    "ImportLogs": "ImportTable finds and writes its error log in CloudWatch Logs (/aws-dynamodb/* log groups) with "
                  "the caller's permissions.",
    "WriteDrillRecords": "Writes the drill record (result, RTO, RPO) to the reports bucket.",
    "ListNightlyFindings": "A finding scope not recorded yet reads as 404 (NoSuchKey), not 403, only for a caller "
                           "that may list its key.",
    "ListExportVersions": "Weekly re-verification: the version history of every export object (overwrite and "
                          "delete attempts the lock kept the original from).",
    "ListReplicaVersions": "Weekly re-verification of the replica bucket: the version history of every replica.",
    "ListDrillFindings": "A drill finding scope not recorded yet reads as 404 (NoSuchKey), not 403.",
    "NightlyFindings": "Reads and updates the findings (with summary and history) of the export verification, the "
                       "weekly re-verification and the backup deadline check.",
    "DrillFindings": "Reads and updates the drill and scratch-sweep findings (with the drill summary and history).",
    "CheckFindings": "Reads and updates the findings (with summary) of the Object Lock check and sweep and of the "
                     "replica step.",
    "ListCheckFindings": "An Object Lock or replica finding scope not recorded yet reads as 404 (NoSuchKey), not 403.",
    "AuditFindings": "Reads and updates the CloudTrail audit's findings (with summary) per table and account-wide.",
    "ListAuditFindings": "An audit finding scope not recorded yet reads as 404 (NoSuchKey), not 403.",
    "AccessFindings": "Reads and updates the access review's findings (with summary) per table and account-wide.",
    "ListAccessFindings": "An access finding scope not recorded yet reads as 404 (NoSuchKey), not 403.",
    # audit
    "ReadTrail": "Trail health: the trail's configuration, logging status and event selectors.",
    "ListTrailKeys": "Digest validation: CloudTrail's public keys (ListPublicKeys has no resource-level permission).",
    "ListTrailLogs": "Lists the log and digest files of the audited accounts.",
    "ReadTrailLogs": "Reads the log and digest files.",
    "CheckTrailBucket": "Trail health: versioning, Object Lock and lifecycle of the trail bucket.",
    "DecryptTrailLogs": "S3 decrypts SSE-KMS log files with the caller's kms:Decrypt permission.",
    "ListAuditReports": "Lets S3 answer 404, not 403, when a report part the audit reads back is missing (S3 "
                        "needs s3:ListBucket on the key for that).",
    "WriteAuditReports": "Writes and reads back the audit report parts and the interval's report.",
    # access review
    "ReviewSourceAccount": "Access review of the source account: every principal and policy "
                           "(GetAccountAuthorizationDetails has no resource-level permission).",
    "ReadSourceAccountPolicies": "Reads an attached managed policy that GetAccountAuthorizationDetails left out "
                                 "(the account's own or an AWS managed one).",
    "ReadTablePolicies": "Reads the protected tables' resource-based policies.",
    "ReadBackupBucketPolicy": "Reads the backup bucket's policy.",
    "ListAccessReports": "Finds the previous run's report to compare with.",
    "WriteAccessReports": "Writes the snapshots and the JSON/HTML report and reads them back.",
    # bucket policies
    "AllowBackupRoleReadExports": "Lets the backup account's role read the exports for the cross-account copy.",
    "AllowBackupRoleListExports": "Lets the backup account's role list the export prefixes, so that a missing "
                                  "export object is a 404, not a 403, for the cross-account copy.",
    "DenyDeletes": "Nobody deletes backups or the bucket, whatever their IAM policies say (lifecycle expiry after "
                   "retention is not an API call and still works).",
    "DenyGovernanceBypass": "Nobody shortens, removes or changes the mode of GOVERNANCE retention (dynamoguard never "
                            "needs the bypass).",
    "DenyInsecureTransport": "Refuses every request not made over TLS.",
    # boundary
    "BoundaryScopedActions": "Every action the role policies grant on a resource, on the union of their resources "
                             "only.",
    "BoundaryUnscopedActions": "The actions AWS cannot scope to a resource, and nothing else, on '*'.",
    "DenyDestroyingBackups": "Even if a role policy is widened, no role under the boundary can delete or unprotect "
                             "the protected tables or the backups.",
}

_IMPORT_LOGS = ("ImportTable writes its error log to the /aws-dynamodb/ log groups with the caller's permissions "
                "(the emulator writes no log).")
# Actions granted although the test suite's calls cannot use them: AWS needs them only on real AWS.
REAL_AWS_ONLY: dict[str, str] = {
    "s3:AbortMultipartUpload@WriteExports": "DynamoDB cleans up failed multipart uploads of export files with the "
                                            "caller's permissions.",
    "s3:PutObjectAcl@WriteExports": "Listed by the DynamoDB export documentation as required on the destination.",
    "s3:AbortMultipartUpload@WriteReplicas": "Only a failed multipart copy is aborted; the tests' copies succeed.",
    "logs:CreateLogGroup@ImportLogs": _IMPORT_LOGS,
    "logs:CreateLogStream@ImportLogs": _IMPORT_LOGS,
    "logs:DescribeLogGroups@ImportLogs": _IMPORT_LOGS,
    "logs:DescribeLogStreams@ImportLogs": _IMPORT_LOGS,
    "logs:PutLogEvents@ImportLogs": _IMPORT_LOGS,
    "logs:PutRetentionPolicy@ImportLogs": _IMPORT_LOGS,
    "logs:CreateLogGroup@ReplicaDrillImportLogs": _IMPORT_LOGS,
    "logs:CreateLogStream@ReplicaDrillImportLogs": _IMPORT_LOGS,
    "logs:DescribeLogGroups@ReplicaDrillImportLogs": _IMPORT_LOGS,
    "logs:DescribeLogStreams@ReplicaDrillImportLogs": _IMPORT_LOGS,
    "logs:PutLogEvents@ReplicaDrillImportLogs": _IMPORT_LOGS,
    "logs:PutRetentionPolicy@ReplicaDrillImportLogs": _IMPORT_LOGS,
    "kms:Decrypt@DecryptTrailLogs": "S3 calls KMS on the caller's behalf for SSE-KMS log files.",
}

# The DynamoDB developer guide's ImportTable example policy scopes all of these, DescribeLogGroups included, to
# the /aws-dynamodb/* log groups.
IMPORT_LOG_ACTIONS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
                      "logs:DescribeLogStreams", "logs:PutLogEvents",
                      "logs:PutRetentionPolicy"]
SCRATCH_ACTIONS = [
    "dynamodb:ImportTable", "dynamodb:DescribeImport", "dynamodb:DescribeTable", "dynamodb:TagResource",
    "dynamodb:ListTagsOfResource", "dynamodb:Scan", "dynamodb:BatchGetItem",
]
# RestoreTableToPointInTime also checks these on the target table (DynamoDB developer guide, PITR permissions).
RESTORE_TARGET_ACTIONS = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
                          "dynamodb:Query", "dynamodb:BatchWriteItem"]


@dataclass(frozen=True)
class Role:
    """One IAM role: which connection uses it, who assumes it, and its identity policy."""

    key: str
    name: str
    account_id: str
    conn_id: str
    assumed_by: str
    purpose: str
    policy: dict[str, Any] = field(compare=False)

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{self.name}"


def statement(sid: str, actions: list[str], resources: list[str] | str, condition: dict | None = None,
              effect: str = "Allow", principal: Any = None) -> dict[str, Any]:
    """One policy statement; ``sid`` must have a reason in ``WHY``."""
    if sid not in WHY:
        raise KeyError(f"statement {sid} has no reason in WHY")
    out: dict[str, Any] = {"Sid": sid, "Effect": effect}
    if principal is not None:
        out["Principal"] = principal
    out["Action"] = sorted(set(actions))
    out["Resource"] = resources if isinstance(resources, str) else sorted(set(resources))
    if condition:
        out["Condition"] = condition
    return out


def document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": statements}


class Arns:
    """ARNs of everything the config names."""

    def __init__(self, config: Config):
        self.config = config

    def table(self, name: str, account: str | None = None) -> str:
        return f"arn:aws:dynamodb:{self.config.region}:{account or self.config.accounts.source.account_id}:table/{name}"

    def tables(self, suffix: str = "") -> list[str]:
        return [self.table(t.name) + suffix for t in self.config.tables]

    def scratch(self, account: str | None = None) -> str:
        return self.table(f"{self.config.drills.scratch_prefix}*", account)

    @staticmethod
    def bucket(name: str) -> str:
        return f"arn:aws:s3:::{name}"

    @staticmethod
    def objects(bucket: str, prefix: str) -> str:
        return f"arn:aws:s3:::{bucket}/{prefix}*"

    def backup_prefix(self) -> str:
        """The whole backup prefix (the retention sweep re-checks every export under it)."""
        return f"{self.config.backup_bucket.prefix}/" if self.config.backup_bucket.prefix else ""

    def export_prefixes(self) -> list[str]:
        """Key prefixes of the protected tables' exports (``<prefix>/<table>/``)."""
        return [f"{self.backup_prefix()}{t.name}/" for t in self.config.tables]

    def export_objects(self, bucket: str) -> list[str]:
        return [self.objects(bucket, p) for p in self.export_prefixes()]

    def reports(self, folder: str) -> str:
        prefix = self.config.reports_bucket.prefix.strip("/")
        return f"{prefix}/{folder}/" if prefix else f"{folder}/"

    def import_logs(self, account: str) -> str:
        return f"arn:aws:logs:{self.config.region}:{account}:log-group:/aws-dynamodb/*"

    def trail_prefixes(self) -> list[str]:
        audit = self.config.audit
        base = "/".join(p for p in (audit.trail_prefix.strip("/"), "AWSLogs", audit.organization_id) if p) + "/"
        return [f"{base}{account}/" for account in audit.accounts] or [base]


# incremental_replica drills write the incremental windows onto the imported scratch table
INCREMENTAL_APPLY_ACTIONS = ["dynamodb:BatchWriteItem"]
NIGHTLY_JOBS = ("export", "reverify_exports", "reverify_replicas", "deadline")  # findings kept by the nightly role
DRILL_JOBS = ("drill", "drill_sweep")
CHECK_JOBS = ("object_lock", "object_lock_sweep", "replica")  # findings kept by the nightly role's checks


def _findings_statements(config: Config, sid: str, jobs: tuple[str, ...]) -> list[dict[str, Any]]:
    """``<sid>``: read and update the findings of ``jobs``; ``List<sid>``: list their keys (404, not 403)."""
    arns = Arns(config)
    folders = [arns.reports(f"findings/{job}") for job in jobs]
    return [statement(sid, ["s3:GetObject", "s3:PutObject"],
                      [arns.objects(config.reports_bucket.name, folder) for folder in folders]),
            statement(f"List{sid}", ["s3:ListBucket"], [arns.bucket(config.reports_bucket.name)],
                      _prefix_condition(folders))]


def _prefix_condition(prefixes: list[str]) -> dict[str, Any] | None:
    if "" in prefixes:
        return None  # the whole bucket
    return {"StringLike": {"s3:prefix": sorted({f"{p}*" for p in prefixes})}}


def _sns(config: Config) -> list[dict[str, Any]]:
    topic = config.notifications.sns_topic_arn
    return [statement("PublishAlerts", ["sns:Publish"], [topic])] if topic else []


def nightly_policy(config: Config) -> dict[str, Any]:
    arns = Arns(config)
    bucket = config.backup_bucket
    export_objects = arns.export_objects(bucket.name)
    pitr = [arns.table(t.name) for t in config.tables if t.ensure_pitr]
    statements = [
        statement("ReadProtectedTables", ["dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups"],
                  arns.tables()),
        statement("ExportProtectedTables", ["dynamodb:ExportTableToPointInTime"], arns.tables()),
        *([statement("EnablePitr", ["dynamodb:UpdateContinuousBackups"], pitr)] if pitr else []),
        statement("TrackExports", ["dynamodb:DescribeExport"], arns.tables("/export/*")),
        statement("FindExports", ["dynamodb:ListExports"], "*"),
        statement("WriteExports", ["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"], export_objects),
        statement("ListExportPrefixes", ["s3:ListBucket"], [arns.bucket(bucket.name)],
                  _prefix_condition([arns.backup_prefix()])),
        statement("ReadExports", ["s3:GetObject", "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
                  [arns.objects(bucket.name, arns.backup_prefix())]),
        statement("CheckBackupBucket", ["s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration"],
                  [arns.bucket(bucket.name)]),
        statement("NightlyFindings", ["s3:GetObject", "s3:PutObject"],
                  [arns.objects(config.reports_bucket.name, arns.reports(f"findings/{job}")) for job in NIGHTLY_JOBS]),
        statement("ListNightlyFindings", ["s3:ListBucket"], [arns.bucket(config.reports_bucket.name)],
                  _prefix_condition([arns.reports(f"findings/{job}") for job in NIGHTLY_JOBS])),
        statement("ListExportVersions", ["s3:ListBucketVersions"], [arns.bucket(bucket.name)],
                  _prefix_condition([arns.backup_prefix()])),
        *_findings_statements(config, "CheckFindings", CHECK_JOBS),
        *_findings_statements(config, "IncrementalFindings", ("incremental",)),
    ]
    if bucket.enforce_retention:  # never s3:BypassGovernanceRetention: object_lock.bypass_fix names that step
        statements.append(statement("EnforceRetention", ["s3:PutObjectRetention"],
                                    [arns.objects(bucket.name, arns.backup_prefix())]))
    if config.replica_bucket.mode == "verify":
        statements.append(statement("ReadReplicationConfig", ["s3:GetReplicationConfiguration"],
                                    [arns.bucket(bucket.name)]))
    return document(statements + _sns(config))


def _review_statements(sid: str, policies_sid: str, account: str) -> list[dict[str, Any]]:
    """GetAccountAuthorizationDetails, and GetPolicy/GetPolicyVersion for an attached managed policy the listing
    leaves out (the account's own and AWS managed ones)."""
    return [statement(sid, ["iam:GetAccountAuthorizationDetails"], "*"),
            statement(policies_sid, ["iam:GetPolicy", "iam:GetPolicyVersion"],
                      [f"arn:aws:iam::{account}:policy/*", "arn:aws:iam::aws:policy/*"])]


def backup_policy(config: Config) -> dict[str, Any]:
    arns = Arns(config)
    account = config.accounts.backup.account_id
    replica = config.replica_bucket.name
    replica_objects = arns.export_objects(replica)
    scratch = arns.scratch(account)
    return document([
        statement("ListReplicaPrefixes", ["s3:ListBucket"], [arns.bucket(replica)],
                  _prefix_condition(arns.export_prefixes())),
        statement("ReadReplicas", ["s3:GetObject", "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
                  replica_objects),
        statement("WriteReplicas", ["s3:PutObject", "s3:PutObjectRetention", "s3:AbortMultipartUpload"],
                  replica_objects),
        statement("ListReplicaVersions", ["s3:ListBucketVersions"], [arns.bucket(replica)],
                  _prefix_condition([arns.backup_prefix()])),
        statement("ReadReplicaBucketPolicy", ["s3:GetBucketPolicy"], [arns.bucket(replica)]),
        *([statement("ReadReplicaOwnership", ["s3:GetBucketOwnershipControls"], [arns.bucket(replica)])]
          if config.replica_bucket.mode == "verify" else []),
        statement("ReadSourceExports", ["s3:GetObject"], arns.export_objects(config.backup_bucket.name)),
        statement("ListSourceExports", ["s3:ListBucket"], [arns.bucket(config.backup_bucket.name)],
                  _prefix_condition(arns.export_prefixes())),
        *_review_statements("ReviewBackupAccount", "ReadBackupAccountPolicies", account),
        statement("ReplicaDrillTables", SCRATCH_ACTIONS, [scratch, scratch + "/import/*"]),
        statement("ReplicaDrillDeleteScratch", ["dynamodb:DeleteTable"], [scratch],
                  {"Null": {f"aws:ResourceTag/{DRILL_TAG}": "false"}}),
        statement("ReplicaDrillFindScratch", ["dynamodb:ListTables"], "*"),
        statement("ReplicaDrillImportLogs", IMPORT_LOG_ACTIONS, [arns.import_logs(account)]),
        statement("ReplicaDrillApplyIncrementals", INCREMENTAL_APPLY_ACTIONS, [scratch]),
    ])


def drill_policy(config: Config) -> dict[str, Any]:
    arns = Arns(config)
    account = config.accounts.source.account_id
    scratch = arns.scratch()
    bucket = config.backup_bucket.name
    return document([
        statement("DescribeSourceTables", ["dynamodb:DescribeTable"], arns.tables()),
        statement("RestoreFromPitr", ["dynamodb:RestoreTableToPointInTime"], arns.tables()),
        statement("ScratchTables", SCRATCH_ACTIONS + RESTORE_TARGET_ACTIONS, [scratch, scratch + "/import/*"]),
        statement("DeleteScratchTables", ["dynamodb:DeleteTable"], [scratch],
                  {"Null": {f"aws:ResourceTag/{DRILL_TAG}": "false"}}),
        statement("FindScratchTables", ["dynamodb:ListTables"], "*"),
        statement("ListDrillExports", ["s3:ListBucket"], [arns.bucket(bucket)],
                  _prefix_condition(arns.export_prefixes())),
        statement("ReadDrillExports", ["s3:GetObject"], arns.export_objects(bucket)),
        statement("ImportLogs", IMPORT_LOG_ACTIONS, [arns.import_logs(account)]),
        statement("WriteDrillRecords", ["s3:PutObject"],
                  [arns.objects(config.reports_bucket.name, arns.reports("drills"))]),
        statement("DrillFindings", ["s3:GetObject", "s3:PutObject"],
                  [arns.objects(config.reports_bucket.name, arns.reports(f"findings/{job}")) for job in DRILL_JOBS]),
        statement("ListDrillFindings", ["s3:ListBucket"], [arns.bucket(config.reports_bucket.name)],
                  _prefix_condition([arns.reports(f"findings/{job}") for job in DRILL_JOBS])),
    ])


def audit_policy(config: Config) -> dict[str, Any]:
    arns = Arns(config)
    audit = config.audit
    trail = f"arn:aws:cloudtrail:{config.region}:{config.accounts.source.account_id}:trail/{audit.trail_name}"
    reports = arns.reports("cloudtrail_audit")
    statements = [
        statement("ReadTrail", ["cloudtrail:GetTrail", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"],
                  [trail]),
        statement("ListTrailKeys", ["cloudtrail:ListPublicKeys"], "*"),
        statement("ListTrailLogs", ["s3:ListBucket"], [arns.bucket(audit.trail_bucket)],
                  _prefix_condition(arns.trail_prefixes())),
        statement("ReadTrailLogs", ["s3:GetObject"], [arns.objects(audit.trail_bucket, p)
                                                       for p in arns.trail_prefixes()]),
        statement("CheckTrailBucket", ["s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration",
                                       "s3:GetLifecycleConfiguration"], [arns.bucket(audit.trail_bucket)]),
    ]
    if audit.kms_key_arns:
        statements.append(statement("DecryptTrailLogs", ["kms:Decrypt"], list(audit.kms_key_arns)))
    statements += [
        statement("ListAuditReports", ["s3:ListBucket"], [arns.bucket(config.reports_bucket.name)],
                  _prefix_condition([reports])),
        statement("WriteAuditReports", ["s3:PutObject", "s3:GetObject"],
                  [arns.objects(config.reports_bucket.name, reports)]),
        *_findings_statements(config, "AuditFindings", ("audit",)),
    ]
    return document(statements)


def access_review_policy(config: Config) -> dict[str, Any]:
    arns = Arns(config)
    reports = arns.reports("access-review")
    return document([
        *_review_statements("ReviewSourceAccount", "ReadSourceAccountPolicies", config.accounts.source.account_id),
        statement("ReadTablePolicies", ["dynamodb:GetResourcePolicy"], arns.tables()),
        statement("ReadBackupBucketPolicy", ["s3:GetBucketPolicy"], [arns.bucket(config.backup_bucket.name)]),
        statement("ListAccessReports", ["s3:ListBucket"], [arns.bucket(config.reports_bucket.name)],
                  _prefix_condition([reports])),
        statement("WriteAccessReports", ["s3:PutObject", "s3:GetObject"],
                  [arns.objects(config.reports_bucket.name, reports)]),
        *_findings_statements(config, "AccessFindings", ("access",)),
    ])


def roles(config: Config) -> list[Role]:
    """Every role, with the connection whose credentials act as it."""
    source, backup = config.accounts.source.account_id, config.accounts.backup.account_id
    audit_account = (config.accounts.audit or config.accounts.source).account_id
    workers = "Airflow workers and triggerer"
    return [
        Role("nightly", "dynamoguard-nightly", source, config.accounts.source.aws_conn_id,
             f"{workers} (their own credentials, or role_arn in the connection)",
             "nightly export, verification, Object Lock checks and sweep, source side of the replica copy, alerts",
             nightly_policy(config)),
        Role("backup", "dynamoguard-backup", backup, config.accounts.backup.aws_conn_id,
             f"{workers}, through role_arn of the connection (cross-account AssumeRole)",
             "replica copy/verify, replica drills and the access review in the backup account",
             backup_policy(config)),
        Role("drill", "dynamoguard-drill", source, config.drill_conn_id,
             f"{workers}, through role_arn of the connection", "restore drills into scratch tables",
             drill_policy(config)),
        Role("audit", "dynamoguard-audit", audit_account, config.audit_conn_id,
             f"{workers}, through role_arn of the connection", "CloudTrail trail health and log audit",
             audit_policy(config)),
        Role("access-review", "dynamoguard-access-review", source, config.access_review_conn_id,
             f"{workers}, through role_arn of the connection", "access review of the source account",
             access_review_policy(config)),
    ]


def _protecting_bucket_statements(config: Config, bucket: str) -> list[dict[str, Any]]:
    arns = Arns(config)
    return [
        statement("DenyDeletes", ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket"],
                  [arns.bucket(bucket), f"{arns.bucket(bucket)}/*"], effect="Deny", principal="*"),
        statement("DenyGovernanceBypass", ["s3:BypassGovernanceRetention"], [f"{arns.bucket(bucket)}/*"],
                  effect="Deny", principal="*"),
        statement("DenyInsecureTransport", ["s3:*"], [arns.bucket(bucket), f"{arns.bucket(bucket)}/*"],
                  {"Bool": {"aws:SecureTransport": "false"}}, effect="Deny", principal="*"),
    ]


def bucket_policies(config: Config) -> dict[str, dict[str, Any]]:
    """Bucket name -> bucket policy, for the backup (export) bucket and the replica bucket."""
    by_key = {r.key: r for r in roles(config)}
    arns = Arns(config)
    exports = config.backup_bucket
    return {
        exports.name: document([
            statement("AllowBackupRoleReadExports", ["s3:GetObject"], arns.export_objects(exports.name),
                      principal={"AWS": by_key["backup"].arn}),
            statement("AllowBackupRoleListExports", ["s3:ListBucket"], [arns.bucket(exports.name)],
                      _prefix_condition(arns.export_prefixes()), principal={"AWS": by_key["backup"].arn}),
            *_protecting_bucket_statements(config, exports.name),
        ]),
        config.replica_bucket.name: document(_protecting_bucket_statements(config, config.replica_bucket.name)),
    }


def boundary_policy(config: Config) -> dict[str, Any]:
    """The permissions boundary of every role: no action outside the roles' grants, on no resource outside
    theirs, and never destruction of the backups. A ceiling (conditions stay in the role policies), compact
    enough for IAM's 6,144-character limit on managed policies."""
    arns = Arns(config)
    scoped_actions, resources, star_actions = set(), set(), set()
    for role in roles(config):
        for stmt in role.policy["Statement"]:
            if stmt["Resource"] == "*":
                star_actions.update(stmt["Action"])
            else:
                scoped_actions.update(stmt["Action"])
                resources.update(stmt["Resource"])
    buckets = [config.backup_bucket.name, config.replica_bucket.name]
    return document([
        statement("BoundaryScopedActions", sorted(scoped_actions), sorted(resources)),
        statement("BoundaryUnscopedActions", sorted(star_actions), "*"),
        statement("DenyDestroyingBackups", [
            "dynamodb:DeleteTable", "dynamodb:DeleteBackup", "dynamodb:PutResourcePolicy",
            "dynamodb:DeleteResourcePolicy", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteBucket",
            "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketObjectLockConfiguration",
            "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning",
        ], arns.tables() + [arns.bucket(b) for b in buckets] + [f"{arns.bucket(b)}/*" for b in buckets],
            effect="Deny"),
    ])


def render(config: Config) -> dict[str, dict[str, Any]]:
    """File name -> policy document: ``role-<key>.json``, ``bucket-<name>.json``, ``boundary.json``."""
    files = {f"role-{r.key}.json": r.policy for r in roles(config)}
    files.update({f"bucket-{name}.json": doc for name, doc in bucket_policies(config).items()})
    files["boundary.json"] = boundary_policy(config)
    return files


def _short(values: Any) -> str:
    items = [values] if isinstance(values, str) else list(values)
    return ", ".join(f"`{v}`" for v in items)


def statement_lines(doc: dict[str, Any]) -> list[str]:
    """One Markdown bullet per statement: Sid, effect, actions, resources, condition, reason."""
    lines = []
    for stmt in doc["Statement"]:
        sid = stmt["Sid"]
        condition = f"; if {json.dumps(stmt['Condition'])}" if "Condition" in stmt else ""
        principal = f" to {json.dumps(stmt['Principal'])}" if "Principal" in stmt else ""
        lines.append(f"- **{sid}** ({stmt['Effect']}{principal} {_short(stmt['Action'])} on "
                     f"{_short(stmt['Resource'])}{condition}): {WHY[sid]}")
    return lines


def readme(config: Config) -> str:
    """include/iam/README.md: who assumes each role and why each statement exists."""
    out = [
        "# IAM policies (rendered)", "",
        "Generated by `make iam-policies` (`python -m dynamoguard.iam_policies --out include/iam`) from "
        "`include/dynamoguard.yaml`; do not edit by hand. tests/iam prove that every AWS call the test suite makes "
        "is allowed by the policy of the role whose connection made it, that every granted action is used "
        "(or needed only on real AWS, listed below) and that parliament finds nothing.", "",
        "| Role | Account | Airflow connection | Assumed by | Why | Policy |", "|---|---|---|---|---|---|",
    ]
    for role in roles(config):
        out.append(f"| `{role.name}` | {role.account_id} | `{role.conn_id}` | {role.assumed_by} | {role.purpose} | "
                   f"[role-{role.key}.json](role-{role.key}.json) |")
    out += ["", "Attach [boundary.json](boundary.json) as the permissions boundary of every role. A job whose "
            "connection is shared with another job needs both roles' statements on that role.", ""]
    for role in roles(config):
        out += [f"## {role.name} (`role-{role.key}.json`)", "", *statement_lines(role.policy), ""]
    for name, doc in bucket_policies(config).items():
        out += [f"## Bucket policy of `{name}` (`bucket-{name}.json`)", "", *statement_lines(doc), ""]
    out += [f"## Permissions boundary `{BOUNDARY_NAME}` (`boundary.json`)", "",
            "A ceiling for every role: even a widened role policy cannot reach other actions or resources, nor "
            "destroy the protected tables and the backups (conditions are enforced by the role policies).", "",
            *statement_lines(boundary_policy(config)), "",
            "## Granted although the tests cannot use them (needed on real AWS only)", ""]
    out += [f"- `{key.replace('@', '` in **')}**: {why}" for key, why in REAL_AWS_ONLY.items()]
    return "\n".join(out) + "\n"


def write(config: Config, out: Path) -> list[Path]:
    """Write every policy and the README under ``out``; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    files = {name: json.dumps(doc, indent=2) + "\n" for name, doc in render(config).items()}
    files["README.md"] = readme(config)
    written = []
    for name, text in sorted(files.items()):
        path = out / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("include/iam"), help="directory for the *.json files")
    parser.add_argument("--config", type=Path, default=None, help="config file (default: $DYNAMOGUARD_CONFIG or "
                                                                  "include/dynamoguard.yaml)")
    args = parser.parse_args(argv)
    for path in write(load_config(args.config), args.out):
        print(path)


if __name__ == "__main__":
    main()

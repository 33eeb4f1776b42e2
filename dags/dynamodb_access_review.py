"""
### Daily access review of the protected tables and their backups

Who can destroy, weaken or read the protected DynamoDB tables, the backup bucket (source account) and
the replica bucket (backup account)?

1. `collect_source`, `collect_backup`: GetAccountAuthorizationDetails (users, groups, roles, inline and
   managed policies, permissions boundaries), the tables' resource-based policies and the buckets'
   policies; each account's snapshot is stored next to the report.
2. `review`: evaluates every sensitive action (destructive: DeleteTable, UpdateContinuousBackups,
   DeleteBackup, UpdateTable, Put/DeleteResourcePolicy, S3 object deletes, PutObjectRetention,
   BypassGovernanceRetention, bucket policy / lifecycle / replication changes; data: item reads and
   writes, ExportTableToPointInTime, GetObject on the backups) for every principal, with Deny precedence,
   wildcards, boundaries and resource policies. Grants behind conditions it cannot decide are shown as
   *conditional*, never as allowed or denied.

Findings: principals outside the allowlists (`tables[].allowed_principals`, `audit.allowed_principals`,
`access_review.allowed_principals`) that can perform destructive actions; wildcard grants; cross-account
or public grants in resource and bucket policies; item access without `dynamodb:LeadingKeys` /
`dynamodb:Attributes` conditions where `tables[].require_fine_grained_access` is set; roles without a
permissions boundary when `access_review.require_permission_boundary` is set.

Output: `s3://<reports_bucket.name>/<reports_bucket.prefix>/access-review/<date>/report.json` and
`report.html` (findings first, then the changes since the previous run, then a who-can-do-what matrix per
resource). The findings are stored per table and account-wide (job `access`) for the dynamoguard page.
New critical/high findings are sent to `notifications.sns_topic_arn`.
"""

from __future__ import annotations

from airflow.sdk import DAG

from dynamoguard.config import load_config
from dynamoguard.dagdefaults import START_DATE, default_args, tags
from dynamoguard.operators.access import AccessReviewOperator, AccessSnapshotOperator

config = load_config()

with DAG(
    dag_id="dynamodb_access_review",
    schedule=config.access_review.schedule,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=tags("access-review", "iam"),
    default_args=default_args(config),
):
    snapshots = {account: AccessSnapshotOperator(task_id=f"collect_{account}", account=account).output
                 for account in ("source", "backup")}
    AccessReviewOperator(task_id="review", snapshots=snapshots)

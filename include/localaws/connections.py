"""Airflow connections that point at the emulator, as ``AIRFLOW_CONN_*`` environment variables.

``aws_default`` acts in the source account with the emulator's static keys; ``aws_backup``
assumes ``BACKUP_ROLE_ARN`` in the backup account, as a production connection would; ``aws_drill``,
``aws_audit`` and ``aws_access_review`` assume the per-job roles in the source account.
These keys are the emulator's fixed local keys, not secrets.
"""

from __future__ import annotations

import json

from include.localaws import ACCESS_KEY, BACKUP_ACCOUNT, REGION, SECRET_KEY, SOURCE_ACCOUNT

BACKUP_ROLE_ARN = f"arn:aws:iam::{BACKUP_ACCOUNT}:role/dynamoguard-backup"
SOURCE_ROLES = {
    "aws_drill": f"arn:aws:iam::{SOURCE_ACCOUNT}:role/dynamoguard-drill",
    "aws_audit": f"arn:aws:iam::{SOURCE_ACCOUNT}:role/dynamoguard-audit",
    "aws_access_review": f"arn:aws:iam::{SOURCE_ACCOUNT}:role/dynamoguard-access-review",
}


def _aws_connection(endpoint_url: str, **extra: str) -> str:
    extras: dict = {"endpoint_url": endpoint_url, "region_name": REGION, **extra}
    if "role_arn" in extra:
        # The provider sends AssumeRole to service_config.sts.endpoint_url, never to the global endpoint_url.
        extras["service_config"] = {"sts": {"endpoint_url": endpoint_url}}
    return json.dumps({"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY, "extra": extras})


def connection_env(endpoint_url: str) -> dict[str, str]:
    """Environment variables defining every connection the DAGs use, against ``endpoint_url``."""
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": _aws_connection(endpoint_url),
        "AIRFLOW_CONN_AWS_BACKUP": _aws_connection(endpoint_url, role_arn=BACKUP_ROLE_ARN),
    }
    for conn_id, role_arn in SOURCE_ROLES.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = _aws_connection(endpoint_url, role_arn=role_arn)
    return env

"""Airflow connections that point at the emulator, as ``AIRFLOW_CONN_*`` environment variables.

``aws_default`` acts in the source account with the emulator's static keys; ``aws_backup``
assumes ``BACKUP_ROLE_ARN`` in the backup account, as a production connection would.
These keys are the emulator's fixed local keys, not secrets.
"""

from __future__ import annotations

import json

from include.localaws import ACCESS_KEY, BACKUP_ACCOUNT, REGION, SECRET_KEY

BACKUP_ROLE_ARN = f"arn:aws:iam::{BACKUP_ACCOUNT}:role/dynamoguard-backup"


def _aws_connection(endpoint_url: str, **extra: str) -> str:
    return json.dumps({
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET_KEY,
        "extra": {"endpoint_url": endpoint_url, "region_name": REGION, **extra},
    })


def connection_env(endpoint_url: str) -> dict[str, str]:
    """Environment variables defining every connection the DAGs use, against ``endpoint_url``."""
    return {
        "AIRFLOW_CONN_AWS_DEFAULT": _aws_connection(endpoint_url),
        "AIRFLOW_CONN_AWS_BACKUP": _aws_connection(endpoint_url, role_arn=BACKUP_ROLE_ARN),
    }

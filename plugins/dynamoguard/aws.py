"""boto3 clients built from Airflow AWS connections.

The modules of this package take plain boto3 clients; this is the one place that turns an
Airflow connection id (credentials, ``role_arn`` to assume, ``endpoint_url``) into such a client,
through the amazon provider's ``AwsBaseHook``.
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config

DEFAULT_POOL_SIZE = 32


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``NoSuchKey``, ``AccessDenied``, ``404`` ...), else ''."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def client_config(max_pool_connections: int = DEFAULT_POOL_SIZE) -> Config:
    """botocore settings for concurrent work: a pool as large as our thread pools, adaptive retries
    so that throttling (503 SlowDown, ThrottlingException) is backed off rather than failed."""
    return Config(
        max_pool_connections=max_pool_connections,
        retries={"mode": "adaptive", "max_attempts": 10},
    )


def client(aws_conn_id: str, service: str, region_name: str | None = None,
           max_pool_connections: int = DEFAULT_POOL_SIZE) -> Any:
    """A boto3 client for ``service`` through the Airflow connection ``aws_conn_id``."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(
        aws_conn_id=aws_conn_id,
        client_type=service,
        region_name=region_name,
        config=client_config(max_pool_connections),
    )
    return hook.get_conn()

"""Record every AWS call the project makes, per Airflow connection, through a botocore event hook.

Every boto3/aiobotocore client the project uses is made by the amazon provider's ``AwsBaseHook``
(``dynamoguard.aws.client``, the provider's triggers, notifiers and hooks). Wrapping the hook's client
and resource factories registers a ``before-parameter-build`` handler (it sees the call's parameters)
on each new client, so each call is recorded with the connection it went through. Clients that tests
build themselves (seeding, planting faults) do not go through the hook and are not recorded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AwsCall:
    conn_id: str
    service: str
    operation: str
    params: tuple[tuple[str, Any], ...]

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


_KEPT_PARAMS = {
    "Bucket", "Key", "CopySource", "TableName", "TableArn", "ExportArn", "ImportArn", "SourceTableName",
    "SourceTableArn", "TargetTableName", "ResourceArn", "TopicArn", "TargetArn", "Name", "S3Bucket", "S3Prefix",
    "S3BucketSource", "TableCreationParameters", "TrailName", "Prefix", "trailNameList",
}


def _keep(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _keep(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_keep(v) for v in value)
    return value


@dataclass
class Recorder:
    calls: set[AwsCall] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    installed: bool = False

    def handler(self, conn_id: str):
        def before_call(params, model, **_):
            kept = {k: v for k, v in params.items() if k in _KEPT_PARAMS}
            if "RequestItems" in params:
                kept["RequestItems"] = [(name, None) for name in params["RequestItems"]]
            call = AwsCall(conn_id, model.service_model.service_name, model.name,
                           tuple(sorted((k, _keep(v)) for k, v in kept.items())))
            with self._lock:
                self.calls.add(call)
        return before_call

    def install(self) -> None:
        """Wrap AwsBaseHook's client factories (idempotent)."""
        if self.installed:
            return
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        recorder = self
        original_client = AwsBaseHook.get_client_type
        original_resource = AwsBaseHook.get_resource_type

        def get_client_type(hook, *args, **kwargs):
            client = original_client(hook, *args, **kwargs)
            client.meta.events.register("before-parameter-build", recorder.handler(hook.aws_conn_id))
            return client

        def get_resource_type(hook, *args, **kwargs):
            resource = original_resource(hook, *args, **kwargs)
            resource.meta.client.meta.events.register("before-parameter-build", recorder.handler(hook.aws_conn_id))
            return resource

        AwsBaseHook.get_client_type = get_client_type
        AwsBaseHook.get_resource_type = get_resource_type
        self.installed = True


RECORDER = Recorder()

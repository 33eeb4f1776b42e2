"""Record every AWS call the project makes, per Airflow connection, through a botocore event hook.

Every boto3/aiobotocore client the project uses is made by the amazon provider's ``AwsBaseHook``
(``dynamoguard.aws.client``, the provider's triggers, notifiers and hooks). Wrapping the hook's client
and resource factories registers a ``before-parameter-build`` handler (it sees the call's parameters)
on each new client, so each call is recorded with the connection it went through and the config file
in effect (tests point ``DYNAMOGUARD_CONFIG`` at variants of the demo config; the policies to check a call
against are rendered from the config it was made under). Clients that tests build themselves (seeding,
planting faults) do not go through the hook and are not recorded.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AwsCall:
    conn_id: str
    service: str
    operation: str
    params: tuple[tuple[str, Any], ...]
    config: str = ""  # digest of the config text in effect (Recorder.configs)

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


_KEPT_PARAMS = {
    "Bucket", "Key", "CopySource", "TableName", "TableArn", "ExportArn", "ImportArn", "SourceTableName",
    "SourceTableArn", "TargetTableName", "ResourceArn", "TopicArn", "TargetArn", "Name", "S3Bucket", "S3Prefix",
    "S3BucketSource", "TableCreationParameters", "TrailName", "Prefix", "trailNameList", "Tags", "PolicyArn",
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
    configs: dict[str, str] = field(default_factory=dict)  # digest -> config text
    # (conn_id, table ARN) -> tags our code saw on it (ListTagsOfResource responses): the context of
    # aws:ResourceTag conditions
    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    _seen: dict[tuple[str, int], str] = field(default_factory=dict)  # (path, mtime) -> digest
    _lock: threading.Lock = field(default_factory=threading.Lock)
    installed: bool = False

    def _config(self) -> str:
        from dynamoguard.config import config_path

        path = config_path()
        try:
            key = (str(path), os.stat(path).st_mtime_ns)
        except OSError:
            return ""
        digest = self._seen.get(key)
        if digest is None:
            text = path.read_text()
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            with self._lock:
                self.configs[digest] = text
                self._seen[key] = digest
        return digest

    def tags_handler(self, conn_id: str):
        def after_call(parsed, model, context, **_):
            arn = context.get("dynamoguard_resource_arn")
            if model.name == "ListTagsOfResource" and arn and isinstance(parsed, dict):
                with self._lock:
                    self.tags.setdefault((conn_id, arn), {}).update(
                        {t["Key"]: t["Value"] for t in parsed.get("Tags", [])})
        return after_call

    def handler(self, conn_id: str):
        def before_call(params, model, context=None, **_):
            if context is not None and "ResourceArn" in params:
                context["dynamoguard_resource_arn"] = params["ResourceArn"]
            kept = {k: v for k, v in params.items() if k in _KEPT_PARAMS}
            if "RequestItems" in params:
                kept["RequestItems"] = [(name, None) for name in params["RequestItems"]]
            call = AwsCall(conn_id, model.service_model.service_name, model.name,
                           tuple(sorted((k, _keep(v)) for k, v in kept.items())), self._config())
            with self._lock:
                self.calls.add(call)
        return before_call

    def handlers(self, conn_id: str) -> dict:
        return {"before-parameter-build": self.handler(conn_id), "after-call": self.tags_handler(conn_id)}

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
            handlers = recorder.handlers(hook.aws_conn_id)
            if not hasattr(client, "meta"):  # aiobotocore (triggers): the client exists once the context is entered
                return _AsyncClientContext(client, handlers)
            _register(client, handlers)
            return client

        def get_resource_type(hook, *args, **kwargs):
            resource = original_resource(hook, *args, **kwargs)
            _register(resource.meta.client, recorder.handlers(hook.aws_conn_id))
            return resource

        AwsBaseHook.get_client_type = get_client_type
        AwsBaseHook.get_resource_type = get_resource_type
        self.installed = True


def _register(client, handlers: dict) -> None:
    for event, handler in handlers.items():
        client.meta.events.register(event, handler)


class _AsyncClientContext:
    """aiobotocore's client context, registering the handler on the client it opens."""

    def __init__(self, context, handlers):
        self._context = context
        self._handlers = handlers

    async def __aenter__(self):
        client = await self._context.__aenter__()
        _register(client, self._handlers)
        return client

    async def __aexit__(self, *exc_info):
        return await self._context.__aexit__(*exc_info)


RECORDER = Recorder()

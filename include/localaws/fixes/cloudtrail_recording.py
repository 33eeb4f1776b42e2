"""CloudTrail records every API call the emulator serves, and delivers them to the logging trails.

moto 5.2.5 records nothing: no call ever reaches a trail bucket. AWS (CloudTrail user guide, "CloudTrail
record contents", "CloudTrail userIdentity element", "Logging management events", "Logging data events",
"Filtering data events by using advanced event selectors", "How CloudTrail works") records every call
as one JSON record and delivers them, every few minutes, to each trail logging in the account and region:

* ``userIdentity``: long-term keys are an ``IAMUser`` of the source account (the emulator's static keys:
  ``LOCAL_USER``); credentials from ``AssumeRole`` an ``AssumedRole`` session with
  ``sessionContext.sessionIssuer`` (the role) and ``attributes.mfaAuthenticated`` as a string;
* ``eventSource`` ``<service>.amazonaws.com`` and ``eventName`` as CloudTrail names the call, which for
  S3 is not always the API's (S3 user guide, "Amazon S3 CloudTrail events": PutBucketLifecycleConfiguration
  is ``PutBucketLifecycle``, PutObjectLockConfiguration ``PutBucketObjectLockConfiguration``,
  PutPublicAccessBlock ``PutBucketPublicAccessBlock``, DeleteObjects ``DeleteObjects``);
* ``requestParameters`` in CloudTrail's field naming: JSON services lower the first letter of every API
  member (``tableName``, ``pointInTimeRecoverySpecification``; DynamoDB developer guide, "Understanding
  DynamoDB log file entries"), S3 gives ``bucketName``/``key``/``Host``, sub-resources as ``""``, XML bodies
  by element name and headers by HTTP name (S3 user guide, "CloudTrail log file entries for Amazon S3");
  DynamoDB never logs non-key attribute values (``item`` is a list of attribute names; expression values
  are left out), and logs ``TransactWriteItems``/``BatchExecuteStatement`` as a ``requestItems`` list;
* ``responseElements`` for successful mutating management calls of JSON services, else ``null``;
* ``errorCode``/``errorMessage`` on failures; ``readOnly``, ``managementEvent``, ``eventCategory``,
  ``eventType: AwsApiCall``, ``resources[]`` (table, bucket and object ARNs), ``recipientAccountId``.

Management events are recorded for every logging trail whose selectors include them; data events
(DynamoDB item calls on ``AWS::DynamoDB::Table``, S3 object calls on ``AWS::S3::Object``) only when the
trail's basic or advanced event selectors select them. A trail that logs in the record's region (multi-region,
or its home region) gets it. A call that stops or deletes a trail is itself delivered to that trail.

Delivery: every ``LOCALAWS_CLOUDTRAIL_DELIVERY_SECONDS`` (setting ``cloudtrail_delivery_seconds``, default
60) each (account, region, trail) with records gets one log file, and at every clock hour each trail with log
file validation gets its signed digest, through :mod:`include.localaws.fixes.cloudtrail_delivery`.
``POST /_localaws/cloudtrail`` ``{"deliver": true, "digest": true, "at": ISO time}`` (all optional) delivers
now (or as if at ``at``). The control endpoints (``/_localaws/``, ``/moto-api/``) are not AWS calls and are
not recorded.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

from include.localaws import ACCESS_KEY, SOURCE_ACCOUNT

SETTINGS = {"cloudtrail_delivery_seconds": float(os.environ.get("LOCALAWS_CLOUDTRAIL_DELIVERY_SECONDS", "60"))}
LOCAL_USER = "localaws-admin"  # the IAM user the emulator's static keys belong to

_LOCK = threading.Lock()
_BUFFERS: dict[tuple, list[dict]] = defaultdict(list)  # (account, region, trail, home, bucket, prefix) -> records
_STATE: dict[str, Any] = {"last_digest_hour": None, "thread": None}

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/")
_NOT_RECORDED = ("/moto-api", "/_localaws")

DDB_DATA = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
            "TransactGetItems", "TransactWriteItems", "ExecuteStatement", "BatchExecuteStatement",
            "ExecuteTransaction"}
DDB_STREAM_DATA = {"GetRecords", "GetShardIterator"}
READ_PREFIXES = ("Get", "Describe", "List", "Head", "Lookup", "Query", "Scan", "BatchGet", "TransactGet")

# S3 sub-resources: query parameter -> the name part of Put/Get/Delete<Bucket...> event names.
_S3_BUCKET_SUBRESOURCES = {
    "versioning": "BucketVersioning", "policy": "BucketPolicy", "lifecycle": "BucketLifecycle",
    "replication": "BucketReplication", "object-lock": "BucketObjectLockConfiguration",
    "encryption": "BucketEncryption", "publicAccessBlock": "BucketPublicAccessBlock", "tagging": "BucketTagging",
    "acl": "BucketAcl", "cors": "BucketCors", "logging": "BucketLogging", "notification": "BucketNotification",
    "ownershipControls": "BucketOwnershipControls", "website": "BucketWebsite", "location": "BucketLocation",
    "policyStatus": "BucketPolicyStatus", "accelerate": "BucketAccelerateConfiguration",
    "requestPayment": "BucketRequestPayment", "inventory": "BucketInventoryConfiguration",
}
_S3_OBJECT_SUBRESOURCES = {"retention": "ObjectRetention", "legal-hold": "ObjectLegalHold", "tagging": "ObjectTagging",
                           "acl": "ObjectAcl", "attributes": "ObjectAttributes"}


# ---------------------------------------------------------------- who made the call


def user_identity(access_key: str) -> tuple[dict, str]:
    """CloudTrail's ``userIdentity`` for an access key, and the account the call acts in."""
    from moto.sts.models import sts_backends

    if access_key and access_key != ACCESS_KEY:
        for account, partitions in list(sts_backends.items()):
            for backend in list(partitions.values()):
                role = backend.get_assumed_role_from_access_key(access_key)
                if role is None:
                    continue
                role_name = role.role_arn.split("/")[-1]
                principal_id = role.user_id
                return {
                    "type": "AssumedRole", "principalId": principal_id, "arn": role.arn, "accountId": account,
                    "accessKeyId": access_key,
                    "sessionContext": {
                        "sessionIssuer": {"type": "Role", "principalId": principal_id.split(":")[0],
                                          "arn": role.role_arn, "accountId": account, "userName": role_name},
                        "attributes": {"creationDate": _iso(role.expiration - timedelta(hours=1)),
                                       "mfaAuthenticated": "false"}},
                }, account
    return {"type": "IAMUser", "principalId": "AIDALOCALAWSADMIN00001",
            "arn": f"arn:aws:iam::{SOURCE_ACCOUNT}:user/{LOCAL_USER}", "accountId": SOURCE_ACCOUNT,
            "accessKeyId": access_key or "", "userName": LOCAL_USER}, SOURCE_ACCOUNT


# ---------------------------------------------------------------- what the call was


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _camel(value: Any, shape) -> Any:
    """API input in CloudTrail's naming: structure members get a lower first letter, map keys and
    DynamoDB attribute values stay as they are."""
    if shape is None or shape.name == "AttributeValue":
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {_lower_first(k): _camel(v, shape.members.get(k)) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_camel(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _camel(v, shape.value) for k, v in value.items()}
    return value


_MODELS: dict[str, Any] = {}


def _operation_model(service: str, operation: str):
    import botocore.session

    if service not in _MODELS:
        _MODELS[service] = botocore.session.get_session().get_service_model(service)
    try:
        return _MODELS[service].operation_model(operation)
    except Exception:  # an operation botocore does not know: keep the names as sent
        return None


def _redact_items(value: Any) -> Any:
    """DynamoDB logs attribute names, never non-key attribute values; expression values are left out."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "expressionAttributeValues":
                continue
            out[k] = sorted(v) if k == "item" and isinstance(v, dict) else _redact_items(v)
        return out
    if isinstance(value, list):
        return [_redact_items(v) for v in value]
    return value


def _dynamodb_params(operation: str, params: dict) -> dict:
    params = _redact_items(params)
    if operation in ("TransactWriteItems", "TransactGetItems") and "transactItems" in params:
        items = []
        for entry in params.pop("transactItems") or ():
            for kind, op in entry.items():  # put/update/delete/conditionCheck/get -> {operation, tableName, key}
                items.append({"operation": kind[:1].upper() + kind[1:], **op})
        params["requestItems"] = items
    if operation == "BatchExecuteStatement" and "statements" in params:
        params["requestItems"] = [{"statement": s.get("statement")} for s in params.pop("statements") or ()]
    if operation == "ExecuteTransaction" and "transactStatements" in params:
        params["requestItems"] = [{"statement": s.get("statement")} for s in params.pop("transactStatements") or ()]
    return params


def _ddb_tables(params: dict) -> list[str]:
    names = [params.get("tableName"), params.get("tableArn"), params.get("resourceArn")]
    items = params.get("requestItems")
    if isinstance(items, dict):
        names.extend(items)
    elif isinstance(items, list):
        names.extend(i.get("tableName") for i in items if isinstance(i, dict))
    for statement in [params.get("statement")] + [i.get("statement") for i in items or () if isinstance(i, dict)]:
        if isinstance(statement, str):
            names.extend(re.findall(r'\b(?:from|into|update)\s+"?([A-Za-z0-9_.-]+?)"?(?:\.|\s|$)', statement, re.I))
    return list(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def _json_call(service: str, target: str, body: bytes, account: str, region: str) -> dict:
    """eventName, requestParameters and resources of a JSON-protocol call (DynamoDB, CloudTrail, KMS...)."""
    operation = target.rsplit(".", 1)[-1]
    try:
        raw = json.loads(body or b"{}")
    except ValueError:
        raw = {}
    model = _operation_model("dynamodbstreams" if target.startswith("DynamoDBStreams") else service, operation)
    params = _camel(raw, model.input_shape if model else None) if model else {
        _lower_first(k): v for k, v in raw.items()}
    call = {"eventName": operation, "requestParameters": params or None, "resources": [], "category": "Management",
            "readOnly": operation.startswith(READ_PREFIXES), "output_shape": model.output_shape if model else None}
    if service == "dynamodb":
        params = _dynamodb_params(operation, params)
        call["requestParameters"] = params
        arns = []
        for name in _ddb_tables(params):
            arns.append(name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}")
        kind = "AWS::DynamoDB::Table"
        if operation in DDB_STREAM_DATA:
            kind, call["category"] = "AWS::DynamoDB::Stream", "Data"
            arns = [a for a in [params.get("streamArn")] if a]
        elif operation in DDB_DATA:
            call["category"] = "Data"
        if operation in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"):
            texts = [params.get("statement")] + [i.get("statement") for i in params.get("requestItems") or ()]
            call["readOnly"] = all(str(t).lstrip().upper().startswith("SELECT") for t in texts if t)
        call["resources"] = [{"accountId": account, "type": kind, "ARN": arn.split("/index/")[0]} for arn in arns]
    return call


def _query_call(service: str, body: bytes) -> dict:
    """A query-protocol call (STS, IAM, SNS, SQS): ``Action`` and the other form fields, first letter lowered."""
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    operation = form.pop("Action", "Unknown")
    form.pop("Version", None)
    return {"eventName": operation, "requestParameters": {_lower_first(k): v for k, v in form.items()} or None,
            "resources": [], "category": "Management", "readOnly": operation.startswith(READ_PREFIXES),
            "output_shape": None}


def _xml_dict(element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in children:
        name = child.tag.split("}", 1)[-1]
        value = _xml_dict(child)
        if name in out:
            out[name] = out[name] if isinstance(out[name], list) else [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


def _xml_body(body: bytes) -> dict:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return {}
    name = root.tag.split("}", 1)[-1]
    value = _xml_dict(root)
    value = value if isinstance(value, dict) else {}
    if "}" in root.tag:
        value["xmlns"] = root.tag[1:].split("}", 1)[0]
    return {name: value}


def s3_event_name(method: str, key: str, query: dict, headers: dict) -> str:
    """The name CloudTrail logs an S3 REST request under (S3 user guide, "Amazon S3 CloudTrail events")."""
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}.get(method, method)
    if not key:
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        for name, part in _S3_BUCKET_SUBRESOURCES.items():
            if name in query:
                return f"{verb}{part}"
        if "versions" in query:
            return "ListObjectVersions"
        if "uploads" in query:
            return "ListMultipartUploads"
        return {"GET": "ListObjects", "PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(
            method, f"{verb}Bucket")
    for name, part in _S3_OBJECT_SUBRESOURCES.items():
        if name in query:
            return f"{verb}{part}"
    if "uploadId" in query:
        return {"PUT": "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart",
                "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload", "GET": "ListParts"}[method]
    if "uploads" in query:
        return "CreateMultipartUpload"
    if method == "PUT" and "x-amz-copy-source" in headers:
        return "CopyObject"
    return f"{verb}Object"


_S3_HEADERS = ("x-amz-bypass-governance-retention", "x-amz-copy-source", "x-amz-object-lock-mode",
               "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold", "x-amz-server-side-encryption")


def _s3_call(method: str, path: str, query_string: str, headers: dict, body: bytes, host: str) -> dict:
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    query = {k: (v[0] if v else "") for k, v in parse_qs(query_string, keep_blank_values=True).items()}
    name = s3_event_name(method, key, query, headers)
    if not bucket:
        return {"eventName": "ListBuckets", "requestParameters": None, "resources": [], "category": "Management",
                "readOnly": True, "output_shape": None, "bucket": None}
    params: dict[str, Any] = {"bucketName": bucket, "Host": host}
    if key:
        params["key"] = key
    params.update({k: v for k, v in query.items() if k not in ("x-id",)})
    params.update({h: headers[h] for h in _S3_HEADERS if h in headers})
    object_level = bool(key) or name in ("DeleteObjects", "ListObjects", "ListObjectVersions", "HeadBucket")
    if body and not (key and name in ("PutObject", "UploadPart")):
        params.update(_xml_body(body))
    resources = [{"accountId": None, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
    if key:
        resources.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"})
    elif object_level:
        resources.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/"})
    return {"eventName": name, "requestParameters": params, "resources": resources,
            "category": "Data" if object_level else "Management",
            "readOnly": method in ("GET", "HEAD"), "output_shape": None, "bucket": bucket}


def _bucket_owner(bucket: str | None) -> str | None:
    from moto.s3.models import s3_backends

    location = s3_backends.bucket_accounts.get(bucket) if bucket else None
    return location[1] if location else None


# ---------------------------------------------------------------- the answer


def _error(status: int, body: bytes, content_type: str) -> tuple[str | None, str | None]:
    if status < 400:
        return None, None
    if body[:1] == b"{":
        try:
            document = json.loads(body)
        except ValueError:
            document = {}
        code = str(document.get("__type") or document.get("code") or "").rsplit("#", 1)[-1] or None
        return code or f"HTTP{status}", document.get("message") or document.get("Message")
    code = re.search(rb"<Code>([^<]+)</Code>", body)
    message = re.search(rb"<Message>([^<]*)</Message>", body)
    return (code.group(1).decode() if code else f"HTTP{status}", message.group(1).decode() if message else None)


def _response_elements(call: dict, body: bytes) -> dict | None:
    shape = call.get("output_shape")
    if shape is None or call["readOnly"] or call["category"] != "Management" or body[:1] != b"{":
        return None
    try:
        return _camel(json.loads(body), shape) or None
    except ValueError:
        return None


# ---------------------------------------------------------------- which trails get it


def _matches(field_selector: dict, values: list[str]) -> bool:
    def any_of(name, test):
        wanted = field_selector.get(name)
        return None if wanted is None else any(test(v, w) for v in values for w in wanted)

    checks = [("Equals", lambda v, w: v == w, True), ("StartsWith", lambda v, w: v.startswith(w), True),
              ("EndsWith", lambda v, w: v.endswith(w), True), ("NotEquals", lambda v, w: v == w, False),
              ("NotStartsWith", lambda v, w: v.startswith(w), False),
              ("NotEndsWith", lambda v, w: v.endswith(w), False)]
    for name, test, positive in checks:
        hit = any_of(name, test)
        if hit is not None and hit != positive:
            return False
    return True


def _advanced_selects(selector: dict, record: dict) -> bool:
    """Every field selector matches (CloudTrail user guide, "Filtering data events by using advanced event
    selectors": conditions AND'd; the values of one condition OR'd, negative ones AND'd)."""
    resources = record.get("resources") or []
    fields = {
        "eventCategory": [record["eventCategory"]], "eventSource": [record["eventSource"]],
        "eventName": [record["eventName"]], "eventType": [record["eventType"]],
        "readOnly": [str(record["readOnly"]).lower()], "userIdentity.arn": [record["userIdentity"].get("arn", "")],
        "resources.type": [r["type"] for r in resources], "resources.ARN": [r["ARN"] for r in resources],
    }
    for field_selector in selector.get("FieldSelectors") or ():
        if not _matches(field_selector, fields.get(field_selector.get("Field"), [])):
            return False
    return True


def _basic_selects(selector: dict, record: dict) -> bool:
    read_write = selector.get("ReadWriteType", "All")
    if read_write != "All" and (read_write == "ReadOnly") != record["readOnly"]:
        return False
    if record["managementEvent"]:
        return selector.get("IncludeManagementEvents", True) and \
            record["eventSource"] not in (selector.get("ExcludeManagementEventSources") or ())
    for data_resource in selector.get("DataResources") or ():
        for resource in record.get("resources") or ():
            if resource["type"] != data_resource.get("Type"):
                continue
            for value in data_resource.get("Values") or ():
                if value in ("arn:aws:s3", "arn:aws:dynamodb", resource["ARN"]) or (
                        resource["type"] == "AWS::S3::Object" and value.endswith("/")
                        and resource["ARN"].startswith(value)):
                    return True
    return False


def trail_selects(trail, record: dict) -> bool:
    """Whether the trail's event selectors log ``record`` (none set: management events only)."""
    basic, advanced = trail.event_selectors or [], getattr(trail, "advanced_event_selectors", None) or []
    if basic:
        return any(_basic_selects(s, record) for s in basic)
    if advanced:
        return any(_advanced_selects(s, record) for s in advanced)
    return record["managementEvent"]


def _logging_trails(account: str, region: str) -> list:
    from moto.cloudtrail.models import cloudtrail_backends

    trails = []
    for backend in list(cloudtrail_backends.get(account, {}).values()):
        for trail in list(backend.trails.values()):
            if trail.status.is_logging and (trail.is_multi_region or trail.region_name == region):
                trails.append(trail)
    return trails


# ---------------------------------------------------------------- the WSGI middleware


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_body(environ) -> bytes:
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    body = stream.read(int(length)) if length else (stream.read() if environ.get("wsgi.input_terminated") else b"")
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _describe(environ, body: bytes, signing: str, account: str, region: str) -> dict | None:
    headers = {k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
    target = headers.get("x-amz-target")
    if signing == "s3":
        return _s3_call(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""),
                        headers, body, headers.get("host", ""))
    if target:
        return _json_call(signing, target, body, account, region)
    if environ["REQUEST_METHOD"] == "POST":
        return _query_call(signing, body)
    return None


def wrap(app):
    """``app`` recording a CloudTrail record of every AWS call it answers."""

    def recording_app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        credential = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", "") or "") or _CREDENTIAL.search(
            "Credential=" + unquote(parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]))
        if path.startswith(_NOT_RECORDED) or credential is None:
            return app(environ, start_response)
        access_key, region, signing = credential.groups()
        # Object uploads are data: their bodies are never logged, so they are left unread.
        upload = signing == "s3" and environ["REQUEST_METHOD"] in ("PUT", "POST") and "/" in path.strip("/") \
            and not any(q in environ.get("QUERY_STRING", "") for q in ("retention", "legal-hold", "tagging", "acl"))
        body = b"" if upload else _read_body(environ)
        try:
            identity, account = user_identity(access_key)
            call = _describe(environ, body, signing, account, region)
        except Exception:  # never let recording break a call
            call = None
        if call is None:
            return app(environ, start_response)
        trails = [(t, t.bucket_name, t.s3_key_prefix or "") for t in _logging_trails(account, region)]
        answer: dict[str, Any] = {}

        def capture(status, response_headers, exc_info=None):
            answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), dict(response_headers)
            return start_response(status, response_headers, exc_info)

        chunks = app(environ, capture)
        keep = call["category"] == "Management" or answer.get("status", 200) >= 400
        if keep:
            chunks = list(chunks)
        try:
            _record(call, identity, account, region, signing, answer, b"".join(chunks) if keep else b"", trails)
        except Exception:  # never let recording break a call
            pass
        return chunks

    return recording_app


def _record(call: dict, identity: dict, account: str, region: str, signing: str, answer: dict, body: bytes,
            trails: list) -> None:
    status = answer.get("status", 200)
    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
    error_code, error_message = _error(status, body, headers.get("content-type", ""))
    recipient = account
    if signing == "s3":
        owner = _bucket_owner(call.get("bucket"))
        recipient = owner or account
        for resource in call["resources"]:
            if resource["type"] == "AWS::S3::Bucket":
                resource["accountId"] = recipient
    management = call["category"] == "Management"
    record = {
        "eventVersion": "1.11", "userIdentity": identity, "eventTime": _iso(datetime.now(UTC)),
        "eventSource": f"{signing}.amazonaws.com", "eventName": call["eventName"], "awsRegion": region,
        "sourceIPAddress": "127.0.0.1", "userAgent": "localaws", "requestParameters": call["requestParameters"],
        "responseElements": None if error_code else _response_elements(call, body),
        "requestID": headers.get("x-amzn-requestid") or headers.get("x-amz-request-id") or str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()), "readOnly": call["readOnly"], "resources": call["resources"],
        "eventType": "AwsApiCall", "managementEvent": management, "recipientAccountId": recipient,
        "eventCategory": call["category"],
    }
    if error_code:
        record["errorCode"], record["errorMessage"] = error_code, error_message or error_code
    if signing == "dynamodb":
        record["apiVersion"] = "2012-08-10"
    with _LOCK:
        for trail, bucket, prefix in trails:
            if trail_selects(trail, record):
                key = (trail.account_id, region, trail.trail_name, trail.region_name, bucket, prefix)
                _BUFFERS[key].append(record)


# ---------------------------------------------------------------- delivery


def flush(at: datetime | None = None, digests: bool = False) -> dict:
    """Deliver every buffered record now or as if at ``at`` (one log file per account, region and trail);
    with ``digests`` also write each validating trail's digest. Returns the keys written."""
    from include.localaws.fixes import cloudtrail_delivery

    moment = at or datetime.now(UTC)
    with _LOCK:
        pending = dict(_BUFFERS)
        _BUFFERS.clear()
    logs = []
    for (account, region, name, home, bucket, prefix), records in sorted(pending.items()):
        logs.append(cloudtrail_delivery.write_log(account, region, name, home, bucket, prefix, records, moment))
    # The digest ends a second after the delivery, so that it lists the files just delivered.
    digest_keys = cloudtrail_delivery.digest_all(moment + timedelta(seconds=1)) if digests else []
    return {"logs": logs, "digests": digest_keys}


def _deliver_forever() -> None:
    while True:
        time.sleep(max(0.2, min(SETTINGS["cloudtrail_delivery_seconds"], 5.0)))
        now = datetime.now(UTC)
        last = _STATE.get("last_flush") or 0.0
        try:
            if time.monotonic() - last >= SETTINGS["cloudtrail_delivery_seconds"]:
                _STATE["last_flush"] = time.monotonic()
                flush(now)
            hour = now.replace(minute=0, second=0, microsecond=0)
            if _STATE["last_digest_hour"] is None:
                _STATE["last_digest_hour"] = hour
            elif hour > _STATE["last_digest_hour"]:
                _STATE["last_digest_hour"] = hour
                flush(hour, digests=True)
        except Exception:  # a bucket deleted under a trail: keep delivering to the others
            pass


def _control(body: dict) -> dict:
    at = body.get("at")
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC) if at else None
    if body.get("deliver", True) is False and not body.get("digest"):
        return {"logs": [], "digests": []}
    return flush(moment, digests=bool(body.get("digest")))


def _reset() -> None:
    with _LOCK:
        _BUFFERS.clear()


def apply() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    from include.localaws.fixes import control

    control.ROUTES[("POST", "cloudtrail")] = _control
    original_reset = moto_api_backend.reset

    def reset() -> None:
        original_reset()
        _reset()

    moto_api_backend.reset = reset
    if _STATE["thread"] is None:
        _STATE["thread"] = threading.Thread(target=_deliver_forever, name="cloudtrail-delivery", daemon=True)
        _STATE["thread"].start()

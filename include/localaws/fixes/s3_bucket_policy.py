"""S3 bucket policies: an explicit Deny applies as AWS evaluates it, including on ``s3:BypassGovernanceRetention``.

moto 5.2.5 -> AWS:

* Object requests are checked against the bucket policy with an action derived from the HTTP method, but a
  statement's ``Principal`` map is ignored (a Deny naming one role applies to everyone) and a condition moto
  does not understand counts as met, so the usual ``Deny s3:* if aws:SecureTransport = false`` refuses every
  request. AWS applies an explicit Deny only when the statement's principal, action, resource and condition
  all match the request (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
  condition operators: reference_policies_elements_condition_operators.html; a key absent from the request
  matches no operator except the negated ones, ``...IfExists`` and ``Null``).
* ``x-amz-bypass-governance-retention: true`` is never authorised. AWS authorises it as its own action,
  ``s3:BypassGovernanceRetention`` ("To override or remove governance-mode retention settings, a user must have
  the s3:BypassGovernanceRetention permission", https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html),
  so a bucket policy denying that action makes PutObjectRetention and DeleteObject with the bypass header
  fail with AccessDenied (``fixes/s3_object_lock.py`` calls :func:`deny_bypass`).
* A denied object request gets an empty 403; AWS sends its ``AccessDenied`` error document.

Emulator conventions: the caller is the role whose AssumeRole credentials signed the request (``aws:PrincipalArn``
is the role's ARN, as on AWS) or, for the emulator's static keys, the root of the account they act in. Every
request counts as made over TLS (``aws:SecureTransport`` is true): the emulator's plain HTTP stands in for
AWS's HTTPS endpoints. Only explicit Denies are evaluated; moto still allows everything else. A Deny statement
using ``NotPrincipal``, another condition operator or another condition key than ``aws:PrincipalArn``,
``aws:PrincipalAccount`` and ``aws:SecureTransport`` is not guessed at: the request fails with 501
NotImplemented naming it.
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.s3 import models, responses
from moto.s3.exceptions import S3ClientError

_request = threading.local()  # the caller of the request this thread is serving
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_ACCOUNT = re.compile(r"^\d{12}$")
KEYS = ("aws:principalarn", "aws:principalaccount", "aws:securetransport")
OPERATORS = ("StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "ArnEquals", "ArnNotEquals",
             "ArnLike", "ArnNotLike", "Bool", "Null")
# moto checks object requests with an action named after the HTTP method; HEAD is authorised as s3:GetObject.
_ACTION_OF = {"s3:HeadObject": "s3:GetObject"}


class AccessDenied(S3ClientError):
    code = 403

    def __init__(self) -> None:
        super().__init__("AccessDenied", "Access Denied")


class PolicyNotEmulated(Exception):
    """A Deny statement the emulator cannot decide; answered 501 NotImplemented."""


def s3_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    """An S3 error response (status, headers, XML error document) for codes moto's model has no status for."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
            f"</Error>")
    return status, {"Content-Type": "application/xml"}, body


def caller(access_key: str) -> tuple[str, str]:
    """(principal ARN, account) of the credentials ``access_key``."""
    from moto.iam.models import get_account_id_from
    from moto.sts.models import sts_backends

    for partitions in list(sts_backends.values()):
        role = partitions["aws"].get_assumed_role_from_access_key(access_key)
        if role is not None:
            return role.role_arn, role.role_arn.split(":")[4]
    account = get_account_id_from(access_key)
    return f"arn:aws:iam::{account}:root", account


def _context_of(headers: Any, query: str) -> dict[str, str]:
    """The request context of a request signed in its Authorization header or as a presigned URL."""
    match = _CREDENTIAL.search(headers.get("Authorization", ""))
    access_key = match.group(1) if match else parse_qs(query).get("X-Amz-Credential", [""])[0].partition("/")[0]
    context = {"aws:securetransport": "true"}
    if access_key:
        arn, account = caller(access_key)
        context.update({"aws:principalarn": arn, "aws:principalaccount": account})
    return context


@lru_cache(maxsize=1024)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _values(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches(patterns: Any, value: str, ignore_case: bool) -> bool:
    return any(_pattern(p, ignore_case).match(value) for p in _values(patterns))


def _principal_matches(principal: Any, context: dict[str, str]) -> bool:
    if principal == "*":
        return True
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    if aws is None:  # Service / Federated principals are never the caller of these requests
        return False
    arn, account = context.get("aws:principalarn"), context.get("aws:principalaccount")
    for entry in _values(aws):
        if entry == "*" or entry == arn:
            return True
        if account and entry in (account, f"arn:aws:iam::{account}:root"):
            return True
    return False


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, entries in condition.items():
        base = operator.removesuffix("IfExists")
        if base not in OPERATORS:
            raise PolicyNotEmulated(f"condition operator {operator}")
        for key, wanted in entries.items():
            if key.lower() not in KEYS:
                raise PolicyNotEmulated(f"condition key {key}")
            actual, values = context.get(key.lower()), _values(wanted)
            if base == "Null":
                holds = (actual is None) == (values[0].lower() == "true")
            elif actual is None:
                holds = operator.endswith("IfExists") or "Not" in base
            elif base in ("StringEquals", "ArnEquals"):
                holds = actual in values if base == "StringEquals" else _matches(values, actual, False)
            elif base in ("StringNotEquals", "ArnNotEquals"):
                holds = actual not in values if base == "StringNotEquals" else not _matches(values, actual, False)
            elif base == "Bool":
                holds = actual.lower() in (v.lower() for v in values)
            elif "Not" in base:
                holds = not _matches(values, actual, False)
            else:
                holds = _matches(values, actual, False)
            if not holds:
                return False
    return True


def denies(policy: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> bool:
    """Whether ``policy`` explicitly denies ``action`` on ``resource`` to the caller described by ``context``."""
    statements = policy.get("Statement", [])
    for stmt in [statements] if isinstance(statements, dict) else statements:
        if stmt.get("Effect") != "Deny":
            continue
        if "NotPrincipal" in stmt:
            raise PolicyNotEmulated("NotPrincipal")
        if not _principal_matches(stmt.get("Principal"), context):
            continue
        if "Action" in stmt and not _matches(stmt["Action"], action, True):
            continue
        if "NotAction" in stmt and _matches(stmt["NotAction"], action, True):
            continue
        if "Resource" in stmt and not _matches(stmt["Resource"], resource, False):
            continue
        if "NotResource" in stmt and _matches(stmt["NotResource"], resource, False):
            continue
        if _condition_holds(stmt.get("Condition") or {}, context):
            return True
    return False


def _policy(bucket: Any) -> dict[str, Any] | None:
    raw = getattr(bucket, "policy", None)
    if not raw:
        return None
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def denied(bucket: Any, action: str, resource: str) -> bool:
    """Whether the bucket policy of ``bucket`` denies ``action`` on ``resource`` to this thread's caller."""
    policy = _policy(bucket)
    return policy is not None and denies(policy, action, resource, getattr(_request, "context", {}))


def deny_bypass(bucket: Any, key_name: str) -> None:
    """AccessDenied if the bucket policy denies this thread's caller ``s3:BypassGovernanceRetention`` on the key."""
    if denied(bucket, "s3:BypassGovernanceRetention", f"arn:aws:s3:::{bucket.name}/{key_name}"):
        raise AccessDenied


def apply() -> None:
    from moto.iam.access_control import PermissionResult

    original_setup = responses.S3Response.setup_class

    def setup_class(self, request: Any, full_url: str | None = None, headers: Any = None) -> None:
        original_setup(self, request, full_url, headers)
        query = (full_url or getattr(request, "url", "") or "").partition("?")[2]
        _request.context = _context_of(request.headers, query)

    def get_permission(self, action: str, resource: str) -> Any:
        return PermissionResult.DENIED if denied(self, _ACTION_OF.get(action, action), resource) \
            else PermissionResult.NEUTRAL

    original_key_response = responses.S3Response._key_response

    def _key_response(self, request: Any, full_url: str):
        """moto answers a policy denial with a bare 403; AWS with an AccessDenied error document."""
        try:
            result = original_key_response(self, request, full_url)
        except PolicyNotEmulated as error:
            return s3_error(501, "NotImplemented", f"the emulator does not evaluate {error} in a bucket policy Deny")
        if isinstance(result, tuple) and result[0] == 403 and not result[2]:
            raise AccessDenied
        return result

    responses.S3Response.setup_class = setup_class
    responses.S3Response._key_response = _key_response
    models.FakeBucket.get_permission = get_permission

"""Read an account's IAM state and the resource policies of the protected resources.

``collect_account`` returns a JSON-serialisable snapshot; ``principals`` turns a snapshot into the
principals with every policy that applies to them (inline, attached managed, group, boundary).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from dynamoguard.access.evaluate import Principal, PrincipalPolicies
from dynamoguard.aws import error_code
from dynamoguard.concurrency import ordered_map

log = logging.getLogger(__name__)

DETAIL_LISTS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
MAX_WORKERS = 32


class CollectError(RuntimeError):
    """The account's IAM state could not be read completely; the message names what is missing."""


def policy_document(value: Any) -> dict[str, Any]:
    """A policy document as a dict; IAM returns URL-encoded JSON, which botocore usually decodes."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        text = value if value.lstrip().startswith("{") else unquote(value)
        return json.loads(text)
    raise CollectError(f"unexpected policy document of type {type(value).__name__}")


def authorization_details(iam, page_size: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every page of GetAccountAuthorizationDetails (``page_size`` items per call, default AWS's 100), merged."""
    merged: dict[str, list[dict[str, Any]]] = {key: [] for key in DETAIL_LISTS}
    paging = {"PaginationConfig": {"PageSize": page_size}} if page_size else {}
    for page in iam.get_paginator("get_account_authorization_details").paginate(**paging):
        for key in DETAIL_LISTS:
            merged[key].extend(page.get(key, []))
    return merged


def _attached_arns(details: Mapping[str, list[dict[str, Any]]]) -> set[str]:
    arns = set()
    for key in ("UserDetailList", "GroupDetailList", "RoleDetailList"):
        for entity in details[key]:
            arns.update(p["PolicyArn"] for p in entity.get("AttachedManagedPolicies", []))
            boundary = entity.get("PermissionsBoundary") or {}
            if boundary.get("PermissionsBoundaryArn"):
                arns.add(boundary["PermissionsBoundaryArn"])
    return arns


def _fetch_policy(iam, arn: str) -> dict[str, Any]:
    try:
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    except ClientError as error:
        raise CollectError(f"managed policy {arn} is attached but cannot be read: {error}") from error
    return {**policy, "PolicyVersionList": [{**version, "IsDefaultVersion": True}]}


def managed_policy_documents(iam, details: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Default-version document of every managed policy in use, fetching those the listing left out."""
    docs = {}
    for policy in details["Policies"]:
        for version in policy.get("PolicyVersionList", []):
            if version.get("IsDefaultVersion"):
                docs[policy["Arn"]] = policy_document(version["Document"])
    missing = sorted(_attached_arns(details) - set(docs))
    if missing:
        for policy in ordered_map(_fetch_policy, ((iam, arn) for arn in missing), min(MAX_WORKERS, len(missing))):
            docs[policy["Arn"]] = policy_document(policy["PolicyVersionList"][0]["Document"])
    return docs


def table_policy(ddb, table_arn: str) -> dict[str, Any] | None:
    """The table's resource-based policy, or None if it has none."""
    try:
        return policy_document(ddb.get_resource_policy(ResourceArn=table_arn)["Policy"])
    except ClientError as error:
        if error_code(error) == "PolicyNotFoundException":
            return None
        raise


def bucket_policy(s3, bucket: str) -> dict[str, Any] | None:
    """The bucket policy, or None if the bucket has none."""
    try:
        return policy_document(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as error:
        if error_code(error) == "NoSuchBucketPolicy":
            return None
        raise


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def collect_account(account_id: str, iam, *, ddb=None, table_arns: Iterable[str] = (), s3=None,
                    buckets: Iterable[str] = (), caller_account: str | None = None) -> dict[str, Any]:
    """Snapshot of one account: authorization details, managed policy documents, resource policies.

    ``caller_account`` (from STS GetCallerIdentity) must equal ``account_id``: reviewing the wrong
    account would produce a clean-looking report about something else.
    """
    if caller_account is not None and caller_account != account_id:
        raise CollectError(f"the connection acts in account {caller_account}, but the config expects {account_id}")
    details = authorization_details(iam)
    docs = managed_policy_documents(iam, details)
    snapshot = {
        "account": account_id,
        "collected_at": datetime.now(UTC).isoformat(),
        "authorization_details": _jsonable(details),
        "managed_policies": docs,
        "table_policies": {arn: table_policy(ddb, arn) for arn in table_arns},
        "bucket_policies": {name: bucket_policy(s3, name) for name in buckets},
    }
    log.info("Account %s: %d roles, %d users, %d groups, %d managed policies, %d table and %d bucket policies",
             account_id, len(details["RoleDetailList"]), len(details["UserDetailList"]),
             len(details["GroupDetailList"]), len(docs), len(snapshot["table_policies"]),
             len(snapshot["bucket_policies"]))
    return snapshot


def _inline(entity: Mapping[str, Any], key: str, owner: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{owner} inline policy {p['PolicyName']}", policy_document(p["PolicyDocument"]))
            for p in entity.get(key, [])]


def _attached(entity: Mapping[str, Any], docs: Mapping[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for policy in entity.get("AttachedManagedPolicies", []):
        if policy["PolicyArn"] not in docs:
            raise CollectError(f"attached managed policy {policy['PolicyArn']} is missing from the snapshot")
        out.append((policy["PolicyArn"], docs[policy["PolicyArn"]]))
    return out


def _boundary(entity: Mapping[str, Any], docs: Mapping[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    arn = (entity.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if not arn:
        return None
    if arn not in docs:
        raise CollectError(f"permissions boundary {arn} is missing from the snapshot")
    return arn, docs[arn]


def principals(snapshot: Mapping[str, Any]) -> list[PrincipalPolicies]:
    """Every role and user of the snapshot's account with the policies that apply to it."""
    account = snapshot["account"]
    details = snapshot["authorization_details"]
    docs = snapshot["managed_policies"]
    groups = {g["GroupName"]: g for g in details["GroupDetailList"]}
    out = []
    for role in details["RoleDetailList"]:
        identity = _inline(role, "RolePolicyList", f"role {role['RoleName']}") + _attached(role, docs)
        out.append(PrincipalPolicies(Principal(role["Arn"], "role", account), tuple(identity),
                                     _boundary(role, docs), role.get("Path", "/")))
    for user in details["UserDetailList"]:
        identity = _inline(user, "UserPolicyList", f"user {user['UserName']}") + _attached(user, docs)
        for name in user.get("GroupList", []):
            if name not in groups:
                raise CollectError(f"user {user['UserName']} is in group {name}, which is missing from the snapshot")
            identity += _inline(groups[name], "GroupPolicyList", f"group {name}") + _attached(groups[name], docs)
        out.append(PrincipalPolicies(Principal(user["Arn"], "user", account), tuple(identity),
                                     _boundary(user, docs), user.get("Path", "/")))
    return out

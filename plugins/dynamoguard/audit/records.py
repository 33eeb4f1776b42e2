"""Reading CloudTrail records: who made the call, which protected table or bucket it touches.

Field names follow the CloudTrail user guide ("CloudTrail record contents", "CloudTrail userIdentity
element") and the DynamoDB developer guide ("Understanding DynamoDB log file entries"): DynamoDB lowers
the first letter of API members (``tableName``, ``requestItems``) and logs ``TransactWriteItems`` and
``BatchExecuteStatement`` ``requestItems`` as a *list* of objects (``tableName``/``TableName``, or
``statement``), in which the example itself mixes ``tableName`` and ``TableName``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from dynamoguard.audit.context import Context
from dynamoguard.audit.findings import NETWORK_CATEGORY, NETWORK_EVENT_TYPE


def params(event: dict) -> dict:
    value = event.get("requestParameters")
    return value if isinstance(value, dict) else {}


def principal_from(kind, arn, issuer_arn, invoked_by, principal_id) -> str | None:
    """The IAM identity behind a ``userIdentity``: the issuing role for an assumed-role session.

    Without ``sessionContext`` the session ARN ``arn:aws:sts::A:assumed-role/R/S`` names the role R."""
    if kind == "AssumedRole":
        if issuer_arn:
            return issuer_arn
        if isinstance(arn, str) and ":assumed-role/" in arn:
            head, _, rest = arn.partition(":assumed-role/")
            return f"{head.replace(':sts:', ':iam:', 1)}:role/{rest.split('/')[0]}"
    return arn or invoked_by or principal_id


def principal_of(identity: dict | None) -> str | None:
    """:func:`principal_from` of a record's ``userIdentity`` object."""
    if not isinstance(identity, dict):
        return None
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
    issuer_arn = issuer.get("arn") if isinstance(issuer, dict) else None
    return principal_from(identity.get("type"), identity.get("arn"), issuer_arn, identity.get("invokedBy"),
                          identity.get("principalId"))


def principal_arn(event: dict) -> str | None:
    return principal_of(event.get("userIdentity"))


def is_aws_service(event: dict) -> bool:
    identity = event.get("userIdentity")
    return isinstance(identity, dict) and identity.get("type") == "AWSService"


def is_network_copy(event: dict) -> bool:
    """A VPC-endpoint network activity record of a call, not the call (it has its own record)."""
    return event.get("eventCategory") == NETWORK_CATEGORY or event.get("eventType") == NETWORK_EVENT_TYPE


def arn_parts(arn: str) -> tuple[str, str, str] | None:
    """(region, account, resource) of an ARN, or None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts[3], parts[4], parts[5]


def table_of(value: Any, event: dict, ctx: Context) -> str | None:
    """The protected table a name or ARN (table, index, stream or backup ARN) refers to, or None.

    An ARN must be in the source account and the tables' region; a bare name is read in the record's
    account (``recipientAccountId``) and region (``awsRegion``)."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("arn:"):
        return ctx.table_of_arn(value)
    else:
        if event.get("recipientAccountId", ctx.source_account) != ctx.source_account:
            return None
        if ctx.region and event.get("awsRegion", ctx.region) != ctx.region:
            return None
        name = value
    return name if name in ctx.tables else None


_PARTIQL_TABLE = re.compile(r'\b(?:from|into|update)\s+"?([A-Za-z0-9_.-]{3,255}?)"?(?:\.|\s|$|;)', re.I)


def statement_tables(statement: Any) -> list[str]:
    """Table names a PartiQL statement reads or writes (``SELECT … FROM "t"``, ``INSERT INTO``, …)."""
    return _PARTIQL_TABLE.findall(statement) if isinstance(statement, str) else []


def is_select(statement: Any) -> bool:
    return isinstance(statement, str) and statement.lstrip().upper().startswith("SELECT")


def _key(item: dict, name: str) -> Any:
    """``item[name]`` matching the first letter in either case (``tableName``/``TableName``)."""
    value = item.get(name)
    return item.get(name[:1].upper() + name[1:]) if value is None else value


def statements(event: dict) -> list[str]:
    """PartiQL statements of ExecuteStatement, BatchExecuteStatement and ExecuteTransaction records."""
    p = params(event)
    found = [p.get("statement")]
    for field in ("requestItems", "transactStatements", "statements"):
        items = p.get(field)
        if isinstance(items, list):
            found.extend(_key(i, "statement") for i in items if isinstance(i, dict))
    return [s for s in found if isinstance(s, str)]


def named_tables(event: dict) -> list[str]:
    """Table names and ARNs in ``requestParameters``."""
    p = params(event)
    values = [p.get(k) for k in ("tableName", "tableArn", "resourceArn", "backupArn", "sourceTableArn",
                                 "sourceTableName", "globalTableName")]
    items = p.get("requestItems")
    if isinstance(items, dict):  # BatchGetItem/BatchWriteItem: a map keyed by table
        values.extend(items)
    elif isinstance(items, list):  # TransactWriteItems/TransactGetItems: a list of operations
        values.extend(_key(i, "tableName") for i in items if isinstance(i, dict))
    for statement in statements(event):
        values.extend(statement_tables(statement))
    return values


def _unique(names) -> list[str]:
    return list(dict.fromkeys(n for n in names if n))


def resource_tables(event: dict, ctx: Context) -> list[str] | None:
    """Protected tables in ``resources[]``, or None when the record lists no resource."""
    resources = event.get("resources")
    if not isinstance(resources, list) or not resources:
        return None
    return _unique(table_of(r.get("ARN") or r.get("arn"), event, ctx) for r in resources if isinstance(r, dict))


def tables_in(event: dict, ctx: Context) -> list[str]:
    """Protected tables an event touches, from ``resources[]`` and the request parameters."""
    return _unique([*(resource_tables(event, ctx) or ()), *(table_of(v, event, ctx) for v in named_tables(event))])


def data_tables(event: dict, ctx: Context) -> list[str]:
    """Protected tables a data event touches: CloudTrail's ``resources[]`` (every table of the call), or the
    request parameters when the record has no ``resources``."""
    listed = resource_tables(event, ctx)
    if listed is not None:
        return listed
    return _unique(table_of(v, event, ctx) for v in named_tables(event))


def bucket_of(event: dict, ctx: Context) -> str | None:
    name = params(event).get("bucketName")
    return name if name in ctx.buckets else None


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def as_int(value: Any) -> int | None:
    """An integer logged as a number or (S3 XML bodies) a string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def policy_document(value: Any) -> dict | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None
    return None


def foreign_grants(policy: dict, accounts: frozenset[str]) -> list[str]:
    """Principals outside ``accounts`` (or everyone) that an Allow statement of ``policy`` names."""
    from policyuniverse.policy import Policy

    try:
        parsed = Policy(policy)
    except Exception:  # a policy we cannot parse is reported as foreign
        return ["<unparseable policy>"]
    foreign = set()
    if parsed.is_internet_accessible():
        foreign.add("*")
    for who in parsed.whos_allowed():
        value = str(who.value)
        if who.category in ("principal", "account", "arn"):
            if value == "*":
                foreign.add("*")
                continue
            account = value if value.isdigit() else (arn_parts(value) or ("", "", ""))[1]
            if account and account not in accounts:
                foreign.add(value)
    return sorted(foreign)

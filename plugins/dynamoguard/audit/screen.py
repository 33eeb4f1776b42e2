"""The fast path: decide from a record's head whether any rule can fire before parsing the record.

Most CloudTrail records cannot match a rule: their ``(eventSource, eventName)`` has no rule, or they are
data events of a protected table by a principal allowed to touch it. Building a Python object for each of
them is what made the audit slow (orjson builds every dict and string). Here msgspec splits the log into
raw record slices (a real JSON parser, so attacker-controlled strings cannot fake structure), decodes only
the head fields below into typed structs (skipping the rest without building it), and only records that a
rule may match are parsed in full with orjson. A record whose head does not have the expected types is
parsed in full, so nothing is decided on a guess; the equivalence with parsing everything is a test
(``tests/unit/test_audit_fast_path.py``).
"""

from __future__ import annotations

import msgspec

from dynamoguard.audit.context import Context
from dynamoguard.audit.records import principal_from, table_of


class Resource(msgspec.Struct):
    ARN: str | None = None
    arn: str | None = None


class SessionIssuer(msgspec.Struct):
    arn: str | None = None


class SessionContext(msgspec.Struct):
    sessionIssuer: SessionIssuer | None = None


class Identity(msgspec.Struct):
    type: str | None = None
    arn: str | None = None
    invokedBy: str | None = None
    principalId: str | None = None
    sessionContext: SessionContext | None = None


class Head(msgspec.Struct):
    """The fields dispatch and the screens read; every other field is skipped unparsed."""

    eventSource: str | None = None
    eventName: str | None = None
    eventTime: str | None = None
    eventID: str | None = None
    eventCategory: str | None = None
    eventType: str | None = None
    awsRegion: str | None = None
    recipientAccountId: str | None = None
    userIdentity: Identity | None = None
    resources: list[Resource] | None = None



class _Log(msgspec.Struct):
    Records: list[msgspec.Raw]


split_records = msgspec.json.Decoder(_Log).decode  # raises msgspec.DecodeError/ValidationError
decode_head = msgspec.json.Decoder(Head).decode
HEAD_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


def head_principal(head: Head) -> str | None:
    identity = head.userIdentity
    if identity is None:
        return None
    context = identity.sessionContext
    issuer = context.sessionIssuer if context is not None else None
    return principal_from(identity.type, identity.arn, issuer.arn if issuer is not None else None,
                          identity.invokedBy, identity.principalId)


def head_resource_tables(head: Head, ctx: Context) -> list[str] | None:
    """Protected tables among the head's ``resources[]`` ARNs, None when it lists none."""
    resources = head.resources
    if not resources:
        return None
    tables = []
    for resource in resources:
        value = resource.ARN or resource.arn
        if value and value.startswith("arn:"):
            table = ctx.table_of_arn(value)
        else:
            table = table_of(value, {"recipientAccountId": head.recipientAccountId, "awsRegion": head.awsRegion}, ctx)
        if table:
            tables.append(table)
    return tables


def screens_by_key(registry: dict) -> dict[tuple[str, str], tuple]:
    """For each key whose every rule has a screen, those screens; keys missing here are always parsed."""
    return {key: tuple(r.screen for r in rules) for key, rules in registry.items()
            if rules and all(r.screen is not None for r in rules)}

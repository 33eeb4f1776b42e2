"""The rule registry and what every rule shares when it is evaluated on a record.

A rule is registered for the ``(eventSource, eventName)`` pairs it looks at, with a default severity.
It takes the record and the :class:`Context` and returns a :class:`Hit` naming the resource and the
protected table, or ``None``. :func:`evaluate` adds what every rule shares:

* a network-activity copy of a call (``eventCategory: NetworkActivity``, ``eventType: AwsVpceEvent``)
  is not the call, and is skipped;
* a call denied access is reported one severity lower (``outcome: denied``);
* a call that failed for another reason changed nothing: rules about *what changed* ignore it, rules
  about *who may call* (``judges_principal``) still report it (``outcome: failed``), since the caller got
  past authorisation; at full severity for the failures that only come after authorisation
  (``ConditionalCheckFailedException``, ``TransactionCanceledException``...), one lower otherwise.

A rule may also declare a ``screen``: a cheap test on a record's head (see :mod:`dynamoguard.audit.screen`)
that is False only when the rule cannot fire, so the reader skips parsing records no rule can match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from dynamoguard.audit.context import Context
from dynamoguard.audit.findings import AUTHORISED_FAILURES, DENIED_CODES, Finding, lower
from dynamoguard.audit.records import is_network_copy, principal_arn


class Hit(NamedTuple):
    resource: str
    severity: str | None = None  # overrides the rule's default
    detail: dict[str, Any] | None = None
    table: str | None = None  # the protected table concerned


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    keys: tuple[tuple[str, str], ...]
    func: Callable[[dict, Context], Hit | None]
    judges_principal: bool = False  # reported on failed (not denied) calls too
    screen: Callable[[Any, Context], bool] | None = None  # False only if the rule cannot fire on the record
    grouped: bool = False  # one finding per principal, table and outcome per audit unit, with a count


REGISTRY: dict[tuple[str, str], list[Rule]] = {}
RULES: list[Rule] = []


def rule(rule_id: str, title: str, severity: str, source: str, names: Iterable[str], *,
         judges_principal: bool = False, screen: Callable[[Any, Context], bool] | None = None,
         grouped: bool = False):
    """Register the decorated function for ``source`` and each of ``names`` (again: replaced, not doubled)."""

    def register(func):
        keys = tuple((source, name) for name in names)
        entry = Rule(rule_id, title, severity, keys, func, judges_principal, screen, grouped)
        same = [r for r in RULES if (r.id, r.func.__name__) == (rule_id, func.__name__)]
        for old in same:
            RULES.remove(old)
            for key in old.keys:
                REGISTRY[key].remove(old)
        RULES.append(entry)
        for key in keys:
            REGISTRY.setdefault(key, []).append(entry)
        return func

    return register


def evaluate(event: dict, rules: Iterable[Rule], ctx: Context, log_key: str | None = None) -> list[Finding]:
    """Findings of ``rules`` on one record."""
    if is_network_copy(event):
        return []
    error = event.get("errorCode")
    denied = error in DENIED_CODES
    found = []
    for entry in rules:
        if error and not denied and not entry.judges_principal:
            continue
        hit = entry.func(event, ctx)
        if hit is None:
            continue
        severity, outcome = hit.severity or entry.severity, "success"
        if denied:
            severity, outcome = lower(severity), "denied"
        elif error:
            outcome = "failed"
            if error not in AUTHORISED_FAILURES:
                severity = lower(severity)
        found.append(Finding(
            severity=severity,
            rule=entry.id,
            title=entry.title,
            resource=hit.resource or "",
            table=hit.table,
            event_time=event.get("eventTime"),
            event_name=event.get("eventName"),
            principal=principal_arn(event),
            source_ip=event.get("sourceIPAddress"),
            event_id=event.get("eventID"),
            log_key=log_key,
            account=event.get("recipientAccountId"),
            region=event.get("awsRegion"),
            outcome=outcome,
            detail={**(hit.detail or {}), **({"errorCode": error} if error else {})},
        ))
    return found

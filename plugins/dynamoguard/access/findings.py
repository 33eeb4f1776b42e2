"""Findings from the who-can-do-what matrix.

Each names the principal, the resource (and the protected table it concerns, if it is a table), the
actions, and its evidence: the statements behind a direct grant (with their conditions), or every hop of
an escalation path. A grant behind a condition we cannot decide keeps its severity: the condition is
evidence, not a mitigation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dynamoguard.access.evaluate import (
    Grant,
    PrincipalPolicies,
    condition_text,
    conditions,
    glob_match,
    literal_prefix,
    statement_principals,
    statements,
)
from dynamoguard.access.resources import (
    DATA,
    DESTRUCTIVE,
    FINE_GRAINED_ACTIONS,
    FINE_GRAINED_KEYS,
    Entry,
    ProtectedResource,
)

SEVERITIES = ("critical", "high", "medium", "low", "info")
ALERT_SEVERITIES = frozenset({"critical", "high"})
ACTIVE = ("allowed", "conditional")
# Whole-table copies: an export, or an export object in a backup bucket.
BULK_READS = frozenset({"dynamodb:ExportTableToPointInTime", "s3:GetObject"})
# Reaching one of these through an escalation path is critical: the table or its backups can be destroyed.
DELETIONS = frozenset({"dynamodb:DeleteTable", "dynamodb:DeleteBackup", "s3:DeleteObject",
                       "s3:DeleteObjectVersion"})


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    status: str  # allowed | conditional
    principal: str
    policy: str
    statement: str
    resource: str
    resource_arn: str
    account: str
    actions: tuple[str, ...] = field(default=())
    message: str = ""
    table: str | None = None
    evidence: tuple[dict[str, Any], ...] = field(default=())

    @property
    def id(self) -> str:
        """Stable across runs for the same grant, so runs can be compared."""
        key = "|".join((self.kind, self.principal, self.resource, self.policy, self.statement))
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "severity": self.severity, "status": self.status,
            "principal": self.principal, "policy": self.policy, "statement": self.statement,
            "actions": list(self.actions), "resource": self.resource, "resource_arn": self.resource_arn,
            "table": self.table, "account": self.account, "message": self.message, "evidence": list(self.evidence),
        }


def is_allowlisted(principal: str, allowlist: Iterable[str]) -> bool:
    """Exact ARN or a wildcard pattern from the config (``arn:aws:iam::111111111111:role/app-*``)."""
    return any(glob_match(pattern, principal) for pattern in allowlist)


def _broad_resource(grant: Grant, resource: ProtectedResource) -> bool:
    pattern = grant.resource_pattern
    if pattern.startswith("NotResource"):
        return True
    return len(literal_prefix(pattern)) < len(resource.arn)


def _by_grant(entries: Iterable[Entry], want) -> dict[tuple, list[tuple[Entry, Grant]]]:
    groups: dict[tuple, list[tuple[Entry, Grant]]] = {}
    for entry in entries:
        if entry.access.decision not in ACTIVE or entry.path:
            continue
        for grant in entry.access.grants:
            if want(entry, grant):
                key = (entry.who.arn, entry.resource.id, grant.policy, grant.statement)
                groups.setdefault(key, []).append((entry, grant))
    return groups


def _status(items: list[tuple[Entry, Grant]]) -> str:
    return "allowed" if any(e.access.decision == "allowed" and not g.conditional for e, g in items) else "conditional"


def _actions(items: list[tuple[Entry, Any]]) -> tuple[str, ...]:
    return tuple(sorted({e.action for e, _ in items}))


def _unique(dicts: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    seen, out = set(), []
    for d in dicts:
        key = repr(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return tuple(out)


def _evidence(items: list[tuple[Entry, Grant]]) -> tuple[dict[str, Any], ...]:
    """The grant, and for a conditional outcome the denies that may apply."""
    grants = [g.to_dict() for _, g in items]
    denies = [d.to_dict() for e, _ in items if e.access.decision == "conditional" for d in e.access.denies]
    return _unique(grants + denies)


def _if(items: list[tuple[Entry, Grant]], status: str) -> str:
    """`` if <conditions>`` for a conditional grant, naming operator, key and values."""
    if status == "allowed":
        return ""
    tests = {condition_text(*c) for _, g in items for c in g.conditions}
    tests |= {f"{d.effect} {d.policy} / {d.statement} does not apply" for e, _ in items for d in e.access.denies}
    return f" if {' and '.join(sorted(tests))}" if tests else " (depending on conditions)"


def _grant_findings(kind: str, groups, severity_of, message_of) -> list[Finding]:
    out = []
    for (principal, _, policy, sid), items in groups.items():
        entry = items[0][0]
        resource = entry.resource
        status = _status(items)
        actions = _actions(items)
        out.append(Finding(kind, severity_of(items, status), status, principal, policy, sid, resource.id,
                           resource.arn, resource.account, actions,
                           message_of(principal, actions, resource, status) + _if(items, status),
                           entry.table, _evidence(items)))
    return out


def _verb(status: str) -> str:
    return "can" if status == "allowed" else "may"


def _unlisted(entry: Entry) -> bool:
    return not is_allowlisted(entry.who.arn, entry.resource.allowed_principals)


def unlisted_destructive(entries: list[Entry]) -> list[Finding]:
    groups = _by_grant(entries, lambda e, g: e.category == DESTRUCTIVE and _unlisted(e))
    return _grant_findings(
        "unlisted_destructive", groups, lambda items, status: "high",
        lambda p, a, r, s: f"{p} {_verb(s)} {', '.join(a)} on {r.kind} {r.name} but is not in its allowlist",
    )


def unlisted_data_access(entries: list[Entry]) -> list[Finding]:
    """Reads, writes and exports by principals outside the allowlist; exports and backup reads are high."""
    groups = _by_grant(entries, lambda e, g: e.category == DATA and _unlisted(e))
    return _grant_findings(
        "unlisted_data_access", groups,
        lambda items, status: "high" if any(e.action in BULK_READS for e, _ in items) else "medium",
        lambda p, a, r, s: f"{p} {_verb(s)} {', '.join(a)} on {r.kind} {r.name} but is not in its allowlist",
    )


def wildcard_grants(entries: list[Entry]) -> list[Finding]:
    groups = _by_grant(entries, lambda e, g: g.wildcard_action or _broad_resource(g, e.resource))
    return _grant_findings(
        "wildcard_grant", groups,
        lambda items, status: "high" if any(e.category == DESTRUCTIVE for e, _ in items) else "medium",
        lambda p, a, r, s: f"{p} {_verb(s)} {', '.join(a)} on {r.kind} {r.name} through a wildcard grant",
    )


def fine_grained_missing(entries: list[Entry]) -> list[Finding]:
    groups = _by_grant(entries, lambda e, g: e.resource.fine_grained and e.action in FINE_GRAINED_ACTIONS
                       and not FINE_GRAINED_KEYS & {k.lower() for k in g.condition_keys})
    return _grant_findings(
        "fine_grained_missing", groups,
        lambda items, status: "high",
        lambda p, a, r, s: (f"{p} {_verb(s)} {', '.join(a)} on table {r.name} without a dynamodb:LeadingKeys or "
                            "dynamodb:Attributes condition, which the config requires for this table"),
    )


def escalation_paths(entries: list[Entry]) -> list[Finding]:
    """Access gained through an escalation path by a principal outside the resource's allowlist.

    Critical when the path reaches deleting a protected table or its backups; high for the other
    destructive actions, exports and backup reads; medium for item reads and writes.
    """
    groups: dict[tuple, list[Entry]] = {}
    for entry in entries:
        if entry.path and entry.access.decision in ACTIVE and _unlisted(entry):
            route = " ; ".join(f"{h.kind} {h.target.label}" for h in entry.path)
            groups.setdefault((entry.who.arn, entry.resource.id, route), []).append(entry)
    out = []
    for (principal, _, route), items in groups.items():
        entry, r = items[0], items[0].resource
        actions = tuple(sorted({e.action for e in items}))
        status = "allowed" if any(e.access.decision == "allowed" for e in items) else "conditional"
        if DELETIONS & set(actions):
            severity = "critical"
        elif any(e.category == DESTRUCTIVE for e in items) or BULK_READS & set(actions):
            severity = "high"
        else:
            severity = "medium"
        hops = [{"hop": n, **hop.to_dict()} for n, hop in enumerate(entry.path, 1)]
        end = entry.path[-1].target.label
        terminal = [{**g.to_dict(), "holder": end} for e in items for g in e.access.grants]
        message = (f"{principal} {_verb(status)} {', '.join(actions)} on {r.kind} {r.name} by escalation: "
                   + " -> ".join(h.text for h in entry.path))
        out.append(Finding("escalation_path", severity, status, principal, "escalation path", route, r.id, r.arn,
                           r.account, actions, message, entry.table, _unique(hops + terminal)))
    return out


def missing_boundaries(entries: list[Entry], principals: Iterable[PrincipalPolicies]) -> list[Finding]:
    """Roles with access to a protected resource but no permissions boundary (service-linked roles excepted)."""
    unbounded = {p.arn for p in principals if p.principal.kind == "role" and p.boundary is None
                 and not p.path.startswith("/aws-service-role/")}
    groups: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        if entry.access.decision in ACTIVE and not entry.path and entry.who.arn in unbounded:
            groups.setdefault((entry.who.arn, entry.resource.id), []).append(entry)
    out = []
    for (arn, _), items in groups.items():
        r = items[0].resource
        actions = tuple(sorted({e.action for e in items}))
        message = f"role {arn} has access to {r.kind} {r.name} but no permissions boundary"
        out.append(Finding("missing_permission_boundary", "medium", "allowed", arn, "-", "-", r.id, r.arn,
                           r.account, actions, message, items[0].table, ({"permissions_boundary": None},)))
    return out


def cross_account(resources: Iterable[ProtectedResource]) -> list[Finding]:
    """Allow statements of resource and bucket policies naming another account or anyone."""
    out = []
    for r in resources:
        for sid, stmt in statements(r.policy):
            if stmt.get("Effect") != "Allow":
                continue
            actions = stmt.get("Action", stmt.get("NotAction", []))
            actions = (actions,) if isinstance(actions, str) else tuple(actions)
            for p in statement_principals(stmt):
                if p.kind == "service" or (p.account == r.account and not p.is_anyone):
                    continue
                conditional = bool(stmt.get("Condition"))
                if p.is_anyone or "NotPrincipal" in stmt:
                    severity, what = ("high" if conditional else "critical"), "anyone"
                elif is_allowlisted(p.arn, r.allowed_principals):
                    severity, what = "info", f"allowlisted principal of account {p.account}"
                else:
                    severity, what = "high", f"account {p.account}" if p.account else "an unresolved principal"
                tests = [condition_text(*c) for c in conditions(stmt)]
                out.append(Finding(
                    "cross_account", severity, "conditional" if conditional else "allowed", p.arn, r.policy_name,
                    sid, r.id, r.arn, r.account, actions,
                    f"{r.policy_name} grants {', '.join(actions)} to {what} ({p.arn})"
                    + (f" if {' and '.join(tests)}" if tests else ""),
                    r.name if r.kind == "table" else None,
                    ({"policy": r.policy_name, "statement": sid, "effect": "Allow", "principal": p.arn,
                      "conditions": [{"operator": o, "key": k, "values": list(v)} for o, k, v in conditions(stmt)]},),
                ))
    return out


def all_findings(entries: list[Entry], resources: list[ProtectedResource], principals: list[PrincipalPolicies],
                 require_permission_boundary: bool) -> list[Finding]:
    """Every finding, most severe first."""
    findings = (unlisted_destructive(entries) + unlisted_data_access(entries) + wildcard_grants(entries)
                + fine_grained_missing(entries) + escalation_paths(entries) + cross_account(resources))
    if require_permission_boundary:
        findings += missing_boundaries(entries, principals)
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.resource, f.principal, f.kind, f.policy,
                                          f.statement))

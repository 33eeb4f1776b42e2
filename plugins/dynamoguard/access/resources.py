"""The protected resources, the sensitive actions on them, and the who-can-do-what matrix."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dynamoguard.access.escalation import Estate, Graph, Node
from dynamoguard.access.evaluate import (
    NAME,
    Access,
    PrincipalPolicies,
    evaluate_access,
    statement_principals,
    statements,
)
from dynamoguard.access.paths import explore, path_decision, path_to, propagate

DESTRUCTIVE = "destructive"
DATA = "data"

# action -> (category, which ARN(s) it is authorized against)
TABLE_ACTIONS: dict[str, tuple[str, str]] = {
    "dynamodb:DeleteTable": (DESTRUCTIVE, "table"),
    "dynamodb:UpdateContinuousBackups": (DESTRUCTIVE, "table"),
    "dynamodb:DeleteBackup": (DESTRUCTIVE, "backup"),
    "dynamodb:UpdateTable": (DESTRUCTIVE, "table"),
    "dynamodb:PutResourcePolicy": (DESTRUCTIVE, "table"),
    "dynamodb:DeleteResourcePolicy": (DESTRUCTIVE, "table"),
    "dynamodb:GetItem": (DATA, "table"),
    "dynamodb:BatchGetItem": (DATA, "table"),
    "dynamodb:Query": (DATA, "table+index"),  # a global secondary index can project every attribute
    "dynamodb:Scan": (DATA, "table+index"),
    "dynamodb:PutItem": (DATA, "table"),
    "dynamodb:UpdateItem": (DATA, "table"),
    "dynamodb:DeleteItem": (DATA, "table"),
    "dynamodb:BatchWriteItem": (DATA, "table"),
    "dynamodb:ExportTableToPointInTime": (DATA, "table"),
}
# Item-level actions that dynamodb:LeadingKeys / dynamodb:Attributes conditions can restrict.
FINE_GRAINED_ACTIONS = frozenset({
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:PutItem",
    "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
})
FINE_GRAINED_KEYS = frozenset({"dynamodb:leadingkeys", "dynamodb:attributes"})

BUCKET_ACTIONS: dict[str, tuple[str, str]] = {
    "s3:DeleteObject": (DESTRUCTIVE, "object"),
    "s3:DeleteObjectVersion": (DESTRUCTIVE, "object"),
    "s3:PutObjectRetention": (DESTRUCTIVE, "object"),
    "s3:BypassGovernanceRetention": (DESTRUCTIVE, "object"),
    "s3:PutBucketPolicy": (DESTRUCTIVE, "bucket"),
    "s3:DeleteBucketPolicy": (DESTRUCTIVE, "bucket"),
    "s3:PutLifecycleConfiguration": (DESTRUCTIVE, "bucket"),
    "s3:PutReplicationConfiguration": (DESTRUCTIVE, "bucket"),
    "s3:DeleteBucket": (DESTRUCTIVE, "bucket"),
    "s3:GetObject": (DATA, "object"),
}


@dataclass(frozen=True)
class ProtectedResource:
    """A protected table or backup bucket, with the ARNs (or ``prefix*`` scopes) each action is checked on."""

    id: str
    name: str
    kind: str  # table | bucket
    account: str
    arn: str
    scopes: Mapping[str, tuple[str, ...]]
    allowed_principals: tuple[str, ...] = ()
    fine_grained: bool = False
    policy: Mapping[str, Any] | None = None
    policy_name: str = ""

    def category(self, action: str) -> str:
        return (TABLE_ACTIONS if self.kind == "table" else BUCKET_ACTIONS)[action][0]


def table_resource(name: str, arn: str, account: str, *, allowed: Iterable[str] = (), fine_grained: bool = False,
                   policy: Mapping[str, Any] | None = None) -> ProtectedResource:
    scopes = {"table": (arn,), "backup": (f"{arn}/backup/{NAME}",), "table+index": (arn, f"{arn}/index/{NAME}")}
    return ProtectedResource(
        id=f"table:{name}", name=name, kind="table", account=account, arn=arn,
        scopes={action: scopes[kind] for action, (_, kind) in TABLE_ACTIONS.items()},
        allowed_principals=tuple(allowed), fine_grained=fine_grained, policy=policy,
        policy_name=f"resource policy of table {name}",
    )


def bucket_resource(name: str, account: str, *, prefix: str = "", allowed: Iterable[str] = (),
                    policy: Mapping[str, Any] | None = None) -> ProtectedResource:
    arn = f"arn:aws:s3:::{name}"
    objects = f"{arn}/{prefix.strip('/')}/*" if prefix.strip("/") else f"{arn}/*"
    scopes = {"bucket": (arn,), "object": (objects,)}
    return ProtectedResource(
        id=f"bucket:{name}", name=name, kind="bucket", account=account, arn=arn,
        scopes={action: scopes[kind] for action, (_, kind) in BUCKET_ACTIONS.items()},
        allowed_principals=tuple(allowed), policy=policy, policy_name=f"bucket policy of {name}",
    )


def policy_principals(resource: ProtectedResource, known: Iterable[str]) -> list[PrincipalPolicies]:
    """Principals a resource policy names that are not IAM principals of the resource's account."""
    known = set(known)
    seen: dict[str, PrincipalPolicies] = {}
    for _, stmt in statements(resource.policy):
        if stmt.get("Effect") != "Allow":
            continue
        for p in statement_principals(stmt):
            if p.arn in known or p.arn in seen:
                continue
            if p.kind == "account" and p.account == resource.account:
                continue  # the account itself: its own IAM policies decide
            seen[p.arn] = PrincipalPolicies(p, external=True)
    return list(seen.values())


# When an action is checked on several ARNs (a table and its indexes), the widest access is reported.
_RANK = {"not_allowed": 0, "denied": 1, "conditional": 2, "allowed": 3}


@dataclass(frozen=True)
class Entry:
    """One cell of the matrix: what ``principal`` may do with ``action`` on ``resource``.

    Direct access has no ``path``; access gained by escalation has the hops (``escalation.Hop``) from
    ``who`` to the principal whose policies grant it (``access``: that principal's grants, and the
    decision of the whole path).
    """

    resource: ProtectedResource
    who: PrincipalPolicies
    action: str
    category: str
    access: Access
    path: tuple = ()

    @property
    def table(self) -> str | None:
        return self.resource.name if self.resource.kind == "table" else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource.id, "table": self.table, "principal": self.who.arn,
            "principal_kind": self.who.principal.kind, "action": self.action, "category": self.category,
            "decision": self.access.decision, "via": "path" if self.path else "direct",
            "path": [hop.to_dict() for hop in self.path],
            "grants": [g.to_dict() for g in self.access.grants],
            "denies": [g.to_dict() for g in self.access.denies],
        }


def _access(who: PrincipalPolicies, resource: ProtectedResource, action: str) -> Access:
    """The widest outcome over the ARNs the action is checked on (both accounts' rules)."""
    return max((evaluate_access(who, action, scope, resource.policy, resource.policy_name,
                                resource_account=resource.account) for scope in resource.scopes[action]),
               key=lambda a: _RANK[a.decision])


def build_matrix(resources: Iterable[ProtectedResource],
                 principals_by_account: Mapping[str, list[PrincipalPolicies]]) -> list[Entry]:
    """Every (resource, principal, sensitive action) whose outcome is allowed, conditional or denied."""
    out = []
    for resource in resources:
        local = principals_by_account.get(resource.account, [])
        everyone = local + policy_principals(resource, (p.arn for p in local))
        for who in everyone:
            for action in resource.scopes:
                access = _access(who, resource, action)
                if access.decision != "not_allowed":
                    out.append(Entry(resource, who, action, resource.category(action), access))
    return out


def with_escalation(resources: Sequence[ProtectedResource], entries: list[Entry], estate: Estate) -> list[Entry]:
    """The matrix with access gained through escalation paths: a principal without direct access (or with
    only conditional access) gets an entry through the shortest path to a principal that has it."""
    keys = [(r, action) for r in resources for action in r.scopes]
    bits = {(r.id, action): i for i, (r, action) in enumerate(keys)}
    full = (1 << len(keys)) - 1
    direct: dict[str, dict[int, Entry]] = {}
    for entry in entries:
        direct.setdefault(entry.who.arn, {})[bits[(entry.resource.id, entry.action)]] = entry
    terminal: dict[Node, dict[int, Access]] = {}

    def capabilities(node: Node) -> dict[int, Access]:
        if node not in terminal:
            who = estate.policies(node)
            account = who.principal.account
            found = {}
            for i, (resource, action) in enumerate(keys):
                if node.is_base and resource.account == account:
                    entry = direct.get(node.arn, {}).get(i)
                    access = entry.access if entry else None
                elif resource.account == account or resource.policy:
                    access = _access(who, resource, action)
                else:
                    continue
                if access is not None and access.decision in ("allowed", "conditional"):
                    found[i] = access
            terminal[node] = found
        return terminal[node]

    def mask(node: Node, allowed_only: bool) -> int:
        return sum(1 << i for i, a in capabilities(node).items() if a.decision == "allowed" or not allowed_only)

    graph = Graph(estate)
    starts = [Node(arn) for arn in sorted(estate.principals)]
    nodes = explore(graph, starts, lambda n: mask(n, True) == full)
    strict, strict_via = propagate(graph, nodes, {n: mask(n, True) for n in nodes}, allowed_only=True)
    loose, loose_via = propagate(graph, nodes, {n: mask(n, False) for n in nodes}, allowed_only=False)

    out = list(entries)
    replaced: set[int] = set()
    for start in starts:
        own = direct.get(start.arn, {})
        mine = capabilities(start)
        allowed_own = mask(start, True)
        for i, (resource, action) in enumerate(keys):
            if allowed_own >> i & 1:
                continue
            if strict[start] >> i & 1:
                path = path_to(strict_via, start, i)
            elif loose[start] >> i & 1 and i not in mine:
                path = path_to(loose_via, start, i)
            else:
                continue
            end = path[-1].target
            reached = capabilities(end)[i]
            decision = "allowed" if path_decision(path) == "allowed" and reached.decision == "allowed" \
                else "conditional"
            who = estate.principals[start.arn]
            if i in own:
                replaced.add(id(own[i]))
            out.append(Entry(resource, who, action, resource.category(action),
                             Access(decision, reached.grants, reached.denies), path))
    return [e for e in out if id(e) not in replaced]


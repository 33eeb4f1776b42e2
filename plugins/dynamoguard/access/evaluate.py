"""IAM policy evaluation for one question: can this principal perform this action on this resource?

Pure functions over policy documents (no AWS calls), following AWS's evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny anywhere wins; otherwise an Allow in an identity policy or in the resource policy is
needed; a permissions boundary only limits (an action must also be allowed by the boundary) and never
grants. Results are three-valued: a statement whose Condition cannot be decided from what we know
of the principal makes the outcome ``conditional`` rather than silently allowed or denied.

Resources may be a scope: an ARN ending in ``*`` stands for every ARN under it ("some export object
in the bucket"); an ARN ending in ``<name>`` (:data:`NAME`) for every ARN ending in one name that cannot
contain ``:`` or ``/`` (an index name or a backup id under a table). An Allow counts if its Resource
pattern reaches any ARN in the scope; a Deny counts
only if it covers the whole scope (a Deny covering part of it makes the outcome conditional).

Principal parsing uses ``policyuniverse``. Action patterns are matched directly rather than expanded
through policyuniverse's action catalogue, which predates actions such as ``dynamodb:PutResourcePolicy``
(an expansion would silently miss them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from typing import Any

from policyuniverse.arn import ARN
from policyuniverse.statement import Statement

_VARIABLE = re.compile(r"\$\{[^}]*\}")
ANYONE = "*"
NAME = "<name>"  # at the end of a scope: any one name without ':' or '/' (index names, backup ids)
_SEPARATORS = frozenset(":/")


class Tri(IntEnum):
    """Three-valued truth: a condition we cannot decide is MAYBE."""

    NO = 0
    MAYBE = 1
    YES = 2


def _all(values: Iterable[Tri]) -> Tri:
    return min(values, default=Tri.YES)


def _any(values: Iterable[Tri]) -> Tri:
    return max(values, default=Tri.NO)


def _not(value: Tri) -> Tri:
    return Tri(2 - value)


# --- wildcard matching ------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _closure(pattern: str, states: frozenset[int]) -> frozenset[int]:
    out = set(states)
    stack = list(states)
    while stack:
        i = stack.pop()
        if i < len(pattern) and pattern[i] == "*" and i + 1 not in out:
            out.add(i + 1)
            stack.append(i + 1)
    return frozenset(out)


def _consume(pattern: str, text: str) -> frozenset[int]:
    """Positions in ``pattern`` (``*`` any run, ``?`` one character) reachable after reading ``text``."""
    states = _closure(pattern, frozenset({0}))
    for char in text:
        nxt = set()
        for i in states:
            if i < len(pattern):
                if pattern[i] == "*":
                    nxt.add(i)
                elif pattern[i] == "?" or pattern[i] == char:
                    nxt.add(i + 1)
        if not nxt:
            return frozenset()
        states = _closure(pattern, frozenset(nxt))
    return states


@lru_cache(maxsize=8192)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match: ``*`` any run of characters, ``?`` exactly one; nothing else is special."""
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    return _regex(pattern).fullmatch(value) is not None


@lru_cache(maxsize=65536)
def scope_overlap(pattern: str, scope: str) -> Tri:
    """YES if ``pattern`` matches every ARN in ``scope``, MAYBE if only some, NO if none."""
    if scope.endswith(NAME):
        # the rest of the pattern must match a non-empty name free of ':' and '/'
        rests = [pattern[i:] for i in _consume(pattern, scope[:-len(NAME)])]
        if any(rest and set(rest) == {"*"} for rest in rests):
            return Tri.YES
        return Tri.MAYBE if any(rest and not _SEPARATORS & set(rest) for rest in rests) else Tri.NO
    if not scope.endswith("*"):
        return Tri.YES if glob_match(pattern, scope) else Tri.NO
    states = _consume(pattern, scope[:-1])
    if not states:
        return Tri.NO
    if any(pattern[i:] and set(pattern[i:]) == {"*"} for i in states):
        return Tri.YES
    return Tri.MAYBE


def literal_prefix(pattern: str) -> str:
    """The part of ``pattern`` before its first wildcard or policy variable."""
    return re.split(r"[*?]|\$\{", pattern, maxsplit=1)[0]


# --- principals and requests -----------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    """Who makes the request, as far as policy evaluation needs to know."""

    arn: str
    kind: str  # role | user | account | service | anyone | federated
    account: str | None = None

    @property
    def is_anyone(self) -> bool:
        return self.arn == ANYONE


def principal_from(value: str, field_name: str = "AWS") -> Principal:
    """A Principal for one entry of a resource policy's Principal element."""
    if value == ANYONE:
        return Principal(ANYONE, "anyone")
    if field_name == "Service":
        return Principal(value, "service")
    if field_name == "Federated":
        return Principal(value, "federated")
    arn = ARN(value)
    if re.fullmatch(r"\d{12}", value):
        return Principal(f"arn:aws:iam::{value}:root", "account", value)
    if arn.error:
        return Principal(value, "unknown")
    if arn.root:
        return Principal(value, "account", arn.account_number)
    kind = arn.name.split("/", 1)[0] if arn.name else "unknown"
    kind = {"assumed-role": "role"}.get(kind, kind)
    return Principal(value, kind, arn.account_number)


def statement_principals(statement: Mapping[str, Any]) -> list[Principal]:
    """Principals named in a statement's Principal (or NotPrincipal) element."""
    element = statement.get("Principal", statement.get("NotPrincipal"))
    if element is None:
        return []
    if element == ANYONE:
        return [Principal(ANYONE, "anyone")]
    if not isinstance(element, Mapping):
        return [principal_from(v) for v in Statement({"Principal": element}).principals]
    out = []
    for field_name in ("AWS", "Service", "Federated", "CanonicalUser"):
        values = element.get(field_name)
        if values is None:
            continue
        for value in [values] if isinstance(values, str) else values:
            out.append(principal_from(value, field_name))
    return out


def _principal_matches(entry: Principal, principal: Principal, account_wide: bool) -> bool:
    if entry.is_anyone:
        return True
    if entry.kind == "account":
        # An account principal delegates to that account's own IAM policies: an Allow grants nothing by
        # itself to a role or user of the account (their identity policy must allow too), while a Deny
        # applies to every identity of the account (``account_wide``).
        return principal.account == entry.account and (account_wide or principal.kind == "account")
    return glob_match(entry.arn, principal.arn)


def _principal_tri(statement: Mapping[str, Any], principal: Principal | None, delegated: bool = False) -> Tri:
    if "Principal" not in statement and "NotPrincipal" not in statement:
        return Tri.YES  # identity policy: the principal is whoever holds it
    if principal is None:
        return Tri.NO
    account_wide = delegated or statement.get("Effect") == "Deny"
    named = any(_principal_matches(p, principal, account_wide) for p in statement_principals(statement))
    return Tri.YES if named != ("NotPrincipal" in statement) else Tri.NO


# --- conditions ------------------------------------------------------------------------------------

_STRING_OPERATORS = {
    "stringequals": (False, False, True), "stringnotequals": (True, False, True),
    "stringequalsignorecase": (False, False, False), "stringnotequalsignorecase": (True, False, False),
    "stringlike": (False, True, True), "stringnotlike": (True, True, True),
    "arnequals": (False, True, True), "arnnotequals": (True, True, True),
    "arnlike": (False, True, True), "arnnotlike": (True, True, True),
}


def _context(principal: Principal | None) -> dict[str, str]:
    """Request context keys known from the principal alone (lower-cased names)."""
    if principal is None or principal.kind in ("anyone", "unknown"):
        return {}
    ctx = {"aws:principalarn": principal.arn}
    if principal.account:
        ctx["aws:principalaccount"] = principal.account
    return ctx


def condition_tri(condition: Mapping[str, Any] | None, principal: Principal | None,
                  context: Mapping[str, str] | None = None) -> Tri:
    """Whether a Condition block holds: decided only for keys known from the principal or given in
    ``context`` (lower-cased key -> value, e.g. ``iam:passedtoservice``), else MAYBE."""
    if not condition:
        return Tri.YES
    ctx = {**_context(principal), **(context or {})}
    results = []
    for operator, entries in condition.items():
        # the keys we decide are always present, so ...IfExists behaves like the plain operator
        base = operator.lower().removesuffix("ifexists")
        if ":" in base or base not in _STRING_OPERATORS or not isinstance(entries, Mapping):
            results.append(Tri.MAYBE)
            continue
        negated, wildcard, case_sensitive = _STRING_OPERATORS[base]
        for key, values in entries.items():
            key = key.lower()
            if key not in ctx:
                results.append(Tri.MAYBE)
                continue
            actual = ctx[key]
            wanted = [values] if isinstance(values, str) else list(values)
            if any(_VARIABLE.search(w) for w in wanted):
                results.append(Tri.MAYBE)
                continue
            hit = any(
                glob_match(w, actual, ignore_case=not case_sensitive) if wildcard
                else (w == actual if case_sensitive else w.lower() == actual.lower())
                for w in wanted
            )
            results.append(Tri.YES if hit != negated else Tri.NO)
    return _all(results)


def conditions(statement: Mapping[str, Any]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(operator, key, values) of every test in a statement's Condition block, as written."""
    out = []
    for operator, entries in (statement.get("Condition") or {}).items():
        if isinstance(entries, Mapping):
            out.extend((operator, key, tuple(str(v) for v in _as_list(values))) for key, values in entries.items())
    return tuple(out)


def condition_text(operator: str, key: str, values: Iterable[str]) -> str:
    """``StringEquals aws:SourceIp 10.0.0.0/8`` (several values joined by `` | ``)."""
    return f"{operator} {key} {' | '.join(values)}"


# --- statements and policies -----------------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    """A statement that applies to a request: which policy, which statement, and how it matched."""

    policy: str
    statement: str
    effect: str
    conditional: bool
    action_pattern: str
    resource_pattern: str
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (operator, key, values)
    source: str = "identity"  # identity | boundary | resource

    @property
    def condition_keys(self) -> tuple[str, ...]:
        return tuple(key for _, key, _ in self.conditions)

    @property
    def wildcard_action(self) -> bool:
        return "*" in self.action_pattern or self.action_pattern.startswith("NotAction")

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy, "statement": self.statement, "effect": self.effect,
            "conditional": self.conditional, "action_pattern": self.action_pattern,
            "resource_pattern": self.resource_pattern, "source": self.source,
            "conditions": [{"operator": o, "key": k, "values": list(v)} for o, k, v in self.conditions],
        }


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def statements(document: Mapping[str, Any] | None) -> list[tuple[str, Mapping[str, Any]]]:
    """(Sid or ``#index``, statement) for every statement of a policy document."""
    if not document:
        return []
    raw = document.get("Statement", [])
    items = [raw] if isinstance(raw, Mapping) else list(raw)
    return [(str(s.get("Sid") or f"#{i}"), s) for i, s in enumerate(items)]


def action_match(statement: Mapping[str, Any], action: str) -> str | None:
    if "NotAction" in statement:
        excluded = _as_list(statement["NotAction"])
        if any(glob_match(p, action, ignore_case=True) for p in excluded):
            return None
        return "NotAction " + ",".join(excluded)
    for pattern in _as_list(statement.get("Action")):
        if glob_match(pattern, action, ignore_case=True):
            return pattern
    return None


def _resource_match(statement: Mapping[str, Any], scope: str, deny: bool) -> tuple[Tri, str]:
    if "NotResource" in statement:
        patterns = _as_list(statement["NotResource"])
        overlap = _any(scope_overlap(_VARIABLE.sub("*", p), scope) for p in patterns)
        tri = _not(overlap)
        if overlap and any(_VARIABLE.search(p) for p in patterns):
            tri = Tri.MAYBE
        elif tri == Tri.MAYBE and not deny:
            tri = Tri.YES  # part of the scope is outside NotResource, so the Allow reaches it
        return tri, "NotResource " + ",".join(patterns)
    if "Resource" not in statement:
        return Tri.YES, scope  # a trust policy: it applies to the role it belongs to
    best, best_pattern = Tri.NO, ""
    for pattern in _as_list(statement.get("Resource")):
        overlap = scope_overlap(_VARIABLE.sub("*", pattern), scope)
        if overlap and _VARIABLE.search(pattern):
            overlap = Tri.MAYBE
        elif overlap == Tri.MAYBE and not deny:
            overlap = Tri.YES  # an Allow reaching part of the scope grants the action on that part
        if overlap > best:
            best, best_pattern = overlap, pattern
    return best, best_pattern


@dataclass(frozen=True)
class PolicyResult:
    """How one policy document answers one request."""

    allow: Tri
    deny: Tri
    allows: tuple[Grant, ...] = ()
    denies: tuple[Grant, ...] = ()


NO_POLICY = PolicyResult(Tri.NO, Tri.NO)


_CACHE_LIMIT = 500_000
_relevant_cache: dict[tuple[int, str], tuple[Mapping[str, Any], tuple, bool, bool]] = {}
_result_cache: dict[tuple, tuple[Mapping[str, Any], PolicyResult]] = {}


def _relevant(document: Mapping[str, Any], action: str) -> tuple[tuple, bool, bool]:
    """The statements of ``document`` covering ``action`` (sid, statement, action pattern), whether any
    names a principal and whether any has a condition (cached per document object and action)."""
    key = (id(document), action)
    hit = _relevant_cache.get(key)
    if hit is not None and hit[0] is document:
        return hit[1:]
    found = tuple((sid, stmt, pattern) for sid, stmt in statements(document)
                  if stmt.get("Effect") in ("Allow", "Deny") and (pattern := action_match(stmt, action)) is not None)
    named = any("Principal" in stmt or "NotPrincipal" in stmt for _, stmt, _ in found)
    conditional = any(stmt.get("Condition") for _, stmt, _ in found)
    if len(_relevant_cache) > _CACHE_LIMIT:
        _relevant_cache.clear()
    _relevant_cache[key] = (document, found, named, conditional)
    return found, named, conditional


def relevant_statements(document: Mapping[str, Any] | None, action: str) -> tuple:
    """(sid, statement, action pattern) of each Allow or Deny statement of ``document`` covering ``action``."""
    return _relevant(document, action)[0] if document else ()


def evaluate_policy(document: Mapping[str, Any] | None, action: str, resource: str, *, policy: str = "",
                    principal: Principal | None = None, source: str = "identity",
                    context: Mapping[str, str] | None = None, delegated: bool = False) -> PolicyResult:
    """Does ``document`` allow or deny ``action`` on ``resource`` (an ARN or ``prefix*`` scope)?

    ``principal`` is required to evaluate resource policies (their Principal element) and lets
    conditions on ``aws:PrincipalArn``/``aws:PrincipalAccount`` be decided; ``context`` adds known
    request keys. ``delegated``: an Allow naming the principal's account counts (the account delegates
    to its identity policies, which the caller checks separately). Results are cached per document
    object: a managed policy shared by many principals is evaluated once per request.
    """
    if not document:
        return NO_POLICY
    found, named, conditional = _relevant(document, action)
    if not found:
        return NO_POLICY
    key = (id(document), action, resource, policy, source, delegated,
           principal if named or conditional else None,
           tuple(sorted(context.items())) if context and conditional else None)
    hit = _result_cache.get(key)
    if hit is not None and hit[0] is document:
        return hit[1]
    allows, denies = [], []
    allow = deny = Tri.NO
    for sid, stmt, action_pattern in found:
        effect = stmt["Effect"]
        resource_tri, resource_pattern = _resource_match(stmt, resource, deny=effect == "Deny")
        if resource_tri == Tri.NO:
            continue
        tri = _all([resource_tri, _principal_tri(stmt, principal, delegated),
                    condition_tri(stmt.get("Condition"), principal, context)])
        if tri == Tri.NO:
            continue
        grant = Grant(policy, sid, effect, tri == Tri.MAYBE, action_pattern, resource_pattern,
                      conditions(stmt), source)
        if effect == "Allow":
            allows.append(grant)
            allow = max(allow, tri)
        else:
            denies.append(grant)
            deny = max(deny, tri)
    result = PolicyResult(allow, deny, tuple(allows), tuple(denies))
    if len(_result_cache) > _CACHE_LIMIT:
        _result_cache.clear()
    _result_cache[key] = (document, result)
    return result


def is_allowed(document: Mapping[str, Any], action: str, resource: str, principal: Principal | None = None) -> str:
    """``allowed``, ``conditional``, ``denied`` (explicit Deny) or ``not_allowed`` by this one document."""
    result = evaluate_policy(document, action, resource, principal=principal)
    return decision(_all([result.allow, _not(result.deny)]), result.deny)


def decision(allow: Tri, deny: Tri) -> str:
    if deny == Tri.YES:
        return "denied"
    return {Tri.YES: "allowed", Tri.MAYBE: "conditional", Tri.NO: "not_allowed"}[allow]


# --- a principal's whole access --------------------------------------------------------------------

@dataclass(frozen=True)
class PrincipalPolicies:
    """A principal with every policy that applies to its requests."""

    principal: Principal
    identity: Sequence[tuple[str, Mapping[str, Any]]] = ()  # (policy label, document)
    boundary: tuple[str, Mapping[str, Any]] | None = None
    path: str = "/"
    external: bool = False  # defined outside the evaluated account: its identity policies are unknown

    @property
    def arn(self) -> str:
        return self.principal.arn


@dataclass(frozen=True)
class Access:
    """The outcome of one (principal, action, resource) request."""

    decision: str
    grants: tuple[Grant, ...] = field(default=())
    denies: tuple[Grant, ...] = field(default=())


def evaluate_access(who: PrincipalPolicies, action: str, resource: str,
                    resource_policy: Mapping[str, Any] | None = None, resource_policy_name: str = "", *,
                    context: Mapping[str, str] | None = None, resource_account: str | None = None,
                    trust: bool = False) -> Access:
    """Combine identity policies, permissions boundary and resource policy for one request.

    Same-account rules: identity Allow (limited by the boundary) or resource-policy Allow naming the
    principal; a boundary also limits what a resource policy grants to a role (but not to a user named
    by ARN). For principals of other accounts only the resource policy is known: their own account's
    identity policies must allow the request too, which this account cannot see.

    ``trust``: the resource policy is a role's trust policy, which must itself admit the principal (by
    ARN, or its account when the identity policies allow the call too). A principal of another account
    than ``resource_account`` whose identity policies are known needs both sides to allow.
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html)
    """
    principal = who.principal
    identity = [evaluate_policy(doc, action, resource, policy=name, principal=principal, context=context)
                for name, doc in who.identity]
    boundary = (evaluate_policy(who.boundary[1], action, resource, policy=who.boundary[0], principal=principal,
                                source="boundary", context=context) if who.boundary else None)
    rp = (evaluate_policy(resource_policy, action, resource, policy=resource_policy_name, principal=principal,
                          source="resource", context=context) if resource_policy else NO_POLICY)

    id_allow = _any(r.allow for r in identity)
    if who.external:
        id_allow = Tri.NO
    rp_allow = rp.allow
    if boundary is not None:
        id_allow = _all([id_allow, boundary.allow])
        if principal.kind != "user":
            rp_allow = _all([rp_allow, boundary.allow])
    cross = resource_account is not None and principal.account != resource_account and not who.external
    if trust or cross:
        admitted = (evaluate_policy(resource_policy, action, resource, policy=resource_policy_name,
                                    principal=principal, source="resource", context=context, delegated=True)
                    if resource_policy else NO_POLICY)
        both = _all([admitted.allow, id_allow])
        allow_path = both if cross else _any([rp_allow, both])
        rp_grants = admitted.allows
    else:
        allow_path = _any([id_allow, rp_allow])
        rp_grants = rp.allows if rp_allow else ()
    deny = _any([*(r.deny for r in identity), boundary.deny if boundary else Tri.NO, rp.deny])
    allow = _all([allow_path, _not(deny)])

    grants = [g for r in identity for g in r.allows] if id_allow else []
    grants.extend(rp_grants)
    denies = [g for r in (*identity, *([boundary] if boundary else []), rp) for g in r.denies]
    return Access(decision(allow, deny), tuple(grants) if allow else (), tuple(denies))

"""Privilege escalation: which principals can come to act as another principal, or with more permissions.

The graph's nodes are the IAM roles and users of both configured accounts, plus what a node can turn
itself into: *admin* (it can give itself any policy; its permissions boundary still caps it) and
*unbounded* (it can remove or replace its boundary). Every hop is evaluated with :func:`evaluate_access`,
so boundaries, explicit denies and conditions apply on every hop; a condition we cannot decide makes the
hop conditional. Edges, after the published catalogues of IAM privilege-escalation methods
(Rhino Security Labs, https://rhinosecuritylabs.com/aws/aws-privilege-escalation-methods-mitigation/;
DataDog pathfinding.cloud, ``data/paths``; NCC Group Principal Mapper, ``principalmapper/graphing``):

- ``assume``: ``sts:AssumeRole`` on a role whose trust policy admits the principal (by ARN; or its
  account, when the principal's own policies allow the call too); across the two accounts both sides
  must allow (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html).
- ``update_trust``: ``iam:UpdateAssumeRolePolicy`` on a role of the same account, then assume it.
- ``pass_role``: ``iam:PassRole`` (with ``iam:PassedToService`` set to the service) on a role of the same
  account that trusts the service, plus the service's actions that run code as it (:data:`PASS_ROLE_METHODS`;
  https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
- ``credentials``: ``iam:CreateAccessKey``, ``iam:CreateLoginProfile`` or ``iam:UpdateLoginProfile`` on
  another user of the same account.
- ``policy_write`` (to *admin*): ``Attach/Put{Role,User}Policy`` on itself, ``Attach/PutGroupPolicy`` on
  one of its groups, ``iam:CreatePolicyVersion`` (or ``iam:SetDefaultPolicyVersion``, conditional: what
  the other versions grant is not read) on a customer managed policy attached to it; the same on a
  principal it has a direct edge to.
- ``boundary_removal`` (to *unbounded*): ``Delete/Put{Role,User}PermissionsBoundary`` on itself, or a new
  version of its boundary policy.
- ``join_group``: ``iam:AddUserToGroup`` puts a user in a group and gives it the group's policies.

Not modelled (listed in the report's limitations): existing compute that already runs as a role
(UpdateFunctionCode, ssm:SendCommand, UpdateStack and the like), service control and session policies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from dynamoguard.access.collect import policy_document
from dynamoguard.access.evaluate import (
    _VARIABLE,
    Access,
    Grant,
    Principal,
    PrincipalPolicies,
    Tri,
    action_match,
    decision,
    evaluate_access,
    evaluate_policy,
    glob_match,
    relevant_statements,
    scope_overlap,
    statement_principals,
    statements,
)
from dynamoguard.access.methods import (
    CREDENTIAL_ACTIONS,
    DROP_BOUNDARY,
    MODIFY_ACTIONS,
    PASS_ROLE_METHODS,
    WRITE_GROUP_POLICY,
    WRITE_POLICY,
    PassRoleMethod,
)

ACTIVE = ("allowed", "conditional")
NOT_ALLOWED = Access("not_allowed")
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "Anything", "Effect": "Allow", "Action": "*",
                                                          "Resource": "*"}]}
IAM_SCOPE = "arn:aws:iam::*"


@dataclass(frozen=True, order=True)
class Node:
    """A principal as the escalation leaves it."""

    arn: str
    admin: bool = False
    unbounded: bool = False
    groups: frozenset[str] = frozenset()  # group ARNs it added itself to

    @property
    def is_base(self) -> bool:
        """The principal as it is (not turned into anything by an escalation)."""
        return not (self.admin or self.unbounded or self.groups)

    @property
    def label(self) -> str:
        extra = (["with any policy it attaches"] if self.admin else []) + (
            ["without its permissions boundary"] if self.unbounded else []) + [
            f"in group {g.rsplit('/', 1)[-1]}" for g in sorted(self.groups)]
        return f"{self.arn} ({', '.join(extra)})" if extra else self.arn


@dataclass(frozen=True)
class Hop:
    """One step of an escalation path: ``source`` can come to act as ``target``.

    A hop to a whole family of principals (every role trusting the account, every user...) has
    ``family`` set (its key in :attr:`Estate.families`, and the members it does not reach) and a
    placeholder target; a path holds it with the member it went through.
    """

    source: Node
    target: Node
    kind: str
    how: str
    decision: str  # allowed | conditional
    grants: tuple[Grant, ...] = ()
    family: tuple[str, frozenset[str]] | None = None

    @property
    def text(self) -> str:
        return f"{self.source.label} -> {self.target.label}: {self.how}"

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source.label, "to": self.target.label, "kind": self.kind, "how": self.how,
                "decision": self.decision, "text": self.text, "evidence": [g.to_dict() for g in self.grants]}


def _tri(access: Access) -> Tri:
    return {"allowed": Tri.YES, "conditional": Tri.MAYBE}.get(access.decision, Tri.NO)


def _decision(tri: Tri) -> str:
    return {Tri.YES: "allowed", Tri.MAYBE: "conditional"}[tri]


@dataclass
class Estate:
    """The IAM estate of both accounts as the escalation needs it (from the snapshots)."""

    principals: dict[str, PrincipalPolicies]
    trust: dict[str, dict[str, Any]] = field(default_factory=dict)  # role ARN -> trust policy
    instance_profiles: set[str] = field(default_factory=set)  # roles in an instance profile
    user_groups: dict[str, list[str]] = field(default_factory=dict)  # user ARN -> group ARNs
    groups: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = field(default_factory=dict)  # group ARN -> docs
    group_accounts: dict[str, str] = field(default_factory=dict)
    attached: dict[str, list[str]] = field(default_factory=dict)  # principal ARN -> customer policy ARNs
    boundary_arn: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # customer policy ARN -> number of versions
    _variants: dict[Node, PrincipalPolicies] = field(default_factory=dict, repr=False)

    @classmethod
    def from_snapshots(cls, snapshots: Iterable[Mapping[str, Any]],
                       principals_by_account: Mapping[str, Sequence[PrincipalPolicies]]) -> Estate:
        estate = cls({p.arn: p for group in principals_by_account.values() for p in group})
        for snap in snapshots:
            details, account = snap["authorization_details"], snap["account"]
            group_arns = {}
            for group in details["GroupDetailList"]:
                arn = group.get("Arn") or f"arn:aws:iam::{account}:group{group.get('Path', '/')}{group['GroupName']}"
                group_arns[group["GroupName"]] = arn
                docs = [(f"group {group['GroupName']} inline policy {p['PolicyName']}",
                         policy_document(p["PolicyDocument"])) for p in group.get("GroupPolicyList", [])]
                docs += [(p["PolicyArn"], snap["managed_policies"][p["PolicyArn"]])
                         for p in group.get("AttachedManagedPolicies", [])]
                estate.groups[arn] = tuple(docs)
                estate.group_accounts[arn] = account
            for policy in details["Policies"]:
                estate.versions[policy["Arn"]] = len(policy.get("PolicyVersionList", [])) or 1
            for role in details["RoleDetailList"]:
                estate.trust[role["Arn"]] = policy_document(role.get("AssumeRolePolicyDocument") or {})
                if role.get("InstanceProfileList"):
                    estate.instance_profiles.add(role["Arn"])
                estate._attachments(role, [])
            for user in details["UserDetailList"]:
                groups = [group_arns[name] for name in user.get("GroupList", []) if name in group_arns]
                estate.user_groups[user["Arn"]] = groups
                group_policies = [p["PolicyArn"] for g in details["GroupDetailList"]
                                  if g["GroupName"] in user.get("GroupList", [])
                                  for p in g.get("AttachedManagedPolicies", [])]
                estate._attachments(user, group_policies)
        return estate

    def _attachments(self, entity: Mapping[str, Any], inherited: list[str]) -> None:
        arns = [p["PolicyArn"] for p in entity.get("AttachedManagedPolicies", [])] + inherited
        self.attached[entity["Arn"]] = [a for a in arns if ":aws:policy/" not in a]  # AWS managed: no versions
        boundary = (entity.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if boundary:
            self.boundary_arn[entity["Arn"]] = boundary

    def policies(self, node: Node) -> PrincipalPolicies:
        """The policies that apply to ``node``'s requests."""
        base = self.principals[node.arn]
        if node.is_base:
            return base
        if node in self._variants:
            return self._variants[node]
        identity = list(base.identity)
        for group in sorted(node.groups):
            identity.extend(self.groups[group])
        if node.admin:
            identity.append((f"any policy {node.arn} attaches to itself", ADMIN_POLICY))
        variant = replace(base, identity=tuple(identity), boundary=None if node.unbounded else base.boundary)
        self._variants[node] = variant
        return variant

    @cached_property
    def roles_by_trusted(self) -> dict[str, list[str]]:
        """Trusted principal ARN / account id / service / ``*`` -> roles whose trust policy names it."""
        index: dict[str, list[str]] = {}
        for role, doc in self.trust.items():
            for _, stmt in statements(doc):
                if stmt.get("Effect") != "Allow" or "NotPrincipal" in stmt:
                    continue
                for p in statement_principals(stmt):
                    key = p.account if p.kind == "account" else p.arn
                    if "*" in key and not p.is_anyone:
                        key = "*"  # a wildcard ARN: checked against every principal
                    index.setdefault(key, [])
                    if role not in index[key]:
                        index[key].append(role)
        return index

    @cached_property
    def simple_service_roles(self) -> frozenset[str]:
        """Roles in a ``service:`` family (their trust admits one service, unconditionally)."""
        return frozenset(m for k, members in self.families.items() if k.startswith("service:") for m in members)

    def users(self, account: str) -> list[str]:
        return self._of_kind("user", account)

    def roles(self, account: str) -> list[str]:
        return self._of_kind("role", account)

    def _of_kind(self, kind: str, account: str) -> list[str]:
        return [arn for arn, p in self.principals.items() if (p.principal.kind, p.principal.account) == (kind, account)]

    def _simple_trust(self, role: str) -> str | None:
        """The one account id or service a trust policy admits without conditions (None if it is not that simple)."""
        doc = self.trust.get(role) or {}
        found = set()
        for _, stmt in statements(doc):
            if stmt.get("Effect") != "Allow" or stmt.get("Condition") or "NotPrincipal" in stmt \
                    or action_match(stmt, "sts:AssumeRole") is None:
                return None
            for p in statement_principals(stmt):
                if p.kind not in ("account", "service"):
                    return None
                found.add(p.account if p.kind == "account" else p.arn)
        return found.pop() if len(found) == 1 else None

    @cached_property
    def families(self) -> dict[str, tuple[str, ...]]:
        """Principals a hop can reach all alike: ``roles:<account>``, ``users:<account>``, ``trusting:<account>``
        (roles whose trust admits the account, nothing else), ``service:<account>:<service>[:profile]``."""
        out: dict[str, list[str]] = {}
        for arn, p in sorted(self.principals.items()):
            account = p.principal.account
            out.setdefault(f"{p.principal.kind}s:{account}", []).append(arn)
            if p.principal.kind != "role":
                continue
            trusted = self._simple_trust(arn)
            if trusted is None:
                continue
            if trusted.isdigit():
                out.setdefault(f"trusting:{trusted}", []).append(arn)
            else:
                profile = ":profile" if arn in self.instance_profiles else ""
                out.setdefault(f"service:{account}:{trusted}{profile}", []).append(arn)
        return {k: tuple(v) for k, v in out.items()}


class Graph:
    """Edges out of each node, computed on demand and cached.

    When a node's policies treat a family of principals alike (``"*"``, ``role/*``), one hop to the
    family stands for a hop to each member; members named by a statement of their own are evaluated
    one by one.
    """

    def __init__(self, estate: Estate):
        self.estate = estate
        self._edges: dict[Node, list[Hop]] = {}
        self._access: dict[tuple, Access] = {}

    def can(self, node: Node, action: str, resource: str, context: Mapping[str, str] | None = None) -> Access:
        key = (node, action, resource, tuple(sorted((context or {}).items())))
        if key not in self._access:
            who = self.estate.policies(node)
            if not any(relevant_statements(doc, action) for _, doc in who.identity):
                self._access[key] = NOT_ALLOWED  # no statement of its own policies names the action
            else:
                self._access[key] = evaluate_access(who, action, resource, context=context)
        return self._access[key]

    def _partial(self, node: Node, actions: Iterable[str], scope: str) -> list[str]:
        """Resource patterns of ``node``'s statements for ``actions`` that cover only part of ``scope``."""
        pp = self.estate.policies(node)
        docs = [d for _, d in pp.identity] + ([pp.boundary[1]] if pp.boundary else [])
        out = []
        for action in actions:
            for doc in docs:
                for _, stmt, _ in relevant_statements(doc, action):
                    patterns = stmt.get("NotResource", stmt.get("Resource", "*"))
                    for pattern in [patterns] if isinstance(patterns, str) else patterns:
                        pattern = _VARIABLE.sub("*", pattern)
                        if "NotResource" in stmt or scope_overlap(pattern, scope) == Tri.MAYBE:
                            out.append(pattern)
        return out

    def split(self, node: Node, actions: Sequence[str], members: Sequence[str], scope: str,
              evaluate) -> tuple[Access | None, dict[str, Access]]:
        """Access to the members no statement singles out (evaluated once) and to each singled-out member."""
        partial = self._partial(node, actions, scope)
        special = [m for m in members if any(glob_match(p, m) for p in partial)]
        rest = [m for m in members if m not in special]
        group = evaluate(rest[0]) if rest else None
        return group, {m: evaluate(m) for m in special}

    def edges(self, node: Node) -> list[Hop]:
        if node not in self._edges:
            self._edges[node] = self._compute(node)
        return self._edges[node]

    def _hop(self, source: Node, target: Node, kind: str, how: str, accesses: Sequence[Access]) -> Hop:
        tri = min(_tri(a) for a in accesses)
        return Hop(source, target, kind, how, _decision(tri), tuple(g for a in accesses for g in a.grants))

    def _family_hops(self, node: Node, family: str, kind: str, how: str, actions: Sequence[str], scope: str,
                     evaluate, extra: Sequence[Access] = ()) -> list[Hop]:
        """Hops to the members of ``family``: one family hop, plus one per singled-out member."""
        members = [m for m in self.estate.families.get(family, ()) if m != node.arn]
        if not members or any(a.decision not in ACTIVE for a in extra):
            return []
        group, special = self.split(node, actions, members, scope, evaluate)
        hops = [self._hop(node, Node(m), kind, how, [a, *extra]) for m, a in special.items() if a.decision in ACTIVE]
        if group is not None and group.decision in ACTIVE:
            # the node itself may be a member: what it has is never a gain, so it needs no exclusion
            excluded = frozenset(m for m, a in special.items() if a.decision not in ACTIVE)
            hop = self._hop(node, Node(f"every member of {family}"), kind, how, [group, *extra])
            hops.append(replace(hop, family=(family, excluded)))
        return hops

    def _compute(self, node: Node) -> list[Hop]:
        hops: list[Hop] = []
        hops += self._assume(node)
        hops += self._update_trust(node)
        hops += self._pass_role(node)
        hops += self._credentials(node)
        hops += self._modify(node, node)
        if any(self.can(node, a, IAM_SCOPE).decision in ACTIVE for a in MODIFY_ACTIONS):
            for arn in sorted({h.target.arn for h in hops if h.family is None and h.target.arn != node.arn}):
                hops += self._modify(node, Node(arn))
        hops += self._join_group(node)
        best: dict[Node, Hop] = {}
        for hop in hops:  # one hop per target, an allowed one if there is one
            if hop.target != node and (hop.target not in best or (
                    best[hop.target].decision == "conditional" and hop.decision == "allowed")):
                best[hop.target] = hop
        return list(best.values())

    def _assume_access(self, node: Node, role: str, trust: Mapping[str, Any] | None = None,
                       name: str = "") -> Access:
        account = self.estate.principals[role].principal.account
        return evaluate_access(self.estate.policies(node), "sts:AssumeRole", role,
                               trust if trust is not None else self.estate.trust[role],
                               name or f"trust policy of {role}", resource_account=account, trust=True)

    def _assume(self, node: Node) -> list[Hop]:
        me = self.estate.principals[node.arn].principal
        how = "sts:AssumeRole, admitted by the role's trust policy"
        index = self.estate.roles_by_trusted
        simple = set(self.estate.families.get(f"trusting:{me.account}", ()))
        candidates = set(index.get(node.arn, ())) | set(index.get("*", ()))
        hops = []
        if self.can(node, "sts:AssumeRole", IAM_SCOPE).decision in ACTIVE:
            candidates |= set(index.get(me.account, ())) - simple
            hops += self._family_hops(node, f"trusting:{me.account}", "assume", how, ["sts:AssumeRole"], IAM_SCOPE,
                                      lambda role: self._assume_access(node, role))
        for role in sorted(candidates - {node.arn}):
            if role in self.estate.principals:
                access = self._assume_access(node, role)
                if access.decision in ACTIVE:
                    hops.append(self._hop(node, Node(role), "assume", how, [access]))
        return hops

    def _update_trust(self, node: Node) -> list[Hop]:
        me = self.estate.principals[node.arn].principal
        if self.can(node, "iam:UpdateAssumeRolePolicy", IAM_SCOPE).decision not in ACTIVE:
            return []

        def rewrite_and_assume(role: str) -> Access:
            write = self.can(node, "iam:UpdateAssumeRolePolicy", role)
            if write.decision not in ACTIVE:
                return write
            trust = {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": node.arn}, "Action": "sts:AssumeRole"}]}
            assume = self._assume_access(node, role, trust, "the trust policy it writes")
            tri = min(_tri(write), _tri(assume))
            return Access(decision(tri, Tri.NO), write.grants + assume.grants) if tri else assume

        return self._family_hops(node, f"roles:{me.account}", "update_trust",
                                 "iam:UpdateAssumeRolePolicy naming itself, then sts:AssumeRole",
                                 ["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"], f"arn:aws:iam::{me.account}:role/*",
                                 rewrite_and_assume)

    def _pass_role(self, node: Node) -> list[Hop]:
        me = self.estate.principals[node.arn].principal
        scope = f"arn:aws:iam::{me.account}:role/*"
        hops = []
        for method in PASS_ROLE_METHODS:
            context = {"iam:passedtoservice": method.service}
            if self.can(node, "iam:PassRole", IAM_SCOPE, context).decision not in ACTIVE:
                continue
            service_access = []
            for group in method.needs:
                options = [a for a in (self.can(node, action, "*") for action in group) if a.decision in ACTIVE]
                if not options:
                    break
                service_access.append(max(options, key=_tri))
            else:
                how = f"iam:PassRole to {method.service} and {method.name} running code as the role"

                def passed(role: str, context=context) -> Access:
                    return self.can(node, "iam:PassRole", role, context)

                families = [f"service:{me.account}:{method.service}:profile"]
                if not method.instance_profile:
                    families.append(f"service:{me.account}:{method.service}")
                else:
                    profile = [self.can(node, a, IAM_SCOPE) for a in
                               ("iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile")]
                    if all(a.decision in ACTIVE for a in profile):
                        hops += self._family_hops(node, f"service:{me.account}:{method.service}", "pass_role", how,
                                                  ["iam:PassRole"], scope, passed, [*service_access, *profile])
                for family in families:
                    hops += self._family_hops(node, family, "pass_role", how, ["iam:PassRole"], scope, passed,
                                              service_access)
                hops += self._pass_to_conditional_trusts(node, method, how, passed, service_access)
        return hops

    def _pass_to_conditional_trusts(self, node: Node, method: PassRoleMethod, how: str, passed,
                                    service_access: Sequence[Access]) -> list[Hop]:
        """Roles whose trust admits the service with conditions or alongside others (evaluated one by one)."""
        me = self.estate.principals[node.arn].principal
        hops = []
        for role in self.estate.roles_by_trusted.get(method.service, ()):
            if role in self.estate.simple_service_roles or role == node.arn or role not in self.estate.principals \
                    or self.estate.principals[role].principal.account != me.account:
                continue
            trusted = evaluate_policy(self.estate.trust[role], "sts:AssumeRole", role,
                                      principal=Principal(method.service, "service"))
            access = passed(role)
            if trusted.allow == Tri.NO or access.decision not in ACTIVE:
                continue
            accesses = [access, *service_access]
            if method.instance_profile and role not in self.estate.instance_profiles:
                profile = [self.can(node, a, IAM_SCOPE) for a in
                           ("iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile")]
                if any(a.decision not in ACTIVE for a in profile):
                    continue
                accesses += profile
            hop = self._hop(node, Node(role), "pass_role", how, accesses)
            hops.append(replace(hop, decision="conditional") if trusted.allow == Tri.MAYBE else hop)
        return hops

    def _credentials(self, node: Node) -> list[Hop]:
        me = self.estate.principals[node.arn].principal
        hops = []
        for action in CREDENTIAL_ACTIONS:
            if self.can(node, action, IAM_SCOPE).decision in ACTIVE:
                hops += self._family_hops(node, f"users:{me.account}", "credentials", f"{action} for the user",
                                          [action], f"arn:aws:iam::{me.account}:user/*",
                                          lambda user, action=action: self.can(node, action, user))
        return hops

    def _modify(self, node: Node, target: Node) -> list[Hop]:
        """``node`` writing ``target``'s policies or boundary (``target`` is ``node`` or one it acts as)."""
        kind = self.estate.principals[target.arn].principal.kind
        if kind not in WRITE_POLICY:
            return []
        out = []
        writes = [(a, target.arn) for a in WRITE_POLICY[kind]]
        writes += [(a, g) for g in self.estate.user_groups.get(target.arn, []) for a in WRITE_GROUP_POLICY]
        writes += [("iam:CreatePolicyVersion", p) for p in self.estate.attached.get(target.arn, [])]
        if not target.admin:
            for action, resource in writes:
                access = self.can(node, action, resource)
                if access.decision in ACTIVE:
                    out.append(self._hop(node, replace(target, admin=True), "policy_write",
                                         f"{action} on {resource}", [access]))
                    break
            else:
                for policy in self.estate.attached.get(target.arn, []):
                    access = self.can(node, "iam:SetDefaultPolicyVersion", policy)
                    if self.estate.versions.get(policy, 1) > 1 and access.decision in ACTIVE:
                        hop = self._hop(node, replace(target, admin=True), "policy_write",
                                        f"iam:SetDefaultPolicyVersion on {policy} (what its other versions grant "
                                        "is not evaluated)", [access])
                        out.append(replace(hop, decision="conditional"))
                        break
        boundary = self.estate.boundary_arn.get(target.arn)
        if boundary and not target.unbounded:
            drops = [(a, target.arn) for a in DROP_BOUNDARY[kind]]
            if ":aws:policy/" not in boundary:
                drops.append(("iam:CreatePolicyVersion", boundary))
            for action, resource in drops:
                access = self.can(node, action, resource)
                if access.decision in ACTIVE:
                    out.append(self._hop(node, replace(target, unbounded=True), "boundary_removal",
                                         f"{action} on {resource}", [access]))
                    break
        return out

    def _join_group(self, node: Node) -> list[Hop]:
        """A user adding itself to every group it may: one hop to itself with their policies (and, if some
        of the additions are conditional, one allowed hop with only the unconditional ones)."""
        me = self.estate.principals[node.arn].principal
        if me.kind != "user" or node.admin or node.groups:
            return []
        if self.can(node, "iam:AddUserToGroup", IAM_SCOPE).decision not in ACTIVE:
            return []
        current = set(self.estate.user_groups.get(node.arn, []))
        joinable = {g: a for g, account in sorted(self.estate.group_accounts.items())
                    if account == me.account and g not in current
                    and (a := self.can(node, "iam:AddUserToGroup", g)).decision in ACTIVE}
        hops = []
        for groups in ({g for g, a in joinable.items() if a.decision == "allowed"}, set(joinable)):
            if groups and not any(h.target.groups == groups for h in hops):
                names = ", ".join(g.rsplit("/", 1)[-1] for g in sorted(groups))
                hops.append(self._hop(node, replace(node, groups=frozenset(groups)), "join_group",
                                      f"iam:AddUserToGroup on group(s) {names}", [joinable[g] for g in groups]))
        return hops

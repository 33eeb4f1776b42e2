"""The finding record every part of the audit produces, and the severity scale.

One scale for every job (:data:`dynamoguard.findings.SEVERITIES`): ``critical`` (a protected table or backup
destroyed, the trail blinded), ``high``, ``medium``, ``low``, ``info``. ``critical`` and ``high`` alert.
The audit keeps its own record (one per event, with the CloudTrail evidence) and converts it to the shared
finding with :meth:`Finding.to_shared`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dynamoguard.findings import ALERT_SEVERITIES, SEVERITIES
from dynamoguard.findings import Finding as SharedFinding

_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

# Error codes meaning "the caller was not allowed": a blocked attempt is still worth a (lower) finding.
DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation",
    "UnauthorizedAccess", "Forbidden",
})

# Failures DynamoDB returns only after authorising the call (API reference, "Common errors" and each
# operation's errors): the caller holds the permission even though nothing changed.
AUTHORISED_FAILURES = frozenset({
    "ConditionalCheckFailedException", "TransactionCanceledException", "TransactionConflictException",
    "ItemCollectionSizeLimitExceededException", "ProvisionedThroughputExceededException",
    "RequestLimitExceeded", "DuplicateItemException",
})

# Copies of a call seen on a VPC endpoint (CloudTrail user guide, "Logging network activity events"):
# not the call itself, which has its own record.
NETWORK_CATEGORY = "NetworkActivity"
NETWORK_EVENT_TYPE = "AwsVpceEvent"


def lower(severity: str) -> str:
    """The next lower severity (``info`` stays ``info``)."""
    return SEVERITIES[min(_RANK[severity] + 1, len(SEVERITIES) - 1)]


def rank(severity: str) -> int:
    return _RANK[severity]


def alerts(severity: str) -> bool:
    return severity in ALERT_SEVERITIES


@dataclass(frozen=True)
class Finding:
    """One problem: a suspicious event, a trail-health gap, an integrity failure or an unreadable log.

    ``table`` is the protected table concerned (None when not table-specific); ``principal`` the IAM
    identity behind the call (the role for an assumed-role session)."""

    severity: str
    rule: str
    title: str
    resource: str = ""
    table: str | None = None
    event_time: str | None = None
    event_name: str | None = None
    principal: str | None = None
    source_ip: str | None = None
    event_id: str | None = None
    log_key: str | None = None
    account: str | None = None
    region: str | None = None
    outcome: str = "success"
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.severity not in _RANK:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sort_key(self) -> tuple:
        return sort_key(self.to_dict())

    def to_shared(self) -> SharedFinding:
        """The finding in the shared shape (job ``audit``), one per event, log object or gap."""
        evidence = {k: v for k, v in self.to_dict().items()
                    if k not in ("severity", "rule", "title", "resource", "table") and v not in (None, {}, "")}
        return SharedFinding(job="audit", check=self.rule, severity=self.severity, title=self.title,
                             resource=self.resource, table=self.table, evidence=evidence,
                             dedup=self.event_id or self.log_key or self.principal or "")


def sort_key(finding: dict) -> tuple:
    """Most severe first, then stable by rule, time, event, log and resource."""
    return (_RANK[finding["severity"]], finding["rule"], finding.get("event_time") or "",
            finding.get("event_id") or "", finding.get("log_key") or "", finding.get("resource") or "")


def count_by_severity(findings) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        severity = finding["severity"] if isinstance(finding, dict) else finding.severity
        counts[severity] += 1
    return counts


def headline(finding: dict) -> dict[str, Any]:
    """What the UI and the alert show of a finding: rule, severity, table, principal, object."""
    return {key: finding.get(key) for key in ("severity", "rule", "title", "table", "principal", "resource",
                                             "event_time", "event_name", "event_id", "outcome")}

"""The finding record every part of the audit produces, and the severity scale."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("high", "medium", "low", "info")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

# Error codes meaning "the caller was not allowed": a blocked attempt is still worth a (lower) finding.
DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation",
    "UnauthorizedAccess", "Forbidden",
})


def lower(severity: str) -> str:
    """The next lower severity (``info`` stays ``info``)."""
    return SEVERITIES[min(_RANK[severity] + 1, len(SEVERITIES) - 1)]


def rank(severity: str) -> int:
    return _RANK[severity]


@dataclass(frozen=True)
class Finding:
    """One problem: a suspicious event, a trail-health gap, an integrity failure or an unreadable log."""

    severity: str
    rule: str
    title: str
    resource: str = ""
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
        return (_RANK[self.severity], self.rule, self.event_time or "", self.event_id or "",
                self.log_key or "", self.resource)


def count_by_severity(findings) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        severity = finding["severity"] if isinstance(finding, dict) else finding.severity
        counts[severity] += 1
    return counts

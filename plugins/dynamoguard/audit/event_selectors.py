"""Whether a trail's event selectors (basic or advanced) log what the audit needs.

CloudTrail user guide, "Logging data events" and "Filtering data events by using advanced event
selectors"; API reference ``DataResource``: basic selectors list ARN prefixes per resource type; advanced
selectors AND their field selectors, positives OR'd within a field, negatives AND'd.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _lower_keys(value: Any) -> Any:
    """lowerCamel keys everywhere, so API responses (PascalCase) and log records (lowerCamel) compare."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _basic_covers(selector: dict, kind: str, arn: str, read_only: bool) -> bool:
    if selector.get("readWriteType", "All") not in ("All", "ReadOnly" if read_only else "WriteOnly"):
        return False
    for resource in selector.get("dataResources") or ():
        if resource.get("type") != kind:
            continue
        for value in resource.get("values") or ():
            if value in (arn, arn.rstrip("/")) or value in ("arn:aws:s3", "arn:aws:s3:::", "arn:aws:dynamodb"):
                return True
            if kind == "AWS::S3::Object" and value.endswith("/") and arn.startswith(value):
                return True
    return False


_OPS = {
    "equals": lambda v, xs: v in xs,
    "notEquals": lambda v, xs: v not in xs,
    "startsWith": lambda v, xs: any(v.startswith(x) for x in xs),
    "notStartsWith": lambda v, xs: not any(v.startswith(x) for x in xs),
    "endsWith": lambda v, xs: any(v.endswith(x) for x in xs),
    "notEndsWith": lambda v, xs: not any(v.endswith(x) for x in xs),
}


def _advanced_covers(selector: dict, kind: str, arn: str, read_only: bool) -> bool:
    # A sample data event on the resource (for S3, an object in the bucket) must pass every field selector.
    sample = {"eventCategory": "Data", "resources.type": kind, "readOnly": "true" if read_only else "false",
              "resources.ARN": arn + "object" if kind == "AWS::S3::Object" else arn}
    fields = selector.get("fieldSelectors") or ()
    if not any(f.get("field") == "resources.type" for f in fields):
        return False
    for f in fields:
        value = sample.get(f.get("field"))
        if value is None:  # a condition on eventName, eventSource, ...: drops some of our events
            return False
        for op, check in _OPS.items():
            if f.get(op) is not None and not check(value, f[op]):
                return False
    return True


def uncovered_data_resources(event_selectors, advanced_event_selectors,
                             required: Iterable[tuple[str, str]]) -> list[str]:
    """Required ``(type, ARN)`` pairs whose reads or writes the selectors do not log (``ARN (reads)``...)."""
    basic = _lower_keys(event_selectors or [])
    advanced = _lower_keys(advanced_event_selectors or [])
    missing = []
    for kind, arn in required:
        for read_only, label in ((True, "reads"), (False, "writes")):
            if not any(_basic_covers(s, kind, arn, read_only) for s in basic) and not any(
                    _advanced_covers(s, kind, arn, read_only) for s in advanced):
                missing.append(f"{arn} ({label})")
    return missing


def management_events_off(event_selectors, advanced_event_selectors) -> bool:
    """True if the selectors no longer log management (control-plane) write events."""
    basic = _lower_keys(event_selectors or [])
    advanced = _lower_keys(advanced_event_selectors or [])
    if advanced:
        return not any(any(f.get("field") == "eventCategory" and "Management" in (f.get("equals") or ())
                           for f in s.get("fieldSelectors") or ()) for s in advanced)
    return bool(basic) and not any(s.get("includeManagementEvents", True) and
                                   s.get("readWriteType", "All") in ("All", "WriteOnly") for s in basic)

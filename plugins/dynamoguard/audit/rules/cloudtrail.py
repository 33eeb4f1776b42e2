"""CloudTrail rules: our trail stopped, deleted, moved or filtered (CloudTrail API reference; records as in
the CloudTrail user guide's examples: ``StopLogging``/``DeleteTrail`` ``{name}``, ``PutEventSelectors``
``{trailName, eventSelectors | advancedEventSelectors}``)."""

from __future__ import annotations

from dynamoguard.audit.context import Context
from dynamoguard.audit.event_selectors import management_events_off, uncovered_data_resources
from dynamoguard.audit.records import arn_parts, is_false, params
from dynamoguard.audit.registry import Hit, rule

CLOUDTRAIL = "cloudtrail.amazonaws.com"


def our_trail(event: dict, ctx: Context) -> str | None:
    p = params(event)
    value = p.get("name") or p.get("trailName") or ""
    if not isinstance(value, str):
        return None
    if value.startswith("arn:"):
        parts = arn_parts(value)
        if not parts or parts[1] not in ctx.accounts:
            return None
        value = parts[2].removeprefix("trail/")
    elif event.get("recipientAccountId") and event["recipientAccountId"] not in ctx.accounts:
        return None
    return value if value in ctx.trail_names else None


@rule("trail-stopped", "Our CloudTrail trail stopped or deleted (the audit is blind)", "critical", CLOUDTRAIL,
      ["StopLogging", "DeleteTrail"])
def trail_stopped(event, ctx):
    trail = our_trail(event, ctx)
    return Hit(trail) if trail else None


@rule("trail-updated", "Our CloudTrail trail's settings changed", "medium", CLOUDTRAIL, ["UpdateTrail"])
def trail_updated(event, ctx):
    trail = our_trail(event, ctx)
    if not trail:
        return None
    p = params(event)
    weakened = [k for k in ("enableLogFileValidation", "isMultiRegionTrail", "includeGlobalServiceEvents")
                if is_false(p.get(k))]
    if p.get("s3BucketName"):
        weakened.append("s3BucketName")
    return Hit(trail, "high" if weakened else None, {"changed": sorted(k for k in p if k != "name")})


@rule("trail-selectors-drop-events", "Event selectors of our trail drop required events", "high", CLOUDTRAIL,
      ["PutEventSelectors"])
def trail_selectors_drop_events(event, ctx):
    """High when required data events are dropped; critical when management events are (the trail is blind
    to every control-plane change)."""
    trail = our_trail(event, ctx)
    if not trail:
        return None
    p = params(event)
    basic, advanced = p.get("eventSelectors"), p.get("advancedEventSelectors")
    missing = uncovered_data_resources(basic, advanced, ctx.required_data_resources)
    management_off = management_events_off(basic, advanced)
    if not missing and not management_off:
        return None
    return Hit(trail, "critical" if management_off else None,
               {"uncovered": missing, "management_events_off": management_off})

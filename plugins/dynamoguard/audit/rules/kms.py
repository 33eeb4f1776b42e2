"""KMS rule: a key that may protect backups disabled or scheduled for deletion (KMS developer guide,
"Logging AWS KMS API calls with AWS CloudTrail": ``DisableKey``, ``ScheduleKeyDeletion`` with ``keyId``)."""

from __future__ import annotations

from dynamoguard.audit.records import params
from dynamoguard.audit.registry import Hit, rule

KMS = "kms.amazonaws.com"


@rule("kms-key-loss", "KMS key disabled or scheduled for deletion", "high", KMS, ["DisableKey", "ScheduleKeyDeletion"])
def kms_key_loss(event, ctx):
    key = params(event).get("keyId") or ""
    arns = [r.get("ARN", "") for r in event.get("resources") or () if isinstance(r, dict)]
    if not ctx.kms_keys:
        return Hit(arns[0] if arns else key, "medium")
    watched = [k for k in (key, *arns) if k in ctx.kms_keys or k.rsplit("/", 1)[-1] in ctx.kms_keys]
    return Hit(watched[0]) if watched else None

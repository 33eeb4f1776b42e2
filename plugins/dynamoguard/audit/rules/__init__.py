"""The detection rules, one small pure function each (Panther style), by service.

Importing this package registers every rule in :data:`REGISTRY` (keyed by ``(eventSource, eventName)``).
"""

from dynamoguard.audit.context import Context, context_from_config, required_data_resources
from dynamoguard.audit.registry import REGISTRY, RULES, Hit, Rule, evaluate
from dynamoguard.audit.rules import cloudtrail, dynamodb, kms, s3

__all__ = ["REGISTRY", "RULES", "Context", "Hit", "Rule", "cloudtrail", "context_from_config", "dynamodb",
           "evaluate", "kms", "required_data_resources", "s3"]

"""CloudTrail audit: log discovery, streaming reader, rules, trail health, digest validation, reports."""

"""Fidelity fixes applied to moto inside the emulator process.

Each module has an ``apply()`` that patches one deviation and a docstring that cites the AWS
behaviour it restores. Drop a module from ``FIXES`` when moto behaves like AWS on its own.
"""

from importlib import import_module

FIXES = [
    "accounts",
    "pitr",
    "dynamodb_history",
    "dynamodb_export",
    "s3_bucket_policy",
    "s3_object_lock",
    "s3_list_versions",
    "s3_conditional_writes",
    "s3_replication",
    "cloudtrail_delivery",
    "cloudtrail_recording",
    "iam_authorization_details",
]


def apply_all() -> list[str]:
    """Apply every fix; return the names applied."""
    for name in FIXES:
        import_module(f"{__name__}.{name}").apply()
    return list(FIXES)

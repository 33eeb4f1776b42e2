"""Restore drills: restore a protected table into a scratch table, prove it equals an export, clean up.

Plain modules taking boto3 clients (no Airflow), in the order a drill uses them:

* :mod:`.plan`: the drills of one run (the form's params, or rotation for scheduled runs);
* :mod:`.restore_points`: the newest export at or before a time whose manifests verify;
* :mod:`.sources`: the registry of restore sources (pitr, export, replica, incremental, incremental_replica):
  account, data, start, wait, IAM;
* :mod:`.scratch`: scratch table names, tags, the deletion guard, cleanup and the sweeper;
* :mod:`.schema`, :mod:`.digest`, :mod:`.validate`: the restored table against the source and the export;
* :mod:`.record`: the JSON record of one drill and its findings;
* :mod:`.service`: the steps the operators call, tying the above to the config and the clients.

Importing this package is cheap (the config derives its list of sources from :mod:`.sources`).
"""

from __future__ import annotations


class DrillError(RuntimeError):
    """A drill cannot go on (bad input, failed restore); the message says what and where."""


class BadParam(DrillError, ValueError):
    """A drill param or config value is invalid (a retry cannot change it)."""


class NoVerifiedExport(DrillError):
    """No export at or before the restore point verifies; ``skipped`` lists the exports tried and why."""

    def __init__(self, message: str, skipped: list | None = None):
        super().__init__(message)
        self.skipped = list(skipped or [])


class ExportNotYet(DrillError):
    """A scheduled drill's table has no export yet: check again at ``until``."""

    def __init__(self, message: str, until):
        super().__init__(message)
        self.until = until


class DrillFailed(DrillError):
    """A drill step failed; ``record`` (already written) says why. Retryable unless :class:`DrillFailedForGood`."""

    def __init__(self, message: str, record: dict):
        super().__init__(message)
        self.record = record


class DrillFailedForGood(DrillFailed):
    """A drill failure a retry cannot change (no verified export, failed import, validation mismatch)."""

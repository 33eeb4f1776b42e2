"""``export``: ImportTable of the restore point's export from the backup bucket (source account)."""

from __future__ import annotations

from dynamoguard.drills.sources._imports import ImportSource


class ExportSource(ImportSource):
    name = "export"
    label = "Export in the backup bucket"


SOURCE = ExportSource()

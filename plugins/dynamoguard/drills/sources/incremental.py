"""``incremental``: the full export in the backup bucket plus the incremental windows after it, up to the restore
point (source account)."""

from __future__ import annotations

from dynamoguard.drills.sources._incremental import IncrementalSource


class BackupIncrementalSource(IncrementalSource):
    name = "incremental"
    label = "Full + incremental exports in the backup bucket (any point)"


SOURCE = BackupIncrementalSource()

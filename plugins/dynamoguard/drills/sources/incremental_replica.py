"""``incremental_replica``: the full export plus the incremental windows from the replica bucket, restored in the
backup account (the disaster path to any point: nothing in the source account is needed)."""

from __future__ import annotations

from dynamoguard.drills.sources._incremental import IncrementalSource


class ReplicaIncrementalSource(IncrementalSource):
    name = "incremental_replica"
    label = "Full + incremental replicas in the backup account (any point)"
    connection = "backup"
    account = "backup"
    copied = True

    def bucket(self, config) -> str:
        return config.replica_bucket.name


SOURCE = ReplicaIncrementalSource()

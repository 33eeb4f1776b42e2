"""``replica``: ImportTable in the backup account from the replica bucket that account owns (the disaster path:
nothing in the source account is needed for the restore itself)."""

from __future__ import annotations

from dynamoguard.drills.sources._imports import ImportSource


class ReplicaSource(ImportSource):
    name = "replica"
    label = "Replica in the backup account"
    connection = "backup"
    account = "backup"
    copied = True

    def bucket(self, config) -> str:
        return config.replica_bucket.name


SOURCE = ReplicaSource()

"""What every restore source provides (one module per source in this package defines ``SOURCE``)."""

from __future__ import annotations

from typing import Any, ClassVar


class Source:
    """A way to restore a protected table into a scratch table.

    Class attributes describe it: ``name`` and ``label`` (the trigger form), ``connection`` (the account key of
    the operator base whose Airflow connection runs the restore: ``drill`` or ``backup``), ``account`` (the AWS
    account the scratch table is created in), ``copied`` (its exports are copies in another bucket, so the
    manifests name the original bucket and the ETags differ), ``imported`` (restored by ImportTable, which cannot
    create LSIs) and ``iam_actions`` (what its role must be allowed beyond the scratch-table actions;
    iam_policies grants them and tests/unit check it).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    connection: ClassVar[str] = "drill"
    account: ClassVar[str] = "source"
    copied: ClassVar[bool] = False
    imported: ClassVar[bool] = True
    iam_actions: ClassVar[tuple[str, ...]] = ()

    def bucket(self, config) -> str:
        """The bucket holding the exports this source restores from (and validates against)."""
        return config.backup_bucket.name

    def start(self, ddb, s3, drill: dict[str, Any]) -> dict[str, Any]:
        """Start the restore of ``drill`` into its scratch table: ``{"table_arn", "import_arn"}``.

        DynamoDB's TableAlreadyExistsException/ResourceInUseException propagate (the caller adopts its own table).
        """
        raise NotImplementedError

    def trigger(self, drill: dict[str, Any], restore: dict[str, Any], **waits: Any):
        """The deferrable trigger that fires when the restore has finished (``restore`` comes back in its event)."""
        raise NotImplementedError

    def outcome(self, ddb, restore: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """After the wait: facts to add to the restore record and AWS's reason if the restore failed."""
        return {}, None

    def stored_schema(self, config, s3, table: str) -> dict[str, Any] | None:
        """The table's schema as kept with its backups (for a drill of a table that no longer exists), or None."""
        return None

    def extend(self, config, s3, drill: dict[str, Any], at_or_before) -> None:
        """After prepare found the restore point's export: what else the restore needs (in ``drill``)."""

    def finish(self, ddb, s3, drill: dict[str, Any]) -> dict[str, Any]:
        """After a successful wait, work that completes the restore (counted in the RTO); facts for the record."""
        return {}

    def changes(self, s3, drill: dict[str, Any]) -> dict[bytes, dict[str, Any] | None] | None:
        """What the restore changed on top of the export, for validation: canonical key JSON -> item (None:
        deleted); None when the restored table should equal the export."""
        return None

    def __repr__(self) -> str:
        return f"<restore source {self.name}>"

"""Incremental exports (``ExportType=INCREMENTAL_EXPORT``): windows chained from the last full export, started
idempotently, verified against their manifests, applied in order onto a restored full export.

Small modules over boto3 clients, no Airflow: ``windows`` (planning, pure), ``chain`` (what exists in the bucket),
``start``, ``verify``, ``apply`` and ``rpo``.
"""

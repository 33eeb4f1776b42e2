"""DynamoDB point-in-time exports to S3: preflight and idempotent start (``start``), the manifests (``manifest``)
and verification against them (``verify``). Plain logic over boto3 clients (no Airflow).

Export layout and manifest formats follow
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html::

    <S3Prefix>/AWSDynamoDB/<ExportId>/_started
    <S3Prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json   (+ .md5 or .checksum)
    <S3Prefix>/AWSDynamoDB/<ExportId>/manifest-files.json     (+ .md5 or .checksum; JSON Lines, one per data file)
    <S3Prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz
"""

"""What IAM authorises for each recorded API call: (action, resource ARN) pairs.

From the Service Authorization Reference (docs.aws.amazon.com/service-authorization/latest/reference/):
most operations are authorised by the action of the same name on the resource they name; the
exceptions below are documented there (e.g. HeadObject is authorised as s3:GetObject, ListObjectsV2 as
s3:ListBucket, a copy as s3:GetObject on the source and s3:PutObject on the destination; Object Lock
fields in HEAD and writes with lock headers need s3:GetObjectRetention / s3:PutObjectRetention).
"""

from __future__ import annotations

from urllib.parse import unquote

from tests.iam.recorder import AwsCall

S3_ACTIONS = {
    "HeadObject": ["s3:GetObject", "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
    "GetObject": ["s3:GetObject"],
    "PutObject": ["s3:PutObject"],
    "CopyObject": ["s3:PutObject", "s3:PutObjectRetention"],
    "CreateMultipartUpload": ["s3:PutObject", "s3:PutObjectRetention"],
    "UploadPartCopy": ["s3:PutObject"],
    "CompleteMultipartUpload": ["s3:PutObject"],
    "AbortMultipartUpload": ["s3:AbortMultipartUpload"],
    "PutObjectRetention": ["s3:PutObjectRetention"],
    "GetObjectRetention": ["s3:GetObjectRetention"],
    "GetObjectLegalHold": ["s3:GetObjectLegalHold"],
    "ListObjectsV2": ["s3:ListBucket"],
    "ListObjects": ["s3:ListBucket"],
    "ListObjectVersions": ["s3:ListBucketVersions"],
    "HeadBucket": ["s3:ListBucket"],
    "GetBucketVersioning": ["s3:GetBucketVersioning"],
    "GetObjectLockConfiguration": ["s3:GetBucketObjectLockConfiguration"],
    "GetBucketReplication": ["s3:GetReplicationConfiguration"],
    "GetBucketPolicy": ["s3:GetBucketPolicy"],
    "GetBucketOwnershipControls": ["s3:GetBucketOwnershipControls"],
    "GetBucketLifecycleConfiguration": ["s3:GetLifecycleConfiguration"],
}
BUCKET_LEVEL = {"ListObjectsV2", "ListObjects", "ListObjectVersions", "HeadBucket", "GetBucketVersioning",
                "GetObjectLockConfiguration", "GetBucketReplication", "GetBucketPolicy", "GetBucketOwnershipControls",
                "GetBucketLifecycleConfiguration"}
# Operations that authorise against "*" (no resource-level permissions in the reference).
STAR_RESOURCE = {
    ("dynamodb", "ListTables"), ("dynamodb", "ListExports"), ("dynamodb", "ListImports"),
    ("cloudtrail", "DescribeTrails"), ("cloudtrail", "ListPublicKeys"), ("cloudtrail", "ListTrails"),
    ("iam", "GetAccountAuthorizationDetails"), ("sts", "GetCallerIdentity"),
}
UNAUTHORISED = {("sts", "GetCallerIdentity")}  # needs no permission (AWS STS docs)


def _copy_source_arn(copy_source) -> str:
    if isinstance(copy_source, tuple):  # recorded dicts are tuples of pairs
        source = dict(copy_source)
        return f"arn:aws:s3:::{source['Bucket']}/{source['Key']}"
    bucket, _, key = unquote(str(copy_source)).lstrip("/").partition("/")
    return f"arn:aws:s3:::{bucket}/{key.split('?versionId=')[0]}"


def _ddb_table_arn(region: str, account: str, name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def required_permissions(call: AwsCall, region: str, account: str) -> list[tuple[str, str]]:
    """(action, resource) pairs IAM checks for ``call`` made in ``account``/``region``."""
    service, op = call.service, call.operation
    if (service, op) in UNAUTHORISED:
        return []
    if (service, op) in STAR_RESOURCE:
        return [(f"{service}:{op}", "*")]
    if service == "s3":
        bucket = call.param("Bucket")
        resource = f"arn:aws:s3:::{bucket}" if op in BUCKET_LEVEL else f"arn:aws:s3:::{bucket}/{call.param('Key')}"
        pairs = [(action, resource) for action in S3_ACTIONS[op]]
        if op in ("CopyObject", "UploadPartCopy"):
            pairs.append(("s3:GetObject", _copy_source_arn(call.param("CopySource"))))
        return pairs
    if service == "dynamodb":
        if op == "ImportTable":
            creation = dict(call.param("TableCreationParameters"))
            return [("dynamodb:ImportTable", _ddb_table_arn(region, account, creation["TableName"]))]
        if op == "RestoreTableToPointInTime":
            source = call.param("SourceTableArn") or call.param("SourceTableName")
            target = _ddb_table_arn(region, account, call.param("TargetTableName"))
            return [("dynamodb:RestoreTableToPointInTime", _ddb_table_arn(region, account, source))] + [
                (f"dynamodb:{action}", target)
                for action in ("PutItem", "UpdateItem", "DeleteItem", "GetItem", "Query", "Scan", "BatchWriteItem")
            ]
        if op in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{op}", _ddb_table_arn(region, account, name))
                    for name, _ in call.param("RequestItems", ())]
        name = (call.param("ExportArn") or call.param("ImportArn") or call.param("ResourceArn")
                or call.param("TableArn") or call.param("TableName"))
        return [(f"dynamodb:{op}", _ddb_table_arn(region, account, name))]
    if service == "cloudtrail":
        trail = call.param("Name") or call.param("TrailName")
        arn = trail if str(trail).startswith("arn:") else f"arn:aws:cloudtrail:{region}:{account}:trail/{trail}"
        return [(f"cloudtrail:{op}", arn)]
    if service == "sns":
        return [(f"sns:{op}", call.param("TopicArn") or call.param("TargetArn"))]
    if service == "iam":
        return [(f"iam:{op}", call.param("PolicyArn") or "*")]
    raise AssertionError(f"no IAM mapping for {service}:{op}; add it to tests/iam/actions.py")

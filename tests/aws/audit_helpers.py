"""Ask the emulator to deliver CloudTrail log and digest files (see include/localaws/fixes/cloudtrail_delivery.py)."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime

from include.localaws import REGION, SOURCE_ACCOUNT

TRAIL = "dynamoguard-trail"


def _post(endpoint: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{endpoint}/moto-api/localaws/cloudtrail/{path}", method="POST",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def deliver(endpoint: str, records: list[dict], at: datetime, account: str = SOURCE_ACCOUNT,
            region: str = REGION, trail: str = TRAIL) -> str:
    """Have CloudTrail deliver ``records`` in one log file at ``at``; the object key."""
    return _post(endpoint, "deliver", {"account": account, "region": region, "trail": trail,
                                       "delivery_time": at.isoformat(), "records": records})["key"]


def digest(endpoint: str, end: datetime, account: str = SOURCE_ACCOUNT, region: str = REGION, backfill: bool = False,
           trail: str = TRAIL) -> str:
    """Have CloudTrail write the digest ending at ``end`` (or the backfill digest); the object key."""
    return _post(endpoint, "digest", {"account": account, "region": region, "trail": trail,
                                      "end_time": end.isoformat(), "backfill": backfill})["key"]


def event(event_name: str, source: str = "dynamodb.amazonaws.com", at: str = "2026-01-01T10:05:00Z", n: int = 0,
          principal: str = "arn:aws:iam::111111111111:user/mallory", error: str | None = None, **request) -> dict:
    """A CloudTrail record of ``event_name`` by an IAM user, with ``request`` as requestParameters."""
    record = {
        "eventVersion": "1.11", "eventTime": at, "eventSource": source, "eventName": event_name,
        "awsRegion": REGION, "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2",
        "userIdentity": {"type": "IAMUser", "arn": principal, "accountId": principal.split(":")[4]},
        "requestParameters": request, "responseElements": None, "eventID": f"00000000-0000-0000-0000-{n:012d}",
        "eventType": "AwsApiCall", "recipientAccountId": SOURCE_ACCOUNT, "managementEvent": True,
    }
    if error:
        record["errorCode"] = error
    return record


def flush_trail(endpoint: str, at: datetime | None = None, digest: bool = False) -> dict:
    """Have the emulator deliver the CloudTrail records it recorded (as if at ``at``), and digests."""
    body: dict = {"digest": digest}
    if at is not None:
        body["at"] = at.isoformat()
    request = urllib.request.Request(f"{endpoint}/_localaws/cloudtrail", method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def delivered_records(s3, keys: list[str], bucket: str = "dynamoguard-cloudtrail") -> list[dict]:
    import gzip

    return [record for key in keys
            for record in json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))["Records"]]


def assume(endpoint: str, role_name: str, session: str = "attacker"):
    """A boto3 session of ``role_name`` in the source account, reached with STS AssumeRole."""
    import boto3

    from include.localaws.seed import source_session

    iam = source_session().client("iam", endpoint_url=endpoint)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"}}]}
    try:
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    sts = source_session().client("sts", endpoint_url=endpoint)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{SOURCE_ACCOUNT}:role/{role_name}",
                            RoleSessionName=session)["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)

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


def digest(endpoint: str, end: datetime, account: str = SOURCE_ACCOUNT, region: str = REGION,
           trail: str = TRAIL) -> str:
    """Have CloudTrail write the digest ending at ``end``; the object key."""
    return _post(endpoint, "digest", {"account": account, "region": region, "trail": trail,
                                      "end_time": end.isoformat()})["key"]


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

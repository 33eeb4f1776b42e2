"""The emulator answers GetAccountAuthorizationDetails like AWS, and IAM users can have boundaries."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.aws

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                   "Resource": "arn:aws:s3:::b/a b%/*"}]}


def _boundary(iam, name="bound"):
    return iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(POLICY))["Policy"]


def test_paginates_with_max_items_and_marker(localaws):
    iam = localaws.client("iam")
    for i in range(5):
        iam.create_role(RoleName=f"r{i}", AssumeRolePolicyDocument=TRUST)
        iam.create_user(UserName=f"u{i}")
    _boundary(iam)
    first = iam.get_account_authorization_details(MaxItems=4)
    assert first["IsTruncated"] is True and first["Marker"]
    assert len(first["UserDetailList"]) + len(first["RoleDetailList"]) + len(first["Policies"]) == 4
    pages = list(iam.get_paginator("get_account_authorization_details").paginate(PaginationConfig={"PageSize": 3}))
    assert len(pages) == 4 and pages[-1]["IsTruncated"] is False
    roles = [r["RoleName"] for p in pages for r in p["RoleDetailList"]]
    users = [u["UserName"] for p in pages for u in p["UserDetailList"]]
    assert sorted(roles) == [f"r{i}" for i in range(5)] and sorted(users) == [f"u{i}" for i in range(5)]
    assert sum(len(p["Policies"]) for p in pages) == 1
    with pytest.raises(ClientError) as error:
        iam.get_account_authorization_details(Marker="not-a-marker")
    assert error.value.response["Error"]["Code"] == "ValidationError"


def test_policy_details_name_the_policy_and_documents_round_trip(localaws):
    iam = localaws.client("iam")
    policy = _boundary(iam)
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=TRUST, PermissionsBoundary=policy["Arn"])
    details = iam.get_account_authorization_details(Filter=["LocalManagedPolicy", "Role"])
    [detail] = details["Policies"]
    assert detail["PolicyName"] == "bound" and detail["PolicyId"] == policy["PolicyId"]
    assert detail["PermissionsBoundaryUsageCount"] == 1
    assert detail["PolicyVersionList"][0]["Document"] == POLICY  # URL-encoded on the wire, decoded by botocore
    assert details["RoleDetailList"][0]["PermissionsBoundary"]["PermissionsBoundaryArn"] == policy["Arn"]


def test_user_permissions_boundary(localaws):
    iam = localaws.client("iam")
    arn = _boundary(iam)["Arn"]
    iam.create_user(UserName="alice", PermissionsBoundary=arn)
    iam.create_user(UserName="bob")
    assert iam.get_user(UserName="alice")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn
    assert "PermissionsBoundary" not in iam.get_user(UserName="bob")["User"]
    assert all("PermissionsBoundary" not in u for u in iam.list_users()["Users"])
    iam.put_user_permissions_boundary(UserName="bob", PermissionsBoundary=arn)
    iam.delete_user_permissions_boundary(UserName="alice")
    users = {u["UserName"]: u for u in iam.get_account_authorization_details(Filter=["User"])["UserDetailList"]}
    assert users["bob"]["PermissionsBoundary"] == {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                                   "PermissionsBoundaryArn": arn}
    assert "PermissionsBoundary" not in users["alice"]
    with pytest.raises(ClientError):
        iam.put_user_permissions_boundary(UserName="bob", PermissionsBoundary="arn:aws:s3:::not-a-policy-arn")

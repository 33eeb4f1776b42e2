"""The policy evaluator: AWS evaluation logic on policy documents alone."""

from __future__ import annotations

import pytest

from dynamoguard.access.evaluate import (
    NAME,
    Principal,
    PrincipalPolicies,
    Tri,
    condition_tri,
    evaluate_access,
    glob_match,
    is_allowed,
)

TABLE = "arn:aws:dynamodb:us-east-1:111111111111:table/orders"
BACKUPS = TABLE + f"/backup/{NAME}"
ROLE = Principal("arn:aws:iam::111111111111:role/app", "role", "111111111111")
USER = Principal("arn:aws:iam::111111111111:user/alice", "user", "111111111111")
OTHER = Principal("arn:aws:iam::999999999999:role/intruder", "role", "999999999999")


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize(("pattern", "value", "ignore_case", "expected"), [
    ("dynamodb:*", "dynamodb:DeleteTable", True, True),
    ("DynamoDB:delete*", "dynamodb:DeleteTable", True, True),
    ("dynamodb:Delete?able", "dynamodb:DeleteTable", True, True),
    ("dynamodb:Get*", "dynamodb:DeleteTable", True, False),
    ("arn:aws:s3:::b/[ab]*", "arn:aws:s3:::b/a1", False, False),  # brackets are literal in IAM
    ("arn:aws:s3:::b/[ab]*", "arn:aws:s3:::b/[ab]1", False, True),
    ("arn:aws:dynamodb:*:*:table/Orders", TABLE, False, False),  # ARNs are case-sensitive
])
def test_glob_match(pattern, value, ignore_case, expected):
    assert glob_match(pattern, value, ignore_case=ignore_case) is expected


def test_action_and_resource_wildcards():
    assert is_allowed(doc(allow("dynamodb:*")), "dynamodb:DeleteTable", TABLE) == "allowed"
    assert is_allowed(doc(allow("*", "arn:aws:dynamodb:us-east-1:111111111111:table/*")),
                      "dynamodb:DeleteTable", TABLE) == "allowed"
    assert is_allowed(doc(allow("dynamodb:GetItem", TABLE)), "dynamodb:DeleteTable", TABLE) == "not_allowed"
    assert is_allowed(doc(allow("dynamodb:*", TABLE + "-archive")), "dynamodb:DeleteTable", TABLE) == "not_allowed"
    assert is_allowed(doc({"Effect": "Allow", "NotAction": "dynamodb:Delete*", "Resource": "*"}),
                      "dynamodb:DeleteTable", TABLE) == "not_allowed"
    assert is_allowed(doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}),
                      "dynamodb:DeleteTable", TABLE) == "allowed"


def test_explicit_deny_wins_over_allow_in_any_order():
    policy = doc(deny("dynamodb:DeleteTable", TABLE), allow("dynamodb:*"))
    assert is_allowed(policy, "dynamodb:DeleteTable", TABLE) == "denied"
    assert is_allowed(policy, "dynamodb:GetItem", TABLE) == "allowed"


def test_not_resource():
    policy = doc({"Effect": "Allow", "Action": "dynamodb:*", "NotResource": TABLE})
    assert is_allowed(policy, "dynamodb:DeleteTable", TABLE) == "not_allowed"
    assert is_allowed(policy, "dynamodb:DeleteTable", TABLE + "x") == "allowed"


def test_scopes_allow_reaching_part_deny_must_cover_all():
    assert is_allowed(doc(allow("dynamodb:DeleteBackup", TABLE)), "dynamodb:DeleteBackup", BACKUPS) == "not_allowed"
    assert is_allowed(doc(allow("dynamodb:DeleteBackup", TABLE + "/backup/0169*")),
                      "dynamodb:DeleteBackup", BACKUPS) == "allowed"
    assert is_allowed(doc(allow("dynamodb:DeleteBackup", TABLE + "*")), "dynamodb:DeleteBackup", BACKUPS) == "allowed"
    full = doc(allow("s3:DeleteObject", "arn:aws:s3:::b/*"), deny("s3:DeleteObject", "arn:aws:s3:::b/exports/*"))
    assert is_allowed(full, "s3:DeleteObject", "arn:aws:s3:::b/exports/*") == "denied"
    partial = doc(allow("s3:DeleteObject", "arn:aws:s3:::b/*"), deny("s3:DeleteObject", "arn:aws:s3:::b/exports/x*"))
    assert is_allowed(partial, "s3:DeleteObject", "arn:aws:s3:::b/exports/*") == "conditional"


@pytest.mark.parametrize(("pattern", "table", "expected"), [
    ("arn:aws:dynamodb:*:*:table/ord*", "orders", "allowed"),  # '*' crosses '/': orders' indexes match
    ("arn:aws:dynamodb:*:*:table/ord*", "customers", "not_allowed"),  # no index name holds ':x:table/ord'
    ("arn:aws:dynamodb:*:*:table/*", "customers", "allowed"),
    ("arn:aws:dynamodb:us-east-1:111111111111:table/orders/index/by-status", "orders", "allowed"),
    ("arn:aws:dynamodb:us-east-1:111111111111:table/orders/index/a/b", "orders", "not_allowed"),
    ("arn:aws:dynamodb:us-east-1:111111111111:table/orders/index/", "orders", "not_allowed"),
    ("arn:aws:dynamodb:*:*:table/*/index/*", "inventory", "allowed"),
    ("arn:aws:dynamodb:*", "inventory", "allowed"),
])
def test_index_and_backup_scopes_hold_one_name_without_separators(pattern, table, expected):
    arn = f"arn:aws:dynamodb:us-east-1:111111111111:table/{table}"
    assert is_allowed(doc(allow("dynamodb:Query", pattern)), "dynamodb:Query", f"{arn}/index/{NAME}") == expected
    backup_pattern = pattern.replace("/index/", "/backup/")
    assert is_allowed(doc(allow("dynamodb:DeleteBackup", backup_pattern)), "dynamodb:DeleteBackup",
                      f"{arn}/backup/{NAME}") == expected


def test_a_deny_on_some_index_names_leaves_the_others_conditional():
    index = TABLE + f"/index/{NAME}"
    policy = doc(allow("dynamodb:Query"), deny("dynamodb:Query", TABLE + "/index/by-*"))
    assert is_allowed(policy, "dynamodb:Query", index) == "conditional"
    assert is_allowed(doc(allow("dynamodb:Query"), deny("dynamodb:Query", TABLE + "/*")), "dynamodb:Query",
                      index) == "denied"


def test_unknown_conditions_are_conditional_never_decided():
    cond = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert is_allowed(doc(allow("dynamodb:DeleteTable", TABLE, Condition=cond)), "dynamodb:DeleteTable",
                      TABLE) == "conditional"
    # a conditional Deny in front of an unconditional Allow: maybe denied, so conditional, not allowed
    assert is_allowed(doc(allow("dynamodb:*"), deny("dynamodb:DeleteTable", TABLE, Condition=cond)),
                      "dynamodb:DeleteTable", TABLE) == "conditional"
    variable = doc(allow("s3:DeleteObject", "arn:aws:s3:::b/${aws:username}/*"))
    assert is_allowed(variable, "s3:DeleteObject", "arn:aws:s3:::b/*") == "conditional"


def test_conditions_on_the_principal_are_decided():
    cond = {"StringNotLike": {"aws:PrincipalArn": ["arn:aws:iam::111111111111:role/dynamoguard-*"]}}
    assert condition_tri(cond, ROLE) == Tri.YES
    assert condition_tri(cond, Principal("arn:aws:iam::111111111111:role/dynamoguard-nightly", "role",
                                         "111111111111")) == Tri.NO
    assert condition_tri({"StringEquals": {"aws:PrincipalAccount": "111111111111"}}, OTHER) == Tri.NO
    assert condition_tri({"StringEqualsIfExists": {"aws:PrincipalAccount": "111111111111"}}, ROLE) == Tri.YES
    assert condition_tri({"StringEquals": {"aws:PrincipalAccount": "1", "aws:SourceIp": "x"}}, ROLE) == Tri.NO
    assert condition_tri({"ForAnyValue:StringEquals": {"aws:PrincipalArn": ROLE.arn}}, ROLE) == Tri.MAYBE


def test_boundary_restricts_never_grants():
    granted = PrincipalPolicies(ROLE, (("p", doc(allow(["dynamodb:DeleteTable", "dynamodb:GetItem"], TABLE))),),
                                boundary=("b", doc(allow("dynamodb:GetItem"))))
    assert evaluate_access(granted, "dynamodb:DeleteTable", TABLE).decision == "not_allowed"
    assert evaluate_access(granted, "dynamodb:GetItem", TABLE).decision == "allowed"
    boundary_only = PrincipalPolicies(ROLE, (), boundary=("b", doc(allow("*"))))
    assert evaluate_access(boundary_only, "dynamodb:GetItem", TABLE).decision == "not_allowed"


def test_resource_policy_grants_and_denies():
    rp = doc(
        {"Sid": "Other", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
         "Action": "dynamodb:*", "Resource": TABLE},
        {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": [ROLE.arn, USER.arn]}, "Action": "dynamodb:GetItem",
         "Resource": TABLE},
        {"Sid": "NoDelete", "Effect": "Deny", "Principal": "*", "Action": "dynamodb:DeleteTable", "Resource": TABLE},
    )
    account = PrincipalPolicies(Principal("arn:aws:iam::999999999999:root", "account", "999999999999"), external=True)
    assert evaluate_access(account, "dynamodb:Scan", TABLE, rp, "rp").decision == "allowed"
    assert evaluate_access(account, "dynamodb:DeleteTable", TABLE, rp, "rp").decision == "denied"
    # a role of the other account is not the account principal: the account must delegate to it
    other = PrincipalPolicies(OTHER, external=True)
    assert evaluate_access(other, "dynamodb:Scan", TABLE, rp).decision == "not_allowed"
    # same account: a resource policy naming the role grants without any identity policy...
    role = PrincipalPolicies(ROLE)
    access = evaluate_access(role, "dynamodb:GetItem", TABLE, rp, "rp")
    assert access.decision == "allowed" and [g.statement for g in access.grants] == ["App"]
    # ...but a boundary still limits what it grants to a role, not to a user named by ARN
    bounded = doc(allow("s3:*"))
    assert evaluate_access(PrincipalPolicies(ROLE, boundary=("b", bounded)), "dynamodb:GetItem", TABLE,
                           rp).decision == "not_allowed"
    assert evaluate_access(PrincipalPolicies(USER, boundary=("b", bounded)), "dynamodb:GetItem", TABLE,
                           rp).decision == "allowed"
    # naming our own account grants nothing by itself (identity policies decide), but its Deny applies to all
    own = doc({"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "dynamodb:*", "Resource": TABLE},
              {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
               "Action": "dynamodb:DeleteTable", "Resource": TABLE})
    assert evaluate_access(role, "dynamodb:GetItem", TABLE, own).decision == "not_allowed"
    admin_of_own = PrincipalPolicies(ROLE, (("admin", doc(allow("*"))),))
    assert evaluate_access(admin_of_own, "dynamodb:GetItem", TABLE, own).decision == "allowed"
    assert evaluate_access(admin_of_own, "dynamodb:DeleteTable", TABLE, own).decision == "denied"
    # the Deny for everyone applies to our own admin too
    admin = PrincipalPolicies(ROLE, (("admin", doc(allow("*"))),))
    assert evaluate_access(admin, "dynamodb:DeleteTable", TABLE, rp).decision == "denied"


def test_not_principal_means_everyone_else():
    rp = doc({"Effect": "Deny", "NotPrincipal": {"AWS": ROLE.arn}, "Action": "s3:DeleteObject",
              "Resource": "arn:aws:s3:::b/*"})
    objects = "arn:aws:s3:::b/*"
    everyone = (("admin", doc(allow("*"))),)
    assert evaluate_access(PrincipalPolicies(ROLE, everyone), "s3:DeleteObject", objects, rp).decision == "allowed"
    assert evaluate_access(PrincipalPolicies(USER, everyone), "s3:DeleteObject", objects, rp).decision == "denied"


def test_grants_name_policy_and_statement():
    policy = doc({"Sid": "Wide", **allow("dynamodb:*")}, allow("dynamodb:DeleteTable", TABLE))
    access = evaluate_access(PrincipalPolicies(ROLE, (("arn:aws:iam::111111111111:policy/p", policy),)),
                             "dynamodb:DeleteTable", TABLE)
    assert [(g.policy, g.statement, g.action_pattern, g.wildcard_action) for g in access.grants] == [
        ("arn:aws:iam::111111111111:policy/p", "Wide", "dynamodb:*", True),
        ("arn:aws:iam::111111111111:policy/p", "#1", "dynamodb:DeleteTable", False),
    ]

"""Benchmark the access-review evaluation on a large synthetic account.

    .venv/bin/python benchmarks/bench_access_review.py [--roles 2000] [--users 500]

Builds a snapshot in GetAccountAuthorizationDetails' shape: ``--roles`` roles (two inline statements
each, one of 20 shared managed policies attached, a boundary on half of them), ``--users`` users in
10 groups, the demo config's 3 tables (one with a resource policy) and 2 buckets (one with a bucket
policy), then times :func:`dynamoguard.access.review.run_review` (every principal x resource x
sensitive action, findings, report, diff against the previous run) and the HTML rendering.
Reports wall and CPU seconds, evaluations per second and peak RSS. No AWS calls: collection time is
bounded by IAM's paging (100 items per call) and is not measured here.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from dynamoguard.access.report import render_html  # noqa: E402
from dynamoguard.access.review import protected_resources, run_review  # noqa: E402
from dynamoguard.config import load_config  # noqa: E402

SRC, BKP = "111111111111", "222222222222"
ACTIONS = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteTable", "dynamodb:*",
           "dynamodb:Describe*", "s3:GetObject", "s3:DeleteObject", "s3:*", "s3:Put*", "*"]


def statement(rng, sid):
    table = rng.choice(["orders", "customers", "inventory", "*", "other-*"])
    resource = rng.choice([f"arn:aws:dynamodb:us-east-1:{SRC}:table/{table}", "arn:aws:s3:::dynamoguard-exports/*",
                           "*", "arn:aws:s3:::other-bucket/*"])
    out = {"Sid": sid, "Effect": "Deny" if rng.random() < 0.1 else "Allow",
           "Action": rng.sample(ACTIONS, rng.randint(1, 3)), "Resource": resource}
    if rng.random() < 0.2:
        out["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    return out


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def snapshot(roles: int, users: int, seed: int = 7):
    rng = random.Random(seed)
    policies = [{"Arn": f"arn:aws:iam::{SRC}:policy/p{i}", "PolicyName": f"p{i}", "PolicyVersionList": [
        {"Document": doc(*(statement(rng, f"S{j}") for j in range(5))), "IsDefaultVersion": True}]}
        for i in range(20)]
    boundary = {"Arn": f"arn:aws:iam::{SRC}:policy/boundary", "PolicyName": "boundary", "PolicyVersionList": [
        {"Document": doc({"Effect": "Allow", "Action": ["dynamodb:Get*", "dynamodb:Query", "s3:Get*"],
                          "Resource": "*"}), "IsDefaultVersion": True}]}
    policies.append(boundary)

    def attached(i):
        return [{"PolicyName": f"p{i % 20}", "PolicyArn": f"arn:aws:iam::{SRC}:policy/p{i % 20}"}]

    role_list = [{
        "RoleName": f"role{i}", "Arn": f"arn:aws:iam::{SRC}:role/role{i}", "Path": "/",
        "RolePolicyList": [{"PolicyName": "inline", "PolicyDocument": doc(statement(rng, "A"), statement(rng, "B"))}],
        "AttachedManagedPolicies": attached(i),
        **({"PermissionsBoundary": {"PermissionsBoundaryArn": boundary["Arn"]}} if i % 2 else {}),
    } for i in range(roles)]
    groups = [{"GroupName": f"g{i}", "GroupPolicyList": [{"PolicyName": "gi", "PolicyDocument": doc(
        statement(rng, "G"))}], "AttachedManagedPolicies": attached(i + 3)} for i in range(10)]
    user_list = [{"UserName": f"user{i}", "Arn": f"arn:aws:iam::{SRC}:user/user{i}", "Path": "/",
                  "GroupList": [f"g{i % 10}"], "UserPolicyList": [], "AttachedManagedPolicies": []}
                 for i in range(users)]
    table_policy = doc({"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                        "Action": "dynamodb:GetItem", "Resource": f"arn:aws:dynamodb:us-east-1:{SRC}:table/orders"})
    bucket_policy = doc({"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject*",
                         "Resource": "arn:aws:s3:::dynamoguard-exports/*",
                         "Condition": {"StringNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{SRC}:role/role1*"}}})
    docs = {p["Arn"]: p["PolicyVersionList"][0]["Document"] for p in policies}
    source = {"account": SRC, "authorization_details": {"RoleDetailList": role_list, "UserDetailList": user_list,
                                                         "GroupDetailList": groups, "Policies": policies},
              "managed_policies": docs,
              "table_policies": {f"arn:aws:dynamodb:us-east-1:{SRC}:table/orders": table_policy},
              "bucket_policies": {"dynamoguard-exports": bucket_policy}}
    backup = {"account": BKP, "authorization_details": {"RoleDetailList": [], "UserDetailList": [],
                                                         "GroupDetailList": [], "Policies": []},
              "managed_policies": {}, "table_policies": {}, "bucket_policies": {}}
    return {"source": source, "backup": backup}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roles", type=int, default=2000)
    parser.add_argument("--users", type=int, default=500)
    args = parser.parse_args(argv)
    config = load_config()
    snaps = snapshot(args.roles, args.users)
    wall, cpu = time.perf_counter(), time.process_time()
    first = run_review(config, snaps, "2026-03-01")
    report = run_review(config, snaps, "2026-03-02", previous=first)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    html_start = time.perf_counter()
    page = render_html(report)
    html_seconds = time.perf_counter() - html_start
    principals = args.roles + args.users
    checks = sum(len(scopes) for r in protected_resources(config, snaps) for scopes in r.scopes.values())
    evaluations = 2 * principals * checks
    print(f"principals={principals} evaluations={evaluations} (two reviews)")
    print(f"review: wall {wall:.2f}s cpu {cpu:.2f}s -> {evaluations / cpu:,.0f} evaluations/s (cpu)")
    print(f"matrix entries={len(report['matrix'])} findings={len(report['findings'])} "
          f"new_findings={len(report['diff']['new_findings'])}")
    print(f"html: {html_seconds:.2f}s, {len(page) / 1e6:.1f} MB")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the access-review evaluation on a large synthetic account, with and without escalation.

    .venv/bin/python benchmarks/bench_access_review.py [--roles 2000] [--users 500]

Builds a snapshot in GetAccountAuthorizationDetails' shape: ``--roles`` roles (two inline statements
each, one of 20 shared managed policies attached, a boundary on half of them; trust policies admitting
Lambda, EC2 (with an instance profile), the account or another role), ``--users`` users in 10 groups;
about one statement in six is an IAM/STS/PassRole statement (assume, pass, attach, access keys), some on
the principal itself. The demo config's 3 tables (one with a resource policy) and 2 buckets (one with a
bucket policy). Then, in one run, times :func:`dynamoguard.access.review.run_review` direct-only (as before
escalation existed) and with escalation (the graph, paths, findings, report, diff against the
direct-only report), and the HTML rendering. Reports wall and CPU seconds and peak RSS. No AWS calls:
collection time is bounded by IAM's paging (100 items per call) and is not measured here.
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


IAM_ACTIONS = ["sts:AssumeRole", "iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction",
               "iam:AttachRolePolicy", "iam:PutUserPolicy", "iam:CreateAccessKey", "ec2:RunInstances",
               "iam:Get*", "iam:List*"]


def iam_statement(rng, sid, own):
    resource = rng.choice([own, f"arn:aws:iam::{SRC}:role/role{rng.randrange(2000)}", f"arn:aws:iam::{SRC}:role/*",
                           f"arn:aws:iam::{SRC}:user/user{rng.randrange(500)}", "*"])
    return {"Sid": sid, "Effect": "Deny" if rng.random() < 0.05 else "Allow",
            "Action": rng.sample(IAM_ACTIONS, rng.randint(1, 3)), "Resource": resource}


def trust(rng, i):
    pick = rng.random()
    if pick < 0.5:
        principal = {"Service": "lambda.amazonaws.com"}
    elif pick < 0.7:
        principal = {"Service": "ec2.amazonaws.com"}
    elif pick < 0.9:
        principal = {"AWS": f"arn:aws:iam::{SRC}:root"}
    else:
        principal = {"AWS": f"arn:aws:iam::{SRC}:role/role{(i * 7) % 2000}"}
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


def statement(rng, sid, own=None):
    if own and rng.random() < 0.17:
        return iam_statement(rng, sid, own)
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

    def role(i):
        own = f"arn:aws:iam::{SRC}:role/role{i}"
        trusted = trust(rng, i)
        return {
            "RoleName": f"role{i}", "Arn": own, "Path": "/", "AssumeRolePolicyDocument": trusted,
            "InstanceProfileList": [{"InstanceProfileName": f"role{i}"}] if "ec2" in str(trusted) else [],
            "RolePolicyList": [{"PolicyName": "inline", "PolicyDocument": doc(statement(rng, "A", own),
                                                                              statement(rng, "B", own))}],
            "AttachedManagedPolicies": attached(i),
            **({"PermissionsBoundary": {"PermissionsBoundaryArn": boundary["Arn"]}} if i % 2 else {}),
        }

    role_list = [role(i) for i in range(roles)]
    groups = [{"GroupName": f"g{i}", "Arn": f"arn:aws:iam::{SRC}:group/g{i}", "GroupPolicyList": [
        {"PolicyName": "gi", "PolicyDocument": doc(statement(rng, "G"))}], "AttachedManagedPolicies": attached(i + 3)}
        for i in range(10)]
    def user(i):
        own = f"arn:aws:iam::{SRC}:user/user{i}"
        return {"UserName": f"user{i}", "Arn": own, "Path": "/", "GroupList": [f"g{i % 10}"],
                "AttachedManagedPolicies": [],
                "UserPolicyList": [{"PolicyName": "own", "PolicyDocument": doc(statement(rng, "U", own))}]}

    user_list = [user(i) for i in range(users)]
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


def timed(label, fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: wall {wall:.2f}s cpu {cpu:.2f}s")
    return result, wall, cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roles", type=int, default=2000)
    parser.add_argument("--users", type=int, default=500)
    args = parser.parse_args(argv)
    config = load_config()
    snaps = snapshot(args.roles, args.users)
    principals = args.roles + args.users
    checks = sum(len(scopes) for r in protected_resources(config, snaps) for scopes in r.scopes.values())
    print(f"principals={principals} direct evaluations per review={principals * checks}")
    direct, d_wall, d_cpu = timed("review, direct grants only",
                                  lambda: run_review(config, snaps, "2026-03-01", escalation=False))
    report, e_wall, e_cpu = timed("review with escalation (graph, paths, findings, diff)",
                                  lambda: run_review(config, snaps, "2026-03-02", previous=direct))
    via = [e for e in report["matrix"] if e["via"] == "path"]
    print(f"direct: matrix entries={len(direct['matrix'])} findings={len(direct['findings'])}")
    print(f"escalation: matrix entries={len(report['matrix'])} (via a path: {len(via)}, longest path "
          f"{max((len(e['path']) for e in via), default=0)} hops) findings={len(report['findings'])} "
          f"(escalation paths: {sum(f['kind'] == 'escalation_path' for f in report['findings'])}) "
          f"new_findings={len(report['diff']['new_findings'])}")
    print(f"escalation / direct: wall x{e_wall / d_wall:.2f}, cpu x{e_cpu / d_cpu:.2f}")
    page, _, _ = timed("html", lambda: render_html(report))
    print(f"html: {len(page) / 1e6:.1f} MB")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

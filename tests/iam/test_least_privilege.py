"""The rendered IAM policies are sufficient and minimal, proven on the AWS calls the test suite made.

tests/conftest.py installs the recorder for the whole session and runs these tests last, so every
dag.test() and operator run of the suite has been recorded (per connection, with the config in effect).
If a role has no recorded call (these tests run alone), every DAG is run first (fixture ``recorded``).

Sufficient: each recorded call's (action, resource) pairs (tests/iam/actions.py) are allowed by the
identity policy of the role behind the call's connection, by the permissions boundary, and not denied
by our bucket policies (which must also allow cross-account reads).
Minimal: each action of each Allow statement was needed by some recorded call on a resource the statement
names, or is in ``REAL_AWS_ONLY`` with the reason AWS needs it only outside the emulator.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from parliament import analyze_policy_string

from dynamoguard import iam_policies
from dynamoguard.access.evaluate import Principal, glob_match, is_allowed, statements
from dynamoguard.config import Config, load_config
from tests.iam.actions import _copy_source_arn, required_permissions
from tests.iam.conftest import _config, _roles_of
from tests.iam.recorder import RECORDER, AwsCall

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "include" / "dynamoguard.yaml"

# Parliament findings that are wrong about AWS: (statement Sid or offending string, issue) -> reason.
PARLIAMENT_EXCEPTIONS = {
    ("ReadTablePolicies", "RESOURCE_MISMATCH"):
        "parliament's IAM definitions mark both stream* and table* as required for dynamodb:GetResourcePolicy; "
        "the Service Authorization Reference lists them as alternatives, and only table policies are read",
    ("arn:aws:iam::aws:policy/*", "INVALID_ARN"):
        "AWS managed policies live in the account 'aws' (arn:aws:iam::aws:policy/...), which parliament's ARN check "
        "does not know",
    ("ImportLogs", "RESOURCE_MISMATCH"):
        "parliament's definitions want '*' for logs:DescribeLogGroups; the DynamoDB developer guide's ImportTable "
        "permissions (S3DataImport.Requesting.html) scope it to the log-group:/aws-dynamodb/* ARN",
    ("ReplicaDrillImportLogs", "RESOURCE_MISMATCH"): "as for ImportLogs",
}


# --------------------------------------------------------------------------------------------- calls


# ------------------------------------------------------------------------------------ conditions


def _request_context(call: AwsCall, calls: list[AwsCall]) -> dict[str, str | None]:
    """Condition keys of the request, as AWS would set them (None: the key is absent)."""
    context: dict[str, str | None] = {"aws:securetransport": "true"}  # botocore talks HTTPS to AWS
    if call.service == "s3" and call.operation in ("ListObjectsV2", "ListObjects", "ListObjectVersions"):
        context["s3:prefix"] = call.param("Prefix")
    if call.service == "dynamodb" and call.operation == "DeleteTable":
        # The table's tags as our code set them (TagResource) or read them (ListTagsOfResource, which the
        # cleanup and the sweeper check before deleting).
        suffix = f":table/{call.param('TableName')}"
        tags = {}
        for other in calls:
            if other.operation == "TagResource" and other.conn_id == call.conn_id and \
                    str(other.param("ResourceArn")).endswith(suffix):
                tags.update({dict(t)["Key"]: dict(t)["Value"] for t in other.param("Tags") or ()})
        for (conn_id, arn), seen in RECORDER.tags.items():
            if conn_id == call.conn_id and arn.endswith(suffix):
                tags.update(seen)
        context.update({f"aws:resourcetag/{key}".lower(): value for key, value in tags.items()})
    return context


def _condition_holds(condition: dict, context: dict[str, str | None], principal_arn: str) -> bool | None:
    """Whether a Condition block holds for the request; None if it uses a key we cannot decide."""
    context = {**context, "aws:principalarn": principal_arn}
    for operator, entries in condition.items():
        for key, wanted in entries.items():
            key = key.lower()
            if key not in context and not key.startswith(("aws:resourcetag/", "s3:prefix")):
                return None
            actual = context.get(key)
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            if operator == "Null":
                holds = (actual is None) == (values[0] == "true")
            elif actual is None:
                holds = operator.startswith(("StringNot", "ArnNot"))
            elif operator in ("StringLike", "ArnLike", "ArnEquals"):
                holds = any(glob_match(v, actual) for v in values)
            elif operator == "ArnNotEquals":
                holds = not any(glob_match(v, actual) for v in values)
            elif operator in ("StringEquals", "Bool"):
                holds = actual in values
            else:
                return None
            if not holds:
                return False
    return True


def resolved(document: dict, context: dict[str, str | None], principal_arn: str) -> dict:
    """``document`` with each decidable Condition applied: statements whose condition fails are dropped."""
    kept = []
    for _, stmt in statements(document):
        condition = stmt.get("Condition")
        if condition:
            holds = _condition_holds(condition, context, principal_arn)
            if holds is False:
                continue
            if holds:
                stmt = {k: v for k, v in stmt.items() if k != "Condition"}
        kept.append(stmt)
    return {**document, "Statement": kept}


# ----------------------------------------------------------------------------------- sufficiency


def _bucket_accounts(config: Config) -> dict[str, str]:
    source, backup = config.accounts.source.account_id, config.accounts.backup.account_id
    audit = (config.accounts.audit or config.accounts.source).account_id
    return {config.backup_bucket.name: source, config.reports_bucket.name: source, config.audit.trail_bucket: audit,
            config.replica_bucket.name: backup}


def _bucket_of(resource: str) -> str | None:
    match = re.match(r"arn:aws:s3:::([^/]+)", resource)
    return match.group(1) if match else None


def check_call(call: AwsCall, calls: list[AwsCall]) -> list[str]:
    """Why ``call`` would be refused on AWS under its config's policies (empty: it would be allowed)."""
    config = _config(call.config)
    roles = _roles_of(config, call.conn_id)
    if not roles:
        return [f"connection {call.conn_id!r} is not the connection of any role"]
    role = roles[0]
    boundary = iam_policies.boundary_policy(config)
    buckets = iam_policies.bucket_policies(config)
    owners = _bucket_accounts(config)
    context = _request_context(call, calls)
    problems = []
    for action, resource in required_permissions(call, config.region, role.account_id):
        principal = Principal(role.arn, "role", role.account_id)
        identity = [is_allowed(resolved(r.policy, context, r.arn), action, resource) for r in roles]
        if "allowed" not in identity:
            problems.append(f"{action} on {resource}: {identity} by the {[r.key for r in roles]} role policy")
        bound = is_allowed(resolved(boundary, context, role.arn), action, resource)
        if bound != "allowed":
            problems.append(f"{action} on {resource}: {bound} by the permissions boundary")
        bucket = _bucket_of(resource)
        if bucket in buckets:
            by_bucket = is_allowed(resolved(buckets[bucket], context, role.arn), action, resource, principal)
            if by_bucket == "denied" or by_bucket == "conditional":
                problems.append(f"{action} on {resource}: {by_bucket} by the policy of bucket {bucket}")
            if owners[bucket] != role.account_id and by_bucket != "allowed":
                problems.append(f"{action} on {resource}: cross-account, but the policy of bucket {bucket} does "
                                f"not allow the {role.key} role ({by_bucket})")
        elif bucket and owners.get(bucket, role.account_id) != role.account_id:
            problems.append(f"{action} on {resource}: cross-account bucket without a rendered bucket policy")
    return problems


@pytest.mark.aws
@pytest.mark.airflow
def test_every_recorded_call_is_allowed_by_its_roles_policies(recorded):
    refused = {}
    for call in recorded:
        if not call.config:
            continue
        problems = check_call(call, recorded)
        if problems:
            refused[f"{call.conn_id} {call.service}:{call.operation} {dict(call.params)}"] = problems
    assert not refused, "calls the rendered policies would refuse:\n" + json.dumps(refused, indent=1, default=str)


OBJECT_READS = {"GetObject", "HeadObject", "GetObjectRetention", "GetObjectLegalHold"}


def read_objects(call: AwsCall) -> list[tuple[str, str]]:
    """(bucket, key) of every object ``call`` reads: its own object, or the source of a copy."""
    if call.service != "s3":
        return []
    if call.operation in OBJECT_READS:
        return [(call.param("Bucket"), call.param("Key"))]
    if call.operation in ("CopyObject", "UploadPartCopy"):
        source = _copy_source_arn(call.param("CopySource")).removeprefix("arn:aws:s3:::")
        bucket, _, key = source.partition("/")
        return [(bucket, key)]
    return []


def list_problems(call: AwsCall, bucket: str, key: str) -> list[str]:
    """Why the role behind ``call`` may not list ``key`` in ``bucket`` (s3:ListBucket with s3:prefix = the key)."""
    config = _config(call.config)
    role = _roles_of(config, call.conn_id)[0]
    context = {"aws:securetransport": "true", "s3:prefix": key}
    resource = f"arn:aws:s3:::{bucket}"
    problems = []
    identity = [is_allowed(resolved(r.policy, context, r.arn), "s3:ListBucket", resource)
                for r in _roles_of(config, call.conn_id)]
    if "allowed" not in identity:
        problems.append(f"role {role.key}: {identity}")
    if is_allowed(resolved(iam_policies.boundary_policy(config), context, role.arn), "s3:ListBucket",
                  resource) != "allowed":
        problems.append("permissions boundary")
    policy = iam_policies.bucket_policies(config).get(bucket)
    if _bucket_accounts(config).get(bucket, role.account_id) != role.account_id:
        principal = Principal(role.arn, "role", role.account_id)
        if policy is None or is_allowed(resolved(policy, context, role.arn), "s3:ListBucket", resource,
                                        principal) != "allowed":
            problems.append(f"cross-account: the policy of bucket {bucket}")
    return problems


@pytest.mark.aws
@pytest.mark.airflow
def test_every_object_read_may_also_list_its_key(recorded):
    """S3 answers a read of a missing key with 404 only to a caller allowed s3:ListBucket on it, otherwise with
    403 AccessDenied (API reference of GetObject and HeadObject, "Permissions"): every key a role reads must lie
    under a prefix its ListBucket grant covers, so that a missing manifest or data file is a finding, never an
    AccessDenied."""
    unlisted = {}
    for call in recorded:
        if not call.config:
            continue
        for bucket, key in read_objects(call):
            problems = list_problems(call, bucket, key)
            if problems:
                unlisted[f"{call.conn_id} {call.operation} s3://{bucket}/{key}"] = problems
    assert not unlisted, "reads whose key the role may not list:\n" + json.dumps(unlisted, indent=1)


@pytest.mark.aws
@pytest.mark.airflow
def test_every_role_made_calls_through_its_own_connection(recorded):
    demo = load_config(DEMO)
    conns = {r.conn_id for r in iam_policies.roles(demo)}
    assert len(conns) == len(iam_policies.roles(demo)), "the demo config gives every role its own connection"
    used = {c.conn_id for c in recorded}
    assert conns <= used, f"no call through {sorted(conns - used)}"


# ------------------------------------------------------------------------------------- minimality


def used_permissions(calls: list[AwsCall]) -> dict[str, set[tuple[str, str]]]:
    """Role key -> every (action, resource) a recorded call needed."""
    used: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for call in calls:
        if not call.config:
            continue
        for role in _roles_of(_config(call.config), call.conn_id):
            used[role.key].update(required_permissions(call, _config(call.config).region, role.account_id))
            # a read needs ListBucket on its key too, or S3 hides a missing key behind 403
            used[role.key].update(("s3:ListBucket", f"arn:aws:s3:::{bucket}") for bucket, _ in read_objects(call))
    return used


@pytest.mark.aws
@pytest.mark.airflow
def test_every_granted_action_was_used_or_is_needed_only_on_real_aws(recorded):
    used = used_permissions(recorded)
    unused = []
    for role in iam_policies.roles(load_config(DEMO)):
        for sid, stmt in statements(role.policy):
            resources = [stmt["Resource"]] if isinstance(stmt["Resource"], str) else stmt["Resource"]
            for action in stmt["Action"]:
                hit = any(a == action and any(glob_match(p, r) or p == r for p in resources)
                          for a, r in used[role.key])
                listed = f"{action}@{sid}" in iam_policies.REAL_AWS_ONLY
                if not hit and not listed:
                    unused.append(f"{role.key}: {sid} grants {action} on {resources}")
                if hit and listed:
                    unused.append(f"{role.key}: {action}@{sid} is in REAL_AWS_ONLY but the tests use it")
    assert not unused, "granted but never needed by a recorded call:\n" + "\n".join(unused)


def everything_on(config: Config) -> Config:
    """``config`` with every switch that adds permissions turned on."""
    return config.model_copy(update={
        "tables": [t.model_copy(update={"ensure_pitr": True}) for t in config.tables],
        "backup_bucket": config.backup_bucket.model_copy(update={"enforce_retention": True}),
        "replica_bucket": config.replica_bucket.model_copy(update={"mode": "verify"}),
        "audit": config.audit.model_copy(update={
            "kms_key_arns": [f"arn:aws:kms:{config.region}:{config.accounts.source.account_id}:key/example"]}),
    })


def test_real_aws_only_allowlist_names_granted_actions():
    granted = {f"{a}@{sid}" for role in iam_policies.roles(everything_on(load_config(DEMO)))
               for sid, stmt in statements(role.policy) for a in stmt["Action"]}
    assert set(iam_policies.REAL_AWS_ONLY) - granted == set(), "stale entries in REAL_AWS_ONLY"


# ---------------------------------------------------------------------------------- static rules


def _all_documents(config: Config) -> dict[str, dict]:
    return iam_policies.render(config)


def test_policies_fit_aws_size_limits():
    """Managed policies: 6,144 characters without whitespace; bucket policies: 20 KB (IAM and S3 quotas)."""
    for name, doc in _all_documents(load_config(DEMO)).items():
        size = len(json.dumps(doc, separators=(",", ":")))
        assert size <= (20 * 1024 if name.startswith("bucket-") else 6144), f"{name}: {size} characters"


def test_no_wildcard_actions_and_star_resources_only_where_aws_has_none():
    for name, doc in _all_documents(load_config(DEMO)).items():
        for sid, stmt in statements(doc):
            if stmt["Effect"] != "Allow":
                continue
            assert "NotAction" not in stmt and "NotResource" not in stmt, f"{name} {sid}"
            assert all("*" not in a for a in stmt["Action"]), f"{name} {sid}: wildcard action"
            if stmt["Resource"] == "*" or "*" in stmt["Resource"]:
                assert set(stmt["Action"]) <= iam_policies.STAR_ONLY, f"{name} {sid}: '*' resource"
            assert sid in iam_policies.WHY, f"{name} {sid}: no reason"


def test_parliament_finds_nothing():
    findings = []
    for name, doc in _all_documents(load_config(DEMO)).items():
        text = json.dumps(doc, indent=2)
        for finding in analyze_policy_string(text).findings:
            sid = _sid_at(text, finding.location.get("line"))
            if {(sid, finding.issue), (finding.location.get("string"), finding.issue)} & set(PARLIAMENT_EXCEPTIONS):
                continue
            findings.append(f"{name} {sid}: {finding.issue} {finding.detail}")
    assert not findings, "\n".join(findings)


def _sid_at(text: str, line: int | None) -> str | None:
    """The Sid of the statement whose lines (of ``json.dumps(indent=2)``) contain ``line``."""
    starts, lines = [], text.splitlines()
    for number, content in enumerate(lines, start=1):
        if content == "    {":
            sid = next(re.search(r'"Sid": "(\w+)"', c).group(1) for c in lines[number:] if '"Sid"' in c)
            starts.append((number, sid))
    before = [sid for number, sid in starts if line and number <= line]
    return before[-1] if before else None


def test_config_switches_add_only_what_they_need():
    demo = load_config(DEMO)
    assert not any(t.ensure_pitr for t in demo.tables) and not demo.backup_bucket.enforce_retention
    base = {r.key: r.policy for r in iam_policies.roles(demo)}
    actions = {a for _, s in statements(base["nightly"]) for a in s["Action"]}
    assert {"dynamodb:UpdateContinuousBackups", "s3:PutObjectRetention", "s3:GetReplicationConfiguration",
            "s3:BypassGovernanceRetention"}.isdisjoint(actions)
    switched = everything_on(demo)
    switched = switched.model_copy(update={
        "tables": [t.model_copy(update={"ensure_pitr": t.name == "orders"}) for t in demo.tables]})
    nightly = {s["Sid"]: s for _, s in statements(iam_policies.nightly_policy(switched))}
    assert nightly["EnablePitr"]["Resource"] == [demo.table_arn("orders")]
    assert nightly["EnforceRetention"]["Action"] == ["s3:PutObjectRetention"]
    assert nightly["ReadReplicationConfig"]["Action"] == ["s3:GetReplicationConfiguration"]
    exports = iam_policies.bucket_policies(switched)[demo.backup_bucket.name]
    assert all("Condition" not in s for _, s in statements(exports) if s["Sid"] == "DenyGovernanceBypass")
    # the governance bypass is never granted nor exempted, whatever the switches: enforcement reports that step
    governance = switched.model_copy(update={
        "backup_bucket": switched.backup_bucket.model_copy(update={"allow_governance": True})})
    documents = [r.policy for r in iam_policies.roles(governance)] + list(
        iam_policies.bucket_policies(governance).values())
    assert not [s for doc in documents for _, s in statements(doc)
                if s["Effect"] == "Allow" and "s3:BypassGovernanceRetention" in s["Action"]]
    assert all("Condition" not in s for doc in iam_policies.bucket_policies(governance).values()
               for _, s in statements(doc) if s["Sid"] == "DenyGovernanceBypass")


def test_import_log_groups_are_described_only_under_aws_dynamodb():
    """DescribeLogGroups scoped as in the DynamoDB developer guide's ImportTable example policy, not on '*'."""
    config = load_config(DEMO)
    for role in iam_policies.roles(config):
        for sid, stmt in statements(role.policy):
            if "logs:DescribeLogGroups" in stmt["Action"]:
                expected = f"arn:aws:logs:{config.region}:{role.account_id}:log-group:/aws-dynamodb/*"
                assert stmt["Resource"] == [expected], sid


def test_scratch_table_delete_needs_the_drill_tag():
    config = load_config(DEMO)
    drill = {r.key: r for r in iam_policies.roles(config)}["drill"]
    scratch = f"arn:aws:dynamodb:{config.region}:{config.accounts.source.account_id}:table/" \
              f"{config.drills.scratch_prefix}orders-x"
    tagged = {"aws:resourcetag/dynamoguard:drill": "run-1"}
    assert is_allowed(resolved(drill.policy, tagged, drill.arn), "dynamodb:DeleteTable", scratch) == "allowed"
    assert is_allowed(resolved(drill.policy, {}, drill.arn), "dynamodb:DeleteTable", scratch) == "not_allowed"
    protected = config.table_arn("orders")
    assert is_allowed(resolved(drill.policy, tagged, drill.arn), "dynamodb:DeleteTable", protected) == "not_allowed"
    boundary = iam_policies.boundary_policy(config)
    assert is_allowed(boundary, "dynamodb:DeleteTable", protected) == "denied"


def test_bucket_policies_deny_deletes_and_bypass_to_everyone():
    config = load_config(DEMO)
    anyone = Principal(f"arn:aws:iam::{config.accounts.source.account_id}:role/admin", "role",
                       config.accounts.source.account_id)
    for bucket, doc in iam_policies.bucket_policies(config).items():
        for action in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"):
            assert is_allowed(doc, action, f"arn:aws:s3:::{bucket}/exports/orders/x", anyone) == "denied"
        assert is_allowed(doc, "s3:DeleteBucket", f"arn:aws:s3:::{bucket}", anyone) == "denied"


def test_rendered_files_match_the_demo_config(tmp_path):
    """include/iam/*.json and README.md are what `make iam-policies` writes for the demo config."""
    iam_policies.write(load_config(DEMO), tmp_path)
    for path in sorted(tmp_path.iterdir()):
        committed = ROOT / "include" / "iam" / path.name
        assert committed.is_file(), f"{committed} missing: run `make iam-policies`"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run `make iam-policies`"


def test_readme_explains_every_statement_of_the_demo_policies():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Least privilege"):]
    section = section[:section.index("\n## ", 1)]
    sids = {s for doc in iam_policies.render(load_config(DEMO)).values() for s, _ in statements(doc)}
    missing = sorted(s for s in sids if f"**{s}**" not in section)
    assert not missing, f"README.md 'Least privilege' does not explain {missing}"

"""The recorded AWS calls of the session; if some role made none (tests/iam run alone), every DAG is run first."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from dynamoguard import iam_policies
from dynamoguard.config import Config, load_config, parse_config
from tests.iam.recorder import RECORDER, AwsCall

DEMO = Path(__file__).resolve().parents[2] / "include" / "dynamoguard.yaml"


@lru_cache(maxsize=32)
def _config(digest: str) -> Config:
    return parse_config(RECORDER.configs[digest], source=f"recorded config {digest}")


def _roles_of(config: Config, conn_id: str) -> list[iam_policies.Role]:
    return [r for r in iam_policies.roles(config) if r.conn_id == conn_id]


def roles_without_calls() -> set[str]:
    keys = {r.key for r in iam_policies.roles(load_config(DEMO))}
    seen = {r.key for call in set(RECORDER.calls) if call.config for r in _roles_of(_config(call.config), call.conn_id)}
    return keys - seen


@pytest.fixture(scope="session")
def recorded(localaws_server, airflow_db, tmp_path_factory) -> list[AwsCall]:
    """Every recorded call, after running every DAG against the seeded emulator if some role has none."""
    assert RECORDER.installed, "tests/conftest.py must install the AWS call recorder"
    if roles_without_calls():
        from tests.iam import jobs

        localaws_server.reset()
        localaws_server.seed()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DYNAMOGUARD_CONFIG", str(jobs.fast_config(tmp_path_factory.mktemp("iam"))))
            runs = jobs.run_all(localaws_server.endpoint)
        print("DAG runs for the IAM proof:", json.dumps(runs, indent=1))
    unseen = roles_without_calls()
    assert not unseen, f"no AWS call was recorded for role(s) {sorted(unseen)} even after running every DAG"
    return sorted(RECORDER.calls, key=lambda c: (c.conn_id, c.service, c.operation, repr(c.params)))

"""The restore-source registry: every module is a source, the config and the trigger form take their names from it,
and each source's IAM needs are granted to the role of the connection that runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dynamoguard import iam_policies
from dynamoguard.config import ConfigError, load_config, parse_config
from dynamoguard.drills import sources

ROOT = Path(__file__).resolve().parents[2]
SOURCES_DIR = ROOT / "plugins" / "dynamoguard" / "drills" / "sources"


def test_every_public_module_is_a_registered_source():
    modules = sorted(p.stem for p in SOURCES_DIR.glob("*.py") if not p.stem.startswith("_"))
    assert list(sources.names()) == modules == ["export", "incremental", "incremental_replica", "pitr", "replica"]
    assert all(sources.get(name).name == name and sources.labels()[name] for name in modules)
    with pytest.raises(KeyError, match="unknown restore source 'tape'"):
        sources.get("tape")


def test_config_accepts_exactly_the_registered_sources():
    text = (ROOT / "include" / "dynamoguard.yaml").read_text()
    for name in sources.names():
        assert parse_config(text.replace("default_source: export", f"default_source: {name}")).drills.default_source \
            == name
    with pytest.raises(ConfigError, match="drills.default_source"):
        parse_config(text.replace("default_source: export", "default_source: tape"))
    with pytest.raises(ConfigError, match=r"tables.0.drill.source"):
        parse_config(text.replace("drill: {source: export", "drill: {source: tape"))


def test_reading_the_config_imports_no_aws_or_airflow_module():
    code = ("import sys; import dynamoguard.config as c; c.load_config(); "
            "print(sorted(m for m in ('botocore', 'boto3', 'airflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"}).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", sources.names())
def test_each_source_iam_needs_are_granted_to_the_role_of_its_connection(name):
    config = load_config()
    source = sources.get(name)
    conn_id = {"drill": config.drill_conn_id, "backup": config.accounts.backup.aws_conn_id}[source.connection]
    (role,) = [r for r in iam_policies.roles(config) if r.conn_id == conn_id]
    granted = {a for s in role.policy["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    assert set(source.iam_actions) <= granted, f"{name}: {sorted(set(source.iam_actions) - granted)} not granted"
    assert set(iam_policies.SCRATCH_ACTIONS) <= granted

"""Config validation: the shipped file is valid; each kind of bad file names the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dynamoguard.config import ConfigError, load_config, parse_config

SHIPPED = Path(__file__).resolve().parents[2] / "include" / "dynamoguard.yaml"


def _good() -> dict:
    return yaml.safe_load(SHIPPED.read_text())


def _write(tmp_path, data) -> Path:
    path = tmp_path / "dg.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_shipped_config_is_valid():
    config = load_config(SHIPPED)
    assert config.table_names == ["orders", "customers", "inventory"]
    assert config.backup_bucket.lock_mode == "COMPLIANCE"
    assert config.table_arn("orders") == "arn:aws:dynamodb:us-east-1:111111111111:table/orders"
    assert config.accounts.backup.aws_conn_id == "aws_backup"


def test_env_var_overrides_path(tmp_path, monkeypatch):
    data = _good()
    data["tables"] = [{"name": "only_one"}]
    monkeypatch.setenv("DYNAMOGUARD_CONFIG", str(_write(tmp_path, data)))
    assert load_config().table_names == ["only_one"]


def test_reload_after_change(tmp_path):
    data = _good()
    path = _write(tmp_path, data)
    assert len(load_config(path).tables) == 3
    data["tables"] = data["tables"][:1]
    path.write_text(yaml.safe_dump(data))
    import os

    os.utime(path, ns=(1, 10**18))
    assert len(load_config(path).tables) == 1


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.pop("backup_bucket"), "backup_bucket: required key is missing"),
        (lambda d: d["backup_bucket"].pop("name"), "backup_bucket.name: required key is missing"),
        (lambda d: d["backup_bucket"].update(lock_mod="COMPLIANCE"), "backup_bucket.lock_mod: unknown key"),
        (lambda d: d["backup_bucket"].update(lock_mode="STRICT"), "backup_bucket.lock_mode"),
        (lambda d: d["backup_bucket"].update(min_retention_days=0), "backup_bucket.min_retention_days"),
        (lambda d: d["backup_bucket"].update(name="Bad_Bucket"), "backup_bucket.name"),
        (lambda d: d["accounts"]["backup"].update(account_id="2222"), "accounts.backup.account_id"),
        (lambda d: d["tables"].append({"name": "x"}), "tables.3.name"),
        (lambda d: d["tables"].append({"name": "orders"}), "duplicate table names ['orders']"),
        (lambda d: d.update(tables=[]), "tables"),
        (lambda d: d["replica_bucket"].update(mode="mirror"), "replica_bucket.mode"),
        (lambda d: d["drills"].update(scratch_prefix="ord"), "matches protected tables ['orders']"),
        (lambda d: d["backup_bucket"].update(lock_mode="GOVERNANCE"), "allow_governance is false"),
        (lambda d: d["accounts"]["backup"].update(account_id="111111111111"), "must differ"),
        (lambda d: d.update(incremental={"interval_minutes": 14}), "incremental.interval_minutes"),
        (lambda d: d.update(incremental={"interval_minutes": 1441}), "incremental.interval_minutes"),
        (lambda d: d.update(incremental={"enabled": True, "intervals": 60}), "incremental.intervals: unknown key"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, mutate, expected):
    data = _good()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert expected in message


def test_missing_file_names_path(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: cannot read config file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["tables: [", "- just\n- a list\n"])
def test_not_yaml_or_not_mapping(text):
    with pytest.raises(ConfigError, match="cfg.yaml"):
        parse_config(text, source="cfg.yaml")

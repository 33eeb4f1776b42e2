"""``make demo``: the local AWS emulator, seeded, and Airflow standalone with the project's DAGs.

Airflow's home is ``.airflow/`` in the repository; the emulator listens on 127.0.0.1:``LOCALAWS_PORT``
(default 4577). Ctrl-C stops Airflow and the emulator; nothing is left running.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from include.localaws import DEFAULT_PORT
from include.localaws import process as emulator
from include.localaws.connections import connection_env
from include.localaws.seed import seed

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_PORT = int(os.environ.get("AIRFLOW_PORT", "8080"))


def _admin_password(home: Path) -> str:
    """A per-checkout admin password, generated once and kept in the (git-ignored) Airflow home."""
    path = home / "passwords.json"
    if not path.exists():
        path.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        path.chmod(0o600)
    return json.loads(path.read_text())["admin"]


def _airflow_env(home: Path, endpoint: str) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        **connection_env(endpoint),
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__API__PORT": str(AIRFLOW_PORT),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{AIRFLOW_PORT}/execution/",
    }


def _wait_for_ui(proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://localhost:{AIRFLOW_PORT}/api/v2/monitor/health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with code {proc.returncode}; see .airflow/standalone.log")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"Airflow UI did not answer on {url} within {timeout:.0f}s")


def _stop_group(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGINT the process (Airflow shuts its children down), then SIGKILL whatever is left of its group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main() -> int:
    started = time.monotonic()
    home = ROOT / ".airflow"
    home.mkdir(exist_ok=True)
    port = int(os.environ.get("LOCALAWS_PORT", DEFAULT_PORT))
    endpoint = f"http://127.0.0.1:{port}"

    aws = emulator.start(port, log_path=home / "localaws.log")
    airflow = None
    try:
        summary = seed(endpoint)
        print(f"local AWS emulator on {endpoint}: accounts {summary['source_account']} (source) and "
              f"{summary['backup_account']} (backup); tables {', '.join(summary['tables'])}", flush=True)
        password = _admin_password(home)
        log = open(home / "standalone.log", "ab")
        airflow = subprocess.Popen(
            [sys.executable, "-c",
             "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
             "os.execvp('airflow', ['airflow', 'standalone'])"],
            env=_airflow_env(home, endpoint), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for_ui(airflow)
        print(f"\nAirflow is ready after {time.monotonic() - started:.0f}s: http://localhost:{AIRFLOW_PORT}\n"
              f"  user: admin\n  password: {password}\n"
              f"Backup posture (also under Browse in Airflow's navigation): "
              f"http://localhost:{AIRFLOW_PORT}/dynamoguard/ (same login)\n"
              f"Logs: .airflow/standalone.log, .airflow/localaws.log. Press Ctrl-C to stop.", flush=True)
        while airflow.poll() is None:
            time.sleep(1)
        print(f"airflow standalone exited with code {airflow.returncode}; see .airflow/standalone.log")
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping Airflow and the emulator...", flush=True)
        if airflow is not None:
            _stop_group(airflow)
        emulator.stop(aws)
    return 0


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    # Ctrl-C stops the demo even when started from a shell that ignores SIGINT in background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())

"""Emulator-only control endpoints (no AWS counterpart), served beside moto's API.

* ``GET|POST /_localaws/config`` - read or change the run-time settings of the fixes (every fix module's
  ``SETTINGS``), e.g. body ``{"export_seconds": 2}`` sets how long a DynamoDB export stays IN_PROGRESS
  (initially ``LOCALAWS_EXPORT_SECONDS``, default 5).
* ``POST /_localaws/pitr`` - body ``{"table": "orders", "earliest_restorable": "2026-10-24T00:00:00Z",
  "account": "111111111111", "region": "us-east-1"}`` (account and region optional): make a table with
  PITR on look as if PITR had been enabled at ``earliest_restorable``, so that exports and restores
  at past times can be exercised. The table's current items count as present since that time (its recorded
  item history is replaced by them); see ``fixes/pitr.py`` and ``fixes/dynamodb_history.py``.
* ``POST /_localaws/backdate`` - body ``{"table": "orders", "seconds": 1800, "account": ..., "region": ...}``:
  move the table's whole recorded past (every item change and its PITR enable time) ``seconds`` back, so that
  an item written a moment ago counts as written half an hour ago (exports and restores at past times,
  incremental windows of 15 minutes or more, without waiting).
* Run-time settings include ``pitr_lag_seconds`` (how far LatestRestorableDateTime trails now, default 300).

Answers are JSON; a bad request gets status 400 and ``{"error": "..."}`` naming the problem.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

from include.localaws import REGION, SOURCE_ACCOUNT

PREFIX = "/_localaws/"


def _settings() -> dict[str, dict[str, Any]]:
    """Setting name -> the SETTINGS dict of the fix that owns it."""
    from include.localaws.fixes import FIXES

    owners = {}
    for name in FIXES:
        settings = getattr(import_module(f"include.localaws.fixes.{name}"), "SETTINGS", {})
        owners.update(dict.fromkeys(settings, settings))
    return owners


def _config(body: dict[str, Any]) -> dict[str, Any]:
    owners = _settings()
    unknown = set(body) - set(owners)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(owners))}")
    for key, value in body.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{key} must be a non-negative number, got {value!r}")
        owners[key][key] = float(value)
    return {key: settings[key] for key, settings in sorted(owners.items())}


def _table(body: dict[str, Any], *required: str) -> Any:
    """The moto table the body names (``table``, optional ``account``/``region``), after checking ``required``."""
    from moto.dynamodb.models import dynamodb_backends

    for key in ("table", *required):
        if body.get(key) in (None, ""):
            raise ValueError(f"missing key {key!r}")
    account, region = body.get("account", SOURCE_ACCOUNT), body.get("region", REGION)
    table = dynamodb_backends[account][region].tables.get(body["table"])
    if table is None:
        raise ValueError(f"no table {body['table']!r} in account {account} region {region}")
    return table


def _window(table: Any) -> dict[str, Any]:
    from include.localaws.fixes import pitr

    earliest, latest = pitr.window(table)
    return {"table": table.table_arn, "earliest_restorable": datetime.fromtimestamp(earliest, UTC).isoformat(),
            "latest_restorable": datetime.fromtimestamp(latest, UTC).isoformat()}


def _pitr(body: dict[str, Any]) -> dict[str, Any]:
    from include.localaws.fixes import pitr

    table = _table(body, "earliest_restorable")
    try:
        earliest = datetime.fromisoformat(body["earliest_restorable"].replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError) as error:
        raise ValueError(f"earliest_restorable is not an ISO 8601 time: {body['earliest_restorable']!r}") from error
    pitr.set_earliest(table, earliest)
    return _window(table)


def _backdate(body: dict[str, Any]) -> dict[str, Any]:
    from include.localaws.fixes import pitr

    table = _table(body, "seconds")
    seconds = body["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
    pitr.backdate(table, float(seconds))
    return _window(table)


ROUTES = {("GET", "config"): lambda _: _config({}), ("POST", "config"): _config, ("POST", "pitr"): _pitr,
          ("POST", "backdate"): _backdate}


def wrap(app):
    """``app`` with the control endpoints in front of it."""

    def control_app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return app(environ, start_response)
        route = ROUTES.get((environ["REQUEST_METHOD"], path[len(PREFIX):].strip("/")))
        status, answer = "200 OK", None
        if route is None:
            status, answer = "404 Not Found", {"error": f"no control endpoint {environ['REQUEST_METHOD']} {path}"}
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
                if not isinstance(body, dict):
                    raise ValueError("the request body must be a JSON object")
                answer = route(body)
            except ValueError as error:
                status, answer = "400 Bad Request", {"error": str(error)}
        data = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    return control_app

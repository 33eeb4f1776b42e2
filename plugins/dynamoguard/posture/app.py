"""The FastAPI app Airflow's API server mounts at ``/dynamoguard``: the page, one page per table, the JSON.

Airflow does not protect a plugin's routes: every route here depends on :func:`reader`, which authenticates the
caller the way Airflow's own API does (``Authorization: Bearer <JWT>`` or the UI's ``_token`` cookie, through the
configured auth manager) and requires read access to DAGs. Anonymous callers get 401 and no data.

The posture is built from the findings store in the API server (AWS credentials stay on the server; the browser
only gets HTML and JSON) and cached: a request within ``POSTURE_CACHE_SECONDS`` (default 30) of the last build is
served from memory; an older one is served the cached document while one background thread rebuilds it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

CACHE_SECONDS_ENV = "POSTURE_CACHE_SECONDS"
NO_STORE = {"Cache-Control": "no-store"}


_bearer = HTTPBearer(auto_error=False)


async def reader(request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Any:
    """The authenticated Airflow user, who must be allowed to read DAGs (401/403 otherwise)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user

    user = await get_user(request, None, bearer)
    if not get_auth_manager().is_authorized_dag(method="GET", user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "reading the backup posture needs DAG read access")
    return user


Reader = Annotated[Any, Depends(reader)]


def load_posture(now: datetime | None = None) -> dict[str, Any]:
    """Build the posture document from the configured estate's findings store (the default loader)."""
    from dynamoguard import aws
    from dynamoguard.config import load_config
    from dynamoguard.findings import FindingsStore
    from dynamoguard.posture.aggregate import build, collect

    config = load_config()
    s3 = aws.client(config.accounts.source.aws_conn_id, "s3", config.region)
    store = FindingsStore(s3, config.reports_bucket.name, config.reports_bucket.prefix)
    collected = collect(store, config.table_names, workers=aws.DEFAULT_POOL_SIZE)
    return build(config.table_names, collected, now or datetime.now(timezone.utc),
                 backup_buckets=[config.backup_bucket.name, config.replica_bucket.name])


class PostureCache:
    """The last built posture document; rebuilt in the background once older than ``ttl`` seconds."""

    def __init__(self, loader: Callable[[], dict[str, Any]], ttl: float):
        self.loader = loader
        self.ttl = ttl
        self._doc: dict[str, Any] | None = None
        self._built = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def _rebuild(self) -> None:
        try:
            doc = self.loader()
            with self._lock:
                self._doc, self._built = doc, time.monotonic()
        finally:
            self._refreshing = False

    def get(self) -> dict[str, Any]:
        with self._lock:
            doc, age = self._doc, time.monotonic() - self._built
            stale = doc is not None and age > self.ttl and not self._refreshing
            if stale:
                self._refreshing = True
        if doc is None:
            with self._lock:  # the first request builds; concurrent first requests wait for it
                if self._doc is None:
                    self._doc, self._built = self.loader(), time.monotonic()
                return self._doc
        if stale:
            threading.Thread(target=self._rebuild, name="posture-refresh", daemon=True).start()
        return doc


def create_app(loader: Callable[[], dict[str, Any]] = load_posture, ttl: float | None = None) -> FastAPI:
    """The posture app (``loader`` builds the document; tests pass their own)."""
    from dynamoguard.posture.render import posture_page, table_page

    if ttl is None:
        ttl = float(os.environ.get(CACHE_SECONDS_ENV, "30"))
    app = FastAPI(title="dynamoguard backup posture", docs_url=None, redoc_url=None, openapi_url=None)
    cache = PostureCache(loader, ttl)
    app.state.posture = cache

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request, _user: Reader) -> HTMLResponse:
        return HTMLResponse(posture_page(cache.get(), dict(request.query_params)), headers=NO_STORE)

    @app.get("/table/{name}", response_class=HTMLResponse)
    def table(name: str, request: Request, _user: Reader) -> HTMLResponse:
        html = table_page(cache.get(), name, dict(request.query_params))
        if html is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{name!r} is not a protected table")
        return HTMLResponse(html, headers=NO_STORE)

    @app.get("/api/posture")
    def posture(_user: Reader) -> Response:
        import orjson

        body = orjson.dumps(cache.get(), option=orjson.OPT_NON_STR_KEYS, default=str)
        return Response(body, media_type="application/json", headers=NO_STORE)

    return app

"""S3 conditional writes on CopyObject, and the 409 answer to a conflicting concurrent write.

moto 5.2.5 -> AWS (API reference of CopyObject, parameters ``IfNoneMatch`` and ``IfMatch``;
https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html):

* CopyObject ignores ``If-None-Match`` and ``If-Match`` (it checks only the ``x-amz-copy-source-if-*`` headers,
  which concern the source), so a copy "only if the key does not exist" overwrites an existing object. AWS:
  ``If-None-Match: *`` copies only if the destination key does not exist, else ``412 PreconditionFailed``;
  ``If-Match: <etag>`` copies only over that version, else 412 (``404 NoSuchKey`` when there is none).
* AWS also answers a conditional write with ``409 ConditionalRequestConflict`` when a concurrent operation on
  the same key interferes ("On a 409 failure you should retry the upload"); moto never does. The emulator
  cannot race on demand, so the conflict is injected: ``POST /_localaws/s3/conflicts`` with body
  ``{"bucket": "b", "key": "k", "count": 1, "account": "222222222222"}`` (count default 1, account default the
  source account) makes the next ``count`` conditional writes of that key (PutObject or CopyObject with
  ``If-None-Match``/``If-Match``, CompleteMultipartUpload with ``If-None-Match``) answer 409
  ConditionalRequestConflict without writing.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3 import responses
from moto.s3.exceptions import MissingKey, PreconditionFailed

from include.localaws import SOURCE_ACCOUNT
from include.localaws.fixes.s3_bucket_policy import s3_error

_lock = threading.Lock()
_key_locks = [threading.Lock() for _ in range(64)]  # a conditional copy checks and writes under its key's lock
_conflicts: dict[tuple[str, str, str], int] = {}  # (account, bucket, key) -> conflicts still to answer


CONFLICT = s3_error(409, "ConditionalRequestConflict",
                    "A conflicting operation occurred. If using PutObject you can retry the request. "
                    "If using multipart upload you should initiate another CreateMultipartUpload request "
                    "and re-upload each part.")


def add_conflicts(body: dict[str, Any]) -> dict[str, Any]:
    """Control endpoint: the next ``count`` conditional writes of ``bucket``/``key`` answer 409."""
    for name in ("bucket", "key"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise ValueError(f"missing key {name!r} (a non-empty string)")
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    target = (str(body.get("account", SOURCE_ACCOUNT)), body["bucket"], body["key"])
    with _lock:
        _conflicts[target] = _conflicts.get(target, 0) + count
        return {"account": target[0], "bucket": target[1], "key": target[2], "pending": _conflicts[target]}


def _take_conflict(response: Any, key_name: str) -> bool:
    """Whether this conditional write is to answer 409 (one injected conflict used up)."""
    target = (response.current_account, response.bucket_name, key_name)
    with _lock:
        left = _conflicts.get(target, 0)
        if left == 1:
            del _conflicts[target]
        elif left:
            _conflicts[target] = left - 1
    return bool(left)


def _conditional(headers: Any) -> bool:
    return headers.get("If-None-Match") is not None or headers.get("If-Match") is not None


def _check_destination(response: Any, key_name: str) -> None:
    existing = response.backend.get_object(response.bucket_name, key_name)
    if response.headers.get("If-None-Match") is not None and existing is not None:
        raise PreconditionFailed("If-None-Match")
    wanted = response.headers.get("If-Match")
    if wanted is not None:
        if existing is None:
            raise MissingKey(key=key_name)
        if wanted.strip('"') != existing.etag.strip('"'):
            raise PreconditionFailed("If-Match")


def apply() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    from include.localaws.fixes import control

    original_reset = moto_api_backend.reset

    def reset() -> None:
        """A reset of the emulator also forgets the conflicts still to answer."""
        original_reset()
        with _lock:
            _conflicts.clear()

    original_put = responses.S3Response._key_response_put
    original_post = responses.S3Response._key_response_post
    original_copy = responses.S3Response.copy_object

    def _key_response_put(self, query: dict[str, Any], key_name: str):
        if _conditional(self.headers) and not set(query) - {"x-id"} and _take_conflict(self, key_name):
            return CONFLICT
        return original_put(self, query, key_name)

    def _key_response_post(self, request: Any, body: bytes, bucket_name: str, query: dict[str, Any], key_name: str):
        if "uploadId" in query and request.headers.get("If-None-Match") is not None and _take_conflict(self, key_name):
            return CONFLICT
        return original_post(self, request, body, bucket_name, query, key_name)

    def copy_object(self):
        if not _conditional(self.headers):
            return original_copy(self)
        key_name = self.parse_key_name()
        with _key_locks[hash((self.bucket_name, key_name)) % len(_key_locks)]:  # check and write as one step
            _check_destination(self, key_name)
            return original_copy(self)

    responses.S3Response._key_response_put = _key_response_put
    responses.S3Response._key_response_post = _key_response_post
    responses.S3Response.copy_object = copy_object
    moto_api_backend.reset = reset
    control.ROUTES[("POST", "s3/conflicts")] = add_conflicts

"""ListObjectVersions pages that cost what their prefix holds, not what the whole bucket holds.

AWS (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html) returns up to MaxKeys
versions and delete markers of the keys under ``Prefix`` per request, in key order, each key's entries
newest first, ``IsLatest`` marking the current one; a request's cost does not depend on how much else the
bucket holds.

moto 5.2.5 deep-copies every version of every key in the bucket, bodies included (``FakeKey.__getstate__``
reads each body and ``__setstate__`` writes it into a new temporary file), on every request, only to set
``is_latest`` on the copies. With a few thousand objects one page takes seconds, and a paged listing of a
large bucket grows quadratically. This keeps moto's algorithm (ordering, delimiter, markers, MaxKeys) but
only looks at the keys under the prefix and marks ``is_latest`` on thin views of the stored versions
instead of copies of them.
"""

from __future__ import annotations

from typing import Any

from moto.core.utils import unix_time_millis
from moto.s3 import models


class _Listed:
    """A stored version (or delete marker) as one listing sees it: its own ``is_latest``, the rest delegated."""

    __slots__ = ("stored", "is_latest")

    def __init__(self, stored: Any):
        self.stored = stored
        self.is_latest = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stored, name)


def list_object_versions(self, bucket_name: str, delimiter: str | None = None, key_marker: str | None = None,
                         max_keys: int | None = 1000, prefix: str = "", version_id_marker: str | None = None):
    bucket = self.get_bucket(bucket_name)
    prefix = prefix or ""
    common_prefixes: set[str] = set()
    requested_versions: list[Any] = []
    delete_markers: list[Any] = []
    next_key_marker: str | None = None
    next_version_id_marker: str | None = None
    listed = [_Listed(version) for name, versions in bucket.keys.iterlists() if name.startswith(prefix)
              for version in versions]
    listed.sort(key=lambda r: (r.name, -unix_time_millis(r.last_modified)))
    last_name = None
    skip_versions = True
    last_item_added: _Listed | None = None
    for version in listed:
        name = version.name
        version.is_latest = name != last_name
        if version.is_latest:
            last_name = name
        if skip_versions:
            if key_marker is None:
                skip_versions = False
            elif not version_id_marker:
                skip_versions = version.name < key_marker
                continue
            elif version.name == key_marker and version.version_id == version_id_marker:
                skip_versions = False
                continue
            else:
                continue
        is_common_prefix = False
        if delimiter and delimiter in name[len(prefix):]:
            end = len(prefix) + name[len(prefix):].index(delimiter) + len(delimiter)
            folder = name[:end]
            if folder == key_marker:
                continue
            common_prefixes.add(folder)
            name = folder
            is_common_prefix = True
        elif last_item_added:
            name = last_item_added.name
        if max_keys is not None and len(requested_versions) + len(delete_markers) + len(common_prefixes) >= max_keys:
            next_key_marker = name
            if is_common_prefix:
                next_version_id_marker = None
            elif last_item_added is not None:
                next_version_id_marker = last_item_added.version_id
            else:
                next_version_id_marker = None
            break
        if not is_common_prefix:
            last_item_added = version
            (requested_versions if isinstance(version.stored, models.FakeKey) else delete_markers).append(version)
    return requested_versions, sorted(common_prefixes), delete_markers, next_key_marker, next_version_id_marker


def apply() -> None:
    models.S3Backend.list_object_versions = list_object_versions

"""The registry of restore sources: every module of this package not starting with ``_`` defines ``SOURCE``.

Adding a source is one module here (a :class:`~dynamoguard.drills.sources._base.Source`), its IAM statement in
``dynamoguard.iam_policies`` and its tests; the config, the trigger form and the sweeper take it from here.
Importing the registry is cheap: source modules import their heavy dependencies inside their methods.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from dynamoguard.drills.sources._base import Source


@lru_cache(maxsize=1)
def registry() -> dict[str, Source]:
    """Name -> source, sorted by name."""
    found: dict[str, Source] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        source = importlib.import_module(f"{__name__}.{module.name}").SOURCE
        found[source.name] = source
    return dict(sorted(found.items()))


def names() -> tuple[str, ...]:
    return tuple(registry())


def labels() -> dict[str, str]:
    """Name -> the label the trigger form shows."""
    return {name: source.label for name, source in registry().items()}


def get(name: str) -> Source:
    """The source called ``name``; KeyError names the known ones."""
    try:
        return registry()[name]
    except KeyError:
        raise KeyError(f"unknown restore source {name!r}; known: {list(registry())}") from None

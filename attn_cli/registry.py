"""One generic registry: names -> objects, with did-you-mean errors (DESIGN §3.5).

Families register their models, tasks, datasets, tables and visualisers with a
decorator where they are defined; :func:`load_plugins` imports every module of
the packages that hold registrations so that nothing needs a central list.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from attn_cli.errors import unknown

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of ``T`` (classes, functions or specs)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        load_plugins()
        if name not in self._items:
            raise unknown(self.kind, name, self._items)
        return self._items[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        load_plugins()
        return sorted(self._items.items())


MODELS: Registry = Registry("model")
TASKS: Registry = Registry("task")
DATASETS: Registry = Registry("dataset")
TABLES: Registry = Registry("table")

_PLUGIN_PACKAGES = ("attn_cli.models", "attn_cli.tasks", "attn_cli.tables", "data_prep")
_loaded = False


def load_plugins() -> None:
    """Import every module under the plugin packages once, so their decorators run."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for pkg_name in _PLUGIN_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{info.name}")

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

    def __init__(self, kind: str, plugins: tuple[str, ...] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        # facts declared with each name (a model's ``task``): the registry answers "which are the task's"
        self._tags: dict[str, dict[str, str]] = {}
        # the packages whose modules register into this registry (default: all of them); the tables
        # need only ``attn_cli.tables``, so `attn table` never imports torch
        self._plugins = _PLUGIN_PACKAGES if plugins is None else plugins

    def _load(self) -> None:
        for pkg_name in self._plugins:
            load_plugins(pkg_name)

    def register(self, name: str, **tags: str) -> Callable[[T], T]:
        """Register the decorated object as ``name``; ``tags`` are facts about it that others look up
        (a model names its family: ``@MODELS.register("luong", task="nmt")``)."""

        def deco(obj: T) -> T:
            self.add(name, obj, **tags)
            return obj

        return deco

    def add(self, name: str, obj: T, **tags: str) -> None:
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj
        self._tags[name] = dict(tags)

    def tag(self, name: str, key: str) -> str | None:
        """The ``key`` fact ``name`` was registered with (None where it declared none)."""
        self.get(name)
        return self._tags[name].get(key)

    def names_where(self, key: str, value: str) -> list[str]:
        """The sorted names registered with the fact ``key=value`` (a task's models: ``task="nmt"``)."""
        self._load()
        return sorted(n for n, tags in self._tags.items() if tags.get(key) == value)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            raise unknown(self.kind, name, self._items)
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._items.items())


_PLUGIN_PACKAGES = ("attn_cli.models", "attn_cli.tasks", "attn_cli.tables")
_loaded: set[str] = set()

MODELS: Registry = Registry("model")
TASKS: Registry = Registry("task")
TABLES: Registry = Registry("table", plugins=("attn_cli.tables",))


def load_plugins(pkg_name: str | None = None) -> None:
    """Import every module under one plugin package (default: all of them) once, so their decorators run."""
    for name in _PLUGIN_PACKAGES if pkg_name is None else (pkg_name,):
        if name in _loaded:
            continue
        _loaded.add(name)
        pkg = importlib.import_module(name)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{name}.{info.name}")

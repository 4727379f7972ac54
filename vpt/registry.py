"""Named registries: each training method, evaluation task and report is registered once, and
every list of names (argparse choices, help text, the config's reference checks, the Snakefile's
wildcard constraints) is read from its registry.

Nothing here knows what is registered: a language evaluator and a vision one go through the same
mechanics. A registry may name packages whose every module is imported on first use, so that a
new entry is a new module there (registering itself at import) and no list elsewhere changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar, overload

from vpt.errors import VptError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind by name, in registration order."""

    def __init__(self, kind: str, packages: Sequence[str] = ()) -> None:
        self.kind = kind  # e.g. "method": used in the error an unknown name gets
        self._packages = tuple(packages)
        self._entries: dict[str, T] = {}
        self._loaded = not self._packages

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, entry: T) -> T: ...

    def register(self, name: str, entry: T | None = None) -> T | Callable[[T], T]:
        """Register `entry` under `name` (also usable as a decorator: @registry.register(name))."""
        if entry is None:
            return lambda e: self.register(name, e)
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")  # a programming error, not bad input
        self._entries[name] = entry
        return entry

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first: the modules imported below register into this registry
        for package in self._packages:
            pkg = importlib.import_module(package)
            for info in pkgutil.iter_modules(pkg.__path__):  # sorted by module name
                importlib.import_module(f"{package}.{info.name}")

    def get(self, name: str) -> T:
        """The entry called `name`; VptError listing the choices when there is none."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise VptError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}") from None

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(self._entries)

    def items(self) -> tuple[tuple[str, T], ...]:
        self._load()
        return tuple(self._entries.items())

    def where(self, keep: Callable[[T], bool]) -> tuple[str, ...]:
        """Names of the entries for which keep(entry) holds, in registration order."""
        return tuple(name for name, entry in self.items() if keep(entry))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


def help_table(rows: Iterable[tuple[str, str]], indent: int = 2) -> str:
    """'  name  one-line help' lines with the help column aligned, for argparse descriptions."""
    rows = list(rows)
    width = max((len(name) for name, _ in rows), default=0) + 2
    return "\n".join(f"{' ' * indent}{name.ljust(width)}{text}" for name, text in rows)

"""Registries: the extension points of the lab (models, optimisers, stopping rules, operators, losses).

A registry maps a name to an *entry*: the callable that builds the thing (a class or a
factory function), a one-line help text, and metadata that the rest of the lab reads
instead of special-casing names (what a stopping rule needs, a model's default input).
Everything that lists choices — the CLI's ``choices=``, its help, ``spectral-lab models``,
error messages — asks the registry, so a new entry is one decorated class or function:

    from spectral_lab.optim import OPTIMIZERS

    @OPTIMIZERS.register("lion", help="Lion (Chen et al. 2023)")
    def lion(params, *, lr, generators, betas=(0.9, 0.99)):
        ...

Entries take keyword options; `Registry.options` reads them (and their defaults) from
the signature, and `Registry.check_options` refuses unknown ones in one line.

Entries outside the package are registered by importing their module before the
registry is used; the CLI imports every module named in ``SPECTRAL_LAB_PLUGINS``
(comma-separated) first, so ``SPECTRAL_LAB_PLUGINS=my_models spectral-lab record
--model mine`` works without editing the lab.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from .errors import ConfigError

__all__ = ["Entry", "Registry", "load_plugins", "PLUGINS_ENV"]

T = TypeVar("T", bound=Callable)
PLUGINS_ENV = "SPECTRAL_LAB_PLUGINS"


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: what builds it, a one-line help text, and its metadata."""

    name: str
    obj: T
    help: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.meta[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)


class Registry(Generic[T]):
    """Name → `Entry`. ``kind`` names the registry in messages ("model", "optimizer", ...).

    ``skip`` lists parameter names of the entries that are not user options (a model's
    ``runs`` and ``signal_shape``, an optimiser's ``params``); ``package``, when given,
    is imported module by module (every module not starting with ``_``) the first time
    the registry is read, so that one new file in it is one new entry.
    """

    def __init__(self, kind: str, *, skip: tuple[str, ...] = (), package: str | None = None) -> None:
        self.kind = kind
        self.skip = frozenset(skip) | {"self"}
        self._entries: dict[str, Entry[T]] = {}
        self._package = package
        self._discovered = package is None

    # ---------------------------------------------------------------- registering
    def register(self, name: str, *, help: str | None = None, **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@REG.register("name", help="...", key=value)``."""

        def deco(obj: T) -> T:
            self.add(name, obj, help=help, **meta)
            return obj

        return deco

    def add(self, name: str, obj: T, *, help: str | None = None, **meta: Any) -> Entry[T]:
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"a {self.kind} name must be a non-empty word, got {name!r}")
        if name in self._entries and self._entries[name].obj is not obj:
            raise ConfigError(f"a {self.kind} named {name!r} is registered already")
        text = help if help is not None else _first_line(obj)
        entry = Entry(name, obj, text, dict(meta))
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget an entry (tests that register toy entries clean up with this)."""
        self._entries.pop(name, None)

    # ---------------------------------------------------------------- reading
    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        pkg = importlib.import_module(self._package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self._package}.{info.name}")

    def names(self) -> tuple[str, ...]:
        self._discover()
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def items(self) -> list[tuple[str, Entry[T]]]:
        self._discover()
        return list(self._entries.items())

    def __getitem__(self, name: str) -> Entry[T]:
        return self.get(name)

    def get(self, name: str) -> Entry[T]:
        """The entry of ``name``; ConfigError naming the choices otherwise."""
        self._discover()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.kind} {name!r}; choose from {', '.join(self._entries)}") from None

    def options(self, name: str) -> dict[str, Any]:
        """The keyword options of an entry and their defaults (``inspect.Parameter.empty``
        for a required option), read from its signature."""
        obj = self.get(name).obj
        target = obj.__init__ if inspect.isclass(obj) else obj
        params = inspect.signature(target).parameters
        return {k: p.default for k, p in params.items()
                if k not in self.skip and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}

    def takes_any_option(self, name: str) -> bool:
        """True when the entry accepts ``**options`` beyond its named ones."""
        obj = self.get(name).obj
        target = obj.__init__ if inspect.isclass(obj) else obj
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(target).parameters.values())

    def check_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` as a dict, refusing names the entry does not take."""
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise ConfigError(f"{self.kind} options must map option names to values, got {options!r}")
        allowed = self.options(name)
        unknown = sorted(set(options) - set(allowed))
        if unknown and not self.takes_any_option(name):
            known = ", ".join(allowed) or "none"
            raise ConfigError(f"{self.kind} {name!r} has no option {', '.join(unknown)}; its options are {known}")
        return dict(options)

    def describe(self) -> str:
        """``name: help`` of every entry, for a CLI help text."""
        return "; ".join(f"{n}: {e.help}" if e.help else n for n, e in self.items())


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0].rstrip(".") if doc.strip() else ""


def load_plugins(env: Mapping[str, str] | None = None) -> list[str]:
    """Import every module named in ``$SPECTRAL_LAB_PLUGINS`` (comma-separated); their
    decorators register their entries. Returns the module names imported."""
    text = (os.environ if env is None else env).get(PLUGINS_ENV, "")
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"{PLUGINS_ENV}: cannot import plugin module {name!r} ({exc})") from None
    return names

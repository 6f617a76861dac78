"""What every subcommand module of the CLI shares: exit codes, the parser class, argument types."""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 2, 3, 130


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2)."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _numbers(text: str, kind: type, name: str) -> tuple:
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {name}, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one of the {name}")
    return values


def floats(text: str) -> tuple[float, ...]:
    """``"1,2.5"`` -> (1.0, 2.5); an argparse error otherwise."""
    return _numbers(text, float, "numbers")


def ints(text: str) -> tuple[int, ...]:
    """``"0,50,200"`` -> (0, 50, 200)."""
    return _numbers(text, int, "integers")


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE parsed as JSON when it is JSON (numbers, true, lists), else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"options are KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


def registry_help(registry, what: str) -> str:
    """``"<what>: name (help); name (help)"`` for a registry's entries."""
    return f"{what}: " + "; ".join(f"{n} ({e.help})" if e.help else n for n, e in registry.items())


def fmt_it(v) -> str:
    return "never" if v is None else str(v)


def dump(obj) -> None:
    print(json.dumps(obj, allow_nan=False))

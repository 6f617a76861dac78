"""Render the fault table that the reliability and fault tests write, as the README's Markdown.

    rm -f faults.json
    SPECTRAL_LAB_FAULT_TABLE=faults.json python -m pytest tests/test_reliability.py tests/test_faults.py
    python tests/fault_table.py faults.json

Every count comes from the JSON (the tests' own tally); the rows of the bad-file matrix are
summed into one row per kind of damage. Paths in messages are shortened to FILE.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict


def _span(values: list[int]) -> str:
    return "—" if not values else (f"{min(values)}" if min(values) == max(values) else f"{min(values)}–{max(values)}")


def _message(text: str) -> str:
    text = re.sub(r"/\S*/(\S+\.(h5|png|xyz))", r"FILE", text or "")
    return f"`{text}`" if text else "—"


def _group(name: str) -> str:
    if not name.startswith("Bad file: "):
        return name
    kind = name[len("Bad file: "):]
    for prefix in ("truncated", "corrupted object header", "corrupted superblock"):
        if kind.startswith(prefix):
            return f"Bad file: {prefix} (of a complete and of a killed file)"
    if kind.startswith("non-HDF5"):
        return "Bad file: not HDF5 (text, empty, random bytes)"
    return name


def render(rows: list[dict]) -> str:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[_group(row["fault"])].append(row)
    out = ["| fault (how injected) | tried | outcome | frames lost | resumed identical | message |",
           "|---|---|---|---|---|---|"]
    for name, members in groups.items():
        tried = sum(r["tried"] for r in members)
        outcomes: dict[str, int] = defaultdict(int)
        for r in members:
            for k, v in r["outcomes"].items():
                outcomes[k] += v
        lost = [x for r in members for x in r.get("frames_lost", [])]
        resumed = sum(r.get("resumed", 0) for r in members)
        identical = sum(r.get("resumed_identical", 0) for r in members)
        injected = members[0].get("injected")
        label = f"{name} ({injected})" if injected else name
        outcome = "; ".join(f"{k}: {v}" for k, v in outcomes.items())
        message = next((r["message"] for r in members if r.get("message")), "")
        out.append(f"| {label} | {tried} | {outcome} | {_span(lost)} | "
                   f"{f'{identical}/{resumed}' if resumed else '—'} | {_message(message)} |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/fault_table.py faults.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        print(render(json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

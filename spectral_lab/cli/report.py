"""``spectral-lab report DIR -o report.html``: a static page of an output folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    r = sub.add_parser("report", help="a static HTML page of an output folder's figures, tables and catalogue",
                       description="Write one self-contained HTML page (no server needed) with every experiment "
                                   "output under DIR (figures/<name>/*.png, table.md, results.json: the command "
                                   "and configuration that made each), every sweep (sweep.json) and the catalogue "
                                   "of its trajectory files as a sortable table.")
    r.add_argument("dir", type=Path)
    r.add_argument("-o", "--out", type=Path, required=True, help="the HTML file to write")
    r.add_argument("--title", help="the page's title (default: the folder)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing page")
    r.set_defaults(func=cmd_report)


def cmd_report(a: argparse.Namespace) -> int:
    from ..report import find_sections, write_report

    out = write_report(a.dir, a.out, title=a.title, overwrite=a.overwrite)
    print(f"wrote {out} ({len(find_sections(a.dir))} output folder(s), {out.stat().st_size / 1e6:.1f} MB)")
    return 0

"""``spectral-lab catalogue DIR [-o table.csv]``: one row per trajectory file under a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    c = sub.add_parser("catalogue", help="one table of every trajectory file under a folder (CSV or Parquet)",
                       description="Index every trajectory file under DIR: status, frames, the configuration's "
                                   "fields as columns and the summary numbers of the analyzers that apply "
                                   "(convergence iterations, best PSNR, stopping losses). Cached in "
                                   "DIR/.spectral-lab-catalogue.json: unchanged files are not read again.")
    c.add_argument("dir", type=Path)
    c.add_argument("-o", "--out", type=Path, help="write the whole table to a .csv or .parquet file")
    c.add_argument("--overwrite", action="store_true", help="replace an existing table")
    c.add_argument("--no-cache", action="store_true", help="read every file and leave no cache")
    c.add_argument("--no-analyses", action="store_true", help="only the files' metadata and configuration (fast)")
    c.set_defaults(func=cmd_catalogue)


def cmd_catalogue(a: argparse.Namespace) -> int:
    import pandas as pd

    from ..outputs import check_output
    from ..trajectory_index import catalogue, varying_columns, write_table

    if a.out is not None:  # refused before the files are read
        check_output(a.out, (".csv", ".parquet"), overwrite=a.overwrite)
    stats: dict = {}
    df = catalogue(a.dir, cache=not a.no_cache, analyses=not a.no_analyses, stats=stats)
    note = f"{stats['files']} trajectory file(s) under {a.dir} ({stats['read']} read, {stats['cached']} from the cache)"
    if a.out is not None:
        write_table(df, a.out, overwrite=a.overwrite)
        print(f"wrote {a.out}: {note}, {len(df.columns)} columns")
        return 0
    print(note, file=sys.stderr)
    if df.empty:
        return 0
    shown, constant = varying_columns(df)
    with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_colwidth", 40):
        print(df[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if constant:
        print("equal in every file: " + ", ".join(f"{k}={v}" for k, v in constant.items()), file=sys.stderr)
    return 0

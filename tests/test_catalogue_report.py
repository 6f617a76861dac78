"""The catalogue (one row per trajectory, cached, incremental) and the report page (static HTML,
checked in a real headless Chromium when one is installed)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from spectral_lab import trajectory_index as catalogue_mod
from spectral_lab.trajectory_index import CACHE_NAME, catalogue, catalogue_rows, write_table
from spectral_lab.cli import main
from spectral_lab.report import experiment_command, find_sections, markdown_html, report_html
from spectral_lab.sweep import Job, record_job


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """Two 1D fits (depths 2 and 3) and a denoising image file (3 x 16 x 20, 100 iterations),
    recorded once for this module."""
    from PIL import Image

    from spectral_lab.config import FitConfig, ModelConfig, RunConfig, SignalConfig

    root = tmp_path_factory.mktemp("recorded")
    for depth in (2, 3):
        cfg = RunConfig(task="fit", signal=SignalConfig(kind="sines", freqs=(2, 5), length=32),
                        model=ModelConfig(name="conv", options={"depth": depth, "width": 8}),
                        fit=FitConfig(iterations=20, lr=1e-2, runs=2, device="cpu"))
        record_job(Job(root / "trajectories" / "oned" / f"d{depth}.h5", cfg))
    pixels = np.random.default_rng(3).integers(0, 256, size=(16, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels, mode="RGB").save(root / "tiny.png")
    image = RunConfig(task="denoise", signal=SignalConfig(kind="image", image=str(root / "tiny.png")),
                      model=ModelConfig(name="dip", options={"levels": 2, "down": 8, "up": 8, "skip": 2,
                                                             "in_channels": 4}),
                      fit=FitConfig(iterations=100, lr=1e-2, runs=2, reg_noise_std=1.0 / 30, device="cpu"))
    record_job(Job(root / "trajectories" / "denoise" / "img.h5", image))
    (root / "tiny.png").unlink()
    return root


@pytest.fixture
def folder(recorded, tmp_path) -> Path:
    """A copy of the recorded files, a file a killed `mv` cut short and a hidden staged copy
    (left out)."""
    root = tmp_path / "out"
    shutil.copytree(recorded, root)
    good = root / "trajectories" / "oned" / "d2.h5"
    (root / "broken.h5").write_bytes(good.read_bytes()[:5000])
    (root / ".stage").mkdir()
    shutil.copy(good, root / ".stage" / "copy.h5")
    return root


def test_every_file_is_a_row_with_its_configuration_and_summaries(folder):
    df = catalogue(folder)
    assert list(df["path"]) == ["broken.h5", "trajectories/denoise/img.h5", "trajectories/oned/d2.h5",
                                "trajectories/oned/d3.h5"]
    rows = df.set_index("path")
    assert rows.loc["broken.h5", "status"] == "unreadable" and "truncated" in rows.loc["broken.h5", "error"]
    d2 = rows.loc["trajectories/oned/d2.h5"]
    assert d2["status"] == "complete" and d2["frames"] == 21 and d2["model.options.depth"] == 2
    assert d2["signal.freqs"] == "[2, 5]" and d2["converged[k=5]"] in (0, 1, 2)
    img = rows.loc["trajectories/denoise/img.h5"]
    assert img["kind"] == "image" and img["task"] == "denoise" and img["best_psnr"] > img["observed_psnr"] - 10
    assert np.isfinite(img["stop_loss[discrepancy]"]) and img["stop_loss[discrepancy]"] >= 0
    assert np.isfinite(img["stop_loss[es_wmv]"]) and img["stop_loss[es_wmv]"] >= 0
    assert df.columns[0] == "path" and list(df.columns).index("task") > list(df.columns).index("final_loss")


def test_unchanged_files_are_not_read_again(folder, monkeypatch):
    stats = {}
    catalogue_rows(folder, stats=stats)
    assert stats == {"files": 4, "read": 4, "cached": 0} and (folder / CACHE_NAME).is_file()
    reads = []
    real = catalogue_mod.describe_file
    monkeypatch.setattr(catalogue_mod, "describe_file", lambda p, **kw: reads.append(Path(p).name) or real(p, **kw))
    first = catalogue(folder)
    assert reads == []
    touched = folder / "trajectories" / "oned" / "d3.h5"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    (folder / "trajectories" / "oned" / "d2.h5").unlink()
    again = catalogue(folder, stats=stats)
    assert reads == ["d3.h5"] and stats == {"files": 3, "read": 1, "cached": 2}
    assert len(again) == len(first) - 1
    cached = json.loads((folder / CACHE_NAME).read_text())["files"]
    assert sorted(cached) == ["broken.h5", "trajectories/denoise/img.h5", "trajectories/oned/d3.h5"]


def test_the_table_writes_as_csv_and_parquet(folder, tmp_path):
    import pandas as pd

    df = catalogue(folder)
    back = pd.read_csv(write_table(df, tmp_path / "t.csv"))
    assert list(back.columns) == list(df.columns) and len(back) == 4
    pytest.importorskip("pyarrow")
    back = pd.read_parquet(write_table(df, tmp_path / "t.parquet"))
    assert list(back["path"]) == list(df["path"])


def test_the_catalogue_command_prints_what_varies_and_writes_tables(folder, tmp_path, capsys):
    assert main(["catalogue", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert "model.options.depth" in out and "d3.h5" in out and "4 trajectory file(s)" in err
    assert main(["catalogue", str(folder), "-o", str(tmp_path / "t.csv")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "t.csv").is_file()
    assert main(["catalogue", str(tmp_path / "nope")]) == 1
    assert main(["catalogue", str(folder), "-o", str(tmp_path / "t.xlsx")]) == 1
    assert main(["catalogue", str(folder), "-o", str(tmp_path / "t.csv")]) == 1  # exists: --overwrite
    assert main(["catalogue", str(folder), "-o", str(folder / "trajectories" / "oned" / "d2.h5")]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 4
    assert main(["catalogue", str(folder), "-o", str(tmp_path / "t.csv"), "--overwrite"]) == 0


# --------------------------------------------------------------------------- report

def _experiment_output(folder: Path, *, command: str | None) -> Path:
    """figures/oned/ as an experiment writes it: a figure, table.md, results.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = folder / "figures" / "oned"
    figs.mkdir(parents=True)
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    fig.savefig(figs / "curve.png")
    plt.close(fig)
    (figs / "table.md").write_text("# oned quick\n\nSE of `k=5`, **two** runs.\n\n| depth | t |\n|---|---|\n"
                                   "| 2 | 11 |\n| 3 | 7 |\n")
    config = {"name": "oned", "preset": "quick", "out_dir": str(folder)}
    if command:
        config["command"] = command
    (figs / "results.json").write_text(json.dumps({"config": config, "t": [11, 7]}))
    return figs


def test_an_experiments_command_is_recorded_or_rebuilt():
    assert experiment_command({"name": "x", "command": "python experiments/x.py --quick"})[0] == \
        "python experiments/x.py --quick"
    cmd, note = experiment_command({"name": "x", "preset": "quick", "out_dir": "/o"})
    assert cmd == "python experiments/x.py --preset quick --out-dir /o" and "--set" in note


def test_markdown_tables_headings_and_code_become_html():
    out = markdown_html("# T\n\na `b` <c>\n\n| x | y |\n|---|---|\n| 1 | 2 |\n")
    assert out == ("<h3>T</h3>\n<p>a <code>b</code> &lt;c&gt;</p>\n<table class='md'><thead><tr><th>x</th>"
                   "<th>y</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>")


def test_the_report_holds_every_figure_table_command_and_file(folder, tmp_path):
    _experiment_output(folder, command="python experiments/oned.py --quick --out-dir OUT")
    (folder / "sweep.json").write_text(json.dumps({"command": "spectral-lab sweep s.toml --out-dir out",
                                                   "spec": {"grid": {"fit.seed": [0]}}, "points": [],
                                                   "counts": {"record": 0}}))
    sections = find_sections(folder)
    assert [(s.path, s.kind) for s in sections] == [(".", "sweep"), ("figures/oned", "experiment")]
    assert sections[1].title == "oned quick" and sections[1].trajectories == "trajectories/oned/"
    page = report_html(folder)
    assert page.count("<img src='data:image/png;base64,") == 1
    assert "python experiments/oned.py --quick --out-dir OUT" in page and "spectral-lab sweep s.toml" in page
    assert "<td>trajectories/oned/d3.h5</td>" in page and "id='catalogue'" in page
    assert main(["report", str(folder), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def _browser():
    """Playwright driving Debian's Chromium, or skip."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return sync_api, executable


def test_the_report_loads_in_a_headless_browser_without_errors_and_sorts(folder, tmp_path):
    sync_api, executable = _browser()
    _experiment_output(folder, command=None)
    out = tmp_path / "report.html"
    assert main(["report", str(folder), "-o", str(out)]) == 0
    problems = []
    # the flags this machine's closed network needs (no background connections, no sandbox as root)
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto(out.as_uri())
            page.wait_for_load_state("load")
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
            assert images == [[True, 200]]  # the 2 x 1.5 inch figure at 100 dpi
            column = page.evaluate("Array.from(document.querySelectorAll('#catalogue th')).map(t => t.textContent)"
                                   ".indexOf('path')")
            page.click("#catalogue th >> nth=%d" % column)
            page.click("#catalogue th >> nth=%d" % column)  # descending
            paths = page.evaluate(f"Array.from(document.querySelectorAll('#catalogue tbody tr'))"
                                  f".map(r => r.cells[{column}].textContent)")
            assert paths == sorted(paths, reverse=True) and len(paths) == 4
            page.fill("#filter", "trajectories/oned/")
            visible = page.evaluate("Array.from(document.querySelectorAll('#catalogue tbody tr'))"
                                    ".filter(r => r.style.display !== 'none').length")
            assert visible == 2
        finally:
            browser.close()
    assert problems == []

"""Plumbing shared by the 1D experiments: one setting -> one batched trajectory file -> numbers.

An experiment script is a frozen ``Config``, the `Setting` s it names, and
``main(cfg, out_dir)``. Everything here is configuration in, files and plain numbers out:

- `Setting` + `run_config`: a model family, its options and its optimiser as a `RunConfig`
  (R seeds of one setting are one file: the models batch runs natively).
- `record_setting`: `spectral_lab.runner.record` with a callback that notes what was really
  trained (the built network's class, parameter count and layer shapes).
- `analyze_setting`: `analyze_amplitudes_file` at each threshold + `convergence_table`.
- `relative_results`: the same analysis on the normalised amplitude Ã_k / A_k (for signals
  whose amplitudes differ, where an absolute threshold on SE means different things).
- `cli`: ``--quick``, ``--out-dir``, ``--threads``; `write_report`: table.md and results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from spectral_lab.analyze import convergence
from spectral_lab.analyze.amplitudes import AmplitudeResult, analyze_amplitudes_file, convergence_table
from spectral_lab.config import FitConfig, ModelConfig, RecordConfig, RunConfig, SignalConfig, validate
from spectral_lab.fit import Callback, FitState
from spectral_lab.runner import record

REPO = Path(__file__).resolve().parents[1]

__all__ = ["REPO", "Setting", "run_config", "Recorded", "record_setting", "analyze_setting",
           "relative_results", "convergence_row", "markdown_table", "fmt_iter", "fmt_ratio",
           "write_report", "cli", "Paths"]


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class Setting:
    """One model and its optimisation: everything that differs between files of an experiment.

    ``label`` names the file (``<label>.h5``) and the rows of the tables.
    """

    label: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    lr: float = 1e-4
    iterations: int = 300
    optimizer: str = "adam"
    input_dist: str | None = None
    input_scale: float | None = None


def run_config(setting: Setting, signal: SignalConfig, *, runs: int, seed: int = 0,
               device: str = "auto") -> RunConfig:
    """The `RunConfig` of ``runs`` seeds (``seed .. seed + runs - 1``) of one setting.

    Weights and input vary with the seed (``vary='both'``), as in the paper's repeated runs.
    """
    cfg = RunConfig(
        task="fit",
        signal=signal,
        model=ModelConfig(name=setting.model, options=dict(setting.options)),
        fit=FitConfig(iterations=setting.iterations, lr=setting.lr, optimizer=setting.optimizer,
                      input_dist=setting.input_dist, input_scale=setting.input_scale,
                      runs=runs, seed=seed, vary="both", device=device),
        # 1D frames are small: no compression, lossless float32 (SE of small amplitudes matters)
        record=RecordConfig(dtype="float32", compression="none", flush_seconds=5.0, checkpoint_seconds=60.0),
    )
    return validate(cfg)


# --------------------------------------------------------------------------- recording

class _NetProbe(Callback):
    """Notes what the fit loop really trains: the network it was handed, not a config's claim."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def on_start(self, state: FitState) -> None:
        net = state.net
        self.info = {
            "class": type(net).__name__,
            "runs": int(net.runs),
            "parameters_per_run": int(net.parameters_per_run()),
            # per-run shapes of every parameter: distinguishes depth and width directly
            "parameter_shapes": [list(p.shape[1:]) for p in net.parameters()],
        }


@dataclass
class Recorded:
    """A finished recording: its file, wall time and the network that was trained."""

    path: Path
    seconds: float
    status: str
    network: dict[str, Any]
    config: RunConfig


def record_setting(cfg: RunConfig, path: str | Path, *, log: Callable[[str], None] = print) -> Recorded:
    """Record ``cfg`` into ``path`` (overwriting), and raise if the fit did not complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    probe = _NetProbe()
    started = time.perf_counter()
    result = record(cfg, path, overwrite=True, progress=False, callbacks=[probe])
    seconds = time.perf_counter() - started
    if result.status != "complete":
        raise RuntimeError(f"{path.name}: fit ended as {result.status}: {result.message}")
    log(f"  recorded {path.name}: {cfg.model.name} {dict(cfg.model.options)}, {cfg.fit.runs} runs x "
        f"{cfg.fit.iterations} it, lr {cfg.fit.lr:g} ({cfg.fit.optimizer}), "
        f"{probe.info['parameters_per_run']:,} params/run, {seconds:.1f} s")
    return Recorded(path, seconds, result.status, probe.info, cfg)


# --------------------------------------------------------------------------- analysis

def analyze_setting(path: str | Path, deltas: Sequence[float], *, pair: tuple[float, float] | None = None,
                    relative: bool = False) -> dict[float, tuple[dict[int, AmplitudeResult], dict]]:
    """Per threshold δ: ``(results per run, convergence_table)`` of one trajectory file.

    ``relative``: converge on (Ã_k/A_k − 1)² ≤ δ instead of (Ã_k − A_k)² ≤ δ (see
    `relative_results`); identical when every A_k = 1.
    """
    out = {}
    for delta in deltas:
        results = analyze_amplitudes_file(path, delta=delta)
        if relative:
            results = relative_results(results)
        out[float(delta)] = (results, convergence_table(results, pair=pair))
    return out


def relative_results(results: Mapping[int, AmplitudeResult]) -> dict[int, AmplitudeResult]:
    """The analysis of the normalised amplitude Ã_k / A_k against 1, at the same δ.

    SE_rel(k) = (Ã_k/A_k − 1)² = SE(k)/A_k², so δ bounds the *relative* amplitude error
    (δ = 0.01: within 10 % of A_k whatever A_k is). With an absolute δ = 0.01 a component of
    amplitude 0.1 would count as converged before training (SE = A_k² = 0.01 at Ã_k = 0).
    """
    out = {}
    for run, res in results.items():
        if np.any(res.target_amps == 0):
            raise ValueError("relative amplitudes need every target amplitude A_k != 0")
        norm = res.amplitudes / res.target_amps
        se = (norm - 1.0) ** 2
        out[run] = AmplitudeResult(
            freqs=res.freqs, target_amps=np.ones_like(res.target_amps), amplitudes=norm, se=se,
            delta=res.delta,
            converged_at=convergence.settle_iteration_per_column(se, res.delta),
            first_crossing=convergence.first_crossing_per_column(se, res.delta))
    return out


# --------------------------------------------------------------------------- tables

def fmt_iter(summary: Mapping) -> str:
    """``mean ± std (n)`` of a convergence summary; 'never' when no run converged."""
    if summary["mean"] is None:
        return "never"
    std = "" if summary["std"] is None else f" ± {summary['std']:.0f}"
    n = len(summary["per_run"])
    return f"{summary['mean']:.0f}{std}" + ("" if summary["n_converged"] == n else f" ({summary['n_converged']}/{n})")


def fmt_ratio(ratio: Mapping | None) -> str:
    """``mean [lo, hi]`` of a ratio summary (its confidence interval), '—' when undefined."""
    if ratio is None or ratio["mean"] is None:
        return "—"
    ci = f" [{ratio['ci'][0]:.2f}, {ratio['ci'][1]:.2f}]" if ratio["ci"] else ""
    return f"{ratio['mean']:.2f}{ci}"


def convergence_row(table: Mapping, freq_index: int | None = None) -> dict[str, str]:
    """Formatted cells of one convergence table: per frequency, then the ratio."""
    cells = {}
    for j, pf in enumerate(table["per_freq"]):
        if freq_index is not None and j != freq_index:
            continue
        k = f"{pf['freq']:g}"
        cells[f"t(k={k}) settle"] = fmt_iter(pf["converged_at"])
        cells[f"t(k={k}) first"] = fmt_iter(pf["first_crossing"])
    if table.get("ratio"):
        r = table["ratio"]
        name = f"t(k={r['k2']:g})/t(k={r['k1']:g})"
        cells[f"{name} settle"] = fmt_ratio(r["converged_at"])
        cells[f"{name} first"] = fmt_ratio(r["first_crossing"])
    return cells


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub markdown table; columns in first-seen order."""
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- outputs

@dataclass(frozen=True)
class Paths:
    """Where an experiment writes: ``trajectories/<name>/``, ``figures/<name>/`` under ``out_dir``."""

    out_dir: Path
    name: str

    @property
    def trajectories(self) -> Path:
        return self.out_dir / "trajectories" / self.name

    @property
    def figures(self) -> Path:
        return self.out_dir / "figures" / self.name

    def trajectory(self, label: str) -> Path:
        return self.trajectories / f"{label}.h5"


def _jsonable(obj):
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_report(paths: Paths, *, title: str, body: str, numbers: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``table.md`` (title + body) and ``results.json`` into the figures folder."""
    paths.figures.mkdir(parents=True, exist_ok=True)
    md = paths.figures / "table.md"
    md.write_text(f"# {title}\n\n{body}\n")
    js = paths.figures / "results.json"
    js.write_text(json.dumps(_jsonable(numbers), indent=1, allow_nan=False) + "\n")
    return md, js


def cli(description: str, default: Any, quick: Any, main: Callable[[Any, Path], Any],
        argv: Sequence[str] | None = None) -> int:
    """``--quick`` (about a minute on 2 CPU cores), ``--out-dir`` (default: the repository) and
    ``--threads``; runs ``main(quick if --quick else default, out_dir)``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small configuration, about a minute on 2 CPU cores")
    p.add_argument("--out-dir", type=Path, default=REPO,
                   help="where trajectories/<experiment>/ and figures/<experiment>/ go (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: 1D tensors are tiny, and on a shared 2-core machine "
                        "two threads made a 400-iteration conv fit 10x slower)")
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    torch.set_num_threads(a.threads)
    cfg = quick if a.quick else default
    started = time.perf_counter()
    main(cfg, a.out_dir.resolve())
    print(f"total wall time {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


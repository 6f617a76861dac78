"""Paper Table 1 / appendix Table 2: which architectures denoise? Best PSNR along the trajectory.

    python experiments/denoise_architectures.py [--quick | --preset quick|hour|paper]
        [--images PATH] [--seeds R] [--out-dir DIR] [--estimate-only]

Four models, each with its own budget (``Config.models``: options, Adam learning rate,
iterations): ``dip`` (the DIP skip network), ``linear`` of width 128 and of width 2048
(DIP-Linear: five fully connected layers) and ``relunet`` (a 10-layer coordinate MLP). Every
image (a file, or every image of a folder; default: matplotlib's sample photograph) is
down-sampled, degraded once by white Gaussian noise of σ = 25 (noise seed 0: every model and
seed sees the same observation), and fitted by R seeds of each model, one trajectory file per
(image, model): trajectories/denoise_architectures/<image>--<model>.h5. The score of a run is
its best PSNR against the clean image over all iterations (the oracle stop, as in the paper).

Writes figures/denoise_architectures/{table.md, results.json, psnr_curves_<image>.png,
grid_<image>.png} and prints the table. The estimated cost (a timed probe of every distinct
setting) is printed before anything is recorded; ``--estimate-only`` stops there. Files that
already hold a complete recording of the same configuration are reused, unfinished ones resumed.

This module also holds the plumbing the other denoising experiments share (lowfreq_failure,
stopping_rules): `ModelBudget`, `image_paths`, `denoise_config`, `Job`, `estimate_jobs`,
`record_jobs`, `preset_cli`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._common import REPO, Paths, markdown_table, record_setting, write_report
from spectral_lab.analyze.psnr import psnr_file
from spectral_lab.config import (DegradeConfig, FitConfig, ModelConfig, RecordConfig, RunConfig, SignalConfig,
                                 preset, validate)
from spectral_lab.errors import SpectralLabError
from spectral_lab.fit import Callback, fit
from spectral_lab.record import open_trajectory
from spectral_lab.runner import make_problem, prepare_fit, resume, select_device

NAME = "denoise_architectures"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# --------------------------------------------------------------------------- shared plumbing


@dataclass(frozen=True)
class ModelBudget:
    """One model family, its options and its own optimisation budget (Adam).

    ``label`` names the model in tables and file names. Input z and its distribution follow
    `spectral_lab.runner.INPUT_DEFAULTS` unless given.
    """

    label: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    iterations: int = 1000
    lr: float = 1e-3
    reg_noise_std: float = 0.0
    input_dist: str | None = None
    input_scale: float | None = None

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items()) or "defaults"
        reg = f", reg_noise_std={self.reg_noise_std:.3g}" if self.reg_noise_std else ""
        return f"{self.model}({opts}), Adam lr={self.lr:g}{reg}, {self.iterations} iterations"


def dip_budget(label: str = "dip", options: Mapping[str, Any] | None = None, *, iterations: int | None = None,
               preset_name: str = "paper") -> ModelBudget:
    """The DIP as `spectral_lab.config.preset` sets it up for images (the DIP paper's denoising
    settings: Adam lr 0.01, z ~ U(0, 0.1) of 32 channels, input perturbation σ = 1/30)."""
    fit = preset(preset_name, "image")["fit"]
    return ModelBudget(label, "dip", dict(options or {}), iterations=iterations or fit["iterations"], lr=fit["lr"],
                       reg_noise_std=fit["reg_noise_std"], input_dist=fit["input_dist"],
                       input_scale=fit["input_scale"])


def image_paths(spec: str | Path | Sequence[str | Path] | None) -> list[Path | None]:
    """The images an experiment runs on: a file, every image file of a folder (sorted), a
    list of files, or None (matplotlib's sample photograph, returned as None)."""
    if spec is None:
        return [None]
    if isinstance(spec, (list, tuple)):
        return [p for s in spec for p in image_paths(s)]
    path = Path(spec).expanduser().resolve()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise SpectralLabError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        return files
    if not path.is_file():
        raise SpectralLabError(f"--images {spec}: no such file or folder")
    return [path]


def image_name(path: Path | None) -> str:
    return "sample_photo" if path is None else path.stem


def denoise_config(budget: ModelBudget, image: Path | None, *, downsample: int, grey: bool = False,
                   noise: str = "white", sigma: float = 25.0, cutoff: float = 0.05, noise_seed: int = 0,
                   runs: int = 3, seed: int = 0) -> RunConfig:
    """R seeds (``seed .. seed + R - 1``, weights and input) of one model denoising one image, on
    the CPU, frames stored losslessly (float32)."""
    cfg = RunConfig(
        task="denoise",
        signal=SignalConfig(kind="image", image=None if image is None else str(image), grey=grey,
                            downsample=downsample),
        degrade=DegradeConfig(noise=noise, sigma=sigma, cutoff=cutoff, seed=noise_seed),
        model=ModelConfig(name=budget.model, options=dict(budget.options)),
        fit=FitConfig(iterations=budget.iterations, lr=budget.lr, reg_noise_std=budget.reg_noise_std,
                      input_dist=budget.input_dist, input_scale=budget.input_scale, runs=runs, seed=seed,
                      vary="both", device="cpu"),
        record=RecordConfig(dtype="float32", compression="none", flush_seconds=5.0, checkpoint_seconds=60.0),
    )
    return validate(cfg)


@dataclass(frozen=True)
class Job:
    """One trajectory file to record: its configuration and where it goes."""

    path: Path
    config: RunConfig
    label: str = ""


@dataclass
class Estimate:
    """Probe-based cost of a list of jobs: seconds per iteration of every job (all its runs
    together), the total seconds and bytes (frames and checkpoint slots), and the free space
    where the files go."""

    seconds_per_iteration: list[float]
    seconds: list[float]
    bytes: list[int]
    shapes: list[tuple[int, ...]]
    free_bytes: int

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds))

    @property
    def total_bytes(self) -> int:
        return int(sum(self.bytes))


class _StepTimer(Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_frame(self, iteration, output, loss) -> None:
        self.times.append(time.perf_counter())


def probe_seconds_per_iteration(cfg: RunConfig, steps: int = 3) -> tuple[float, int]:
    """Time ``steps`` optimisation steps of ``cfg`` (after one warm-up step) through the same
    fit loop, without recording. Returns (seconds per iteration for all runs, checkpoint bytes:
    parameters and Adam's two moments of all runs, float32)."""
    problem = make_problem(cfg)
    state, z, y = prepare_fit(cfg, problem, select_device(cfg.fit.device))
    timer = _StepTimer()
    fit(state, z, y, iterations=steps + 1, reg_noise_std=cfg.fit.reg_noise_std, callbacks=[timer])
    # frames 1 .. steps+1 follow steps 0 .. steps; the first (warm-up) interval is left out
    per_step = (timer.times[-1] - timer.times[1]) / steps
    n_params = sum(p.numel() for p in state.net.parameters())
    return per_step, 3 * 4 * n_params


def estimate_jobs(jobs: Sequence[Job], *, log: Callable[[str], None] = print) -> Estimate:
    """Probe every distinct (model, options, runs, image size) once and scale by iterations;
    a job whose file already holds a complete recording of its configuration costs nothing."""
    cache: dict[str, tuple[float, int]] = {}
    per_it, secs, sizes, shapes = [], [], [], []
    for job in jobs:
        c = job.config
        same, status, frames = _existing(job.path, c)
        if same and status == "complete":
            shape = tuple(int(n) for n in make_problem(c).clean.shape)
            per_it.append(0.0)
            secs.append(0.0)  # reused by `record_jobs`, nothing to fit
            sizes.append(0)
            shapes.append(shape)
            continue
        # an unfinished file of the same configuration is resumed: only its remaining iterations
        remaining = c.fit.iterations + 1 - frames if same else c.fit.iterations
        # the cost depends on the signal's shape, not on its pixels: one probe per shape
        shape = tuple(int(n) for n in make_problem(c).clean.shape)
        problem_key = json.dumps({"shape": shape, "model": c.to_dict()["model"], "runs": c.fit.runs,
                                  "reg": c.fit.reg_noise_std}, sort_keys=True)
        if problem_key not in cache:
            cache[problem_key] = probe_seconds_per_iteration(c)
        s, checkpoint = cache[problem_key]
        per_it.append(s)
        secs.append(s * remaining)
        itemsize = np.dtype(c.record.dtype).itemsize
        # frames, plus the file's two checkpoint slots (parameters + Adam moments of every run)
        sizes.append(c.fit.runs * remaining * int(np.prod(shape)) * itemsize + (0 if same else 2 * checkpoint))
        shapes.append(shape)
    out_dir = jobs[0].path.parent if jobs else Path.cwd()
    probe_dir = out_dir
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    return Estimate(per_it, secs, sizes, shapes, shutil.disk_usage(probe_dir).free)


def estimate_table(jobs: Sequence[Job], est: Estimate) -> str:
    rows = [{"file": j.path.name, "image size": "×".join(map(str, shape)), "runs": j.config.fit.runs,
             "iterations": j.config.fit.iterations, "s/it (all runs)": f"{s:.3f}" if s else "—",
             "est. time": _fmt_seconds(t) if s else "reused", "storage": _fmt_bytes(b)}
            for j, s, t, b, shape in zip(jobs, est.seconds_per_iteration, est.seconds, est.bytes, est.shapes)]
    return markdown_table(rows)


def check_storage(est: Estimate) -> None:
    """Refuse to start a recording that cannot fit on the disk (frames are stored every iteration)."""
    if est.total_bytes > 0.9 * est.free_bytes:
        raise SpectralLabError(
            f"the recordings need {_fmt_bytes(est.total_bytes)} but only {_fmt_bytes(est.free_bytes)} are free: "
            "every iteration's frame is stored (float32); lower the iterations or the image size, "
            "or record fewer seeds")


def _fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.0f} PB"


@dataclass
class Recorded:
    """A recording on disk: its file, wall time (0 when reused), parameters per run."""

    path: Path
    seconds: float
    reused: bool
    parameters_per_run: int


def _existing(path: Path, cfg: RunConfig) -> tuple[bool, str, int]:
    """(same configuration?, status, frames of run 0) of a trajectory file; (False, '', 0)
    when there is none or it is unreadable."""
    if not path.exists():
        return False, "", 0
    try:
        with open_trajectory(path) as t:
            stored = json.dumps(t.config, sort_keys=True)
            status, frames = t.status, t.n_frames(0)
    except SpectralLabError:
        return False, "", 0
    return stored == json.dumps(json.loads(json.dumps(cfg.to_dict())), sort_keys=True), status, frames


def _parameters_per_run(cfg: RunConfig) -> int:
    from spectral_lab.runner import build_net

    # a one-run build of the network, only to count its parameters (no optimiser state)
    problem = make_problem(cfg)
    return build_net(cfg, problem, [{"weight_seed": 0, "input_seed": 0}]).parameters_per_run()


def record_jobs(jobs: Sequence[Job], *, log: Callable[[str], None] = print) -> list[Recorded]:
    """Record every job; a complete file of the same configuration is reused, an unfinished
    one resumed from its last checkpoint, anything else recorded anew (overwritten)."""
    done = []
    for job in jobs:
        same, status, _ = _existing(job.path, job.config)
        if same and status == "complete":
            log(f"  reusing {job.path.name} (complete, same configuration)")
            done.append(Recorded(job.path, 0.0, True, _parameters_per_run(job.config)))
            continue
        if same and status in ("running", "interrupted", "failed"):
            log(f"  resuming {job.path.name} ({status})")
            started = time.perf_counter()
            result = resume(job.path, progress=False)
            if result.status != "complete":
                raise SpectralLabError(f"{job.path.name}: resumed fit ended as {result.status}: {result.message}")
            done.append(Recorded(job.path, time.perf_counter() - started, False, _parameters_per_run(job.config)))
            continue
        rec = record_setting(job.config, job.path, log=log)
        done.append(Recorded(job.path, rec.seconds, False, rec.network["parameters_per_run"]))
    return done


def preset_cli(description: str, presets: Mapping[str, Any], main: Callable[[Any], Any],
               argv: Sequence[str] | None = None, *, images_help: str) -> int:
    """``--quick`` / ``--preset NAME``, ``--images``, ``--seeds``, ``--out-dir``, ``--threads``,
    ``--estimate-only``. The config must have fields ``images``, ``seeds``, ``out_dir`` and
    ``estimate_only``. Bad input is one line on stderr and exit status 1."""
    p = argparse.ArgumentParser(description=description)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="the 'quick' preset: a few minutes on 2 CPU cores")
    g.add_argument("--preset", choices=sorted(presets), default=None,
                   help="named configuration (default: paper)")
    p.add_argument("--images", help=images_help)
    p.add_argument("--seeds", type=int, help="seeds (runs) per image and model")
    p.add_argument("--out-dir", type=Path, default=REPO,
                   help="where trajectories/<experiment>/ and figures/<experiment>/ go (default: %(default)s)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice; 1 is best on a busy machine)")
    p.add_argument("--estimate-only", action="store_true", help="print the estimated cost and stop")
    a = p.parse_args(argv)
    cfg = presets["quick" if a.quick else (a.preset or "paper")]
    changes: dict[str, Any] = {"out_dir": a.out_dir.resolve(), "estimate_only": a.estimate_only}
    if a.images is not None:
        changes["images"] = a.images
    if a.seeds is not None:
        changes["seeds"] = a.seeds
    cfg = replace(cfg, **changes)
    if a.threads is not None:
        import torch

        torch.set_num_threads(a.threads)
    started = time.perf_counter()
    try:
        main(cfg)
    except (SpectralLabError, ValueError) as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"total wall time {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


def plan(jobs: Sequence[Job], *, estimate_only: bool, log: Callable[[str], None] = print) -> Estimate:
    """Print the probe estimate of the jobs; refuse what the disk cannot hold."""
    log(f"estimating the cost of {len(jobs)} recording(s) (a few timed steps of each distinct setting) ...")
    est = estimate_jobs(jobs, log=log)
    log(estimate_table(jobs, est))
    log(f"estimated total: {_fmt_seconds(est.total_seconds)} of fitting at the probed speed, "
        f"{_fmt_bytes(est.total_bytes)} of trajectories ({_fmt_bytes(est.free_bytes)} free)")
    if not estimate_only:
        check_storage(est)
    return est


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for one value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt_mean_std(values: Sequence[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.2f} ± {s:.2f}"


# --------------------------------------------------------------------------- the experiment

# Paper Table 1 (means over the nine images, 5 runs each).
PAPER_MEANS = {"dip": 27.47, "linear-128": 20.54, "linear-2048": 19.17, "relunet": 27.58}
PAPER_LABELS = {"dip": "DIP", "linear-128": "DIP Linear-128", "linear-2048": "DIP Linear-2048",
                "relunet": "ReLUNet"}


@dataclass(frozen=True)
class Config:
    """The comparison. ``images``: file or folder (None: matplotlib's photograph).

    ``downsample``: the paper's ×4 in ``paper`` (128×128 for the 512×512 images);
    ``sigma`` on the 0–255 scale; ``seeds`` runs per (image, model), recorded in one file;
    ``grid_image``: the image whose curves and output grid are drawn (None: every image).
    """

    preset: str = "paper"
    images: str | None = None
    downsample: int = 4
    sigma: float = 25.0
    noise_seed: int = 0
    seeds: int = 3
    seed: int = 0
    models: tuple[ModelBudget, ...] = ()
    grid_image: str | None = None
    out_dir: Path = REPO
    estimate_only: bool = False
    name: str = NAME


# `in_channels=1` for DIP-Linear: its first layer maps the flattened z (in_channels·H·W values)
# to the width. The reference code fed z of the image's 3 channels; with 1 channel the first
# layer of Linear-2048 at 128×128 has 33.5 M instead of 100.7 M weights (the network 147 M
# instead of 201 M, ~2.4 GB instead of 3.2 GB per run with Adam's state) and, since the width
# (2048) is below H·W either way, the layer reaches the same outputs W1ᵀz.
PAPER = Config(
    preset="paper",
    downsample=4,
    models=(
        dip_budget("dip", {}, iterations=3000),
        ModelBudget("linear-128", "linear", {"depth": 5, "width": 128, "in_channels": 1}, iterations=1000, lr=1e-4),
        ModelBudget("linear-2048", "linear", {"depth": 5, "width": 2048, "in_channels": 1}, iterations=300, lr=1e-4),
        # The paper's ReLUNet ran to 50 000 iterations (appendix D) on mini-batches of 2048
        # pixels; here every step is full-batch (all pixels), so 50 000 steps cost ~8x more.
        ModelBudget("relunet", "relunet", {"depth": 10, "width": 256}, iterations=50000, lr=1e-3),
    ),
)

# About an hour here for the nine images (3 seeds): images ×16 smaller (32×32; House 16×16),
# a 3-level DIP of 128 channels (5 levels need sides >= 64), the paper's other models unchanged.
HOUR = replace(
    PAPER, preset="hour", downsample=16,
    models=(
        dip_budget("dip", {"levels": 3, "down": 128, "up": 128}, iterations=600),
        ModelBudget("linear-128", "linear", {"depth": 5, "width": 128, "in_channels": 1}, iterations=300, lr=1e-4),
        ModelBudget("linear-2048", "linear", {"depth": 5, "width": 2048, "in_channels": 1}, iterations=150, lr=1e-4),
        ModelBudget("relunet", "relunet", {"depth": 10, "width": 256}, iterations=2000, lr=1e-3),
    ),
)

# A few minutes on 2 busy cores for one image: 32×32, narrow DIP and ReLUNet.
QUICK = replace(
    PAPER, preset="quick", downsample=16,
    models=(
        dip_budget("dip", {"levels": 3, "down": 32, "up": 32}, iterations=400),
        ModelBudget("linear-128", "linear", {"depth": 5, "width": 128, "in_channels": 1}, iterations=300, lr=1e-4),
        ModelBudget("linear-2048", "linear", {"depth": 5, "width": 2048, "in_channels": 1}, iterations=100, lr=1e-4),
        ModelBudget("relunet", "relunet", {"depth": 10, "width": 128}, iterations=1500, lr=1e-3),
    ),
)

PRESETS = {"quick": QUICK, "hour": HOUR, "paper": PAPER}


def jobs_of(cfg: Config) -> list[Job]:
    paths = Paths(Path(cfg.out_dir), cfg.name)
    jobs = []
    for image in image_paths(cfg.images):
        for m in cfg.models:
            c = denoise_config(m, image, downsample=cfg.downsample, sigma=cfg.sigma, noise_seed=cfg.noise_seed,
                               runs=cfg.seeds, seed=cfg.seed)
            jobs.append(Job(paths.trajectory(f"{image_name(image)}--{m.label}"), c, m.label))
    return jobs


def main(cfg: Config) -> dict:
    """Estimate, record, score every run by its best PSNR, tabulate and draw."""
    from spectral_lab.plot import save
    from spectral_lab.plot.denoise import output_grid_figure, psnr_curves_figure

    if cfg.seeds < 1:
        raise SpectralLabError(f"seeds must be >= 1, got {cfg.seeds}")
    jobs = jobs_of(cfg)
    print(f"{cfg.name} [{cfg.preset}]: {len(jobs)} files = {len(jobs) // len(cfg.models)} image(s) x "
          f"{len(cfg.models)} models, {cfg.seeds} seed(s) each")
    for m in cfg.models:
        print(f"  {m.label}: {m.describe()}")
    est = plan(jobs, estimate_only=cfg.estimate_only)
    if cfg.estimate_only:
        return {"estimate": est}
    recorded = record_jobs(jobs)

    paths = Paths(Path(cfg.out_dir), cfg.name)
    per: dict[str, dict[str, dict]] = {}  # image -> model label -> numbers
    curves: dict[str, dict[str, Any]] = {}
    for job, rec, seconds_est in zip(jobs, recorded, est.seconds):
        img = job.path.stem.split("--")[0]
        res = psnr_file(job.path)
        with open_trajectory(job.path) as t:
            shape = tuple(t.signal_shape)
        runs = [{"seed": r.seeds["seed"], "best_psnr": r.best_psnr, "best_iteration": r.best_iteration,
                 "final_psnr": r.final_psnr} for r in res.runs]
        its = job.config.fit.iterations
        best_its = [r.best_iteration for r in res.runs]
        per.setdefault(img, {})[job.label] = {
            "file": job.path, "shape": shape, "observed_psnr": res.observed_psnr, "runs": runs,
            "best_psnr": mean_std([r.best_psnr for r in res.runs]),
            "iterations": its, "best_iteration_max": max(best_its),
            # a run whose best frame lies in the last 10 % of its budget may not have peaked
            "peaked": all(b < 0.9 * its for b in best_its),
            "seconds": rec.seconds, "reused": rec.reused, "estimated_seconds": seconds_est,
            "parameters_per_run": rec.parameters_per_run}
        curves.setdefault(img, {})[job.label] = np.stack([r.psnr for r in res.runs])

    labels = [m.label for m in cfg.models]
    table_rows, model_means = [], {lab: [] for lab in labels}
    for img, by_model in per.items():
        sizes = sorted({"×".join(map(str, v["shape"])) for v in by_model.values()})
        row = {"image": img, "size (C×H×W)": " / ".join(sizes),
               "observed": f"{next(iter(by_model.values()))['observed_psnr']:.2f}"}
        for lab in labels:
            v = by_model[lab]
            row[lab] = fmt_mean_std([r["best_psnr"] for r in v["runs"]]) + ("" if v["peaked"] else " †")
            model_means[lab].append(v["best_psnr"][0])
        table_rows.append(row)
    table_rows.append({"image": "**mean**", "size (C×H×W)": "", "observed": "",
                       **{lab: f"**{np.mean(model_means[lab]):.2f}**" for lab in labels}})
    table_rows.append({"image": "paper (Table 1, 128×128-ish, 5 runs)", "size (C×H×W)": "", "observed": "",
                       **{lab: f"{PAPER_MEANS[lab]:.2f}" if lab in PAPER_MEANS else "" for lab in labels}})
    table = markdown_table(table_rows)

    budget_rows = []
    for m in cfg.models:
        vals = [per[img][m.label] for img in per]
        budget_rows.append({
            "model": m.label, "setting": m.describe(),
            "params/run": f"{vals[0]['parameters_per_run']:,}",
            "best iteration (median, max over runs)":
                f"{int(np.median([r['best_iteration'] for v in vals for r in v['runs']]))}, "
                f"{max(v['best_iteration_max'] for v in vals)}",
            "peaked in every run": "yes" if all(v["peaked"] for v in vals) else "NO",
            "recording time": _fmt_seconds(sum(v["seconds"] for v in vals))
            + (" (some reused)" if any(v["reused"] for v in vals) else "")})
    budgets = markdown_table(budget_rows)

    figures = []
    shown = [img for img in per if cfg.grid_image in (None, img)]
    for img in shown:
        title = f"{img}, {_setting_line(cfg, per[img])}"
        fig = psnr_curves_figure({lab: curves[img][lab] for lab in labels}, per[img][labels[0]]["observed_psnr"],
                                 iterations={lab: per[img][lab]["iterations"] for lab in labels},
                                 title=f"PSNR along the trajectory: {title}")
        figures.append(save(fig, paths.figures / f"psnr_curves_{img}.png"))
        figures.append(save(output_grid_figure(_grid_rows(per[img], curves[img], labels),
                                               title=f"Outputs along the trajectory (seed 0): {title}"),
                            paths.figures / f"grid_{img}.png"))

    heading = (f"Preset `{cfg.preset}`: {_setting_line(cfg, next(iter(per.values())))}; "
               f"{cfg.seeds} seeds per image and model (seeds {cfg.seed}..{cfg.seed + cfg.seeds - 1}, "
               f"weights and input), noise seed {cfg.noise_seed}.")
    body = (f"{heading}\n\nBest PSNR (dB) along each trajectory against the clean image, mean ± std (ddof=1) "
            f"over seeds; † = some run's best frame lies in the last 10 % of its budget (may not have "
            f"peaked).\n\n{table}\n\nBudgets (per-model iterations):\n\n{budgets}\n\n"
            f"Figures: {', '.join(f.name for f in figures)}\n")
    md, js = write_report(paths, title=f"{cfg.name} [{cfg.preset}]", body=body,
                          numbers={"config": cfg, "per_image": per, "model_means": model_means,
                                   "paper_means": PAPER_MEANS})
    print(heading)
    print(table)
    print(budgets)
    print(f"wrote {', '.join(map(str, figures))}, {md}, {js}")
    return {"config": cfg, "per_image": per, "model_means": {k: float(np.mean(v)) for k, v in model_means.items()}}


def _setting_line(cfg: Config, by_model: Mapping[str, dict]) -> str:
    sizes = sorted({"×".join(map(str, v["shape"][1:])) for v in by_model.values()})
    return f"down-sampled ×{cfg.downsample} ({'/'.join(sizes)} px), white noise σ={cfg.sigma:g}, {cfg.seeds} seeds"


def _grid_rows(by_model: Mapping[str, dict], curves: Mapping[str, np.ndarray], labels: Sequence[str]) -> list:
    """Appendix D: per model (seed 0), the output at iteration 0, a quarter of the way to its
    best, its best and its last iteration; first row: the clean and the observed image."""
    with open_trajectory(by_model[labels[0]]["file"]) as t:
        rows = [("images", [("clean", t.target),
                            (f"observed ({by_model[labels[0]]['observed_psnr']:.2f} dB)", t.observed)])]
    for lab in labels:
        v = by_model[lab]
        best = v["runs"][0]["best_iteration"]
        with open_trajectory(v["file"]) as t:
            frames = t.frames(0)
            rows.append((lab, [(f"it {i}: {curves[lab][0, i]:.2f} dB" + (" (best)" if i == best else ""),
                                np.asarray(frames[i])) for i in sorted({0, best // 4, best, v["iterations"]})]))
    return rows


if __name__ == "__main__":
    sys.exit(preset_cli(__doc__.splitlines()[0], PRESETS, main,
                        images_help="an image file or a folder of images (e.g. /work/shared/data/denoising9); "
                                    "default: matplotlib's sample photograph"))

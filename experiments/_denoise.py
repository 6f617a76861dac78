"""Plumbing shared by the denoising experiments (denoise_architectures, lowfreq_failure,
stopping_rules): images in, one trajectory file per (image, setting), estimated before recorded.

- `ModelBudget`, `dip_budget`: a model family with its own optimiser budget.
- `image_paths`, `image_name`: a file, a folder or the embedded sample photograph.
- `denoise_config`: R seeds of one model denoising one image as a `RunConfig`.
- `Job`, `plan` (`estimate_jobs`, `estimate_table`, `check_storage`): a timed probe of every
  distinct setting, the cost and storage table, refusal when the disk cannot hold it.
- `record_jobs`: record, reuse a complete file of the same configuration, resume an
  unfinished one.
- `preset_cli`: ``--quick`` / ``--preset``, ``--images``, ``--seeds``, ``--out-dir``,
  ``--threads``, ``--estimate-only``, ``--set FIELD=VALUE``.
- `mean_std`, `fmt_mean_std`, `fmt_seconds`, `fmt_bytes`.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from experiments._common import REPO, markdown_table, record_setting
from spectral_lab.config import (DegradeConfig, FitConfig, ModelConfig, RecordConfig, RunConfig, SignalConfig,
                                 preset, validate)
from spectral_lab.errors import SpectralLabError
from spectral_lab.fit import Callback, fit
from spectral_lab.trajectory import open_trajectory
from spectral_lab.runner import make_problem, prepare_fit, resume, select_device

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

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
                   runs: int = 3, seed: int = 0, probe: float = 0.0, crop_multiple: int = 1) -> RunConfig:
    """R seeds (``seed .. seed + R - 1``, weights and input) of one model denoising one image, on
    the CPU, frames stored losslessly (float32); ``probe`` > 0: the SURE twin of that file;
    ``crop_multiple``: see `spectral_lab.config.SignalConfig` (`common_crop` of the models)."""
    cfg = RunConfig(
        task="denoise",
        signal=SignalConfig(kind="image", image=None if image is None else str(image), grey=grey,
                            downsample=downsample, crop_multiple=crop_multiple),
        degrade=DegradeConfig(noise=noise, sigma=sigma, cutoff=cutoff, seed=noise_seed, probe=probe),
        model=ModelConfig(name=budget.model, options=dict(budget.options)),
        fit=FitConfig(iterations=budget.iterations, lr=budget.lr, reg_noise_std=budget.reg_noise_std,
                      input_dist=budget.input_dist, input_scale=budget.input_scale, runs=runs, seed=seed,
                      vary="both", device="cpu"),
        record=RecordConfig(dtype="float32", compression="none", flush_seconds=5.0, checkpoint_seconds=60.0),
    )
    return validate(cfg)


def common_crop(budgets: Sequence[ModelBudget], image: Path | None = None, *, downsample: int = 1,
                grey: bool = False) -> int:
    """The least common multiple of what every model needs of the image's sides: cropping
    to it, all models of a comparison fit the same pixels. With an image (None: the sample
    photograph): 1 when its down-sampled sides are multiples of it already."""
    from spectral_lab import signals
    from spectral_lab.models import required_multiple

    crop = math.lcm(*(int(required_multiple(b.model, **dict(b.options))) for b in budgets))
    if crop > 1:
        path = signals.sample_image_path() if image is None else image
        shape = signals.load_image(path, grey=grey, downsample=downsample).shape
        if all(side % crop == 0 for side in shape[1:]):
            return 1
    return crop


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
             "est. time": fmt_seconds(t) if s else "reused", "storage": fmt_bytes(b)}
            for j, s, t, b, shape in zip(jobs, est.seconds_per_iteration, est.seconds, est.bytes, est.shapes)]
    return markdown_table(rows)


def check_storage(est: Estimate) -> None:
    """Refuse to start a recording that cannot fit on the disk (frames are stored every iteration)."""
    if est.total_bytes > 0.9 * est.free_bytes:
        raise SpectralLabError(
            f"the recordings need {fmt_bytes(est.total_bytes)} but only {fmt_bytes(est.free_bytes)} are free: "
            "every iteration's frame is stored (float32); lower the iterations or the image size, "
            "or record fewer seeds")


def fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def fmt_bytes(n: float) -> str:
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
            # through RunConfig: a file written before a field was added reads with its default
            stored = json.dumps(RunConfig.from_dict(t.config).to_dict(), sort_keys=True)
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
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a number, string or flag of the preset's Config (repeatable), "
                        "e.g. --set downsample=8; see the Config docstring")
    a = p.parse_args(argv)
    cfg = presets["quick" if a.quick else (a.preset or "paper")]
    changes: dict[str, Any] = {"out_dir": a.out_dir.resolve(), "estimate_only": a.estimate_only}
    try:
        changes.update(_overrides(cfg, a.set))
    except ValueError as exc:
        p.error(str(exc))
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


def _overrides(cfg: Any, items: Sequence[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` strings as changes of the dataclass ``cfg``: only its int, float, str
    and bool fields, values parsed as that type."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        current = getattr(cfg, key, None) if sep else None
        if not sep or key.startswith("_") or not isinstance(current, (bool, int, float, str)) \
                or key in ("preset", "name"):
            settable = sorted(k for k, v in vars(cfg).items()
                              if isinstance(v, (bool, int, float, str)) and k not in ("preset", "name"))
            raise ValueError(f"--set {item}: expected FIELD=VALUE with FIELD one of {', '.join(settable)}")
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value: Any = text.lower() in ("true", "1")
            else:
                value = type(current)(text)
        except ValueError:
            raise ValueError(f"--set {item}: {key} takes a {type(current).__name__}") from None
        out[key] = value
    return out


def plan(jobs: Sequence[Job], *, estimate_only: bool, log: Callable[[str], None] = print) -> Estimate:
    """Print the probe estimate of the jobs; refuse what the disk cannot hold."""
    log(f"estimating the cost of {len(jobs)} recording(s) (a few timed steps of each distinct setting) ...")
    est = estimate_jobs(jobs, log=log)
    log(estimate_table(jobs, est))
    log(f"estimated total: {fmt_seconds(est.total_seconds)} of fitting at the probed speed, "
        f"{fmt_bytes(est.total_bytes)} of trajectories ({fmt_bytes(est.free_bytes)} free)")
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

"""What every experiment script shares: its configuration's common fields, the model settings it
compares, the files it records, and the way it writes its tables.

An experiment script is configuration and presentation only:

- a frozen ``Config``, a subclass of `Experiment` (`SinesExperiment`, `ImageExperiment`,
  `DivergenceExperiment`, `DenoiseExperiment`: the fields several experiments share are
  declared once, here), and its presets ``PRESETS = presets(paper=..., quick=...)``;
- ``jobs(cfg)``: the trajectory files it needs, as `spectral_lab.sweep.Job` s built by
  `run_config` from a `Setting` (a model, its options and its optimisation budget);
- ``report(cfg, recorded)``: the package's analyzers on those files, figures, ``table.md`` and
  ``results.json`` (`write_report`);
- ``main(cfg) = run(cfg, jobs, report)``: plan (estimate the cost, refuse what the disk cannot
  hold), stop there with ``estimate_only``, else record (reusing complete files of the same
  configuration, resuming unfinished ones) and report. `experiments._cli.experiment_cli` is
  the command line of every script.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from spectral_lab.analyze._io import json_safe
from spectral_lab.analyze.amplitudes import AmplitudeResult, analyze_amplitudes_file, convergence_table, relative_results
from spectral_lab.analyze.divergence import DEFAULT_PROMINENCE, DEFAULT_SMOOTH, divergence_file
from spectral_lab.analyze.stats import mean_std
from spectral_lab.config import (DegradeConfig, FitConfig, LossConfig, ModelConfig, OperatorConfig, RecordConfig,
                                 RunConfig, SignalConfig, preset, validate)
from spectral_lab.errors import SpectralLabError
from spectral_lab.executors import WorkerSettings, open_executor, run_sweep
from spectral_lab.images import downsample_for, image_label
from spectral_lab.sweep import Job, Recorded, markdown_table, plan

REPO = Path(__file__).resolve().parents[1]

__all__ = ["REPO", "shared_data", "Paths", "Experiment", "SinesExperiment", "ImageExperiment", "DivergenceExperiment",
           "DenoiseExperiment", "SamplerExperiment", "SCHEMES", "TaskExperiment", "presets", "Setting", "dip_setting", "run_config", "run", "analyze_setting",
           "convergence_row", "models_line", "markdown_table", "fmt_iter", "fmt_ratio", "fmt_mean_std",
           "fmt_or_dash", "write_report", "task_scores"]


# --------------------------------------------------------------------------- where an experiment reads and writes

def shared_data(*parts: str) -> Path:
    """A path under the lab's shared test data, ``../shared/data`` next to the checkout (or two
    levels up, from a git worktree under ``../wt/<name>``); the first candidate when neither
    exists (the caller checks and falls back)."""
    candidates = [root / "shared" / "data" / Path(*parts) for root in (REPO.parent, REPO.parents[1])]
    return next((c for c in candidates if c.exists()), candidates[0])


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


# --------------------------------------------------------------------------- configurations

@dataclass(frozen=True)
class Experiment:
    """The fields of every experiment's ``Config``.

    ``name``: the folders it writes (`Paths`); ``preset``: the name of the preset it came from
    (titles); ``seed``: the first seed (run r of a file uses ``seed + r``); ``device``: where the
    fits run (stored in every file's configuration); ``out_dir``: the folder holding
    ``trajectories/`` and ``figures/``; ``estimate_only``: print the cost and stop;
    ``workers``: recordings made side by side by that many local worker processes (1: one
    after another in this process); ``command``: the command line that ran it (written to
    ``results.json``; not part of the comparison of two configurations).
    """

    name: str = ""
    preset: str = "paper"
    seed: int = 0
    device: str = "cpu"
    out_dir: Path = REPO
    estimate_only: bool = False
    workers: int = 1
    command: str = field(default="", compare=False)

    @property
    def paths(self) -> Paths:
        return Paths(Path(self.out_dir), self.name)


@dataclass(frozen=True)
class SinesExperiment(Experiment):
    """Σ A_k sin(2π k t) on ``length`` points (``freqs``, ``amps``), ``seeds`` runs of each
    setting in one file, convergence read at each threshold of ``deltas`` (``deltas[0]`` is
    the one the figures use). The fits run on ``device`` ('auto': CUDA when there is one)."""

    freqs: tuple[float, ...] = (5, 50)
    amps: tuple[float, ...] = (1.0, 1.0)
    length: int = 200
    seeds: int = 10
    deltas: tuple[float, ...] = (0.01, 0.05)
    device: str = "auto"

    @property
    def signal(self) -> SignalConfig:
        return SignalConfig(kind="sines", freqs=tuple(self.freqs), amps=tuple(self.amps), length=self.length)


@dataclass(frozen=True)
class ImageExperiment(Experiment):
    """The ``dip`` network fitting one clean image, R runs a file.

    ``image``: "triangle" (synthetic, side ``size``), "photo" (matplotlib's photograph) or a
    file, grey, down-sampled by ``downsample`` (None: to a shorter side of about ``size``; see
    `spectral_lab.images.image_signal`); ``levels`` and ``channels`` (down = up) of
    the DIP; Adam at ``lr`` for ``iterations``; input z ~ U(0, 0.1), no input perturbation
    (the spectral-bias reference code fits clean images without it).
    """

    image: str = "triangle"
    size: int = 128
    downsample: int | None = None
    levels: int = 5
    channels: int = 128
    iterations: int = 1000
    lr: float = 0.01
    runs: int = 3

    def dip(self, **options) -> Setting:
        """The DIP setting of this experiment, with extra model ``options``."""
        return Setting("dip", "dip", {"levels": self.levels, "down": self.channels, "up": self.channels, **options},
                       lr=self.lr, iterations=self.iterations, input_dist="uniform", input_scale=0.1)

    def image_what(self, downsample: int | None = None) -> str:
        """What is fitted, for titles: ``triangle S²`` or ``<image> (grey, ÷d)``."""
        if self.image == "triangle":
            return f"triangle {self.size}²"
        return f"{image_label(self.image)} (grey, ÷{downsample})"

    def title(self, what: str, runs: str, *, net: str = "") -> str:
        """``dip(levels=…, … ch<net>) <what>; Adam lr=…, … it, R runs <runs>``: every image title."""
        return (f"dip(levels={self.levels}, {self.channels} ch{net}) {what}; Adam lr={self.lr:g}, "
                f"{self.iterations} it, {self.runs} runs {runs}")


@dataclass(frozen=True)
class DivergenceExperiment(ImageExperiment):
    """An `ImageExperiment` read through the inter-run divergence ε, its dips found by the
    detector of `spectral_lab.analyze.divergence` (median window ``smooth``, ``prominence`` in
    decades)."""

    smooth: int = DEFAULT_SMOOTH
    prominence: float = DEFAULT_PROMINENCE

    def divergence(self, path: Path, pairs: Sequence[tuple[int, int]] | None = None):
        """`divergence_file` of ``path`` with this experiment's detector."""
        return divergence_file(path, pairs, smooth=self.smooth, prominence=self.prominence)

    def detector(self) -> str:
        return f"median window {self.smooth}, prominence {self.prominence:g} decades"


@dataclass(frozen=True)
class DenoiseExperiment(Experiment):
    """Models denoising images: ``images`` a file or a folder (None: the experiment's default),
    read ``grey`` or in colour, down-sampled by ``downsample``, degraded with σ = ``sigma``
    (0–255 scale; low-frequency noise: zero above ``cutoff`` cycles/pixel) from noise seed
    ``noise_seed``, fitted by ``seeds`` seeds per file."""

    images: str | None = None
    grey: bool = False
    downsample: int = 4
    sigma: float = 25.0
    cutoff: float = 0.05
    noise_seed: int = 0
    seeds: int = 3

    def denoise_config(self, setting: Setting, image: Path | None, *, noise: str = "white",
                       cutoff: float | None = None, probe: float = 0.0, crop_multiple: int = 1) -> RunConfig:
        """``seeds`` seeds of ``setting`` denoising ``image`` (None: the sample photograph),
        degraded by ``noise`` (σ = ``sigma``; the low-frequency field's ``cutoff``, None: this
        experiment's); ``probe`` > 0: the SURE twin of that file; ``crop_multiple``: see
        `spectral_lab.models.common_crop`."""
        signal = SignalConfig(kind="image", image=None if image is None else str(image), grey=self.grey,
                              downsample=self.downsample, crop_multiple=crop_multiple)
        degrade = DegradeConfig(noise=noise, sigma=self.sigma, cutoff=self.cutoff if cutoff is None else cutoff,
                                seed=self.noise_seed, probe=probe)
        return run_config(setting, signal, runs=self.seeds, seed=self.seed, device=self.device, degrade=degrade)


#: the inference schemes of Cheng et al. (000_..., Section 5.2) as `SamplerExperiment.scheme` builds them
SCHEMES = ("sgd", "sgd_input", "sgld_adam", "sgld")


@dataclass(frozen=True)
class SamplerExperiment(DenoiseExperiment):
    """The DIP under the inference schemes of Cheng et al. (000_..., Section 5.2), one file per
    (image, scheme), ``seeds`` runs each (`scheme`):

    - ``sgd``: the released code's "SGD", which is Adam at ``lr``, the input z fixed;
    - ``sgd_input``: the same with the input perturbed at every step, z + N(0, ``reg_noise_std``²);
    - ``sgld_adam``: what the released code runs as SGLD: AdamW at ``lr`` with ``weight_decay``,
      then N(0, (``sgld_noise`` · lr)²) added to every conv weight, the input perturbed as in
      ``sgd_input``; the posterior mean and variance of the outputs kept from ``burn_in`` on;
    - ``sgld``: Eq. 8 itself (`spectral_lab.optim.SGLD`): Δw = −``exact_lr`` ∇MSE + N(0, 4 σ²
      ``exact_lr`` ``temperature`` / N), σ the task's noise level, no input perturbation.

    Images are down-sampled to a shorter side of about ``size`` (None: by ``downsample``); the
    DIP has ``levels`` levels of ``channels`` channels (down = up, 4 skip channels, bilinear
    up-sampling: the paper's net has 5 × 128), z ~ U(0, 0.1) of 32 channels; ``iterations``
    steps for every scheme unless a script says otherwise; ``ema`` is the factor of the outputs'
    moving average of the "+Avg" schemes (0.99 in the released code); ``every`` the frame stride
    of the sampler files (the SGD files keep every frame: their moving average and oracle stop
    read every iteration).
    """

    size: int | None = 64
    levels: int = 4
    channels: int = 64
    iterations: int = 3000
    lr: float = 0.01
    reg_noise_std: float = 1.0 / 30
    ema: float = 0.99
    sgld_noise: float = 2.0
    weight_decay: float = 5e-8
    exact_lr: float = 10.0
    temperature: float = 1.0
    burn_in: int = 1000
    every: int = 1

    def scheme(self, name: str, *, iterations: int | None = None) -> Setting:
        """The `Setting` of scheme ``name`` (one of `SCHEMES`), ``iterations`` (None: this
        configuration's)."""
        options = {"levels": self.levels, "down": self.channels, "up": self.channels}
        base = dict(iterations=iterations or self.iterations, input_dist="uniform", input_scale=0.1)
        if name == "sgd":
            return Setting("sgd", "dip", options, lr=self.lr, **base)
        if name == "sgd_input":
            return Setting("sgd_input", "dip", options, lr=self.lr, reg_noise_std=self.reg_noise_std, **base)
        if name == "sgld_adam":
            return Setting("sgld_adam", "dip", options, lr=self.lr, optimizer="sgld_adam",
                           optimizer_options={"noise": self.sgld_noise, "weight_decay": self.weight_decay},
                           reg_noise_std=self.reg_noise_std, burn_in=self.burn_in, every=self.every, **base)
        if name == "sgld":
            return Setting("sgld", "dip", options, lr=self.exact_lr, optimizer="sgld",
                           optimizer_options={"temperature": self.temperature}, burn_in=self.burn_in,
                           every=self.every, **base)
        raise ValueError(f"unknown scheme {name!r}; choose from {', '.join(SCHEMES)}")

    def downsample_of(self, image: Path | None) -> int:
        """The down-sampling factor of ``image`` (None: the sample photograph)."""
        from spectral_lab.images import downsample_for
        from spectral_lab.signals import sample_image_path

        if self.size is None:
            return self.downsample
        return downsample_for(sample_image_path() if image is None else image, self.size)

    def image_config(self, setting: Setting, image: Path | None, **options) -> RunConfig:
        """`DenoiseExperiment.denoise_config` of ``image`` at its own down-sampling factor."""
        return replace(self, downsample=self.downsample_of(image)).denoise_config(setting, image, **options)


@dataclass(frozen=True)
class TaskExperiment(Experiment):
    """The DIP restoring images through a task's forward operator (inpainting,
    super-resolution, a guide image as input): ``images`` (files or folders, comma-separated on
    the command line; empty: the experiment's default), read ``grey`` or in their own colour
    mode, each down-sampled by ``downsample`` (None: per image, to a shorter side of about
    ``size``, `spectral_lab.images.downsample_for`); the DIP of ``levels`` × ``channels``
    (down = up), Adam at ``lr`` for ``iterations`` with input perturbation ``reg_noise_std``,
    input z ~ U(0, 0.1); ``seeds`` runs per file; ``noise_seed`` draws a random mask; ``every``
    the frame stride of the files (1: every iteration)."""

    images: tuple[str, ...] = ()
    grey: bool = True
    size: int = 64
    downsample: int | None = None
    levels: int = 4
    channels: int = 64
    iterations: int = 600
    lr: float = 0.01
    reg_noise_std: float = 1.0 / 30
    seeds: int = 1
    noise_seed: int = 0
    every: int = 1

    def setting(self, label: str = "dip", **fit) -> Setting:
        """This experiment's DIP as a `Setting` (``fit``: fields of `Setting` that differ)."""
        base = dict(lr=self.lr, iterations=self.iterations, reg_noise_std=self.reg_noise_std,
                    input_dist="uniform", input_scale=0.1, every=self.every)
        return Setting(label, "dip", {"levels": self.levels, "down": self.channels, "up": self.channels},
                       **{**base, **fit})

    def signal(self, image: str | Path | None, *, observed: str | Path | None = None,
               crop_multiple: int = 1) -> SignalConfig:
        """The `SignalConfig` of one image file (``observed``: a degraded image given as it is,
        down-sampled like ``image``, or like itself when ``image`` is None)."""
        size_of = image if image is not None else observed
        ds = self.downsample if self.downsample is not None else downsample_for(size_of, self.size)
        return SignalConfig(kind="image", image=None if image is None else str(image), grey=self.grey,
                            downsample=ds, crop_multiple=crop_multiple,
                            observed=None if observed is None else str(observed))

    def task_config(self, setting: Setting, signal: SignalConfig, task: str, *,
                    operator: Mapping[str, Any] | None = None, loss: LossConfig | None = None,
                    input_image: str | Path | None = None) -> RunConfig:
        """``seeds`` runs of ``setting`` on ``signal`` for ``task`` with its operator's
        ``operator`` options, the data term ``loss`` (None: mse) and a guide image as input."""
        if self.seeds < 1:
            raise SpectralLabError(f"seeds must be >= 1, got {self.seeds}")
        return run_config(setting, signal, runs=self.seeds, seed=self.seed, device=self.device,
                          degrade=DegradeConfig(seed=self.noise_seed), task=task, operator_options=operator,
                          loss=None if loss is None else loss.name, loss_options=None if loss is None else loss.options,
                          input_image=input_image)

    def image_list(self, default: Sequence[str]) -> list[Path]:
        """The image files of ``images`` (or of ``default``), folders expanded."""
        from spectral_lab.images import image_paths

        return [p for p in image_paths(list(self.images or default)) if p is not None]


def presets(**named: Experiment) -> dict[str, Experiment]:
    """``{name: cfg}`` with each configuration's ``preset`` field set to its name; the first
    is the one a script runs without ``--quick`` / ``--preset``."""
    return {name: replace(cfg, preset=name) for name, cfg in named.items()}


@dataclass(frozen=True)
class Setting:
    """One model and its optimisation: what differs between the files of an experiment.

    ``label`` names the file and the rows of the tables. ``input_dist`` / ``input_scale``: the
    fixed input z (None: the model family's own, `spectral_lab.models.base.RunNet`).
    ``optimizer_options``: the optimiser's own options (an SGLD temperature); ``every``: the
    frame stride of the file; ``burn_in``: the iteration from which the posterior mean and
    variance of the outputs are kept (None: none, or the sampler's default);
    ``checkpoint_seconds``: how often the fit state is checkpointed (60 s by default; a net too
    big for its checkpoints to be worth their disk sets it above its run time: then only an
    interrupt writes one, and a killed file is recorded again); ``precision``: 'fp32', or 'bf16'
    for the forward pass under bfloat16 autocast (experiments/results/precision.md).
    """

    label: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    lr: float = 1e-4
    iterations: int = 300
    optimizer: str = "adam"
    reg_noise_std: float = 0.0
    input_dist: str | None = None
    input_scale: float | None = None
    optimizer_options: Mapping[str, Any] = field(default_factory=dict)
    every: int = 1
    burn_in: int | None = None
    checkpoint_seconds: float = 60.0
    precision: str = "fp32"

    def describe(self) -> str:
        """``model(options), Adam lr=…[, reg_noise_std=…], N iterations[, burn-in B][, every K]``."""
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items()) or "defaults"
        return f"{self.model}({opts}), {self.describe_fit()}"

    def describe_fit(self) -> str:
        """The optimisation part of `describe`: ``Adam lr=…[, reg_noise_std=…], N iterations…``."""
        reg = f", reg_noise_std={self.reg_noise_std:.3g}" if self.reg_noise_std else ""
        opt = "Adam" if self.optimizer == "adam" else self.optimizer
        if self.optimizer_options:
            opt += "(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in self.optimizer_options.items()) + ")"
        extra = (f", burn-in {self.burn_in}" if self.burn_in is not None else "") + \
            (f", every {self.every}th frame stored" if self.every > 1 else "") + \
            (f", {self.precision}" if self.precision != "fp32" else "")
        return f"{opt} lr={self.lr:g}{reg}, {self.iterations} iterations{extra}"


def dip_setting(label: str = "dip", options: Mapping[str, Any] | None = None, *, iterations: int | None = None,
                preset_name: str = "paper") -> Setting:
    """The DIP as `spectral_lab.config.preset` sets it up for images (the DIP paper's denoising
    settings: Adam lr 0.01, z ~ U(0, 0.1) of 32 channels, input perturbation σ = 1/30)."""
    fit = preset(preset_name, "image")["fit"]
    return Setting(label, "dip", dict(options or {}), iterations=iterations or fit["iterations"], lr=fit["lr"],
                   reg_noise_std=fit["reg_noise_std"], input_dist=fit["input_dist"], input_scale=fit["input_scale"])


def run_config(setting: Setting, signal: SignalConfig, *, runs: int, seed: int = 0, vary: str = "both",
               device: str = "cpu", degrade: DegradeConfig | None = None, task: str | None = None,
               operator_options: Mapping[str, Any] | None = None,
               loss_options: Mapping[str, Any] | None = None, loss: str | None = None,
               input_image: str | Path | None = None) -> RunConfig:
    """The `RunConfig` of ``runs`` runs (seeds ``seed .. seed + runs - 1`` for what ``vary``
    names) of one setting: task ``fit`` of the clean signal, or ``denoise`` with ``degrade``;
    another ``task`` (``inpaint``, ``superres``, ``blend``) with its operator's options
    (``{"drop": 0.5}``), the data term ``loss`` (None: the task's) and its options, and a guide
    image ``input_image`` as the network's input.

    Frames are stored losslessly (float32, no compression): the analyses measure small
    high-frequency differences and SE of small amplitudes.
    """
    cfg = RunConfig(
        task=task or ("fit" if degrade is None else "denoise"),
        signal=signal,
        degrade=DegradeConfig() if degrade is None else degrade,
        operator=OperatorConfig(options=dict(operator_options or {})),
        loss=LossConfig(name=loss, options=dict(loss_options or {})),
        model=ModelConfig(name=setting.model, options=dict(setting.options)),
        fit=FitConfig(iterations=setting.iterations, lr=setting.lr, optimizer=setting.optimizer,
                      optimizer_options=dict(setting.optimizer_options), reg_noise_std=setting.reg_noise_std,
                      input_dist=setting.input_dist, input_scale=setting.input_scale, runs=runs, seed=seed,
                      vary=vary, device=device, input_image=None if input_image is None else str(input_image),
                      precision=setting.precision),
        record=RecordConfig(dtype="float32", compression="none", flush_seconds=5.0,
                            checkpoint_seconds=setting.checkpoint_seconds, every=setting.every,
                            burn_in=setting.burn_in),
    )
    return validate(cfg)


# --------------------------------------------------------------------------- running

def run(cfg: Experiment, jobs: Callable[[Any], Sequence[Job]], report: Callable[[Any, list[Recorded]], dict],
        *, log: Callable[[str], None] = print) -> dict:
    """``jobs(cfg)``, their estimate (`spectral_lab.sweep.plan`), then — unless
    ``cfg.estimate_only`` — the sweep runner (`spectral_lab.executors.run_sweep`: in this
    process, or on ``cfg.workers`` local worker processes with this process's torch threads
    each) and ``report(cfg, recorded)``. A failed recording stops the report (after every
    other recording has run) with one line naming it.

    Returns the report's numbers, or ``{"estimate": Estimate}`` with ``estimate_only``.
    """
    todo = list(jobs(cfg))
    if not todo:
        if cfg.estimate_only:
            log(f"{cfg.name}: nothing to record (no training), nothing to estimate")
            return {}
        return report(cfg, [])
    inline = cfg.workers <= 1
    settings = WorkerSettings() if inline else WorkerSettings(threads=_torch_threads(), staging="auto")
    est = plan(todo, estimate_only=cfg.estimate_only, log=log, workers=cfg.workers, staging=settings.staging)
    if cfg.estimate_only:
        return {"estimate": est}
    with open_executor("inline" if inline else "local", workers=cfg.workers, threads=settings.threads) as ex:
        result = run_sweep(todo, ex, settings=settings, log=log, cost=est.seconds)
    result.raise_for_failures()
    return report(cfg, result.recorded)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def analyze_setting(path: str | Path, deltas: Sequence[float], *, pair: tuple[float, float] | None = None,
                    relative: bool = False) -> dict[float, tuple[dict[int, AmplitudeResult], dict]]:
    """Per threshold δ: ``(results per run, convergence_table)`` of one trajectory file.

    ``relative``: converge on (Ã_k/A_k − 1)² ≤ δ instead of (Ã_k − A_k)² ≤ δ
    (`spectral_lab.analyze.amplitudes.relative_results`); identical when every A_k = 1.
    """
    out = {}
    for delta in deltas:
        results = analyze_amplitudes_file(path, delta=delta)
        if relative:
            results = relative_results(results)
        out[float(delta)] = (results, convergence_table(results, pair=pair))
    return out


def task_scores(path: str | Path, views: Sequence[tuple[str, int]] = (("all", 1),)) -> dict[str, dict]:
    """Per view ``(region, scale)`` of `spectral_lab.analyze.psnr.psnr_file`, keyed
    ``"region@scale"``: every run's best PSNR, its iteration, final PSNR, SSIM at the best frame,
    the PSNR curves ``(R, T)`` and the iteration of each entry ``(T,)``, the mean best PSNR over
    runs and the task's classical baselines."""
    from spectral_lab.analyze.psnr import psnr_file

    out = {}
    for region, scale in views:
        res = psnr_file(path, region=region, scale=scale)
        out[f"{region}@{scale}"] = {
            "region": region, "scale": scale, "baselines": dict(res.baselines),
            "best_psnr": float(np.mean([r.best_psnr for r in res.runs])),
            "runs": [{"seed": r.seeds["seed"], "best_psnr": r.best_psnr, "best_iteration": r.best_iteration,
                      "final_psnr": r.final_psnr, "ssim_at_best": r.ssim_at_best} for r in res.runs],
            "curves": np.stack([r.psnr for r in res.runs]),
            "iterations": (np.arange(len(res.runs[0].psnr)) if res.runs[0].iterations is None
                           else res.runs[0].iterations)}
    return out


# --------------------------------------------------------------------------- table cells

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


def fmt_mean_std(values: Sequence[float] | tuple[float, float], mean: str = ".2f", std: str = ".2f", *,
                 summarized: bool = False) -> str:
    """``mean ± std`` (`spectral_lab.analyze.stats.mean_std`: the sample std) of ``values``, or
    of an already computed ``(mean, std)`` with ``summarized``; '—' when there is no value."""
    m, s = values if summarized else mean_std(values)
    return "—" if m != m else f"{m:{mean}} ± {s:{std}}"


def fmt_or_dash(value: Any, spec: str = "") -> str:
    """``format(value, spec)``, '—' for None (an iteration or value that does not exist)."""
    return "—" if value is None else format(value, spec)


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


def models_line(settings: Sequence[Setting]) -> str:
    """``label: model(options) optimizer lr=… x iterations`` of each setting, for titles."""
    return "; ".join(f"{s.label}: {s.model}({', '.join(f'{k}={v}' for k, v in s.options.items())}) "
                     f"{s.optimizer} lr={s.lr:g} x{s.iterations}" for s in settings)


# --------------------------------------------------------------------------- outputs

def write_report(paths: Paths, *, title: str, body: str, numbers: Mapping[str, Any],
                 tables: Sequence[str] = (), figures: Sequence[Path] = (),
                 log: Callable[[str], None] = print) -> tuple[Path, Path]:
    """Write ``table.md`` (``# title``, then ``body``) and ``results.json`` (``numbers``,
    JSON-safe: NaN and inf as null) into the figures folder; print ``tables`` and what was
    written."""
    paths.figures.mkdir(parents=True, exist_ok=True)
    md = paths.figures / "table.md"
    md.write_text(f"# {title}\n\n{body}\n")
    js = paths.figures / "results.json"
    js.write_text(json.dumps(json_safe(numbers), indent=1, allow_nan=False) + "\n")
    for table in tables:
        log(table)
    log(f"wrote {', '.join(str(f) for f in [*figures, md, js])}")
    return md, js

"""Configuration: frozen dataclasses, a JSON round trip (stored in every file) and presets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .errors import ConfigError

TASKS = ("fit", "denoise")
SIGNAL_KINDS = ("sines", "image", "triangle")
VARY = ("both", "weights", "input")
PRESETS = ("quick", "paper")


@dataclass(frozen=True)
class SignalConfig:
    """What is fitted. ``sines``: Σ A sin(2π k t + φ) on ``length`` points of [0, 1);
    ``image``: a file (``image``; None = matplotlib's bundled photograph); ``triangle``: the
    synthetic triangle with a fine pattern over ``pattern_fraction`` of the area.

    ``crop_multiple``: images are centre-cropped to sides that are multiples of this and of
    what the model needs (their least common multiple); comparisons of models with different
    needs set it to the largest, so that every model sees the same pixels."""

    kind: str = "sines"
    freqs: tuple[float, ...] = (5, 50)
    amps: tuple[float, ...] = (1.0, 1.0)
    phases: tuple[float, ...] | None = None
    length: int = 200
    image: str | None = None
    grey: bool = False
    downsample: int = 1
    size: int = 64
    pattern_fraction: float = 0.6
    crop_multiple: int = 1


@dataclass(frozen=True)
class DegradeConfig:
    """The degradation of the ``denoise`` task: noise kind, σ on the 0–255 scale, the
    low-frequency field's cut-off (cycles per sample) and the noise seed.

    ``probe`` (0–255 scale, default 0 = none) adds ε·b, b ~ N(0, I) drawn from the noise
    seed's own ``probe`` stream, to the observation after clipping: a file recorded with
    ``probe > 0`` and otherwise the same configuration is the SURE *twin* of the file
    without, and the two files' outputs give the Monte-Carlo divergence that SURE needs
    (`spectral_lab.analyze.stopping.probe_dof`)."""

    noise: str = "white"
    sigma: float = 25.0
    cutoff: float = 0.05
    seed: int = 0
    probe: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    """A model family by name and its keyword options (see ``spectral-lab models``)."""

    name: str = "conv"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FitConfig:
    """The optimisation. Run r uses seed ``seed + r`` for its weights and/or its input,
    as ``vary`` says ('both', 'weights': same input, 'input': same weights).

    ``optimizer`` is an entry of `spectral_lab.optim.OPTIMIZERS`, ``optimizer_options`` its
    keyword options (stored in the file's config like every other field)."""

    iterations: int = 300
    lr: float = 1e-4
    optimizer: str = "adam"
    optimizer_options: Mapping[str, Any] = field(default_factory=dict)
    reg_noise_std: float = 0.0
    input_dist: str | None = None
    input_scale: float | None = None
    runs: int = 2
    seed: int = 0
    vary: str = "both"
    device: str = "auto"


@dataclass(frozen=True)
class RecordConfig:
    """Storage: frame dtype, compression, flush and checkpoint intervals (seconds;
    ``checkpoint_seconds`` 0 = at every flush)."""

    dtype: str = "float32"
    compression: str = "none"
    flush_seconds: float = 2.0
    checkpoint_seconds: float = 30.0


@dataclass(frozen=True)
class RunConfig:
    task: str = "fit"
    signal: SignalConfig = field(default_factory=SignalConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    record: RecordConfig = field(default_factory=RecordConfig)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"]["options"] = dict(self.model.options)
        d["fit"]["optimizer_options"] = dict(self.fit.optimizer_options)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        return _from_dict(cls, d, "config")

    def replace(self, **sections) -> "RunConfig":
        return dataclasses.replace(self, **sections)


def _from_dict(cls, d, where):
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(d).__name__}")
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    kw = {}
    for k, v in d.items():
        sub = _SECTIONS.get(k) if cls is RunConfig else None
        if sub is not None:
            kw[k] = _from_dict(sub, v, f"{where}.{k}")
        elif isinstance(v, list):
            kw[k] = tuple(v)
        else:
            kw[k] = v
    return cls(**kw)


_SECTIONS = {"signal": SignalConfig, "degrade": DegradeConfig, "model": ModelConfig,
             "fit": FitConfig, "record": RecordConfig}


def run_seeds(fit: FitConfig) -> list[dict[str, int]]:
    """Per run: ``seed`` (the run's own), ``weight_seed`` and ``input_seed``."""
    out = []
    for r in range(fit.runs):
        s = fit.seed + r
        out.append({"seed": s,
                    "weight_seed": s if fit.vary in ("both", "weights") else fit.seed,
                    "input_seed": s if fit.vary in ("both", "input") else fit.seed})
    return out


def _finite(x, name, *, positive=False, nonnegative=False):
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ConfigError(f"{name} must be a finite number, got {x!r}")
    if positive and x <= 0:
        raise ConfigError(f"{name} must be positive, got {x}")
    if nonnegative and x < 0:
        raise ConfigError(f"{name} must be >= 0, got {x}")


def _int(x, name, lo, hi=None):
    if isinstance(x, bool) or not isinstance(x, int):
        raise ConfigError(f"{name} must be an integer, got {x!r}")
    if x < lo or (hi is not None and x > hi):
        raise ConfigError(f"{name} must be in [{lo}, {hi if hi is not None else '∞'}], got {x}")


def validate(cfg: RunConfig) -> RunConfig:
    """Check ranges and combinations that no later stage would report clearly."""
    if cfg.task not in TASKS:
        raise ConfigError(f"unknown task {cfg.task!r}; choose from {', '.join(TASKS)}")
    s, d, f, r = cfg.signal, cfg.degrade, cfg.fit, cfg.record
    if s.kind not in SIGNAL_KINDS:
        raise ConfigError(f"unknown signal {s.kind!r}; choose from {', '.join(SIGNAL_KINDS)}")
    _int(s.length, "length", 4, 1 << 22)
    _int(s.downsample, "downsample", 1, 64)
    _int(s.size, "size", 8, 4096)
    _int(s.crop_multiple, "crop_multiple", 1, 4096)
    _finite(s.pattern_fraction, "pattern fraction", nonnegative=True)
    _finite(d.sigma, "sigma", nonnegative=True)
    _finite(d.cutoff, "noise cut-off", positive=True)
    _int(d.seed, "noise seed", 0)
    _finite(d.probe, "probe", nonnegative=True)
    if d.probe > 0 and cfg.task != "denoise":
        raise ConfigError("probe (the SURE twin's perturbation of the observation) needs the denoise task")
    _int(f.iterations, "iterations", 1, 10_000_000)
    _finite(f.lr, "learning rate", positive=True)
    _finite(f.reg_noise_std, "reg_noise_std", nonnegative=True)
    if f.input_scale is not None:
        _finite(f.input_scale, "input scale", positive=True)
    _int(f.runs, "runs", 1, 4096)
    _int(f.seed, "seed", 0, 2**62)
    if f.vary not in VARY:
        raise ConfigError(f"unknown --vary {f.vary!r}; choose from {', '.join(VARY)}")
    _finite(r.flush_seconds, "flush interval", positive=True)
    _finite(r.checkpoint_seconds, "checkpoint interval", nonnegative=True)
    return cfg


def preset(name: str, signal_kind: str) -> dict[str, dict[str, Any]]:
    """Section overrides of a preset for a signal kind; explicit flags override these.

    ``quick`` fits 2 CPU cores in about a minute; ``paper`` follows the papers' settings.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    quick = name == "quick"
    if signal_kind == "sines":
        # Measured (experiments/results/oned.md): PyTorch's default init without biases, as the
        # reference code's last commit, separates k=5 from k=50 about 2x at 10 layers; 256
        # channels need lr <= 3e-5 for a steady reading, 64 channels are fine at 1e-4.
        model = {"depth": 10, "width": 64 if quick else 256, "kernel": 3, "init": "default", "bias": False}
        return {"task": "fit", "model": {"name": "conv", "options": model},
                "fit": {"iterations": 600, "lr": 1e-4 if quick else 3e-5,
                        "input_dist": "normal", "input_scale": 1.0}}
    # images: the DIP paper's denoising settings (lr 0.01, input U(0, 0.1) of 32 channels,
    # reg_noise_std 1/30); quick runs at 64x64, paper at the size the file gives.
    sig = {"downsample": 8 if quick else 4} if signal_kind == "image" else {"size": 64 if quick else 256}
    return {"task": "denoise" if signal_kind == "image" else "fit",
            "signal": sig,
            "model": {"name": "dip", "options": {}},
            "fit": {"iterations": 300 if quick else 3000, "lr": 0.01, "reg_noise_std": 1.0 / 30,
                    "input_dist": "uniform", "input_scale": 0.1}}


def apply_overrides(cfg: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """Merge ``{"task": .., "signal": {..}, "model": {"name": .., "options": {..}}, ...}``."""
    d = cfg.to_dict()
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(d.get(key), dict):
            for k, v in value.items():
                if k.endswith("options") and isinstance(v, Mapping):  # option maps merge
                    d[key][k] = {**d[key].get(k, {}), **v}
                else:
                    d[key][k] = v
        else:
            d[key] = value
    return RunConfig.from_dict(d)

"""Configuration: frozen dataclasses, a JSON round trip (stored in every file) and presets."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .errors import ConfigError
from .presets import PRESETS, preset  # noqa: F401  (re-exported)

@dataclass(frozen=True)
class TaskSpec:
    """What a task means: its forward operator (`spectral_lab.operators.OPERATORS`), the
    noise its observation gets and the data term (`spectral_lab.losses.LOSSES`) unless the
    configuration names them."""

    operator: str
    noise: str
    help: str
    loss: str = "mse"


# A new task is one entry here (its operator is one entry of the operator registry).
TASKS: dict[str, TaskSpec] = {
    "fit": TaskSpec("identity", "none", "fit the clean signal (no degradation)"),
    "denoise": TaskSpec("identity", "white", "y = x + noise"),
    "inpaint": TaskSpec("mask", "none", "y = m ⊙ x: pixels dropped at random (--drop) or by a mask image (--mask)"),
    "superres": TaskSpec("downsample", "none", "y = the clean signal down-sampled by --factor, anti-aliased"),
    "blend": TaskSpec("blend", "none", "blend --foreground into --background through a soft --mask (003, A3)",
                      loss="blend"),
}
SIGNAL_KINDS = ("sines", "image", "triangle")
# the burn-in resolved for an optimiser that samples a posterior (its entry declares sampler=True):
# 35 % of the iterations (000_…, 7K of 20K)
SAMPLER_BURN_IN = 0.35
VARY = ("both", "weights", "input")


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
    observed: str | None = None
    foreground: str | None = None


@dataclass(frozen=True)
class DegradeConfig:
    """The noise of the observation, added after the task's operator: y = noise(A(x)).
    Noise kind (None: the task's own, white for ``denoise``, none otherwise), σ on the 0–255
    scale, the low-frequency field's cut-off (cycles per sample) and the noise seed (which
    also draws a random inpainting mask, from its own stream).

    ``probe`` (0–255 scale, default 0 = none) adds ε·b, b ~ N(0, I) drawn from the noise
    seed's own ``probe`` stream, to the observation after clipping: a file recorded with
    ``probe > 0`` and otherwise the same configuration is the SURE *twin* of the file
    without, and the two files' outputs give the Monte-Carlo divergence that SURE needs
    (`spectral_lab.analyze.stopping.probe_dof`)."""

    noise: str | None = None
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
class OperatorConfig:
    """The forward operator A of the data term (`spectral_lab.operators.OPERATORS`); None: the
    task's own. ``options``: ``drop`` or ``mask`` (a path) for ``mask``, ``factor`` and
    ``kernel`` for ``downsample``."""

    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LossConfig:
    """The data term (`spectral_lab.losses.LOSSES`) and its options; None: the task's own
    (``mse``; ``blend`` for the blend task)."""

    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FitConfig:
    """The optimisation. Run r uses seed ``seed + r`` for its weights and/or its input,
    as ``vary`` says ('both', 'weights': same input, 'input': same weights).

    ``optimizer`` is an entry of `spectral_lab.optim.OPTIMIZERS`, ``optimizer_options`` its
    keyword options (stored in the file's config like every other field). ``input_image``:
    a guide image used as the network's input z instead of noise (flash / no-flash); every
    run then shares it and runs differ in their weights."""

    iterations: int = 300
    lr: float = 1e-4
    optimizer: str = "adam"
    optimizer_options: Mapping[str, Any] = field(default_factory=dict)
    reg_noise_std: float = 0.0
    input_dist: str | None = None
    input_scale: float | None = None
    input_image: str | None = None
    runs: int = 2
    seed: int = 0
    vary: str = "both"
    device: str = "auto"


@dataclass(frozen=True)
class RecordConfig:
    """Storage: frame dtype, compression, flush and checkpoint intervals (seconds;
    ``checkpoint_seconds`` 0 = at every flush).

    ``every``: the frame stride K — the frames of iterations 0, K, 2K, ... and the last one
    are stored (1: every frame); analyzers read the real iteration of each frame.
    ``burn_in``: from this iteration on, the running posterior mean and per-pixel variance
    of every run's outputs (over *every* iteration, not only the stored frames) are kept in
    the file (None: not kept; the SGLD optimisers default to 35 % of the iterations, the
    paper's 7 000 of 20 000). ``snapshots``: iterations at which every run's parameters
    are stored (the tangent kernel along a trajectory)."""

    dtype: str = "float32"
    compression: str = "none"
    flush_seconds: float = 2.0
    checkpoint_seconds: float = 30.0
    every: int = 1
    burn_in: int | None = None
    snapshots: tuple[int, ...] = ()


@dataclass(frozen=True)
class RunConfig:
    task: str = "fit"
    signal: SignalConfig = field(default_factory=SignalConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    record: RecordConfig = field(default_factory=RecordConfig)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for section in ("model", "operator", "loss"):
            d[section]["options"] = dict(getattr(self, section).options)
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


_SECTIONS = {"signal": SignalConfig, "degrade": DegradeConfig, "operator": OperatorConfig, "loss": LossConfig,
             "model": ModelConfig, "fit": FitConfig, "record": RecordConfig}


def run_seeds(fit: FitConfig) -> list[dict[str, int]]:
    """Per run: ``seed`` (the run's own), ``weight_seed`` and ``input_seed``."""
    out = []
    for r in range(fit.runs):
        s = fit.seed + r
        out.append({"seed": s,
                    "weight_seed": s if fit.vary in ("both", "weights") else fit.seed,
                    "input_seed": s if fit.vary in ("both", "input") else fit.seed})
    return out


# beyond this a value overflows float32 arithmetic somewhere in a fit (squares of 1e19 do)
LARGEST = 1e6


def _finite(x, name, *, positive=False, nonnegative=False, largest=None):
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ConfigError(f"{name} must be a finite number, got {x!r}")
    if positive and x <= 0:
        raise ConfigError(f"{name} must be positive, got {x}")
    if nonnegative and x < 0:
        raise ConfigError(f"{name} must be >= 0, got {x}")
    if largest is not None and abs(x) > largest:
        raise ConfigError(f"{name} must be at most {largest:g} in size, got {x:g} (larger values overflow float32)")


def _int(x, name, lo, hi=None):
    if isinstance(x, bool) or not isinstance(x, int):
        raise ConfigError(f"{name} must be an integer, got {x!r}")
    if x < lo or (hi is not None and x > hi):
        raise ConfigError(f"{name} must be in [{lo}, {hi if hi is not None else '∞'}], got {x}")


def _is_sampler(optimizer: str) -> bool:
    from .optim import is_sampler  # torch: only where a configuration is resolved to be run

    return is_sampler(optimizer)


def resolve(cfg: RunConfig) -> RunConfig:
    """``cfg`` with what it leaves to the task filled in: the operator and the noise kind."""
    if not isinstance(cfg.task, str) or cfg.task not in TASKS:
        raise ConfigError(f"unknown task {cfg.task!r}; choose from {', '.join(TASKS)}")
    spec = TASKS[cfg.task]
    out = cfg
    if cfg.operator.name is None:
        out = out.replace(operator=dataclasses.replace(cfg.operator, name=spec.operator))
    if cfg.loss.name is None:
        out = out.replace(loss=dataclasses.replace(cfg.loss, name=spec.loss))
    if cfg.record.burn_in is None and isinstance(cfg.fit.iterations, int) and _is_sampler(cfg.fit.optimizer):
        burn_in = int(round(SAMPLER_BURN_IN * cfg.fit.iterations))
        out = out.replace(record=dataclasses.replace(cfg.record, burn_in=burn_in))
    if cfg.degrade.noise is None:  # a given degraded image gets no synthetic noise
        noise = "none" if cfg.signal.observed is not None else spec.noise
        out = out.replace(degrade=dataclasses.replace(cfg.degrade, noise=noise))
    return out


def validate(cfg: RunConfig) -> RunConfig:
    """Check ranges and combinations that no later stage would report clearly; returns the
    configuration resolved (`resolve`), as it is stored in a file."""
    cfg = resolve(cfg)
    s, d, f, r = cfg.signal, cfg.degrade, cfg.fit, cfg.record
    spec = TASKS[cfg.task]
    if cfg.operator.name != spec.operator:
        raise ConfigError(f"the {cfg.task} task uses the {spec.operator} operator, not {cfg.operator.name!r}")
    if cfg.task == "fit" and d.noise != "none":
        raise ConfigError(f"the fit task fits the clean signal; noise ({d.noise}) needs --task denoise "
                          f"(or inpaint, superres)")
    if s.observed is not None:
        if s.kind != "image":
            raise ConfigError("--observed is an image; it needs --signal image")
        if cfg.task == "fit":
            raise ConfigError("--observed gives a degraded image: use --task denoise, inpaint or superres")
        if d.noise != "none" or d.probe:
            raise ConfigError("--observed is the observation as it is: no synthetic noise or probe is added "
                              "(leave out --noise/--probe)")
        if cfg.task == "superres" and s.image is None:
            raise ConfigError("--observed with --task superres needs the clean high-resolution image (--image): "
                              "it fixes the output size and scores the result")
    if cfg.task == "inpaint":
        opts = cfg.operator.options
        if ("drop" in opts) == ("mask" in opts):
            raise ConfigError("inpainting needs either --drop RATE (random pixels) or --mask PATH, not "
                              + ("both" if "drop" in opts else "neither"))
        if "mask" in opts and s.kind == "sines":
            raise ConfigError("a mask image needs an image signal (--signal image); 1D signals take --drop")
    if cfg.task == "blend":
        if s.kind != "image" or s.image is None or s.foreground is None or "mask" not in cfg.operator.options:
            raise ConfigError("blending needs --foreground A.png --background B.png --mask M.png")
        if s.observed is not None:
            raise ConfigError("--observed has no meaning for blending (its inputs are the foreground and background)")
    elif s.foreground is not None:
        raise ConfigError("--foreground is for --task blend")
    if s.kind not in SIGNAL_KINDS:
        raise ConfigError(f"unknown signal {s.kind!r}; choose from {', '.join(SIGNAL_KINDS)}")
    _int(s.length, "length", 4, 1 << 22)
    _int(s.downsample, "downsample", 1, 64)
    _int(s.size, "size", 8, 4096)
    _int(s.crop_multiple, "crop_multiple", 1, 4096)
    _finite(s.pattern_fraction, "pattern fraction", nonnegative=True)
    _finite(d.sigma, "sigma", nonnegative=True, largest=LARGEST)
    if s.kind == "sines" and isinstance(s.amps, (tuple, list)):
        for a in s.amps:
            _finite(a, "amplitude", largest=LARGEST)
    _finite(d.cutoff, "noise cut-off", positive=True)
    _int(d.seed, "noise seed", 0)
    _finite(d.probe, "probe", nonnegative=True)
    if f.input_image is not None and s.kind != "image":
        raise ConfigError("--input-image is a guide image for an image signal (--signal image)")
    if d.probe > 0 and cfg.task != "denoise":
        raise ConfigError("probe (the SURE twin's perturbation of the observation) needs the denoise task")
    _int(f.iterations, "iterations", 1, 10_000_000)
    _finite(f.lr, "learning rate", positive=True)
    _finite(f.reg_noise_std, "reg_noise_std", nonnegative=True, largest=LARGEST)
    if f.input_scale is not None:
        _finite(f.input_scale, "input scale", positive=True, largest=LARGEST)
    _int(f.runs, "runs", 1, 4096)
    _int(f.seed, "seed", 0, 2**62)
    if f.vary not in VARY:
        raise ConfigError(f"unknown --vary {f.vary!r}; choose from {', '.join(VARY)}")
    _finite(r.flush_seconds, "flush interval", positive=True)
    _finite(r.checkpoint_seconds, "checkpoint interval", nonnegative=True)
    _int(r.every, "frame stride (--every)", 1, max(1, f.iterations))
    if r.burn_in is not None:
        _int(r.burn_in, "burn-in", 0, f.iterations)
    if not isinstance(r.snapshots, (tuple, list)):
        raise ConfigError(f"snapshots must be a list of iterations, got {r.snapshots!r}")
    for it in r.snapshots:
        _int(it, "snapshot iteration", 0, f.iterations)
    if len(set(r.snapshots)) != len(r.snapshots):
        raise ConfigError(f"snapshot iterations repeat: {list(r.snapshots)}")
    from .losses import LOSSES
    from .operators import OPERATORS

    from .models import MODELS
    from .optim import OPTIMIZERS

    OPERATORS.check_options(cfg.operator.name, cfg.operator.options)
    LOSSES.check_options(cfg.loss.name, cfg.loss.options)
    return _with_defaults(cfg, MODELS, OPTIMIZERS, LOSSES, OPERATORS)


def _with_defaults(cfg: RunConfig, models, optimizers, losses, operators) -> RunConfig:
    """Every option the entries take, with its default where the configuration leaves it
    out (defaults that are None, "decided later", stay out), and the model's own input: the
    stored configuration says everything that was run."""
    import inspect

    def filled(registry, name, given):
        registry.check_options(name, given)
        defaults = {k: v for k, v in registry.options(name).items()
                    if v is not inspect.Parameter.empty and v is not None}
        return {**defaults, **dict(given)}

    fit = cfg.fit
    net = models.get(cfg.model.name).obj
    model_options = models.check_options(cfg.model.name, cfg.model.options)
    optimizers.check_options(fit.optimizer, fit.optimizer_options)
    if fit.input_image is not None:  # a guide image is the input: its channels are the model's input channels
        if "in_channels" not in models.options(cfg.model.name):
            raise ConfigError(f"model {cfg.model.name!r} takes no input channels (its input is fixed): it cannot "
                              "take a guide image (--input-image)")
        from .signals import image_channels

        channels = image_channels(fit.input_image, grey=cfg.signal.grey)
        if model_options.get("in_channels", channels) != channels:
            raise ConfigError(f"the guide image has {channels} channel(s) but the model option in_channels is "
                              f"{model_options['in_channels']}")
        model_options["in_channels"] = channels
    out = cfg.replace(
        model=dataclasses.replace(cfg.model, options=filled(models, cfg.model.name, model_options)),
        loss=dataclasses.replace(cfg.loss, options=filled(losses, cfg.loss.name, cfg.loss.options)),
        operator=dataclasses.replace(cfg.operator, options=filled(operators, cfg.operator.name, cfg.operator.options)),
        fit=dataclasses.replace(fit, optimizer_options=filled(optimizers, fit.optimizer, fit.optimizer_options),
                                input_dist=fit.input_dist if fit.input_dist is not None else net.input_dist,
                                input_scale=fit.input_scale if fit.input_scale is not None else net.input_scale))
    return RunConfig.from_dict(json.loads(json.dumps(out.to_dict())))  # JSON types, as stored


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

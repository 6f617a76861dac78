"""``spectral-lab record``: build a configuration from a preset and the flags, fit, record."""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import datetime
from pathlib import Path

from ..errors import ConfigError
from ._common import EXIT_DIVERGED, EXIT_INTERRUPTED, floats, ints, key_value, registry_help

# model options with a flag of their own (any option also goes through --model-opt)
MODEL_FLAGS = (("depth", int), ("width", int), ("kernel", int), ("levels", int), ("stride", int))


def _freqs(text: str) -> tuple[float, ...]:
    return tuple(int(v) if float(v).is_integer() else v for v in floats(text))


def add_parser(sub) -> None:
    r = sub.add_parser("record", help="fit R runs and record every output to an HDF5 trajectory file",
                       description="Fit R runs of one configuration and record every output. With no flag "
                                   "it records the default: 2 runs of the 1D conv net on sin(2π5t)+sin(2π50t).")
    add_config_arguments(r)
    add_output_arguments(r)
    r.set_defaults(func=cmd_record)


def add_config_arguments(r) -> None:
    """The flags that make a configuration (signal, task, model, fit): what ``record`` takes and
    what other commands reuse to describe the same run (``build_config`` reads them)."""
    from ..config import PRESETS, SIGNAL_KINDS, TASKS, VARY
    from ..losses import LOSSES
    from ..models import MODELS
    from ..models.base import INPUT_DISTRIBUTIONS
    from ..models.dip import UPSAMPLE_MODES
    from ..optim import OPTIMIZERS
    from ..signals import NOISE_KINDS

    g = r.add_argument_group("signal")
    g.add_argument("--signal", choices=SIGNAL_KINDS)
    g.add_argument("--freqs", type=_freqs, help="comma-separated frequencies, e.g. 5,50")
    g.add_argument("--amps", type=floats, help="comma-separated amplitudes, e.g. 1,1")
    g.add_argument("--phases", type=floats, help="comma-separated phases in radians")
    g.add_argument("--length", type=int, help="samples of the 1D signal (default 200)")
    g.add_argument("--image", help="image file (PNG/JPEG); default: matplotlib's sample photograph")
    g.add_argument("--grey", action="store_true", default=None, help="convert the image to grey")
    g.add_argument("--downsample", type=int, help="integer anti-aliased down-sampling factor")
    g.add_argument("--size", type=int, help="side of the synthetic triangle image")
    g.add_argument("--pattern-fraction", type=float, help="area fraction of the triangle's fine pattern")
    g.add_argument("--observed", metavar="PATH",
                   help="a degraded image you already have (a noisy photograph): fitted as it is, no synthetic "
                        "degradation; --image is then the optional clean reference")
    g = r.add_argument_group("task and degradation")
    g.add_argument("--task", choices=TASKS, metavar="TASK",
                   help="; ".join(f"{k}: {v.help}" for k, v in TASKS.items()) + " (default: the preset's)")
    g.add_argument("--drop", type=float, metavar="RATE", help="inpaint: fraction of pixels dropped at random, in (0, 1)")
    g.add_argument("--mask", metavar="PATH",
                   help="inpaint: mask image of the image's size, nonzero = known; blend: nonzero = foreground")
    g.add_argument("--foreground", metavar="PATH", help="blend: the image blended into the background")
    g.add_argument("--background", metavar="PATH", help="blend: the canvas (the same as --image)")
    g.add_argument("--factor", type=int, help="superres: down-sampling factor of the observation (e.g. 4)")
    g.add_argument("--operator-opt", type=key_value, action="append", metavar="KEY=VALUE",
                   help="an option of the task's operator, e.g. --operator-opt kernel=box (superres)")
    g.add_argument("--loss", choices=LOSSES.names(), metavar="LOSS", help=registry_help(LOSSES, "data term"))
    g.add_argument("--loss-opt", type=key_value, action="append", metavar="KEY=VALUE",
                   help="an option of the loss, e.g. --loss-opt scales=[1,2] --loss-opt weights=[1,0.5]")
    g.add_argument("--noise", choices=NOISE_KINDS, help="noise of the denoise task")
    g.add_argument("--sigma", type=float, help="noise standard deviation on the 0-255 scale (default 25)")
    g.add_argument("--noise-cutoff", type=float, help="cut-off of the low-frequency noise, cycles per sample")
    g.add_argument("--noise-seed", type=int)
    g.add_argument("--probe", type=float,
                   help="SURE twin: add this much Gaussian perturbation (0-255 scale) to the observation; "
                        "record once without and once with it, then: analyze stop FILE --rule sure --twin TWIN")
    g = r.add_argument_group("model")
    # no argparse choices: an unknown model is the registry's one-line error naming the families
    g.add_argument("--model", metavar="MODEL",
                   help=registry_help(MODELS, "model family") + " (see: spectral-lab models)")
    for key, typ in MODEL_FLAGS:
        g.add_argument(f"--{key}", type=typ, help=f"model option {key}")
    g.add_argument("--upsample", choices=UPSAMPLE_MODES, help="dip up-sampling")
    g.add_argument("--model-opt", type=key_value, action="append", metavar="KEY=VALUE",
                   help="any model option, e.g. --model-opt skip=8 (repeatable)")
    g = r.add_argument_group("fit")
    g.add_argument("--preset", choices=PRESETS, help="settings bundle (default quick); flags override")
    g.add_argument("--runs", type=int, help="runs recorded together (default 2)")
    g.add_argument("--seed", type=int, help="run r uses seed + r (default 0)")
    g.add_argument("--vary", choices=VARY,
                   help="what differs between runs: weights and input (default), weights only, input only")
    g.add_argument("--iterations", type=int)
    g.add_argument("--lr", type=float, help="learning rate (default: the preset's, tuned for Adam; an optimiser "
                   "may declare its own, e.g. sgld: 10)")
    g.add_argument("--optimizer", choices=OPTIMIZERS.names(), metavar="OPTIMIZER",
                   help=registry_help(OPTIMIZERS, "optimiser"))
    g.add_argument("--optimizer-opt", type=key_value, action="append", metavar="KEY=VALUE",
                   help="an option of the optimiser, e.g. --optimizer-opt momentum=0.9 (repeatable)")
    g.add_argument("--reg-noise-std", type=float, help="std of the input perturbation at each step")
    g.add_argument("--input-dist", choices=INPUT_DISTRIBUTIONS)
    g.add_argument("--input-scale", type=float)
    g.add_argument("--input-image", metavar="PATH",
                   help="a guide image as the network's input z instead of noise (flash / no-flash)")
    g.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice); 1 is much "
                                                "faster when other processes share the cores")


def add_output_arguments(r) -> None:
    """record's own flags: where and how frames are stored, resume, progress."""
    from ..trajectory.schema import COMPRESSIONS, STORAGE_DTYPES

    g = r.add_argument_group("output")
    g.add_argument("--out", help="output file (default: trajectories/<signal>-<model>-<task>-<time>.h5)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    g.add_argument("--dtype", choices=STORAGE_DTYPES, help="storage type of frames (default float32)")
    g.add_argument("--compression", choices=COMPRESSIONS)
    g.add_argument("--flush-seconds", type=float, help="flush at least this often (default 2)")
    g.add_argument("--checkpoint-seconds", type=float,
                   help="checkpoint interval (default 30; 0 = at every flush)")
    g.add_argument("--every", type=int, metavar="K",
                   help="store the frames of iterations 0, K, 2K, ... and the last (default 1: every frame)")
    g.add_argument("--burn-in", type=int, metavar="N",
                   help="from iteration N on, keep each run's running posterior mean and per-pixel variance "
                        "(/runs/<r>/posterior_mean, posterior_var; default for sgld and sgld_adam: 35%% of the "
                        "iterations)")
    g.add_argument("--snapshots", type=ints, metavar="I,J,...",
                   help="store every run's parameters at these iterations (the tangent kernel along a trajectory)")
    g.add_argument("--resume", metavar="FILE", help="continue an interrupted recording from its last checkpoint")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--dry-run", action="store_true",
                   help="print the fully resolved configuration (every option with its value) as JSON and exit")


# flags that only a task uses: refused with another task instead of ignored
TASK_FLAGS = {"drop": ("inpaint",), "mask": ("inpaint", "blend"), "factor": ("superres",),
              "foreground": ("blend",), "background": ("blend",)}
# flags naming an image file: they imply --signal image
IMAGE_FLAGS = ("image", "observed", "mask", "input_image", "foreground", "background")


def _path(p: str | None) -> str | None:
    """An absolute path, so that the stored configuration resumes from any folder."""
    return None if p is None else str(Path(p).expanduser().resolve())


class _Given:
    """The parsed flags; a flag this command does not define reads as not given (None), so
    commands that take only some of record's flags (``kernel ntk``) share its code."""

    def __init__(self, a: argparse.Namespace) -> None:
        self._a = a

    def __getattr__(self, name: str):
        return getattr(self._a, name, None)


def record_overrides(a: argparse.Namespace) -> dict:
    """Only the flags the user gave, as config section overrides."""
    a = _Given(a)
    def given(d: dict) -> dict:
        return {k: v for k, v in d.items() if v is not None}

    if a.background is not None and a.image is not None:
        raise ConfigError("--background and --image name the same image (the canvas): give one of them")
    sig = given({"kind": a.signal, "freqs": a.freqs, "amps": a.amps, "phases": a.phases, "length": a.length,
                 "image": _path(a.image or a.background), "foreground": _path(a.foreground), "grey": a.grey, "downsample": a.downsample, "size": a.size,
                 "pattern_fraction": a.pattern_fraction, "observed": _path(a.observed)})
    deg = given({"noise": a.noise, "sigma": a.sigma, "cutoff": a.noise_cutoff, "seed": a.noise_seed,
                 "probe": a.probe})
    fit = given({"iterations": a.iterations, "lr": a.lr, "optimizer": a.optimizer,
                 "reg_noise_std": a.reg_noise_std, "input_dist": a.input_dist, "input_scale": a.input_scale,
                 "runs": a.runs, "seed": a.seed, "vary": a.vary, "device": a.device})
    if a.optimizer_opt:
        fit["optimizer_options"] = dict(a.optimizer_opt)
    if a.input_image is not None:
        fit["input_image"] = _path(a.input_image)
    op = dict(a.operator_opt or [])
    op.update(given({"drop": a.drop, "mask": _path(a.mask), "factor": a.factor}))
    loss = given({"name": a.loss})
    if a.loss_opt:
        loss["options"] = dict(a.loss_opt)
    rec = given({"dtype": a.dtype, "compression": a.compression, "flush_seconds": a.flush_seconds,
                 "checkpoint_seconds": a.checkpoint_seconds, "every": a.every, "burn_in": a.burn_in,
                 "snapshots": a.snapshots})
    opts = dict(a.model_opt or [])
    for key in [k for k, _ in MODEL_FLAGS] + ["upsample"]:
        if getattr(a, key) is not None:
            opts[key] = getattr(a, key)
    out: dict = {"signal": sig, "degrade": deg, "fit": fit, "record": rec}
    if op:
        out["operator"] = {"options": op}
    if loss:
        out["loss"] = loss
    if a.model is not None or opts:
        out["model"] = {k: v for k, v in {"name": a.model, "options": opts}.items() if v}
    if a.task is not None:
        out["task"] = a.task
    return out


# flags of one signal kind: refused with another kind instead of ignored
SIGNAL_FLAGS = {"freqs": "sines", "amps": "sines", "phases": "sines", "length": "sines", "size": "triangle",
                "pattern_fraction": "triangle", "grey": "image", "downsample": "image"}
# flags of the observation's noise: refused where there is none
NOISE_FLAGS = ("sigma", "noise_cutoff", "probe")
# what --resume takes besides the file: everything else is the recording's own configuration
RESUME_FLAGS = {"resume", "quiet", "threads", "func", "command", "dry_run"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_config(a: argparse.Namespace):
    """Preset (quick unless --preset paper) for the signal kind, the model family and the image's
    size, then the explicit flags; a flag the configuration would ignore is refused."""
    from .. import signals
    from ..config import RunConfig, apply_overrides, preset, resolve

    a = _Given(a) if isinstance(a, argparse.Namespace) else a
    implied = [_flag(f) for f in IMAGE_FLAGS if getattr(a, f) is not None]
    if implied and a.signal not in (None, "image"):
        raise ConfigError(f"{implied[0]} names an image file, but --signal is {a.signal}")
    kind = a.signal or ("image" if implied else "sines")
    size = None
    if kind == "image":
        source = a.image or a.background or a.observed or signals.sample_image_path()
        size = signals.image_size(source)
    base = preset(a.preset or "quick", kind, a.model, image_size=size)
    overrides = record_overrides(a)
    overrides["signal"].setdefault("kind", kind)
    if a.freqs is not None and a.amps is None:  # one amplitude per frequency, 1 each
        overrides["signal"]["amps"] = tuple(1.0 for _ in a.freqs)
    if a.lr is None and a.optimizer is not None:  # the presets' rates are Adam's
        from ..optim import OPTIMIZERS

        default_lr = OPTIMIZERS[a.optimizer].get("default_lr") if a.optimizer in OPTIMIZERS else None
        if default_lr is not None:
            overrides["fit"]["lr"] = default_lr
    cfg = resolve(apply_overrides(apply_overrides(RunConfig(), base), overrides))
    for flag, tasks in TASK_FLAGS.items():
        if getattr(a, flag) is not None and cfg.task not in tasks:
            raise ConfigError(f"--{flag} is for --task {' or '.join(tasks)}; this records the {cfg.task} task")
    for flag, signal_kind in SIGNAL_FLAGS.items():
        if getattr(a, flag) is not None and cfg.signal.kind != signal_kind:
            raise ConfigError(f"{_flag(flag)} is for --signal {signal_kind}; this records the {cfg.signal.kind} signal")
    if a.noise is not None and cfg.task == "fit":
        raise ConfigError(f"--noise {a.noise} needs a task with an observation to degrade (--task denoise, inpaint or "
                          "superres); the fit task fits the clean signal")
    for flag in NOISE_FLAGS:
        if getattr(a, flag) is not None and (cfg.task == "fit" or cfg.degrade.noise == "none"):
            why = "the fit task fits the clean signal" if cfg.task == "fit" else "this observation gets no noise"
            raise ConfigError(f"{_flag(flag)} sets the observation's noise, but {why} (--noise white|lowfreq)")
    if a.noise_cutoff is not None and cfg.degrade.noise != "lowfreq":
        raise ConfigError(f"--noise-cutoff is for --noise lowfreq; the noise is {cfg.degrade.noise}")
    if (a.input_dist is not None or a.input_scale is not None) and (a.input_image is not None or cfg.model.name == "relunet"):
        what = "a guide image (--input-image)" if a.input_image is not None else "the pixel coordinates (relunet)"
        raise ConfigError(f"--input-dist/--input-scale draw the random input, but the input is {what}")
    return cfg


def check_resume_flags(a: argparse.Namespace) -> None:
    """--resume continues a recording as it was configured: any other setting is refused."""
    given = sorted(_flag(k) for k, v in vars(a).items() if k not in RESUME_FLAGS and v not in (None, False))
    if given:
        raise ConfigError(f"--resume continues the recording as it was configured; {', '.join(given)} "
                          "cannot change it (record anew with --overwrite to change settings)")


def _default_out(cfg) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / "trajectories" / f"{cfg.signal.kind}-{cfg.model.name}-{cfg.task}-{stamp}.h5"


class StopFlag:
    """SIGINT/SIGTERM: finish the current step, flush, mark resumable. A second one aborts."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    def install(self) -> None:
        def handler(signum, frame):
            if self.signum is not None:
                raise KeyboardInterrupt
            self.signum = signum

        self._previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore(self) -> None:
        for s, h in getattr(self, "_previous", {}).items():
            signal.signal(s, h)


def set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def dry_run(a: argparse.Namespace) -> int:
    """Print the fully resolved configuration (every option with its value) and the shapes it
    gives, as JSON, and exit: no file is written."""
    import json

    from ..config import validate
    from ..problem import make_problem

    cfg = validate(build_config(a))
    problem = make_problem(cfg)
    print(json.dumps({"config": cfg.to_dict(), "signal_shape": list(problem.shape),
                      "observed_shape": list(problem.observed.shape)}, indent=2))
    return 0


def cmd_record(a: argparse.Namespace) -> int:
    from .. import runner

    set_threads(a.threads)
    if a.resume is not None:
        check_resume_flags(a)
    elif a.dry_run:
        return dry_run(a)
    stop = StopFlag()
    stop.install()
    try:
        if a.resume is not None:
            result = runner.resume(a.resume, progress=not a.quiet, should_stop=stop)
            out = Path(a.resume)
        else:
            cfg = build_config(a)
            out = Path(a.out) if a.out else _default_out(cfg)
            result = runner.record(cfg, out, overwrite=a.overwrite, progress=not a.quiet, should_stop=stop)
    finally:
        stop.restore()
    if result.status == "complete":
        from ..trajectory import open_trajectory

        with open_trajectory(out) as t:
            stored = t.n_frames(0)
        kept = "" if stored == result.frames else f", {stored} of them stored (every {t.config['record']['every']})"
        print(f"wrote {out} ({result.frames} frames per run{kept}, {result.seconds:.1f} s)")
        return 0
    if result.status == "interrupted":
        name = signal.Signals(stop.signum).name if stop.signum else "signal"
        print(f"spectral-lab: {name}: {result.message}; continue with: spectral-lab record --resume {out}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"spectral-lab: diverged: {result.message} (in {out})", file=sys.stderr)
    return EXIT_DIVERGED

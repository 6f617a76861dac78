"""``spectral-lab``: the front door. Parse, call, format errors; no science here.

Every error spectral_lab raises on purpose becomes one line on stderr and a nonzero exit:
1 for bad input or a bad file, 3 when the optimisation diverged, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .errors import ConfigError, SpectralLabError

EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 2, 3, 130


# --------------------------------------------------------------------------- parsing helpers

def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def _freqs(text: str) -> tuple[float, ...]:
    return tuple(int(v) if float(v).is_integer() else v for v in _floats(text))


def _option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"model options are KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# --------------------------------------------------------------------------- record

def _record_overrides(a: argparse.Namespace) -> dict:
    """Only the flags the user gave, as config section overrides."""
    sig = {k: v for k, v in {
        "kind": a.signal, "freqs": a.freqs, "amps": a.amps, "phases": a.phases, "length": a.length,
        "image": a.image, "grey": a.grey, "downsample": a.downsample, "size": a.size,
        "pattern_fraction": a.pattern_fraction}.items() if v is not None}
    deg = {k: v for k, v in {"noise": a.noise, "sigma": a.sigma, "cutoff": a.noise_cutoff,
                             "seed": a.noise_seed, "probe": a.probe}.items() if v is not None}
    fit = {k: v for k, v in {
        "iterations": a.iterations, "lr": a.lr, "optimizer": a.optimizer, "reg_noise_std": a.reg_noise_std,
        "input_dist": a.input_dist, "input_scale": a.input_scale, "runs": a.runs, "seed": a.seed,
        "vary": a.vary, "device": a.device}.items() if v is not None}
    rec = {k: v for k, v in {"dtype": a.dtype, "compression": a.compression, "flush_seconds": a.flush_seconds,
                             "checkpoint_seconds": a.checkpoint_seconds}.items() if v is not None}
    opts = dict(a.model_opt or [])
    for key in ("depth", "width", "kernel", "levels", "upsample", "stride"):
        if getattr(a, key) is not None:
            opts[key] = getattr(a, key)
    out: dict = {"signal": sig, "degrade": deg, "fit": fit, "record": rec}
    if a.model is not None or opts:
        out["model"] = {k: v for k, v in {"name": a.model, "options": opts}.items() if v}
    if a.task is not None:
        out["task"] = a.task
    return out


def build_config(a: argparse.Namespace):
    """Preset (quick unless --preset paper) for the signal kind, then the explicit flags."""
    from .config import RunConfig, apply_overrides, preset

    kind = a.signal or "sines"
    base = preset(a.preset or "quick", kind)
    if a.model is not None and a.model != base["model"]["name"]:
        # the preset's model options and input belong to its own model family
        base["model"] = {"name": a.model, "options": {}}
        base["fit"] = {k: v for k, v in base["fit"].items() if k not in ("input_dist", "input_scale")}
    if a.task is None and a.noise is not None and a.noise != "none":
        base["task"] = "denoise"
    cfg = apply_overrides(RunConfig(), base)
    return apply_overrides(cfg, _record_overrides(a))


def _default_out(cfg) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / "trajectories" / f"{cfg.signal.kind}-{cfg.model.name}-{cfg.task}-{stamp}.h5"


class _StopFlag:
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


def cmd_record(a: argparse.Namespace) -> int:
    from . import runner

    if a.threads is not None:
        if a.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {a.threads}")
        import torch

        torch.set_num_threads(a.threads)
    stop = _StopFlag()
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
        print(f"wrote {out} ({result.frames} frames per run, {result.seconds:.1f} s)")
        return 0
    if result.status == "interrupted":
        name = signal.Signals(stop.signum).name if stop.signum else "signal"
        print(f"spectral-lab: {name}: {result.message}; continue with: spectral-lab record --resume {out}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"spectral-lab: diverged: {result.message} (in {out})", file=sys.stderr)
    return EXIT_DIVERGED


# --------------------------------------------------------------------------- info, check, models

def cmd_info(a: argparse.Namespace) -> int:
    from .trajectory import open_trajectory

    with open_trajectory(a.file) as t:
        cfg = t.config
        if a.json:
            print(json.dumps({"path": str(t.path), "status": t.status, "writer_alive": t.writer_alive,
                              "kind": t.kind,
                              "signal_shape": list(t.signal_shape), "n_runs": t.n_runs,
                              "iterations": t.iterations,
                              "frames": [t.n_frames(r) for r in range(t.n_runs)],
                              "seeds": [t.run_seeds(r) for r in range(t.n_runs)],
                              "attrs": {k: v for k, v in t.attrs.items() if k != "config"},
                              "config": cfg}, indent=2, default=str))
            return 0
        print(f"{t.path}")
        status = t.status
        if status == "running" and not t.writer_alive:
            status = (f"running, but no process is writing it (killed?); continue with: "
                      f"spectral-lab record --resume {t.path}")
        print(f"  status      {status}" + (f" ({t.message})" if t.message else ""))
        print(f"  signal      {t.kind} {tuple(t.signal_shape)}  ({_signal_summary(cfg)})")
        print(f"  task        {cfg['task']}" + (f"  noise={cfg['degrade']['noise']} sigma={cfg['degrade']['sigma']}"
                                                if cfg["task"] == "denoise" else ""))
        opts = ", ".join(f"{k}={v}" for k, v in cfg["model"]["options"].items())
        print(f"  model       {cfg['model']['name']}" + (f" ({opts})" if opts else ""))
        f = cfg["fit"]
        print(f"  fit         {f['optimizer']} lr={f['lr']} iterations={f['iterations']} "
              f"reg_noise_std={f['reg_noise_std']:.4g}")
        print(f"  storage     {cfg['record']['dtype']}, compression={cfg['record']['compression']}")
        print(f"  runs        {t.n_runs}")
        for r in range(t.n_runs):
            s, n = t.run_seeds(r), t.n_frames(r)
            loss = t.losses(r)
            last = f"final loss {loss[-1]:.4g}" if n else "no frames yet"
            print(f"    run {r}: seed={s['seed']} weight_seed={s['weight_seed']} input_seed={s['input_seed']}"
                  f"  frames {n}/{t.iterations + 1}  {last}")
        print(f"  written by  spectral_lab {t.attrs.get('spectral_lab_version')} "
              f"(torch {t.attrs.get('torch_version')}) on {t.attrs.get('created')}")
    return 0


def _signal_summary(cfg: dict) -> str:
    s = cfg["signal"]
    if s["kind"] == "sines":
        return f"sines k={list(s['freqs'])} A={list(s['amps'])} N={s['length']}"
    if s["kind"] == "image":
        return f"image {s['image'] or 'matplotlib sample (grace_hopper.jpg)'} downsample={s['downsample']}"
    return f"triangle size={s['size']} pattern_fraction={s['pattern_fraction']}"


def cmd_check(a: argparse.Namespace) -> int:
    from .trajectory import check_trajectory

    problems = check_trajectory(a.file)
    if problems:
        for p in problems:
            print(f"{a.file}: {p}")
        return EXIT_ERROR
    print(f"{a.file}: valid spectral_lab trajectory")
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from .models import MODELS, build_model, model_options

    shapes = {"1d": (1, a.length), "2d": (3, a.size, a.size)}
    print(f"{'model':<9} {'1D params':>12} {'2D params':>12}  options (defaults)")
    for name in MODELS:
        counts = []
        for shape in shapes.values():
            try:
                counts.append(f"{build_model(name, signal_shape=shape).parameters_per_run():,}")
            except SpectralLabError:
                counts.append("n/a")
        opts = ", ".join(f"{k}={v}" for k, v in model_options(name).items())
        print(f"{name:<9} {counts[0]:>12} {counts[1]:>12}  {opts}")
    print(f"(parameters per run for a 1D signal of {a.length} samples and a 3x{a.size}x{a.size} image)")
    return 0


# --------------------------------------------------------------------------- analyze / plot

def _dump(obj: dict) -> None:
    print(json.dumps(obj, allow_nan=False))


def cmd_analyze(a: argparse.Namespace) -> int:
    from . import reports

    return reports.ANALYZE[a.what](a)


def cmd_plot(a: argparse.Namespace) -> int:
    from . import reports

    return reports.PLOT[a.what](a)


# --------------------------------------------------------------------------- parser

def make_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="spectral-lab", description="Record Deep Image Prior trajectories and measure their "
                                                 "spectral bias.")
    p.add_argument("--version", action="version", version=f"spectral_lab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("record", help="fit R runs and record every output to an HDF5 trajectory file",
                       description="Fit R runs of one configuration and record every output. With no flag "
                                   "it records the default: 2 runs of the 1D conv net on sin(2π5t)+sin(2π50t).")
    g = r.add_argument_group("signal")
    g.add_argument("--signal", choices=("sines", "image", "triangle"))
    g.add_argument("--freqs", type=_freqs, help="comma-separated frequencies, e.g. 5,50")
    g.add_argument("--amps", type=_floats, help="comma-separated amplitudes, e.g. 1,1")
    g.add_argument("--phases", type=_floats, help="comma-separated phases in radians")
    g.add_argument("--length", type=int, help="samples of the 1D signal (default 200)")
    g.add_argument("--image", help="image file (PNG/JPEG); default: matplotlib's sample photograph")
    g.add_argument("--grey", action="store_true", default=None, help="convert the image to grey")
    g.add_argument("--downsample", type=int, help="integer anti-aliased down-sampling factor")
    g.add_argument("--size", type=int, help="side of the synthetic triangle image")
    g.add_argument("--pattern-fraction", type=float, help="area fraction of the triangle's fine pattern")
    g = r.add_argument_group("task and degradation")
    g.add_argument("--task", choices=("fit", "denoise"))
    g.add_argument("--noise", choices=("white", "lowfreq", "none"), help="noise of the denoise task")
    g.add_argument("--sigma", type=float, help="noise standard deviation on the 0-255 scale (default 25)")
    g.add_argument("--noise-cutoff", type=float, help="cut-off of the low-frequency noise, cycles per sample")
    g.add_argument("--noise-seed", type=int)
    g.add_argument("--probe", type=float,
                   help="SURE twin: add this much Gaussian perturbation (0-255 scale) to the observation; "
                        "record once without and once with it, then: analyze stop FILE --rule sure --twin TWIN")
    g = r.add_argument_group("model")
    g.add_argument("--model", help="dip, conv, linear or relunet (see: spectral-lab models)")
    for key, typ in (("depth", int), ("width", int), ("kernel", int), ("levels", int), ("stride", int)):
        g.add_argument(f"--{key}", type=typ, help=f"model option {key}")
    g.add_argument("--upsample", choices=("nearest", "bilinear", "transposed"), help="dip up-sampling")
    g.add_argument("--model-opt", type=_option, action="append", metavar="KEY=VALUE",
                   help="any model option, e.g. --model-opt skip=8 (repeatable)")
    g = r.add_argument_group("fit")
    g.add_argument("--preset", choices=("quick", "paper"), help="settings bundle (default quick); flags override")
    g.add_argument("--runs", type=int, help="runs recorded together (default 2)")
    g.add_argument("--seed", type=int, help="run r uses seed + r (default 0)")
    g.add_argument("--vary", choices=("both", "weights", "input"),
                   help="what differs between runs: weights and input (default), weights only, input only")
    g.add_argument("--iterations", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--optimizer", choices=("adam", "sgd"))
    g.add_argument("--reg-noise-std", type=float, help="std of the input perturbation at each step")
    g.add_argument("--input-dist", choices=("uniform", "normal"))
    g.add_argument("--input-scale", type=float)
    g.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice); 1 is much "
                                                "faster when other processes share the cores")
    g = r.add_argument_group("output")
    g.add_argument("--out", help="output file (default: trajectories/<signal>-<model>-<task>-<time>.h5)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    g.add_argument("--dtype", choices=("float32", "float16"), help="storage type of frames (default float32)")
    g.add_argument("--compression", choices=("none", "gzip", "lzf"))
    g.add_argument("--flush-seconds", type=float, help="flush at least this often (default 2)")
    g.add_argument("--checkpoint-seconds", type=float,
                   help="checkpoint interval (default 30; 0 = at every flush)")
    g.add_argument("--resume", metavar="FILE", help="continue an interrupted recording from its last checkpoint")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_record)

    i = sub.add_parser("info", help="describe a trajectory file")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    c = sub.add_parser("check", help="validate a file against the trajectory schema")
    c.add_argument("file")
    c.set_defaults(func=cmd_check)

    m = sub.add_parser("models", help="list the model families, their options and parameter counts")
    m.add_argument("--length", type=int, default=200)
    m.add_argument("--size", type=int, default=64)
    m.set_defaults(func=cmd_models)

    from . import reports

    an = sub.add_parser("analyze", help="compute an analysis of a trajectory file")
    an_sub = an.add_subparsers(dest="what", required=True, parser_class=_Parser)
    reports.add_analyze_parsers(an_sub)
    an.set_defaults(func=cmd_analyze)

    pl = sub.add_parser("plot", help="draw an analysis of a trajectory file")
    pl_sub = pl.add_subparsers(dest="what", required=True, parser_class=_Parser)
    reports.add_plot_parsers(pl_sub)
    pl.set_defaults(func=cmd_plot)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpectralLabError as exc:
        print(f"spectral-lab: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("spectral-lab: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``spectral-lab info``, ``check``, ``repair`` and ``models``: describe, validate and repair files; list the
model families."""

from __future__ import annotations

import argparse
import json

from ..errors import SpectralLabError
from ._common import EXIT_ERROR


def add_info_parser(sub) -> None:
    i = sub.add_parser("info", help="describe a trajectory file")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)


def add_repair_parser(sub) -> None:
    r = sub.add_parser("repair", help="clear a killed writer's HDF5 flags so that plain h5py, h5dump and xarray "
                                      "open the file",
                       description="A recording killed while it ran leaves HDF5's 'open for writing' flags in the "
                                   "file: spectral-lab reads it, plain h5py.File(path), h5dump and xarray refuse it. "
                                   "repair clears them (like h5clear -s); frames, status and checkpoints are "
                                   "untouched, so the recording stays resumable. A file that a process is writing "
                                   "is refused.")
    r.add_argument("file")
    r.set_defaults(func=cmd_repair)


def add_check_parser(sub) -> None:
    c = sub.add_parser("check", help="validate a file against the trajectory schema")
    c.add_argument("file")
    c.set_defaults(func=cmd_check)


def add_models_parser(sub) -> None:
    m = sub.add_parser("models", help="list the model families, their options and parameter counts")
    m.add_argument("--length", type=int, default=200)
    m.add_argument("--size", type=int, default=64)
    m.set_defaults(func=cmd_models)


def cmd_info(a: argparse.Namespace) -> int:
    from ..analyze._io import json_safe
    from ..trajectory import open_trajectory

    with open_trajectory(a.file) as t:
        cfg = t.config
        alive = t.writer_alive
        killed = t.status == "running" and not alive
        needs_repair = t.needs_repair
        if a.json:
            print(json.dumps(json_safe({"path": str(t.path), "status": t.status, "writer_alive": alive,
                                        "killed": killed, "needs_repair": needs_repair,
                                        "kind": t.kind,
                                        "signal_shape": list(t.signal_shape), "n_runs": t.n_runs,
                                        "iterations": t.iterations,
                                        "frames": [t.n_frames(r) for r in range(t.n_runs)],
                                        "seeds": [t.run_seeds(r) for r in range(t.n_runs)],
                                        "attrs": {k: v for k, v in t.attrs.items() if k != "config"},
                                        "config": cfg}), indent=2, allow_nan=False, default=str))
            return 0
        print(f"{t.path}")
        status = t.status
        if killed:
            status = (f"running, but no process is writing it (killed?); continue with: "
                      f"spectral-lab record --resume {t.path}")
        print(f"  status      {status}" + (f" ({t.message})" if t.message else ""))
        if needs_repair:
            print(f"  hdf5        left open by a killed writer: plain h5py.File, h5dump and xarray refuse it until "
                  f"`spectral-lab repair {t.path}` (or `record --resume`) clears its flags; "
                  f"h5py.File(path, 'r', swmr=True) and spectral_lab.open_xarray read it as it is")
        elif alive:
            print("  hdf5        being written: other tools read it with h5py.File(path, 'r', swmr=True) or "
                  "spectral_lab.open_xarray(path)")
        print(f"  signal      {t.kind} {tuple(t.signal_shape)}  ({_signal_summary(cfg)})")
        print(f"  task        {_task_summary(cfg, t.operator)}")
        if not t.has_target:
            why = "a blend" if cfg["task"] == "blend" else "recorded from a degraded image alone"
            print(f"  reference   none ({why}): PSNR and the other scores against a clean image do not apply")
        opts = ", ".join(f"{k}={v}" for k, v in _non_default(cfg["model"]["name"], cfg["model"]["options"]).items())
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


def _non_default(model: str, options: dict) -> dict:
    """The options that differ from the model family's defaults (files store them all)."""
    try:
        from ..models import model_options

        defaults = model_options(model)
    except SpectralLabError:
        return dict(options)
    return {k: v for k, v in options.items() if k not in defaults or defaults[k] != v}


def _task_summary(cfg: dict, operator: dict) -> str:
    d = cfg["degrade"]
    parts = [cfg["task"]]
    if operator["name"] != "identity":
        opts = ", ".join(f"{k}={v}" for k, v in operator["options"].items())
        parts.append(f"operator {operator['name']}({opts})")
    if d.get("noise") not in (None, "none"):
        parts.append(f"noise={d['noise']} sigma={d['sigma']}")
    loss = cfg.get("loss") or {"name": "mse", "options": {}}
    if loss["name"] != "mse" or loss["options"]:
        parts.append(f"loss {loss['name']}" + (f"({', '.join(f'{k}={v}' for k, v in loss['options'].items())})"
                                               if loss["options"] else ""))
    if cfg["fit"].get("input_image"):
        parts.append(f"input image {cfg['fit']['input_image']}")
    return "  ".join(parts)


def _signal_summary(cfg: dict) -> str:
    s = cfg["signal"]
    if s["kind"] == "sines":
        return f"sines k={list(s['freqs'])} A={list(s['amps'])} N={s['length']}"
    if s["kind"] == "image":
        observed = f"observed {s['observed']}, " if s.get("observed") else ""
        clean = s["image"] or ("none" if s.get("observed") else "matplotlib sample (grace_hopper.jpg)")
        return f"{observed}image {clean} downsample={s['downsample']}"
    return f"triangle size={s['size']} pattern_fraction={s['pattern_fraction']}"


def cmd_repair(a: argparse.Namespace) -> int:
    from ..trajectory import repair_trajectory

    if repair_trajectory(a.file):
        print(f"{a.file}: cleared the flags its killed writer left; plain h5py, h5dump and xarray open it now "
              f"(frames and checkpoints untouched: spectral-lab record --resume {a.file} still continues it)")
    else:
        print(f"{a.file}: nothing to repair (no writer left it open)")
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    from ..trajectory import check_trajectory

    problems = check_trajectory(a.file)
    if problems:
        for p in problems:
            print(f"{a.file}: {p}")
        return EXIT_ERROR
    print(f"{a.file}: valid spectral_lab trajectory")
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from ..models import MODELS, build_model, model_options

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



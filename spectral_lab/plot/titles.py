"""Figure titles and legend labels in words, from the configurations stored in trajectory files.

A configuration is described in five parts: the model, the task, the signal, the noise and
the fit (`describe`). `title_of` joins them into one sentence; for several files, a part they share
is said once and a part that differs lists its values with "vs", and `labels_of` gives each
file the parts that tell it apart (its file name when nothing does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["describe", "title_of", "labels_of", "wrap"]

_FAMILIES = {"dip": "DIP", "conv": "conv net", "linear": "DIP-Linear", "relunet": "ReLU MLP on coordinates"}
_OPTIMIZERS = {"adam": "Adam", "sgd": "SGD", "sgld": "SGLD", "sgld_adam": "SGLD (Adam)"}


def _g(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _model(m: Mapping) -> str:
    name, o = m["name"], dict(m.get("options") or {})
    words = _FAMILIES.get(name, name)
    size = []
    if name == "dip":
        if "levels" in o:
            size.append(f"{o['levels']} levels")
        channels = o.get("down", o.get("up"))
        if channels is not None:
            size.append(f"{channels} channels")
        shape = " × ".join(size)
        extra = f", {o['upsample']} up-sampling" if "upsample" in o else ""
        return f"{words}" + (f" ({shape}{extra})" if shape or extra else "")
    unit = "channels" if name == "conv" else "units"
    if "depth" in o:
        size.append(f"{o['depth']} layers")
    if "width" in o:
        size.append(f"{o['width']} {unit}")
    extra = f", kernel {o['kernel']}" if name == "conv" and "kernel" in o else ""
    shape = " × ".join(size)
    return f"{words}" + (f" ({shape}{extra})" if shape or extra else "")


def _signal(s: Mapping) -> str:
    if s["kind"] == "sines":
        amps = list(s.get("amps") or [])
        amp = "" if not amps or all(a == 1 for a in amps) else f", A = {', '.join(_g(a) for a in amps)}"
        return f"sines k = {', '.join(_g(k) for k in s['freqs'])} (N = {s['length']}{amp})"
    if s["kind"] == "image":
        if s.get("observed") and not s.get("image"):
            what = f"the degraded image {Path(s['observed']).stem}"
        else:
            what = Path(s["image"]).stem if s.get("image") else "the sample photo"
        down = int(s.get("downsample") or 1)
        details = (["grey"] if s.get("grey") else []) + ([f"at 1/{down} size"] if down > 1 else [])
        return what + (f" ({', '.join(details)})" if details else "")
    return f"the triangle ({s['size']} px, fine pattern over {s['pattern_fraction']:.0%})"


def _task(config: Mapping) -> str:
    task = config["task"]
    op = (config.get("operator") or {}).get("options") or {}
    if task == "inpaint":
        what = f"{op['drop']:.0%} of the pixels dropped" if "drop" in op else (
            f"mask {Path(str(op['mask'])).name}" if "mask" in op else "")
        return "inpainting" + (f" ({what})" if what else "")
    if task == "superres":
        return "super-resolving" + (f" ×{op['factor']}" if "factor" in op else "")
    return {"fit": "fitting", "denoise": "denoising"}.get(task, task)


def _noise(config: Mapping) -> str:
    d = config.get("degrade") or {}
    if d.get("noise") == "white":
        return f"white noise, σ = {_g(d['sigma'])}"
    if d.get("noise") == "lowfreq":
        return f"low-frequency noise below {_g(d['cutoff'])} cycles/px, σ = {_g(d['sigma'])}"
    return ""


def _fit(f: Mapping) -> str:
    opt = _OPTIMIZERS.get(f.get("optimizer", ""), f.get("optimizer", "?"))
    runs = f.get("runs")
    return (f"{opt}, lr {_g(f['lr'])}, {f['iterations']} iterations"
            + (f", {runs} run{'s' if runs != 1 else ''}" if runs else ""))


def describe(config: Mapping) -> dict[str, str]:
    """The parts of a configuration in words: ``model``, ``task``, ``signal``, ``noise`` (empty
    without noise) and ``fit``."""
    return {"model": _model(config["model"]), "task": _task(config), "signal": _signal(config["signal"]),
            "noise": _noise(config), "fit": _fit(config["fit"])}


def _sentence(parts: Mapping[str, str]) -> str:
    noise = f", {parts['noise']}" if parts["noise"] else ""
    return f"{parts['model']} {parts['task']} {parts['signal']}{noise}; {parts['fit']}"


def title_of(*configs: Mapping) -> str:
    """What was run, in words: "DIP (4 levels × 32 channels) denoising the sample photo (at 1/16
    size), white noise, σ = 25; Adam, lr 0.01, 1500 iterations, 2 runs". With several
    configurations, the parts that differ list their values joined by "vs"."""
    if not configs:
        raise ValueError("title_of needs at least one configuration")
    described = [describe(c) for c in configs]
    merged = {}
    for key in described[0]:
        values = list(dict.fromkeys(d[key] for d in described))
        merged[key] = " vs ".join(values)
    return _sentence(merged)


def labels_of(configs: Sequence[Mapping], paths: Sequence[str | Path]) -> list[str]:
    """One legend label per file: the parts of its configuration that differ between the files
    (model, task, signal, noise, fit, in that order; "no noise" for a file without); the file
    name when the configurations say the same."""
    described = [describe(c) for c in configs]
    differing = [k for k in ("model", "task", "signal", "noise", "fit") if len({d[k] for d in described}) > 1]
    names = [Path(p).stem for p in paths]
    if not differing:
        return names
    labels = ["; ".join(d[k] or f"no {k}" for k in differing) for d in described]
    if len(set(labels)) < len(labels):  # the parts coincide for some files: add the name
        labels = [f"{n}: {lab}" for n, lab in zip(names, labels)]
    return labels


def wrap(title: str, width: int = 120) -> str:
    """A long title on several lines (each of its own lines wrapped at ``width`` characters)."""
    import textwrap

    return "\n".join(textwrap.fill(line, width) for line in title.split("\n"))

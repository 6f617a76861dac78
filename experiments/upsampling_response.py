"""Paper appendix E: the frequency response of nearest and bilinear up-sampling by a stride L,
the paper's formulas next to the gain measured from torch's layers.

    python experiments/upsampling_response.py [--quick] [--out-dir DIR]

For each mode and stride: the appendix-E formula (continuous kernels, normalised to 1 at DC),
the exact gain of `torch.nn.functional.interpolate` on the output grid, and that gain
measured from the layer's impulse response (`spectral_lab.analyze.upsampling`). No training,
no image (so no ``--image``); ``--quick`` only uses fewer frequency samples. Writes
figures/upsampling_response/{responses.png, table.md, results.json} and prints the table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._common import REPO, Paths, cli, markdown_table, write_report
from spectral_lab.analyze.upsampling import MODES, analytic_response, measured_response
from spectral_lab.plot import save
from spectral_lab.plot.spectral import upsampling_response_figure

NAME = "upsampling_response"


@dataclass(frozen=True)
class Config:
    """Strides L and the number of frequencies sampled on [0, 1/2] cycles per output sample."""

    strides: tuple[int, ...] = (2, 4, 32)
    modes: tuple[str, ...] = MODES
    n_freqs: int = 4001
    name: str = NAME


DEFAULT = Config()
QUICK = replace(DEFAULT, n_freqs=801)


def main(cfg: Config, out_dir: Path = REPO) -> dict:
    """Compute the three responses per mode and stride, draw them and tabulate their agreement."""
    paths = Paths(Path(out_dir), cfg.name)
    freqs = np.linspace(0.0, 0.5, cfg.n_freqs)
    responses, rows = {}, []
    numbers: dict = {"config": cfg, "responses": []}
    for mode in cfg.modes:
        for stride in cfg.strides:
            r = {"paper": analytic_response(freqs, stride, mode, form="paper"),
                 "layer": analytic_response(freqs, stride, mode, form="layer"),
                 "measured": measured_response(freqs, stride, mode)}
            responses[(mode, stride)] = r
            stats = _stats(freqs, mode, stride, r)
            rows.append({"mode": mode, "stride L": stride,
                         "max |layer − measured|": f"{stats['max_layer_vs_measured']:.1e}",
                         "max |paper − measured|": f"{stats['max_paper_vs_measured']:.3f}",
                         "gain at 1/(2L): paper / layer": f"{stats['paper_at_input_nyquist']:.3f} / "
                                                          f"{stats['layer_at_input_nyquist']:.3f}",
                         "half-gain k (layer)": f"{stats['half_gain_freq']:.4f}",
                         "mean gain on [1/(2L), 1/2] (layer)": f"{stats['mean_gain_above_input_nyquist']:.4f}"})
            numbers["responses"].append({"mode": mode, "stride": stride, **stats})
    fig = upsampling_response_figure(freqs, responses, title=_title(cfg))
    figure = save(fig, paths.figures / "responses.png")
    table = markdown_table(rows)
    body = (f"{_title(cfg)}\n\nGains normalised to 1 at k = 0, k in cycles per output sample. 'layer': the exact "
            f"gain of torch's interpolate on the output grid; 'measured': the DTFT of the layer's impulse "
            f"response; 'paper': appendix E's continuous kernels (normalised). 1/(2L) is the input's Nyquist "
            f"frequency: above it the output holds only images of the input spectrum, which the layer should "
            f"suppress. Half-gain k: first frequency where the layer's gain falls to 0.5.\n\n{table}\n\n"
            f"Figure: {figure.name}\n")
    md, js = write_report(paths, title=cfg.name, body=body, numbers=numbers)
    print(table)
    print(f"wrote {figure}, {md}, {js}")
    return numbers


def _stats(freqs: np.ndarray, mode: str, stride: int, r: dict) -> dict:
    nyq = 1.0 / (2 * stride)
    above = freqs >= nyq
    half = np.flatnonzero(r["layer"] <= 0.5)
    return {
        "max_layer_vs_measured": float(np.max(np.abs(r["layer"] - r["measured"]))),
        "max_paper_vs_measured": float(np.max(np.abs(r["paper"] - r["measured"]))),
        "paper_at_input_nyquist": float(analytic_response(nyq, stride, mode, form="paper")),
        "layer_at_input_nyquist": float(analytic_response(nyq, stride, mode, form="layer")),
        "half_gain_freq": float(freqs[half[0]]) if half.size else float("nan"),
        "mean_gain_above_input_nyquist": float(np.mean(r["layer"][above])),
    }


def _title(cfg: Config) -> str:
    return (f"up-sampling by L = {', '.join(map(str, cfg.strides))}: appendix E vs torch's layers "
            f"({cfg.n_freqs} frequencies on [0, 1/2])")


if __name__ == "__main__":
    sys.exit(cli(__doc__.splitlines()[0], DEFAULT, QUICK, main))

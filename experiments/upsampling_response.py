"""Paper appendix E: the frequency response of nearest and bilinear up-sampling by a stride L,
the paper's formulas next to the gain measured from torch's layers.

    python experiments/upsampling_response.py [--quick] [--out-dir DIR]

For each mode and stride: the appendix-E formula (continuous kernels, normalised to 1 at DC),
the exact gain of `torch.nn.functional.interpolate` on the output grid, and that gain
measured from the layer's impulse response (`spectral_lab.analyze.upsampling`). No training,
no image (so no ``--image``, and ``--estimate-only`` has nothing to estimate); ``--quick`` only uses
fewer frequency samples. Writes
figures/upsampling_response/{responses.png, table.md, results.json} and prints the table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments._common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from experiments._cli import experiment_cli
from experiments._common import Experiment, markdown_table, presets, run, write_report
from spectral_lab.analyze.upsampling import MODES, compare_responses
from spectral_lab.plot import save
from spectral_lab.plot.spectral import upsampling_response_figure

NAME = "upsampling_response"


@dataclass(frozen=True)
class Config(Experiment):
    """Strides L and the number of frequencies sampled on [0, 1/2] cycles per output sample."""

    strides: tuple[int, ...] = (2, 4, 32)
    modes: tuple[str, ...] = MODES
    n_freqs: int = 4001
    name: str = NAME


PRESETS = presets(paper=Config(), quick=Config(n_freqs=801))
PAPER, QUICK = PRESETS["paper"], PRESETS["quick"]


def report(cfg: Config, recorded=()) -> dict:
    """Compute the three responses per mode and stride, draw them and tabulate their agreement."""
    freqs = np.linspace(0.0, 0.5, cfg.n_freqs)
    responses, rows = {}, []
    numbers: dict = {"config": cfg, "responses": []}
    for mode in cfg.modes:
        for stride in cfg.strides:
            r = compare_responses(freqs, stride, mode)
            responses[(mode, stride)] = {"paper": r.paper, "layer": r.layer, "measured": r.measured}
            stats = r.summary()
            rows.append({"mode": mode, "stride L": stride,
                         "max |layer − measured|": f"{stats['max_layer_vs_measured']:.1e}",
                         "max |paper − measured|": f"{stats['max_paper_vs_measured']:.3f}",
                         "gain at 1/(2L): paper / layer": f"{stats['paper_at_input_nyquist']:.3f} / "
                                                          f"{stats['layer_at_input_nyquist']:.3f}",
                         "half-gain k (layer)": f"{stats['half_gain_freq']:.4f}",
                         "mean gain on [1/(2L), 1/2] (layer)": f"{stats['mean_gain_above_input_nyquist']:.4f}"})
            numbers["responses"].append({"mode": mode, "stride": stride, **stats})
    fig = upsampling_response_figure(freqs, responses, title=_title(cfg))
    figure = save(fig, cfg.paths.figures / "responses.png")
    table = markdown_table(rows)
    body = (f"{_title(cfg)}\n\nGains normalised to 1 at k = 0, k in cycles per output sample. 'layer': the exact "
            f"gain of torch's interpolate on the output grid; 'measured': the DTFT of the layer's impulse "
            f"response; 'paper': appendix E's continuous kernels (normalised). 1/(2L) is the input's Nyquist "
            f"frequency: above it the output holds only images of the input spectrum, which the layer should "
            f"suppress. Half-gain k: first frequency where the layer's gain falls to 0.5.\n\n{table}\n\n"
            f"Figure: {figure.name}\n")
    write_report(cfg.paths, title=cfg.name, body=body, numbers=numbers, tables=[table], figures=[figure])
    return numbers


def main(cfg: Config) -> dict:
    """No recordings: the responses are computed, drawn and tabulated."""
    return run(cfg, lambda cfg: [], report)


def _title(cfg: Config) -> str:
    return (f"up-sampling by L = {', '.join(map(str, cfg.strides))}: appendix E vs torch's layers "
            f"({cfg.n_freqs} frequencies on [0, 1/2])")


if __name__ == "__main__":
    sys.exit(experiment_cli(sys.modules[__name__]))

"""The lab beside its peers: re-implementations of the published training loops, timed
interleaved with ``spectral_lab.fit`` + the trajectory recorder on the same network.

Peers (their loops, their settings, their forwards per step; read from their public code):

- **DIP notebook** (Ulyanov et al., ``denoising.ipynb``): skip net 32→3, 128 channels, skip 4,
  5 levels, bilinear, reflection padding; input U(0, 0.1); ``reg_noise_std = 1/30`` (fresh
  input noise every step); Adam lr 0.01; every step: one forward, MSE, backward, the
  exponential average of the outputs (0.99), the output to the host and three PSNRs (noisy,
  clean, averaged) as its ``closure`` does.
- **spectral-bias trajectory loop** (Chakrabarty & Maji, ``dip.py``): skip net 3→3, 128
  channels, skip 4, 5 levels, bilinear, zero padding; input N(0, 1); Adam lr 0.001; **two
  forwards a step** (the first, ``net(eta)``, is overwritten by a second ``net(eta)`` before
  the loss: its graph is built and thrown away); a frame to the host every ``traj_iter`` = 10
  steps (their README's trajectory experiment).

The network is the lab's own ``dip`` module at R = 1 (the same layers in the same order as their
``skip``; parameter counts checked against the count of the published net), so the ratio
measures the loop: the lab's fit + recorder (every frame to an HDF5 file) ÷ the peer's loop.
Their 1D experiments are not in their published code (``dip.py``, ``relunet.py``, ``skip.py``),
so there is no 1D peer here.

As whole processes (`peers_process`): ``spectral-lab record`` with the notebook's settings
(the user's path: configuration, file, every frame written) ÷ ``python bench_peers.py notebook
PNG N``, the notebook's loop as its own program (torch, numpy, Pillow and the network module
imported, the PNG read and noised, N steps).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from spectral_lab.config import FitConfig, RunConfig, run_seeds
from spectral_lab.fit import fit, make_fit_state
from spectral_lab.models import build_model
from spectral_lab.trajectory import TrajectoryRecorder, create_trajectory

import _nets as N
from _harness import Table, fmt_s, goal_cell, interleave, ratio_cell

# Parameters of the published skip nets at these settings (their skip() with
# num_channels_down = up = [128] * 5, skip [4] * 5, filter sizes 3 / 3 / 1, BatchNorm, bias):
NOTEBOOK_PARAMS = 2_217_831  # 32 input channels
SPECTRAL_BIAS_PARAMS = NOTEBOOK_PARAMS - 29 * (4 + 128 * 9)  # 3 input channels (input_depth = num_ch): 29 fewer
# input channels into the first level's 1×1 skip conv (4 out) and 3×3 down conv (128 out)

PEERS = {
    # name: lab model options, input (dist, scale), lr, reg_noise_std, published parameter count
    "DIP notebook (denoising)": ({"in_channels": 32, "padding": "reflect"}, ("uniform", 0.1), 0.01, 1 / 30,
                                 NOTEBOOK_PARAMS),
    "spectral-bias dip.py (trajectory)": ({"in_channels": 3, "padding": "zeros"}, ("normal", 1.0), 0.001, 0.0,
                                          SPECTRAL_BIAS_PARAMS),
}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def notebook_loop(net, z: torch.Tensor, y: torch.Tensor, lr: float, reg_noise_std: float):
    """``train(n)``: the DIP notebook's closure, n times."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    mse = torch.nn.MSELoss()
    y_np = y.numpy()
    noise = z.detach().clone()

    def train(n: int) -> None:
        out_avg = None
        for _ in range(n):
            opt.zero_grad()
            net_input = z + noise.normal_() * reg_noise_std
            out = net(net_input)
            out_avg = out.detach() if out_avg is None else out_avg * 0.99 + out.detach() * 0.01
            loss = mse(out, y)
            loss.backward()
            out_np = out.detach().cpu().numpy()[0]
            _psnr(y_np, out_np), _psnr(y_np, out_np), _psnr(y_np, out_avg.cpu().numpy()[0])
            opt.step()

    return train


def spectral_bias_loop(net, z: torch.Tensor, y: torch.Tensor, lr: float, traj_iter: int = 10):
    """``train(n)``: ``dip.py``'s loop, n iterations (two forwards each), a frame every ``traj_iter``."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    mse = torch.nn.MSELoss()

    def train(n: int) -> list:
        frames = []
        for itr in range(n):
            opt.zero_grad()
            rec = net(z)
            rec = net(z)
            loss = mse(rec, y)
            loss.backward()
            opt.step()
            if itr % traj_iter == 0:
                frames.append(rec[0].transpose(0, 2).detach().cpu().numpy())
        return frames

    return train


def peers(b, side: int | None = None) -> Table:
    """Per iteration: the lab (fit + recorder, every frame) ÷ each peer's loop, same network."""
    side = side or 64
    iterations = 20 if b.quick else 60  # long enough that fit's extra forward for frame n weighs little
    t = Table(f"Peers: the lab's recorded DIP iteration ÷ the published loops (same net, {side}², R = 1)",
              ["peer", "parameters (lab = published)", "forwards / step", "peer / iteration", "lab / iteration",
               "lab ÷ peer, wall [range]", "lab ÷ peer, CPU", "goal"])
    y = N.target(N.Case("", "dip", {}, side)).unsqueeze(0)
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        for name, (options, (dist, scale), lr, reg, published) in PEERS.items():
            nets = [build_model("dip", signal_shape=(3, side, side), runs=1, weight_seeds=[0], **options)
                    for _ in range(2)]
            count = sum(p.numel() for p in nets[0].parameters())
            if count != published:
                raise SystemExit(f"peers: the lab's net has {count} parameters, the published one {published}")
            z = nets[0].make_input([0], dist=dist, scale=scale)
            peer = (notebook_loop(nets[1], z, y, lr, reg) if reg else spectral_bias_loop(nets[1], z, y, lr))
            state = make_fit_state(nets[0], lr=lr)
            path = Path(tmp) / "lab.h5"
            seeds = run_seeds(FitConfig(runs=1))
            pending: list = []

            def create() -> None:
                pending.append(create_trajectory(path, config=RunConfig().to_dict(), kind="image", target=y[0].numpy(),
                                                 observed=y[0].numpy(), run_seeds=seeds, iterations=iterations,
                                                 overwrite=True))

            def lab() -> None:
                rec = TrajectoryRecorder(pending.pop())
                state.iteration = 0
                fit(state, z, y, iterations=iterations, reg_noise_std=reg, callbacks=[rec])

            s = interleave({"lab": lab, "peer": lambda: peer(iterations)}, b.rounds + 1, setup={"lab": create},
                           units={"lab": iterations, "peer": iterations})
            r = s.ratio("lab", "peer")
            t.add(name, f"{count:,}", 2 if not reg else 1, fmt_s(s.median("peer")), fmt_s(s.median("lab")),
                  ratio_cell(r), f"{s.ratio('lab', 'peer', clock='cpu')[0]:.2f}", goal_cell(r[0], 1.0))
    t.note("lab: spectral_lab.fit with a TrajectoryRecorder writing every frame (file created outside the timing), "
           "plus fit's last no-grad forward for frame n; peer: its loop re-implemented on the same torch module. "
           f"{iterations} iterations per sample; per-iteration times")
    return t


def _notebook_process(png: str, iterations: int) -> None:
    """The DIP notebook as a program: read the image, add σ = 25 noise, fit ``iterations`` steps."""
    from PIL import Image

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    x = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
    rng = np.random.default_rng(0)
    y = torch.from_numpy(np.clip(x + rng.normal(0, 25 / 255, x.shape), 0, 1).astype(np.float32)).unsqueeze(0)
    options, (dist, scale), lr, reg, _ = PEERS["DIP notebook (denoising)"]
    net = build_model("dip", signal_shape=tuple(x.shape), runs=1, weight_seeds=[0], **options)
    z = net.make_input([0], dist=dist, scale=scale)
    notebook_loop(net, z, y, lr, reg)(iterations)


def peers_process(b, threads: int | None) -> Table:
    """Whole processes, interleaved: `spectral-lab record` with the notebook's settings ÷ the notebook loop."""
    from PIL import Image

    from bench_startup import interleaved_processes

    iterations = 40 if b.quick else 150
    rounds = 3 if b.quick else 5
    exe = Path(sys.executable).with_name("spectral-lab")
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    t = Table(f"Peers as whole processes: `spectral-lab record` ÷ the DIP notebook's program (64², {iterations} "
              "iterations, start-up included)", ["command", "wall (median)", "CPU (median)",
                                                "record ÷ notebook, wall [range]", "CPU", "goal"])
    with tempfile.TemporaryDirectory(prefix="bench-peers-proc-") as tmp:
        png = Path(tmp) / "clean.png"
        y = N.target(N.Case("", "dip", {}, 64))
        Image.fromarray((y.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(png)
        cmds = {"notebook": [sys.executable, str(Path(__file__)), "notebook", str(png), str(iterations)],
                # --preset paper: the paper's dip (5 levels x 128 channels, 32 input channels), as the notebook's
                "record": [str(exe), "record", "--preset", "paper", "--signal", "image", "--image", str(png),
                           "--downsample", "1",
                           "--noise", "white", "--sigma", "25", "--model", "dip", "--lr", "0.01",
                           "--reg-noise-std", str(1 / 30), "--input-dist", "uniform", "--input-scale", "0.1",
                           "--iterations", str(iterations), "--runs", "1", "--quiet", "--overwrite",
                           "--out", str(Path(tmp) / "lab.h5")]}
        wall, cpu = interleaved_processes(cmds, env, rounds)
    rw = [a / b_ for a, b_ in zip(wall["record"], wall["notebook"])]
    rc = [a / b_ for a, b_ in zip(cpu["record"], cpu["notebook"])]
    t.add("notebook program", fmt_s(statistics.median(wall["notebook"])), fmt_s(statistics.median(cpu["notebook"])),
          "1", "1", "")
    t.add("`spectral-lab record`", fmt_s(statistics.median(wall["record"])), fmt_s(statistics.median(cpu["record"])),
          ratio_cell((statistics.median(rw), min(rw), max(rw))), f"{statistics.median(rc):.2f}",
          goal_cell(statistics.median(rw), 1.0))
    t.note("record writes every frame to an HDF5 file and validates its configuration; the notebook program keeps "
           "nothing but computes its three PSNRs a step")
    return t


if __name__ == "__main__":  # python bench_peers.py notebook PNG ITERATIONS
    if len(sys.argv) != 4 or sys.argv[1] != "notebook":
        raise SystemExit("usage: python bench_peers.py notebook PNG ITERATIONS")
    _notebook_process(sys.argv[2], int(sys.argv[3]))

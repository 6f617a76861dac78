"""Seeds: one user-facing integer per use, turned into independent generator streams."""

from __future__ import annotations

import numpy as np

STREAMS = {"weights": 0, "input": 1, "noise": 2, "probe": 3, "optimizer": 4, "mask": 5}


def stream_seed(seed: int, stream: str) -> int:
    """A generator seed for one use (``weights``, ``input``, ``noise``, ``probe``,
    ``optimizer``, ``mask``) of a user seed.

    Seeding two generators with the same integer would make their draws correlated (the
    first weight and the first input sample would be linear functions of one number);
    mixing the stream id in through ``numpy.random.SeedSequence`` keeps them independent.
    """
    return int(np.random.SeedSequence([int(seed), STREAMS[stream]]).generate_state(1, dtype=np.uint64)[0] >> 1)


def run_normal(generators, shape, *, device, dtype):
    """Standard normal draws ``(R, *shape)``, run r's slice from ``generators[r]``: a run's
    numbers do not depend on the other runs of its batch.

    A generator on the CPU gives the same numbers on every device: they are drawn on the CPU
    — into pinned memory when ``device`` is a GPU, then copied without blocking the host, so
    the step does not wait for the GPU. A generator on ``device`` itself draws there (no
    copy, faster for large inputs, but other numbers than the CPU's: a run is then
    reproducible on that device only).
    """
    import torch

    device = torch.device(device)
    gens = list(generators)
    where = gens[0].device if gens else torch.device("cpu")
    if where.type != "cpu":
        return torch.stack([torch.randn(shape, generator=g, device=where) for g in gens]).to(device=device,
                                                                                             dtype=dtype)
    draws = torch.empty((len(gens), *shape), pin_memory=device.type == "cuda")
    for r, g in enumerate(gens):
        torch.randn(shape, generator=g, out=draws[r])
    return draws.to(device=device, dtype=dtype, non_blocking=True)

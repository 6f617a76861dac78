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

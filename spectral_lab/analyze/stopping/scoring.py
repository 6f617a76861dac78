"""Scoring stopping rules on a trajectory: `stop_file` runs a rule of `RULES` on every run (or
pair of runs) and scores its choice against the clean target, which the rules never see."""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from spectral_lab.analyze._io import (Result, at_iterations, frame_iterations, json_float, open_reader,
                                     require_operator, run_frames)
from spectral_lab.analyze.psnr import default_data_range, psnr, run_psnr_from_curve
from spectral_lab.analyze.stopping.rules import RULES
from spectral_lab.analyze.stopping.sure import check_twin
from spectral_lab.errors import AnalysisError

__all__ = ["stop_file", "stop_choice", "StopEntry", "StopResult", "StopChoice"]


@dataclass(frozen=True)
class StopEntry(Result):
    """One rule decision: a run (or a pair of runs) and how good the chosen output is.

    ``psnr`` and ``best_psnr`` score the same output, the run's frame or, for a pair, the
    average of its two frames, so ``gap = best_psnr - psnr >= 0`` is the loss in dB of
    the rule against the oracle that knows the clean target.
    """

    runs: tuple[int, ...]
    seeds: tuple[dict, ...]
    iteration: int
    psnr: float
    run_psnr: tuple[float, ...]
    best_psnr: float
    best_iteration: int | None  # None without a clean reference (no oracle)

    @property
    def gap(self) -> float:
        return self.best_psnr - self.psnr

    def to_json(self) -> dict:
        return {
            "runs": list(self.runs),
            "seeds": [dict(s) for s in self.seeds],
            "iteration": self.iteration,
            "psnr": json_float(self.psnr),
            "run_psnr": [json_float(p) for p in self.run_psnr],
            "best_psnr": json_float(self.best_psnr),
            "best_iteration": self.best_iteration,
            "gap": json_float(self.gap),
        }


@dataclass(frozen=True)
class StopResult(Result):
    """`stop_file` result: the rule, its scalar parameters and one `StopEntry` each."""

    rule: str
    params: dict
    data_range: float
    entries: tuple[StopEntry, ...]

    def to_json(self) -> dict:
        """JSON-serialisable dict; non-finite PSNRs (exact fits) are ``null``."""
        return {
            "rule": self.rule,
            "params": dict(self.params),
            "data_range": self.data_range,
            "results": [e.to_json() for e in self.entries],
        }


def stop_file(
    traj_or_path: Any,
    rule: str,
    *,
    chunk: int | None = None,
    data_range: float | None = None,
    **params: Any,
) -> StopResult:
    """Run a stopping rule over every run (or pair of runs) of a trajectory and score its choices.

    One pass over the file: each frame is read once, fed to the rule and scored against
    the clean target (``traj.target``, for evaluation only; the rules see outputs and what
    their ``needs`` name). After the rule has decided, the rest of the run is still read to
    complete the oracle (best PSNR over all iterations).

    Parameters
    ----------
    traj_or_path : str, os.PathLike or open trajectory
    rule : str
        An entry of `RULES`.
    chunk : int or None
        Frames per read (``traj.iter_frames``); memory O(chunk * frame) plus the rule's.
    data_range : float or None
        PSNR range; None uses `spectral_lab.analyze.psnr.default_data_range`.
    **params
        The rule's options (e.g. ``window=100, patience=1000`` for es_wmv) and inputs:
        ``sigma`` in signal units for rules that need it (default: the file's
        ``config["degrade"]["sigma"] / 255``, the convention of `spectral_lab.signals`);
        ``clip`` (default (0, 1) for images, which `spectral_lab.signals.degrade` clips,
        None for 1D signals); ``twin`` (path or open trajectory of the file's twin,
        recorded with ``degrade.probe > 0``, see `probe_dof`) for rules that need one;
        options a rule declares ``per_run`` (SURE's ``dof``) are indexable by run; pair rules
        take ``pairs``, a list of (run_a, run_b), by default (0, 1), (2, 3), ... (an odd last
        run is left out).

    Returns
    -------
    StopResult
        ``params`` keeps the scalar (JSON) parameters only (sigma as used); arrays and the
        twin are not copied into it (the twin's path is, under ``twin``).

    Raises
    ------
    AnalysisError
        Unknown rule or option, a pair rule on fewer than two runs, SURE on a file whose
        recorded noise is not white, a twin that is not this file's twin.
    """
    entry, needs, params, twin, pairs, inputs, json_params = _rule_request(rule, params)
    with contextlib.ExitStack() as stack:
        traj = stack.enter_context(open_reader(traj_or_path))
        # without a clean reference (a blend, a degraded image alone) the rule still decides;
        # only the oracle and the scores are missing (NaN, null in JSON)
        target = np.asarray(traj.target, dtype=np.float64) if getattr(traj, "has_target", True) else None
        if data_range is None:
            data_range = 1.0 if target is None else default_data_range(traj.kind, target)
        twin_traj = _file_inputs(traj, stack, rule, entry, needs, inputs, twin, json_params)
        per_run = set(entry.get("per_run", ()))
        if "pair" in needs:
            entries = _stop_pairs(traj, entry.obj, rule, pairs, params, inputs, chunk, target, data_range)
        else:
            entries = []
            for r in range(traj.n_runs):
                run_inputs = dict(inputs)
                if twin_traj is not None:
                    run_inputs["twin_frames"] = run_frames(twin_traj, r, chunk)
                options = {k: (v[r] if k in per_run and v is not None else v) for k, v in params.items()}
                entries.append(_stop_run(traj, r, entry.obj, options, run_inputs, chunk, target, data_range))
    return StopResult(rule, json_params, float(data_range), tuple(entries))


@dataclass(frozen=True)
class StopChoice(Result):
    """`stop_choice`: where a rule stops one run (or the pair that holds it), without the oracle.

    ``runs``: the run, or the two runs of a pair rule, whose average is the rule's output;
    ``frame``: the index of the chosen stored frame; ``iteration``: its real iteration."""

    rule: str
    params: dict
    runs: tuple[int, ...]
    frame: int
    iteration: int


def stop_choice(traj_or_path: Any, rule: str, *, run: int = 0, chunk: int | None = None,
                **params: Any) -> StopChoice:
    """The iteration where a stopping rule of `RULES` stops run ``run``, reading only what the rule
    reads: no clean target is needed (files recorded with ``--observed`` alone), and no PSNR is
    computed. Pair rules decide for the pair that holds ``run`` (runs 0 and 1, 2 and 3, ...; or
    ``pairs``). Parameters as for `stop_file`; its errors, plus a run outside the file or without
    a partner for a pair rule."""
    entry, needs, params, twin, pairs, inputs, json_params = _rule_request(rule, params)
    with contextlib.ExitStack() as stack:
        traj = stack.enter_context(open_reader(traj_or_path))
        if not 0 <= run < traj.n_runs:
            raise AnalysisError(f"the file has runs 0..{traj.n_runs - 1}; there is no run {run}")
        twin_traj = _file_inputs(traj, stack, rule, entry, needs, inputs, twin, json_params)
        if "pair" in needs:
            pairs = pairs if pairs is not None else [(a, a + 1) for a in range(0, traj.n_runs - 1, 2)]
            pair = next((tuple(p) for p in pairs if run in p), None)
            if pair is None:
                listed = ", ".join(map(str, pairs)) or "none"
                raise AnalysisError(f"the {rule} rule decides for pairs of runs ({listed} in this file of "
                                    f"{traj.n_runs} run(s)); run {run} is in none")
            index = int(entry.obj(run_frames(traj, pair[0], chunk), run_frames(traj, pair[1], chunk),
                                  **inputs, **params))
            runs = pair
        else:
            if twin_traj is not None:
                inputs["twin_frames"] = run_frames(twin_traj, run, chunk)
            per_run = set(entry.get("per_run", ()))
            options = {k: (v[run] if k in per_run and v is not None else v) for k, v in params.items()}
            index = int(entry.obj(run_frames(traj, run, chunk), **inputs, **options))
            runs = (run,)
        iteration = at_iterations(frame_iterations(traj, runs[0]), index)
    return StopChoice(rule, json_params, tuple(runs), index, iteration)


def _rule_request(rule: str, params: dict):
    """The checks of a rule's request that need no file: the rule, its options and inputs.
    Returns ``(entry, needs, options, twin, pairs, inputs, json_params)``."""
    if rule not in RULES:
        raise AnalysisError(f"unknown stopping rule {rule!r}; known: {sorted(RULES)}")
    entry = RULES[rule]
    needs = set(entry.get("needs", ()))
    params = dict(params)
    twin = params.pop("twin", None)
    pairs = params.pop("pairs", None)
    if twin is not None and "twin" not in needs:
        raise AnalysisError(f"a twin file is used by the sure rule only, not by {rule!r}")
    if pairs is not None and "pair" not in needs:
        raise AnalysisError(f"pairs are used by the pair rules only, not by {rule!r}")
    inputs = {k: params.pop(k) for k in ("sigma", "clip") if k in params}
    for key in inputs:
        if key not in needs:
            raise AnalysisError(f"{key} is used by the rules that need it ({', '.join(_needing(key))}), not by {rule!r}")
    unknown = sorted(set(params) - set(RULES.options(rule)))
    if unknown:
        raise AnalysisError(f"the {rule} rule has no option {', '.join(unknown)}; its options are "
                            f"{', '.join(RULES.options(rule)) or 'none'}")
    json_params = {k: v for k, v in params.items() if isinstance(v, (bool, int, float, str))}
    return entry, needs, params, twin, pairs, inputs, json_params


def _file_inputs(traj, stack, rule, entry, needs, inputs, twin, json_params):
    """Check the rule applies to the file and fill ``inputs`` with what it needs from it
    (observation, σ, clip range, the twin's perturbation). Returns the open twin or None."""
    if entry.get("operators") is not None:
        require_operator(traj, tuple(entry["operators"]), f"the {rule} rule")
    if rule == "sure":
        _check_white_noise(traj)
    if "observed" in needs:
        inputs["observed"] = traj.observed
    if "sigma" in needs:
        if inputs.get("sigma") is None:
            inputs["sigma"] = _recorded_sigma(traj)
        json_params["sigma"] = float(inputs["sigma"])
    if "clip" in needs and "clip" not in inputs:
        inputs["clip"] = (0.0, 1.0) if traj.kind == "image" else None
    if twin is None:
        return None
    if isinstance(twin, (str, os.PathLike)):
        json_params["twin"] = str(twin)
    twin_traj = stack.enter_context(open_reader(twin))
    inputs["delta"], inputs["epsilon"] = check_twin(traj, twin_traj)
    return twin_traj


def _needing(key: str) -> list[str]:
    return [n for n, e in RULES.items() if key in e.get("needs", ())]


def _stop_run(traj, r, fn, options, inputs, chunk, target, data_range) -> StopEntry:
    curve: list[np.ndarray] = []

    def scored_frames() -> Iterator[np.ndarray]:
        for _, block in traj.iter_frames(r, chunk=chunk):
            curve.append(_score(block, target, data_range))
            yield from block

    frames = scored_frames()
    index = int(fn(frames, **inputs, **options))
    its = frame_iterations(traj, r)
    if target is None:
        return StopEntry(runs=(r,), seeds=(dict(traj.run_seeds(r)),), iteration=at_iterations(its, index),
                         psnr=float("nan"), run_psnr=(float("nan"),), best_psnr=float("nan"), best_iteration=None)
    for _ in frames:  # finish the oracle curve
        pass
    oracle = run_psnr_from_curve(r, traj.run_seeds(r), np.concatenate(curve), its)
    chosen = float(oracle.psnr[index])
    return StopEntry(
        runs=(r,), seeds=(oracle.seeds,), iteration=at_iterations(its, index), psnr=chosen, run_psnr=(chosen,),
        best_psnr=oracle.best_psnr, best_iteration=oracle.best_iteration,
    )


def _score(frames: np.ndarray, target: np.ndarray | None, data_range: float) -> np.ndarray:
    """PSNR of each frame, NaN without a clean reference."""
    return np.full(len(frames), np.nan) if target is None else psnr(frames, target, data_range)


def _stop_pairs(traj, fn, rule, pairs, options, inputs, chunk, target, data_range) -> list[StopEntry]:
    if pairs is None:
        if traj.n_runs < 2:
            raise AnalysisError(f"the {rule} rule needs at least two runs of the same observation")
        pairs = [(a, a + 1) for a in range(0, traj.n_runs - 1, 2)]
    entries = []
    for a, b in pairs:
        if not (0 <= a < traj.n_runs and 0 <= b < traj.n_runs and a != b):
            raise AnalysisError(f"bad pair ({a}, {b}) for a file of {traj.n_runs} runs")
        scores: list[np.ndarray] = []  # per iteration: psnr of a, of b, of their average

        def scored_pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for fa, fb in zip(run_frames(traj, a, chunk), run_frames(traj, b, chunk)):
                fa, fb = fa.astype(np.float64), fb.astype(np.float64)
                scores.append(_score(np.stack([fa, fb, 0.5 * (fa + fb)]), target, data_range))
                yield fa, fb

        stream = scored_pairs()
        # the rule reads the two streams in lockstep: tee keeps one pair in memory at a time
        left, right = itertools.tee(stream)
        index = int(fn((fa for fa, _ in left), (fb for _, fb in right), **inputs, **options))
        for _ in stream:  # finish the oracle curve
            pass
        table = np.array(scores)
        its = frame_iterations(traj, a)
        if target is None:
            entries.append(StopEntry(runs=(a, b), seeds=(dict(traj.run_seeds(a)), dict(traj.run_seeds(b))),
                                     iteration=at_iterations(its, index), psnr=float("nan"),
                                     run_psnr=(float("nan"), float("nan")), best_psnr=float("nan"),
                                     best_iteration=None))
            continue
        oracle = run_psnr_from_curve(a, {}, table[:, 2], its)  # the oracle of the average
        entries.append(
            StopEntry(
                runs=(a, b), seeds=(dict(traj.run_seeds(a)), dict(traj.run_seeds(b))),
                iteration=at_iterations(its, index), psnr=float(table[index, 2]),
                run_psnr=(float(table[index, 0]), float(table[index, 1])),
                best_psnr=oracle.best_psnr, best_iteration=oracle.best_iteration,
            )
        )
    return entries


def _recorded_sigma(traj) -> float:
    """The file's noise level in signal units: config degrade.sigma is in 1/255 units."""
    if traj.config.get("task", "denoise") != "denoise":
        raise AnalysisError("this file fits a clean signal (task 'fit'): a rule that needs the noise "
                            "level has none to read; give it (--sigma, 0-255 scale)")
    sigma = (traj.config.get("degrade") or {}).get("sigma")
    if sigma is None:
        raise AnalysisError("no degrade.sigma in the file's config: pass sigma (signal units)")
    return float(sigma) / 255.0


def _check_white_noise(traj) -> None:
    noise = (traj.config.get("degrade") or {}).get("noise")
    if noise is not None and noise != "white":
        raise AnalysisError(f"SURE assumes white Gaussian noise; this file's noise is {noise!r}")

"""Stopping rules that need no ground truth: each picks an iteration from recorded outputs.

A rule is a function of frame streams (any iterable of arrays of one shape: a
(T, *shape) array, an h5py dataset, a generator over file chunks) returning the chosen
iteration (frame index, frame 0 = the untrained network). `RULES` is their registry, with
what each needs; `stop_file` runs one over every run of a trajectory and scores the choice
against the clean target, which the rules never see.

- `rules`: es_wmv (Wang et al., TMLR 2023), discrepancy (Morozov), and two rules of ours on
  pairs of runs, pair_divergence and pair_discrepancy;
- `sure`: SURE (Jo, Chun, Choi, ICCV 2021) with its degrees of freedom from a twin file;
- `scoring`: `stop_file`, `StopEntry`, `StopResult`; `stop_choice`, a rule's stop for one run
  without the oracle (no clean target needed, no scores computed);
- `curves`: `pair_curves_file`, what the rules watch along two runs (for figures).
"""

from spectral_lab.analyze.stopping.rules import (NEEDS, RULES, clipped_noise_variance, discrepancy_rule, es_wmv,
                                                 first_valley, pair_disagreement, pair_discrepancy_rule,
                                                 pair_divergence_rule, wmv_variance)
from spectral_lab.analyze.stopping.curves import pair_curves_file
from spectral_lab.analyze.stopping.scoring import StopChoice, StopEntry, StopResult, stop_choice, stop_file
from spectral_lab.analyze.stopping.sure import (check_twin, probe_dof, sure, sure_curve, sure_curve_file, sure_rule,
                                                sure_score)

__all__ = ["RULES", "NEEDS", "es_wmv", "wmv_variance", "sure", "sure_rule", "sure_curve", "sure_curve_file", "sure_score", "probe_dof",
           "check_twin", "pair_divergence_rule", "pair_disagreement", "pair_discrepancy_rule", "discrepancy_rule",
           "clipped_noise_variance", "first_valley", "stop_file", "stop_choice", "StopEntry", "StopResult",
           "StopChoice", "pair_curves_file"]

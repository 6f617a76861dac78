"""``analyze stop``: a ground-truth-free stopping rule of the registry, and its gap to the oracle.

The ``--rule`` choices, and which of ``--sigma`` and ``--twin`` a rule takes, come from
`spectral_lab.analyze.stopping.RULES` (each rule's ``needs``); a rule's options go through
``--rule-opt KEY=VALUE`` (``--window`` and ``--patience`` are ES-WMV's, as named flags).
"""

from __future__ import annotations

from .._common import dump, key_value, registry_help
from . import analyzer, save_figure


def _args(p) -> None:
    from ...analyze.stopping.rules import RULES

    p.add_argument("file")
    p.add_argument("--rule", required=True, choices=RULES.names(), metavar="RULE",
                   help=registry_help(RULES, "the rule"))
    p.add_argument("--window", type=int, help="es_wmv: frames in the running variance (default 100)")
    p.add_argument("--patience", type=int, help="es_wmv: iterations without a new minimum (default 1000)")
    p.add_argument("--rule-opt", type=key_value, action="append", metavar="KEY=VALUE",
                   help="an option of the rule (repeatable), e.g. --rule-opt rise=3")
    needing = lambda key: ", ".join(n for n, e in RULES.items() if key in e.get("needs", ()))  # noqa: E731
    p.add_argument("--twin", help=f"{needing('twin')}: the file's twin, recorded with the same settings and "
                                  "--probe EPS")
    p.add_argument("--sigma", type=float,
                   help=f"{needing('sigma')}: noise std on the 0-255 scale, as record's --sigma (default: the "
                        "file's); values below 1 are refused as signal units")


def _params(a) -> dict:
    """The rule's options and inputs from the flags, refusing what the rule does not take."""
    from ...analyze.stopping.rules import RULES
    from ...errors import AnalysisError

    entry = RULES[a.rule]
    needs = set(entry.get("needs", ()))
    defaults = {k: v for k, v in RULES.options(a.rule).items() if isinstance(v, (bool, int, float, str))}
    given = dict(a.rule_opt or [])
    for flag in ("window", "patience"):
        if getattr(a, flag) is not None:
            given[flag] = getattr(a, flag)
    unknown = sorted(set(given) - set(RULES.options(a.rule)))
    if unknown:
        raise AnalysisError(f"the {a.rule} rule has no option {', '.join(unknown)}; its options are "
                            f"{', '.join(RULES.options(a.rule)) or 'none'}")
    params = {**defaults, **given}
    for flag, key in (("sigma", "sigma"), ("twin", "twin")):
        if getattr(a, flag) is not None and key not in needs:
            users = [n for n, e in RULES.items() if key in e.get("needs", ())]
            who = f"the {users[0]} rule only" if len(users) == 1 else f"the rules {', '.join(users)}"
            raise AnalysisError(f"--{flag} is used by {who}, not by {a.rule}")
    if a.sigma is not None:
        if not a.sigma >= 1:
            raise AnalysisError(f"--sigma is on the 0-255 scale (the file's noise is degrade.sigma, e.g. 25); "
                                f"{a.sigma:g} looks like signal units: pass {a.sigma * 255:g}")
        params["sigma"] = a.sigma / 255.0
    if a.twin is not None:
        params["twin"] = a.twin
    return params


def _plot_args(p) -> None:
    from ...analyze.stopping.rules import RULES

    p.add_argument("file")
    p.add_argument("--rules", type=lambda t: [v.strip() for v in t.split(",") if v.strip()], metavar="R1,R2,...",
                   help="rules to draw (default: every rule that applies to the file); "
                        + registry_help(RULES, "rules"))
    p.add_argument("--twin", help="sure: the file's twin, recorded with the same settings and --probe EPS "
                                  "(without it, sure is left out)")
    p.add_argument("--sigma", type=float, help="noise std on the 0-255 scale for the rules that need it "
                                               "(default: the file's)")


def plot_stop(a) -> int:
    """Every rule's stop on the PSNR curves of the file's runs (rules at their default options)."""
    from ...analyze.psnr import psnr_file
    from ...analyze.stopping import stop_file
    from ...analyze.stopping.rules import RULES
    from ...errors import AnalysisError
    from ...plot.denoise import stopping_rules_figure

    asked = a.rules is not None
    rules = a.rules if asked else [r for r in RULES.names() if r != "sure" or a.twin is not None]
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise AnalysisError(f"unknown stopping rule {unknown[0]!r}; choose from {', '.join(RULES.names())}")
    scores = psnr_file(a.file, with_ssim=False)
    stops = {}
    for rule in rules:
        needs = set(RULES[rule].get("needs", ()))
        params = {}
        if a.sigma is not None and "sigma" in needs:
            params["sigma"] = a.sigma / 255.0
        if a.twin is not None and "twin" in needs:
            params["twin"] = a.twin
        try:
            stops[rule] = stop_file(a.file, rule, **params)
        except AnalysisError as exc:
            if asked:
                raise
            print(f"left out {rule}: {exc}")
    if not stops:
        raise AnalysisError(f"no stopping rule applies to {a.file}")
    return save_figure(a, lambda title: stopping_rules_figure(scores, stops, title=title))


@analyzer("stop", help="ground-truth-free stopping rules and their gap to the oracle", add_arguments=_args,
          plot=plot_stop, plot_arguments=_plot_args)
def analyze_stop(a) -> int:
    from ...analyze.stopping import stop_file

    res = stop_file(a.file, a.rule, **_params(a))
    if a.json:
        dump({"file": str(a.file), **res.to_json()})
        return 0
    print(f"{a.file}: stopping rule {res.rule} {res.params}")
    for e in res.entries:
        if e.best_iteration is None:
            print(f"  runs {','.join(map(str, e.runs))}: stop at {e.iteration} (no clean reference: no score, no oracle)")
            continue
        print(f"  runs {','.join(map(str, e.runs))}: stop at {e.iteration} ({e.psnr:.2f} dB); oracle "
              f"{e.best_psnr:.2f} dB at {e.best_iteration}; gap {e.gap:.2f} dB")
    return 0

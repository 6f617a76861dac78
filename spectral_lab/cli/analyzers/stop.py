"""``analyze stop``: a ground-truth-free stopping rule of the registry, and its gap to the oracle.

The ``--rule`` choices, and which of ``--sigma`` and ``--twin`` a rule takes, come from
`spectral_lab.analyze.stopping.RULES` (each rule's ``needs``); a rule's options go through
``--rule-opt KEY=VALUE`` (``--window`` and ``--patience`` are ES-WMV's, as named flags).
"""

from __future__ import annotations

from .._common import dump, key_value, registry_help
from . import analyzer


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


@analyzer("stop", help="ground-truth-free stopping rules and their gap to the oracle", add_arguments=_args)
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

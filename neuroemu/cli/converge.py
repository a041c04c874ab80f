"""``neuroemu converge``: the paper's Fig. 2 convergence experiment (the protocol is
:mod:`neuroemu.learn.converge`)."""

from __future__ import annotations

import argparse
import time

from ..files import replacing, write_text
from ..learn.converge import SCHEMES, Protocol, experiment, plot, scores
from .options import check_outputs, check_plot, dumps, integer, seed, subset

EXAMPLE = """example:
  neuroemu converge --runs 20 --json out.json --plot docs/img/fig2.png"""


def add_converge_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EXAMPLE
    p.add_argument("--runs", type=integer(1), default=20, help="random networks (default 20)")
    p.add_argument("--seed", type=seed, default=0, help="experiment seed (default 0)")
    p.add_argument("--schemes", type=subset(SCHEMES, "scheme"), default=SCHEMES,
                   help="comma-separated subset of: " + ", ".join(SCHEMES))
    p.add_argument("--json", metavar="FILE", help="write the scores as JSON")
    p.add_argument("--plot", metavar="FILE.png", default="converge.png",
                   help="write the figure (default converge.png; '' for none)")
    p.add_argument("--force", action="store_true", help="replace existing --json/--plot files "
                   "(without it an existing one, the default converge.png included, is refused "
                   "before the experiment starts)")


def converge_main(args) -> int:
    names = list(args.schemes)
    check_outputs([("--json", args.json or None), ("--plot", args.plot or None)],
                  force=args.force)
    check_plot(args.plot, "--plot")
    proto = Protocol()
    t0 = time.perf_counter()
    spikes = {}
    curves = experiment(args.runs, args.seed, names, proto, spikes=spikes)
    res = scores(curves, proto, spikes)
    wall = time.perf_counter() - t0
    print(f"{'scheme':<24}{'score':>11}{'err@250':>11}{'err@500':>11}{'spikes/sample':>15}")
    for n, r in sorted(res.items(), key=lambda kv: kv[1]["score"]):
        print(f"{n:<24}{r['score']:>11.5f}{r['error_at_250']:>11.5f}{r['error_at_500']:>11.5f}"
              f"{r.get('spikes_per_sample', float('nan')):>15,.1f}")
    print(f"{args.runs} networks, {wall:.1f} s")
    if args.json:
        write_text(args.json, dumps({"schemes": res, "runs": args.runs,
                                          "seed": args.seed, "wall_s": round(wall, 2)},
                                         indent=1))
    if args.plot:
        with replacing(args.plot) as tmp:
            plot(curves, proto, tmp)
        print(f"figure: {args.plot}")
    return 0

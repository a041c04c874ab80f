"""``neuroemu converge``: the paper's Fig. 2 convergence experiment (the protocol is
:mod:`neuroemu.learn.converge`)."""

from __future__ import annotations

import argparse
import json
import time

from ..errors import EngineError
from ..learn.converge import SCHEMES, Protocol, experiment, plot, scores

EXAMPLE = """example:
  neuroemu converge --runs 20 --json out.json --plot docs/img/fig2.png"""


def add_converge_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EXAMPLE
    p.add_argument("--runs", type=int, default=20, help="random networks (default 20)")
    p.add_argument("--seed", type=int, default=0, help="experiment seed (default 0)")
    p.add_argument("--schemes", default=",".join(SCHEMES),
                   help="comma-separated subset of: " + ", ".join(SCHEMES))
    p.add_argument("--json", metavar="FILE", help="write the scores as JSON")
    p.add_argument("--plot", metavar="FILE.png", default="converge.png",
                   help="write the figure (default converge.png; '' for none)")


def converge_main(args) -> int:
    names = [s.strip() for s in args.schemes.split(",") if s.strip()]
    for n in names:
        if n not in SCHEMES:
            raise EngineError(f"--schemes: unknown scheme {n!r} (known: {', '.join(SCHEMES)})")
    if args.runs < 1:
        raise EngineError(f"--runs: must be a positive integer (got {args.runs})")
    proto = Protocol()
    t0 = time.perf_counter()
    curves = experiment(args.runs, args.seed, names, proto)
    res = scores(curves, proto)
    wall = time.perf_counter() - t0
    print(f"{'scheme':<24}{'score':>11}{'err@250':>11}{'err@500':>11}")
    for n, r in sorted(res.items(), key=lambda kv: kv[1]["score"]):
        print(f"{n:<24}{r['score']:>11.5f}{r['error_at_250']:>11.5f}{r['error_at_500']:>11.5f}")
    print(f"{args.runs} networks, {wall:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"schemes": res, "runs": args.runs, "seed": args.seed,
                       "wall_s": round(wall, 2)}, f, indent=1)
    if args.plot:
        plot(curves, proto, args.plot)
        print(f"figure: {args.plot}")
    return 0

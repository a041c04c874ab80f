"""``neuroemu sweep SPEC.toml``: a design-space search (Optuna) whose trials train and
evaluate a network on Dask workers, resumable, with a results table, a Pareto-front plot and
the best networks as netlists (docs/sweep.md).

The work is :mod:`neuroemu.sweep` (spec, trials, study, outputs); this module reads the
options and prints.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from .options import dumps, integer

EXAMPLE = """examples:
  neuroemu sweep docs/sweeps/fewest-events.toml         (a local cluster, one worker per core)
  neuroemu sweep spec.toml --workers 4 --out runs/my-sweep
  neuroemu sweep spec.toml --scheduler tcp://10.0.0.1:8786      (a running Dask cluster)
  neuroemu sweep spec.toml --trials 200                         (resume, up to 200 trials)
  neuroemu sweep spec.toml --check                              (check the spec, run nothing)
  neuroemu sweep spec.toml --rerun 7                            (run trial 7 again here)

The folder (--out, default <spec name>-sweep) holds the study (study.journal): running the
same spec into it again resumes the sweep -- finished trials are never run again.  It also
gets results.csv, results.json, pareto.png and best/trial-NNNN/ (the netlists of the trials
on the Pareto front)."""


def add_sweep_arguments(p) -> None:
    p.epilog = EXAMPLE
    p.add_argument("spec", help="sweep specification (TOML; docs/sweep.md)")
    p.add_argument("--out", metavar="DIR", help="the sweep's folder: its study, tables, plot and "
                   "best netlists (default: <spec name>-sweep); an existing sweep there resumes")
    p.add_argument("--workers", type=integer(1), metavar="N",
                   help="worker processes of the local Dask cluster (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the trials on the Dask cluster "
                   "whose scheduler is at ADDRESS (tcp://HOST:PORT) instead")
    p.add_argument("--trials", type=integer(0), metavar="N", help="finished trials the study "
                   "should hold (default: the spec's sweep.trials); more than it holds resumes")
    p.add_argument("--data", metavar="DIR", help="dataset folder (default: the spec's "
                   "sweep.data, else $NEUROEMU_DATA or ../shared/datasets)")
    p.add_argument("--check", action="store_true", help="check the spec and print the search; "
                   "run nothing")
    p.add_argument("--report", action="store_true", help="write the tables, the plot and the "
                   "best netlists of the stored study; run no trial")
    p.add_argument("--rerun", type=integer(0), metavar="TRIAL", help="run a finished trial "
                   "again in this process from its recorded settings and seed, and compare")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _fmt(name: str, v) -> str:
    if v is None:
        return "-"
    if name == "validation_error":
        return f"{100 * v:.2f}%"
    if name == "joules_per_inference":
        return f"{v:.3g} J"
    return f"{v:.4g}"


def sweep_main(args) -> int:
    from ..errors import OptionError
    from ..sweep import load_spec
    spec = load_spec(args.spec)
    out = Path(args.out or f"{spec.name}-sweep")
    modes = [o for o, v in (("--check", args.check), ("--report", args.report),
                            ("--rerun", args.rerun is not None)) if v]
    if len(modes) > 1:
        raise OptionError(f"{modes[1]}: not with {modes[0]} (give one)")
    if args.check:
        return _check(spec, args)
    if args.rerun is not None:
        return _rerun(spec, out, args)
    from ..sweep.runner import run_sweep
    res = run_sweep(spec, out, workers=args.workers, scheduler=args.scheduler,
                    trials=0 if args.report else args.trials, data_dir=args.data,
                    progress=True, log=lambda line: print(line, flush=True))
    rows = res["rows"]
    if args.json:
        print(dumps({"out": str(out), "ran": res["ran"], "failed": res["failed"],
                     "resumed": res["resumed"], "requeued": res["requeued"],
                     "front": res["front"],
                     "trials": [{k: r.get(k) for k in ("trial", "state", *spec.objectives,
                                                       "pareto", "reference", "params",
                                                       "seed", "wall_seconds", "error")}
                                for r in rows]}, indent=1))
        return 0
    complete = [r for r in rows if r["state"] == "complete"]
    failed = [r for r in rows if r["state"] == "failed" and not r.get("error", "").startswith(
        "interrupted")]
    print(f"sweep {spec.name}: {len(rows)} trials in {out} ({len(complete)} complete, "
          f"{len(failed)} failed; {res['ran']} run now)")
    for r in failed[-3:]:
        print(f"  trial {r['trial']} failed: {r['error'][:200]}")
    front = [r for r in complete if r["pareto"]]
    front.sort(key=lambda r: [r[o] if r[o] is not None else math.inf
                              for o in reversed(spec.objectives)])
    if front:
        print("Pareto front" if len(spec.objectives) > 1 else "best trial")
        for r in front:
            figures = ", ".join(f"{o} {_fmt(o, r[o])}" for o in spec.objectives)
            values = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                               for k, v in r["params"].items())
            print(f"  trial {r['trial']}: {figures}  ({values})")
    ref = next((r for r in complete if r["reference"]), None)
    if ref is not None:
        print(f"reference (trial {ref['trial']}, {spec.reference_label}): " + ", ".join(
            f"{o} {_fmt(o, ref[o])}" for o in spec.objectives))
    wrote = ["results.csv", "results.json"] + (["pareto.png"] if complete else [])
    print(f"wrote {', '.join(str(out / w) for w in wrote)}"
          + (f", {len(front)} netlist(s) in {out / 'best'}" if front else ""))
    return 0


def _check(spec, args) -> int:
    print(f"sweep {spec.name}: {spec.base.name} ({'-'.join(map(str, spec.base.sizes))}) on "
          f"{spec.dataset}, {spec.trials} trials, sampler {spec.sampler}, seed {spec.seed}")
    print(f"objectives (minimised): {', '.join(spec.objectives)}")
    for p in spec.params:
        cond = (" when " + ", ".join(f"{f} = {v}" for f, v in p.when)) if p.when else ""
        print(f"  {p.field}: {p.describe()}{cond}")
    if spec.reference is not None:
        print(f"reference trial ({spec.reference_label}): " + ", ".join(
            f"{k} = {v}" for k, v in spec.reference.items()))
    print("the spec is valid")
    return 0


def _rerun(spec, out, args) -> int:
    from ..sweep.runner import rerun
    recorded, new = rerun(spec, out, args.rerun, data_dir=args.data)
    timing = {"wall_seconds", "train_seconds", "eval_seconds"}
    same = all(recorded.get(k) == new.get(k) for k in set(recorded) | set(new)
               if k not in timing)
    if args.json:
        print(dumps({"trial": args.rerun, "same": same, "recorded": recorded, "now": new},
                    indent=1))
        return 0 if same else 1
    print(f"trial {args.rerun} of {out} run again from its recorded settings and seed:")
    for k in spec.objectives + tuple(k for k in ("validation_errors", "syn_events_per_inference")
                                     if k not in spec.objectives):
        print(f"  {k}: recorded {recorded.get(k)!r}, now {new.get(k)!r}")
    print("every figure but the timings is the same" if same else
          "the figures differ from the recorded ones", file=sys.stdout if same else sys.stderr)
    return 0 if same else 1

"""``neuroemu inspect TRACE``: a table with one row per SONATA population (a layer of one
recorded sample): neurons, spikes, mean rate, fraction of neurons that spiked at least once, and
the time of the first and last spike.  ``--raster`` draws the spikes of one sample, layers
stacked; ``--states`` draws the probed variables (s, v, eps, phi) of chosen neurons over time.
Both are PNG files, drawn by :mod:`neuroemu.record.plots` (docs/trace-format.md, Pictures)."""

from __future__ import annotations


from .. import record
from ..errors import TraceError
from ..files import replacing
from ..record.plots import LINES_PER_POPULATION, raster, states
from .options import check_outputs, check_plot, dumps, integer, unique_names

INSPECT_EXAMPLE = """examples:
  neuroemu run mnist-binary-trained --steps 1000 --trace traces/run.h5 --probe hidden:0-9
  neuroemu inspect traces/run.h5
  neuroemu inspect traces/run.h5 --json
  neuroemu inspect traces/run.h5 --raster traces/raster.png --states traces/states.png"""


def add_inspect_arguments(p) -> None:
    p.epilog = INSPECT_EXAMPLE
    p.add_argument("trace", help="trace file written by 'neuroemu run --trace'")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--raster", metavar="FILE.png", help="draw a spike raster (layers stacked)")
    p.add_argument("--states", metavar="FILE.png", help="draw the probed variables over time")
    p.add_argument("--force", action="store_true",
                   help="replace existing --raster/--states files")
    p.add_argument("--sample", type=integer(0), default=None,
                   help="sample to draw (default: the first recorded)")
    p.add_argument("--start", type=integer(0), default=None, help="first step of the window")
    p.add_argument("--stop", type=integer(0), default=None,
                   help="step after the window (exclusive)")
    p.add_argument("--neurons", action="append", default=[], metavar="POP:LIST",
                   help=f"probed neurons for --states, e.g. hidden:0-3 (repeatable; default the "
                        f"first {LINES_PER_POPULATION} probed of each population)")


def inspect_main(args) -> int:
    outputs = [("--raster", args.raster), ("--states", args.states)]
    check_outputs(outputs, inputs=[args.trace], force=args.force)
    for option, path in outputs:
        check_plot(path, option)
    unique_names(args.neurons, "--neurons")
    with record.open(args.trace) as t:
        start, stop = t.span(args.start, args.stop)
        rows = t.summary(args.start, args.stop)
        sample = t.samples[0] if args.sample is None else args.sample
        if sample not in t.samples:
            raise TraceError(f"{args.trace}: --sample: sample {sample} was not recorded "
                             f"(recorded: {', '.join(map(str, t.samples))})")
        status = "complete" if t.complete else \
            f"INCOMPLETE: the writer did not finish; the file holds steps 1..{t.t_end}"
        if args.json:
            print(dumps({"trace": str(args.trace), "complete": t.complete,
                              "t_end": t.t_end, "dt_ms": t.dt, "window": [start, stop],
                              "batch": t.batch, "samples": t.samples, "populations": rows,
                              "probes": {k: {"node_ids": v["node_ids"].tolist(),
                                             "every": v["every"], "vars": v["vars"]}
                                         for k, v in t.probes.items()}}, indent=1))
        else:
            steps = f"steps {start}..{stop - 1} of {t.t_end}" if stop > start else "no steps"
            print(f"{args.trace}: {len(t.samples)} of {t.batch} samples, {steps} "
                  f"(dt = {t.dt:g} ms) -- {status}")
            print(f"  {'population':<14}{'neurons':>8}{'spikes':>11}{'rate/step':>10}"
                  f"{'rate Hz':>9}{'active':>8}   {'time span (ms)'}")
            for r in rows:
                span = "-" if r["first_ms"] is None else f"{r['first_ms']:g} .. {r['last_ms']:g}"
                print(f"  {r['population']:<14}{r['size']:>8}{r['spikes']:>11}"
                      f"{r['rate_per_step']:>10.4f}{r['rate_hz']:>9.1f}{r['active']:>8.1%}   "
                      f"{span}")
            for layer, pr in t.probes.items():
                print(f"  probes {layer}: {len(pr['node_ids'])} neurons, {', '.join(pr['vars'])}"
                      f" every {pr['every']} steps")
        if (args.raster or args.states) and stop <= start:
            raise TraceError(f"{args.trace}: nothing to draw: the window holds no steps (the "
                             f"trace holds steps 1..{t.t_end})")
        if args.raster:
            with replacing(args.raster) as tmp:
                raster(t, tmp, sample=sample, start=start, stop=stop)
            print(f"wrote {args.raster}")
        if args.states:
            with replacing(args.states) as tmp:
                states(t, tmp, sample=sample, start=start, stop=stop, neurons=args.neurons)
            print(f"wrote {args.states}")
    return 0

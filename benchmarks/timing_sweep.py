"""What timing does to the Fig. 2 network: clock jitter, bus latency and bus bandwidth.

For each of ``--runs`` random Fig. 2 networks (fig2: 500-500-10, Glorot
weights, 20 inputs uniform in [0, 1], random one-hot targets) the script runs the spiking
network for 250 free + 250 nudged steps (beta = 0.5) on the async engine under one timing
setting at a time, and reports

* the fixed-point error (docs/model.md section 5): per non-input layer the mean
  |s - s_fixed|, averaged over layers; against the free fixed point after step 250 and the
  nudged one after step 500; score = their mean.  The fixed points come from a long
  continuous run (2,500 + 2,500 steps, eps = 0.5) with the same W, x and y;
* the cosine similarity between the EP weight-and-bias update (first-order rule of
  model.md section 4, on the end-of-phase states) computed through the async engine and
  the one computed through the lockstep engine on the same network;
* the share of packets integrated after (late) or before (early) the tick they were meant
  for, and the bus utilisation.

The network is cut into circuit clusters of ``--cluster-size`` neurons (each with its own
clock; 1: every neuron its own circuit); one tick is ``--quanta`` quanta (100 by default; the
sweeps' settings are fractions of a tick, so they scale with it -- with one circuit per
neuron a batch is often a single packet and holds a channel at least one quantum, so a bus
carries at most ``quanta`` batches per tick: use 1000).  Writes a PNG and prints a markdown
table and JSON lines.

    .venv/bin/python benchmarks/timing_sweep.py --runs 3 --plot docs/img/timing_sweep.png
    .venv/bin/python benchmarks/timing_sweep.py --runs 3 --batch 10 --cluster-size 1 \
        --quanta 1000 --threads 2 --plot docs/img/timing_sweep_neuron.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from neuroemu.engines import compiled as compiler
from neuroemu import engines
from neuroemu import describe

ROOT = Path(__file__).resolve().parents[1]
Q = 100                       # quanta per tick (--quanta sets it)
FREE, NUDGED, BETA = 250, 250, 0.5

# name: (label, settings in hundredths of a tick (bandwidth: packets per tick), the
# [hardware] table of a setting, the setting as plotted)
SWEEPS = {
    "jitter": ("clock jitter (max, fraction of a tick)", [0, 1, 10, 25, 45],
               lambda v: {"clock": {"jitter": v * Q // 100}}, lambda v: v / 100),
    "drift": ("clock drift (max, fraction of a period)", [1, 2, 5, 10],
              lambda v: {"clock": {"drift": v * Q // 100}}, lambda v: v / 100),
    "phase": ("clock phase offsets (max, fraction of a tick)", [25, 50, 100, 200],
              lambda v: {"clock": {"phase": v * Q // 100}}, lambda v: v / 100),
    "latency": ("bus latency (ticks)", [50, 99, 100, 150, 200, 300],
                lambda v: {"bus": {"latency": v * Q // 100}}, lambda v: v / 100),
    "bandwidth": ("bus bandwidth (packets per tick)", [2000, 1000, 600, 450, 400, 350, 300, 200],
                  lambda v: {"bus": {"bandwidth": v}}, lambda v: v),
}
DEFAULT_SWEEPS = ("jitter", "phase", "latency", "bandwidth")


def continuous_fixed_points(W, x, y, steps=2500, eps=0.5):
    """Free and nudged fixed points of the continuous network (model.md sections 2, 5), in
    float64 with the input lag (layer 1 sees x from step 2); zero biases."""
    L = len(W)
    B = x.shape[0]
    s = [np.zeros((B, w.shape[1])) for w in W]          # layers 1..L
    prev_in = np.zeros_like(x)
    out = []
    for beta in (0.0, BETA):
        for _ in range(steps):
            layers = [prev_in] + s
            new = []
            for l in range(1, L + 1):
                d = np.clip(layers[l - 1], 0, 1) @ W[l - 1]
                if l < L:
                    d += np.clip(layers[l + 1], 0, 1) @ W[l].T
                if l == L and beta:
                    d += 2 * beta * (y - layers[l])
                new.append(np.clip((1 - eps) * layers[l] + eps * d, 0, 1))
            s, prev_in = new, x
        out.append([si.copy() for si in s])
    return out


def fixed_point_error(states, fixed):
    return float(np.mean([np.abs(a - b).mean() for a, b in zip(states, fixed)]))


def ep_update(x, s_free, s_nudged, beta=BETA):
    """First-order EP rule (model.md section 4), all layers' dW and db in one vector."""
    a, b = [x] + s_free, [x] + s_nudged
    B = x.shape[0]
    parts = []
    for l in range(len(s_free)):
        dw = (a[l].T @ (b[l + 1] - a[l + 1]) + (b[l] - a[l]).T @ a[l + 1]) / (beta * B)
        parts += [dw.ravel(), (b[l + 1] - a[l + 1]).mean(0) / beta]
    return np.concatenate(parts)


def cosine(u, v):
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def emulate(net, x, y, eng, hw=None, threads=1):
    kw = {} if hw is None else {"hardware": hw, "threads": threads}
    sess = engines.session(net, x, engine=eng, seed=1, **kw)
    sess.run(FREE)
    sf = [sess.state(l) for l in range(1, net.n_layers)]
    sess.run(NUDGED, beta=BETA, target=y)
    sn = [sess.state(l) for l in range(1, net.n_layers)]
    if eng == "async":
        rep = sess.bus_report()
        c = sess.counters()     # packets offered per tick and sample
        rep["load"] = float(c["packets"].sum() / c["elapsed"].sum() * Q)
    else:
        rep = {"late_fraction": 0.0, "utilisation": 0.0}
    return sf, sn, rep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="random networks (default 3)")
    ap.add_argument("--batch", type=int, default=20, help="inputs per network (default 20)")
    ap.add_argument("--cluster-size", type=int, default=100,
                    help="neurons per circuit cluster (default 100: 11 clocks)")
    ap.add_argument("--quanta", type=int, default=100, help="quanta per tick (default 100)")
    ap.add_argument("--threads", type=int, default=1, help="samples run at once (async)")
    ap.add_argument("--sweeps", default=",".join(DEFAULT_SWEEPS),
                    help=f"comma-separated subset of {', '.join(SWEEPS)}")
    ap.add_argument("--plot", default=str(ROOT / "docs" / "img" / "timing_sweep.png"))
    ap.add_argument("--json", default=None, help="also write all numbers to this file")
    ap.add_argument("--replot", metavar="FILE.json", help="only redraw the plot from a --json "
                    "file of an earlier run (with its --runs/--batch/--cluster-size)")
    args = ap.parse_args()
    global Q
    Q = args.quanta
    sweeps = [s for s in args.sweeps.split(",") if s]
    if args.replot:
        rows = json.loads(Path(args.replot).read_text())
        plot({(r.pop("sweep"), r.pop("setting")): r for r in rows}, sweeps, args)
        return 0
    from tqdm import tqdm

    net = compiler.build(describe.load(ROOT / "neuroemu" / "data" / "netlists" / "fig2.toml"))
    sizes = net.sizes
    settings = [("lockstep", None, None)] + [
        (name, v, {"cluster_size": args.cluster_size, "quanta": Q, **SWEEPS[name][2](v)})
        for name in sweeps for v in SWEEPS[name][1]]
    settings.insert(1, ("ideal", 0, {"cluster_size": args.cluster_size, "quanta": Q}))
    res = {(n, v): {"free": [], "nudged": [], "score": [], "cos": [], "late": [], "early": [], "util": [], "load": []}
           for n, v, _ in settings}
    t0 = time.time()
    bar = tqdm(total=args.runs * len(settings), disable=not sys.stderr.isatty(), desc="sweep")
    for r in range(args.runs):
        rng = np.random.default_rng(1000 + r)
        W = []
        for l in range(len(sizes) - 1):
            lim = np.sqrt(6.0 / (sizes[l] + sizes[l + 1]))
            W.append(rng.uniform(-lim, lim, (sizes[l], sizes[l + 1])).astype(np.float32))
            net.set_weights(l, W[-1])
        x = rng.random((args.batch, sizes[0]))
        y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], args.batch)]
        fixed = continuous_fixed_points([w.astype(np.float64) for w in W], x, y)
        ref_update = None
        for name, v, hw in settings:
            sf, sn, rep = emulate(net, x, y, "lockstep" if hw is None else "async", hw,
                                  args.threads)
            upd = ep_update(x, sf, sn)
            if ref_update is None:
                ref_update = upd
            d = res[(name, v)]
            ef, en = fixed_point_error(sf, fixed[0]), fixed_point_error(sn, fixed[1])
            d["free"].append(ef)
            d["nudged"].append(en)
            d["score"].append((ef + en) / 2)
            d["cos"].append(cosine(upd, ref_update))
            d["late"].append(rep["late_fraction"])
            d["early"].append(rep.get("early_fraction", 0.0))
            d["util"].append(rep["utilisation"])
            d["load"].append(rep.get("load", 0.0))
            bar.update()
    bar.close()
    mean = {k: {m: float(np.mean(vals)) for m, vals in d.items()} for k, d in res.items()}
    if mean[("ideal", 0)]["cos"] != 1.0 or mean[("ideal", 0)]["score"] != mean[("lockstep", None)]["score"]:
        print("warning: the ideal async setting does not reproduce lockstep", file=sys.stderr)

    for (name, v), m in mean.items():
        print(json.dumps({"name": f"timing_{name}", "setting": v, **{k: round(x, 6)
                                                                       for k, x in m.items()}}))
    # markdown table
    print(f"\nFig. 2 network (500-500-10), {args.runs} random networks x {args.batch} inputs, "
          f"{FREE} free + {NUDGED} nudged steps, clusters of {args.cluster_size} neurons, "
          f"1 tick = {Q} quanta; the spikes offer {mean[('ideal', 0)]['load']:.0f} packets per "
          f"tick to the bus ({time.time() - t0:.0f} s)\n")
    print("| timing | setting | error t=250 | error t=500 | score | cos(EP update, lockstep) "
          "| packets late / early | bus utilisation |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, v), m in mean.items():
        if name == "lockstep":
            label, val = "lockstep engine", "-"
        elif name == "ideal":
            label, val = "async, ideal", "shared clock, 0 latency, unlimited"
        else:
            label, val = SWEEPS[name][0], f"{SWEEPS[name][3](v):g}"
        print(f"| {label} | {val} | {m['free']:.4f} | {m['nudged']:.4f} | {m['score']:.4f} | "
              f"{m['cos']:.4f} | {100 * m['late']:.1f}% / {100 * m['early']:.1f}% | "
              f"{100 * m['util']:.1f}% |")
    plot(mean, sweeps, args)
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"sweep": n, "setting": v, **m} for (n, v), m in mean.items()], indent=1))
    return 0


def plot(mean, sweeps, args) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    base = mean[("lockstep", None)]
    load = mean[("ideal", 0)]["load"]
    fig, axes = plt.subplots(2, len(sweeps), figsize=(4.2 * len(sweeps), 6.4), squeeze=False,
                             sharey="row")
    for i, name in enumerate(sweeps):
        label, values, _, scale = SWEEPS[name]
        xs = [scale(v) for v in values]
        ms = [mean[(name, v)] for v in values]
        ax = axes[0, i]
        ax.plot(xs, [m["free"] for m in ms], "o-", label="free phase (t = 250)")
        ax.plot(xs, [m["nudged"] for m in ms], "s-", label="nudged phase (t = 500)")
        ax.axhline(base["free"], color="C0", ls=":", lw=1)
        ax.axhline(base["nudged"], color="C1", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax2 = axes[1, i]
        ax2.plot(xs, [m["cos"] for m in ms], "o-", color="C2")
        ax2.axhline(1.0, color="gray", ls=":", lw=1)
        ax2.set_xlabel(label)
        ax2.grid(alpha=0.3)
        if name == "bandwidth":
            for a in (ax, ax2):
                a.set_xscale("log")
                ticks = [v for v in values if v not in (450, 350)]
                a.set_xticks(ticks, [str(v) for v in ticks], fontsize=8)
                a.minorticks_off()
                a.invert_xaxis()
                a.axvline(load, color="gray", ls="--", lw=1)
            ax.text(load, ax.get_ylim()[1], f" offered load\n {load:.0f} packets/tick",
                    fontsize=8, va="top", color="gray")
    axes[0, 0].set_ylabel("fixed-point error\n(dotted: lockstep engine)")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].set_ylabel("cosine(EP update async,\nEP update lockstep)")
    who = "one circuit per neuron" if args.cluster_size == 1 else \
        f"clusters of {args.cluster_size} neurons"
    fig.suptitle(f"Fig. 2 network on the async bus engine: what timing does "
                 f"({args.runs} networks x {args.batch} inputs, {who})", fontsize=11)
    fig.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    raise SystemExit(main())

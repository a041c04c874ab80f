"""Trace writing: throughput in spike events per second, and memory of long traced runs.

* ``trace_write`` (spikes/s): :class:`neuroemu.record.TraceWriter` turning engine spike records
  into SONATA (timestamps, node_ids) datasets -- compressed, checksummed, committed every
  second.  The input is a real spike record of the 784-500-10 binary network (batch 4, 500
  steps, random inputs) appended again and again with advancing clocks until ``--spikes``
  events, including creating and closing the file.  Baseline, measured in the same run: the
  same events extracted the same way and written raw with ``ndarray.tofile`` (no HDF5, no
  compression, no checksums) -- what the HDF5 layer and compression cost.  ``spikes_per_cpu_second`` divides by the process's CPU time instead.
* ``trace_write_memory_growth`` (MB): growth of the resident memory of a fresh process while it
  writes ``--spikes`` events (peak minus the value after the first append).  Baseline: the
  memory that holding those spikes as (timestamp, node id) pairs would take (16 bytes each).
* ``run_trace_probe_every_2_peak_memory`` (MB): peak resident memory of ``neuroemu run
  mnist-binary --steps 100000 --trace ... --probe hidden:0-9 --probe-every 2`` (an engine call
  every step or two).  Baseline: the same with 10^4 steps; the ratio should be ~1 (memory flat
  in run length; before run_traced merged the session's Phase records it grew ~0.9 KB per call).
* ``run_trace_peak_memory`` (MB): peak resident memory of ``neuroemu run
  mnist-binary --batch 4 --steps N --trace ...`` (about 10^7 spikes for N = 5000).
  Baseline: the same command without ``--trace``.  ``run_trace_peak_memory_4x_steps``: the same
  traced run with 4 N steps (4x the spikes); baseline: the traced run of N steps.

    .venv/bin/python benchmarks/bench_trace.py [--spikes 10000000] [--repeat 3] [--steps 5000]
        [--probe-steps 100000] [--only-probe]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NET = ROOT / "neuroemu" / "data" / "netlists" / "mnist-binary.toml"


def spike_record():
    from neuroemu.engines import compiled as compiler
    from neuroemu import engines
    from neuroemu import describe
    cn = compiler.build(describe.load(NET))
    x = np.random.default_rng(0).random((4, 784))
    ph = engines.session(cn, x, seed=1).run(500, record_spikes=True)
    return cn, x, ph


def write_trace(path, cn, x, ph, reps):
    from neuroemu import record
    from neuroemu.engines import Phase
    with record.TraceWriter(path, cn, x=x) as w:
        for k in range(reps):
            w.append(Phase("free", k * ph.steps, ph.steps, 0.0, 1, ph.counters, spikes=ph.spikes))


def write_raw(path, cn, ph, reps):
    """The same (timestamp, node id) arrays, extracted the way the writer does, written raw."""
    R = ph.steps
    with open(path, "wb") as f:
        for k in range(reps):
            times = (np.arange(R) + (k * R + 1)) * 1.0
            for b in range(ph.spikes.shape[1]):
                for l in range(cn.n_layers):
                    n = cn.sizes[l]
                    q = np.ascontiguousarray(ph.spikes[:, b, cn.off[l]:cn.off[l + 1]])
                    flat = np.flatnonzero(q)
                    per_step = np.count_nonzero(q, axis=1)
                    np.repeat(times, per_step).tofile(f)
                    (flat - np.repeat(np.arange(0, R * n, n), per_step)).view(np.uint64).tofile(f)


def rss_mb(field="VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_child(path, spikes):
    """Run in a fresh process: write `spikes` events, report the resident-memory growth."""
    from neuroemu import record
    from neuroemu.engines import Phase
    cn, x, ph = spike_record()
    per = int(ph.spikes.sum())
    reps = -(-spikes // per)
    with record.TraceWriter(path, cn, x=x) as w:
        peak = 0.0
        for k in range(reps):
            w.append(Phase("free", k * ph.steps, ph.steps, 0.0, 1, ph.counters, spikes=ph.spikes))
            if k == 0:
                start = rss_mb()
            peak = max(peak, rss_mb())
    print(json.dumps({"start_mb": start, "growth_mb": max(peak, rss_mb("VmHWM")) - start,
                      "spikes": reps * per}))


PEAK = """import atexit, json, sys
from pathlib import Path
def peak():
    kb = [int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines()
          if l.startswith("VmHWM:")]
    print(json.dumps({"peak_mb": kb[0] / 1024}), file=sys.stderr)
atexit.register(peak)
from neuroemu import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def peak_of(args) -> tuple[float, float]:
    """Peak resident memory (VmHWM, MB) and wall time of ``neuroemu ARGS`` in a fresh process."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", PEAK, *map(str, args)], cwd=ROOT,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"neuroemu {' '.join(map(str, args))}: failed: {p.stderr[-500:]}")
    return json.loads(p.stderr.strip().splitlines()[-1])["peak_mb"], time.perf_counter() - t


def probe_memory(rep, tmp: Path, steps: int) -> None:
    """Peak RSS of a traced run probing every 2 steps, 10^5 vs 10^4 steps (flat: ratio ~1)."""
    probe = ["--probe", "hidden:0-9", "--probe-every", "2"]
    short, t_short = peak_of(["run", NET, "--steps", steps // 10, "--trace",
                              tmp / "p1.h5", *probe])
    long_, t_long = peak_of(["run", NET, "--steps", steps, "--trace",
                             tmp / "p2.h5", *probe])
    rep.add("run_trace_probe_every_2_peak_memory", long_, "MB", baseline=short,
            ratio=long_ / short, steps=steps,
            baseline_steps=steps // 10,
            growth_kb_per_step=round((long_ - short) * 1024 / (0.9 * steps), 4),
            seconds=round(t_long, 2), baseline_seconds=round(t_short, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spikes", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5000, help="steps of the traced CLI run")
    ap.add_argument("--probe-steps", type=int, default=100_000,
                    help="steps of the --probe-every 2 run (baseline: a tenth of them)")
    ap.add_argument("--only-probe", action="store_true", help="only the --probe-every 2 figure")
    ap.add_argument("--memory-child", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child, args.spikes)
    rep = common.Report("trace writing (784-500-10 binary network, batch 4)")
    if args.only_probe:
        with tempfile.TemporaryDirectory(dir=ROOT / "traces") as tmp:
            probe_memory(rep, Path(tmp), args.probe_steps)
        return rep.table()
    cn, x, ph = spike_record()
    per = int(ph.spikes.sum())
    reps = -(-args.spikes // per)
    n = reps * per
    with tempfile.TemporaryDirectory(dir=ROOT / "traces") as tmp:
        h5, raw = Path(tmp) / "bench.h5", Path(tmp) / "bench.raw"
        t_h5 = common.best_of(lambda: write_trace(h5, cn, x, ph, reps), args.repeat)
        t_raw = common.best_of(lambda: write_raw(raw, cn, ph, reps), args.repeat)
        c0 = time.process_time()
        write_trace(h5, cn, x, ph, reps)
        cpu = time.process_time() - c0   # CPU time: less sensitive to a busy shared machine
        size = h5.stat().st_size
        rep.add("trace_write", n / t_h5, "spikes/s", baseline=n / t_raw, ratio=t_raw / t_h5,
                spikes=n, bytes_per_spike=round(size / n, 3), seconds=round(t_h5, 3),
                spikes_per_cpu_second=round(n / cpu))
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(Path(tmp) / "m.h5"),
                              "--spikes", str(args.spikes)], capture_output=True, text=True,
                             check=True, cwd=ROOT / "benchmarks").stdout
        mem = json.loads(out.strip().splitlines()[-1])
        held = mem["spikes"] * 16 / 2**20
        rep.add("trace_write_memory_growth", mem["growth_mb"], "MB", baseline=held,
                ratio=mem["growth_mb"] / held, spikes=mem["spikes"])
        cmd = ["run", NET, "--batch", "4", "--steps", args.steps]
        base, t_base = peak_of(cmd)
        traced, t_traced = peak_of(cmd + ["--trace", Path(tmp) / "run.h5"])
        long_cmd = ["run", NET, "--batch", "4", "--steps", 4 * args.steps]
        traced4, t_traced4 = peak_of(long_cmd + ["--trace", Path(tmp) / "run4.h5"])
        from neuroemu import record
        spikes = []
        for name in ("run.h5", "run4.h5"):
            with record.open(Path(tmp) / name) as t:
                spikes.append(sum(t.info(p)["spikes"] for p in t.populations))
        rep.add("run_trace_peak_memory", traced, "MB", baseline=base, ratio=traced / base,
                steps=args.steps, spikes=spikes[0], seconds=round(t_traced, 2),
                seconds_without_trace=round(t_base, 2))
        rep.add("run_trace_peak_memory_4x_steps", traced4, "MB", baseline=traced,
                ratio=traced4 / traced, steps=4 * args.steps, spikes=spikes[1],
                seconds=round(t_traced4, 2))
        probe_memory(rep, Path(tmp), args.probe_steps)
    rep.table()


if __name__ == "__main__":
    main()

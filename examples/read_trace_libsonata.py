"""Read a neuroemu spike trace with libsonata, the SONATA reference reader.

    python examples/read_trace_libsonata.py [OUT_DIR]

Runs the shipped ``tiny`` network on a batch of two inputs, writes the trace, opens it with
``libsonata.SpikeReader`` (one SONATA population per layer and sample: ``hidden.0``,
``hidden.1``, ...) and checks every population holds the spikes neuroemu's own reader sees.
Exits quietly with a message when libsonata is not installed (``pip install libsonata``; the
test extra has it).  OUT_DIR defaults to a new temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import neuroemu


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", help="output folder (default: a new temporary folder)")
    p.add_argument("--force", action="store_true", help="replace an earlier trace")
    args = p.parse_args(argv)
    try:
        import libsonata
    except ImportError:
        print("libsonata is not installed (pip install libsonata, or pip install -e '.[test]'): "
              "skipping this example")
        return 0
    out = Path(args.out or tempfile.mkdtemp(prefix="neuroemu-example-"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tiny.h5"
    if path.exists() and not args.force:
        sys.exit(f"{path}: already exists (use --force to replace it)")

    net = neuroemu.load("tiny")
    x = np.array([[0.2, 0.4, 0.6, 0.8], [0.9, 0.1, 0.5, 0.3]])
    result = neuroemu.run(net, x, 40, record_spikes=True)
    neuroemu.write_trace(path, net, result, x=x)

    reader = libsonata.SpikeReader(str(path))
    with neuroemu.open_trace(path) as tr:
        for name in reader.get_population_names():
            pop = reader[name]
            spikes = pop.get_dict()           # {"node_ids": ..., "timestamps": ...} in ms
            steps, ids = tr.spikes(name)
            same = np.array_equal(spikes["node_ids"], ids) and \
                np.array_equal(spikes["timestamps"], steps * tr.dt)
            print(f"  {name:<9} {len(spikes['node_ids']):>4} spikes, sorting {pop.sorting}, "
                  f"times {pop.times[0]:g}..{pop.times[1]:g} {pop.time_units}; "
                  f"{'the same as' if same else 'DIFFERENT from'} neuroemu's reader")
            if not same:
                return 1
    print(f"libsonata read {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

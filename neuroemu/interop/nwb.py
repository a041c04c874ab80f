"""NWB export of a trace's spikes (issue 14): ``neuroemu convert trace.h5 trace.nwb``.

Layout (docs/interop.md, "NWB"):

- ``/units`` (the file's main Units table, ``nwb.units``): every neuron of every recorded
  population, population by population in the trace's order (by sample, then layer), neuron
  by neuron.  Generic NWB tools (pynwb's ``nwb.units``, NWB Widgets, SpikeInterface's NWB
  reader, DANDI) read this table and only this one, so all spikes are there.
- ``/processing/spikes/<population>``: one Units table per recorded SONATA population
  (``hidden``, or ``hidden.0``, ``hidden.1``... with several samples) holding that
  population's neurons only -- unit ``i`` is neuron ``i`` -- the per-population view the
  issue asks for.  The spikes are stored in both places (the files are deflated).
- Columns of every Units table: ``spike_times`` (ragged, seconds: the trace's ms / 1000, per
  neuron in increasing time), ``population`` (the SONATA population name), ``layer`` (the
  netlist population), ``sample`` (index in the run's batch), ``neuron_id`` (index within the
  layer; a map's neurons in C order, ``(c * H + y) * W + x``).  Every neuron is a unit, silent
  ones with no spikes.  ``resolution`` is one step (dt / 1000 s) for lockstep traces; bus-engine
  traces (sub-tick times) leave it unset.
- ``notes``: JSON text: the trace's provenance, the network's name, dt, steps, batch, samples,
  whether the trace was complete, and this module's layout version.
- ``session_start_time``: the provenance's ``start_time`` (ISO 8601) when a trace has one;
  traces written so far carry none, so it is the fixed :data:`NO_START_TIME`
  (1970-01-01T00:00:00Z) -- spike times count from the run's step 0, not from a wall-clock
  time.  ``identifier``: a fresh UUID (NWB asks for one per file).

The ragged ``spike_times`` column is built in bulk (one sort by neuron, one cumulative count:
``VectorData`` + ``VectorIndex``), not neuron by neuron, so conv-ep's 28,954 neurons take well
under a second.  Each population's spikes are read into memory at once.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import TraceError
from ..files import check_output, replacing
from ..record import Trace

#: ``session_start_time`` of a trace without a start time in its provenance (all traces
#: written so far): the Unix epoch, UTC.
NO_START_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: Name of the processing module holding one Units table per population.
MODULE = "spikes"

#: Version of this layout, in the notes.
LAYOUT = "neuroemu-nwb 1.0"

# Arrays at least this long are stored deflated (small ones are not worth a filter).
_DEFLATE_MIN = 4096


def _column_data(data):
    """``data`` wrapped for deflate when it is large (H5DataIO), else as it is."""
    if len(data) < _DEFLATE_MIN:
        return data
    from pynwb import H5DataIO
    return H5DataIO(data, compression="gzip", compression_opts=4, shuffle=True)


def population_units(trace, pop: str) -> dict:
    """The unit columns of one SONATA population: ``times`` (seconds, grouped by neuron, in
    increasing time within a neuron), ``index`` (end of each neuron's run of times),
    ``neuron_id``, ``layer``, ``sample``, ``population``, ``shape``."""
    inf = trace.info(pop)
    n = int(inf["size"])
    ts, ids = trace.spikes(pop, as_time=True)
    ids = ids.astype(np.int64, copy=False)
    order = np.lexsort((ts, ids))     # by neuron, then time (bus-engine rows are unsorted)
    counts = np.bincount(ids, minlength=n)
    return {"population": pop, "layer": inf["layer"], "sample": int(inf["sample"]),
            "shape": trace.shapes[trace.layers.index(inf["layer"])],
            "times": ts[order] / 1000.0, "index": np.cumsum(counts, dtype=np.uint64),
            "neuron_id": np.arange(n, dtype=np.int64)}


def _units(name: str, description: str, parts: list[dict], resolution: float | None):
    """A pynwb Units table of the units in ``parts`` (population_units results), with the
    ragged spike_times column given whole."""
    from hdmf.common import VectorData, VectorIndex
    from pynwb.misc import Units
    times = np.concatenate([p["times"] for p in parts]) if parts else np.zeros(0)
    ends, off = [], 0
    for p in parts:
        ends.append(p["index"] + np.uint64(off))
        off += len(p["times"])
    index = np.concatenate(ends) if ends else np.zeros(0, np.uint64)
    n = len(index)
    spike_times = VectorData(name="spike_times", data=_column_data(times),
                             description="the times of the neuron's spikes, in seconds from "
                             "step 0 of the run (the trace's milliseconds / 1000)")
    spike_index = VectorIndex(name="spike_times_index", data=_column_data(index),
                              target=spike_times)

    def text(key, what):
        col = np.empty(n, dtype=object)
        at = 0
        for p in parts:
            k = len(p["index"])
            col[at:at + k] = p[key]
            at += k
        return VectorData(name=key, data=_column_data(col.tolist()), description=what)

    def ints(key, what):
        data = np.concatenate([np.broadcast_to(np.asarray(p[key], np.int64),
                                               (len(p["index"]),)) for p in parts]) \
            if parts else np.zeros(0, np.int64)
        return VectorData(name=key, data=_column_data(data), description=what)

    columns = [spike_times, spike_index,
               text("population", "the SONATA population of the neuroemu trace (the layer, "
                    "or <layer>.<sample> when several samples were recorded)"),
               text("layer", "the netlist population (layer) of the neuron"),
               ints("sample", "index of the sample in the run's batch"),
               ints("neuron_id", "index of the neuron within its layer (a map's neurons in "
                    "C order: (c * H + y) * W + x)")]
    kw = {} if resolution is None else {"resolution": float(resolution)}
    return Units(name=name, description=description, columns=columns,
                 id=_column_data(np.arange(n, dtype=np.int64)), **kw)


def start_time(prov: dict) -> datetime:
    """The provenance's ``start_time`` (ISO 8601; naive times are UTC), else NO_START_TIME."""
    value = prov.get("start_time") if isinstance(prov, dict) else None
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            return NO_START_TIME
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return NO_START_TIME


def notes(trace, prov: dict, trace_path) -> str:
    """The NWB file's notes: JSON text (see the module docstring)."""
    net = prov.get("netlist") if isinstance(prov.get("netlist"), dict) else {}
    return json.dumps({
        "layout": LAYOUT, "exported_by": f"neuroemu {__version__}",
        "trace": str(trace_path), "netlist": net.get("name"),
        "dt_ms": trace.dt, "steps": trace.t_end, "complete": trace.complete,
        "batch": trace.batch, "samples": list(trace.samples),
        "populations": list(trace.populations), "provenance": prov,
    }, sort_keys=True, default=str)


def build_nwbfile(trace, trace_path):
    """The pynwb NWBFile of an open trace (not written)."""
    from pynwb import NWBFile
    try:
        prov = trace.provenance
    except (TraceError, ValueError):
        prov = {}
    prov = prov if isinstance(prov, dict) else {"value": prov}
    name = (prov.get("netlist") or {}).get("name") if isinstance(prov.get("netlist"), dict) \
        else None
    engine = prov.get("engine")
    resolution = trace.dt / 1000.0 if engine != "async" else None
    parts = [population_units(trace, pop) for pop in trace.populations]
    t0 = start_time(prov)
    nwb = NWBFile(
        session_description=(f"neuroemu emulation of network '{name or '?'}': "
                             f"{trace.t_end} steps of {trace.dt:g} ms, "
                             f"{engine or 'lockstep'} engine, samples "
                             f"{', '.join(map(str, trace.samples))} of a batch of "
                             f"{trace.batch}"),
        identifier=str(uuid.uuid4()), session_start_time=t0, timestamps_reference_time=t0,
        notes=notes(trace, prov, trace_path),
        source_script=f"neuroemu {__version__} (neuroemu convert TRACE.h5 OUT.nwb)",
        source_script_file_name=Path(trace_path).name)
    nwb.units = _units("units", "every neuron of every recorded population of a neuroemu "
                       "trace (columns population, layer, sample, neuron_id); per-population "
                       f"tables in processing/{MODULE}", parts, resolution)
    mod = nwb.create_processing_module(MODULE, "spikes of the neuroemu trace: one Units table "
                                       "per recorded SONATA population (layer and sample)")
    for p in parts:
        shape = p["shape"]
        what = f"map of shape {tuple(shape)}, " if len(shape) > 1 else ""
        mod.add(_units(p["population"], f"population '{p['population']}' of the trace: "
                       f"layer '{p['layer']}' ({what}{len(p['index'])} neurons), sample "
                       f"{p['sample']}; unit i is neuron i", [p], resolution))
    return nwb


def write_nwb(trace_path, out_path, *, force: bool = False) -> Path:
    """Write the spikes of the neuroemu trace ``trace_path`` as the NWB file ``out_path``
    (layout: module docstring); returns its path.  The output rules of
    :mod:`neuroemu.files`: never the trace itself, an existing file only with ``force``, and
    written under a temporary name, renamed when complete."""
    from pynwb import NWBHDF5IO
    out = check_output(out_path, inputs=[trace_path], force=force)
    with Trace(trace_path) as trace:
        nwb = build_nwbfile(trace, trace_path)
        with replacing(out) as tmp:
            with NWBHDF5IO(str(tmp), "w") as io:
                io.write(nwb)
    return out

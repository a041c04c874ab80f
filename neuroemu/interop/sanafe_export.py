"""A network, its placement and a run's recorded spikes as a SANA-FE traffic replay.

:func:`export_snn` writes SANA-FE's SNN YAML (``network``: one group per population, one edge
set per delivery the kernels make; ``mappings``: every neuron on the tile and core of
:class:`neuroemu.energy.traffic.HwMap`) plus a ``neuroemu_replay`` section that SANA-FE ignores:
the recorded spikes of every sample.  :func:`run_sanafe` loads the file into SANA-FE (its Python
API, ``pip install sanafe``) and replays exactly those spikes, sample after sample from the reset
state:

* input neurons sit on the architecture's ``input`` soma units (one spike train per unit) and
  are given the sample's recorded train;
* every other neuron is a threshold-1 neuron that only fires when forced: its edges carry
  weight 0, and before each step the neurons that spiked at that step in the recording get a
  bias of 2 (back to 0 afterwards), so the soma updates, fires and resets to 0.  Its potential
  otherwise stays 0, so SANA-FE charges a soma *update* exactly when the neuron received input
  in the previous step or fired (``docs/sanafe.md`` section 3).

SANA-FE carries no payloads, so the weights do not change what it counts.  The file alone, run
by SANA-FE's own tools, replays the first sample's inputs only: the forced spikes need the
step-by-step driver of :func:`run_sanafe`.
"""

from __future__ import annotations

import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import InteropError
from ..files import write_text

THRESHOLD, FORCE = 1.0, 2.0


def _group_names(names) -> list[str]:
    """Population names as SANA-FE group names (letters, digits, underscores; distinct)."""
    out = []
    for n in names:
        g = re.sub(r"[^A-Za-z0-9_]", "_", str(n)) or "pop"
        while g in out:
            g += "_"
        out.append(g)
    return out


def check_fits(hw, arch) -> None:
    """The placement must fit the architecture: its tiles, cores per tile and neurons per core."""
    x, y = int(hw.x.max()) + 1, int(hw.y.max()) + 1
    if x > arch.width or y > arch.height:
        raise InteropError(f"{arch.path}: the placement uses a {x}x{y} mesh of tiles, the "
                           f"architecture has {arch.width}x{arch.height} (choose --mesh, "
                           f"--neurons-per-core or --cores-per-tile to fit)")
    if hw.cores_per_tile > arch.cores_per_tile:
        raise InteropError(f"{arch.path}: --cores-per-tile {hw.cores_per_tile} exceeds the "
                           f"architecture's {arch.cores_per_tile} cores per tile")
    per_core = int(np.bincount(hw.core).max())
    if per_core > arch.max_neurons:
        raise InteropError(f"{arch.path}: a core holds {per_core} neurons, the architecture's "
                           f"cores at most {arch.max_neurons} (--neurons-per-core)")


def _zeros(n: int) -> str:
    return "[" + ", ".join(["0.0"] * n) + "]"


def snn_text(topo, fan, arch, raster=None, sample_ids=None, name: str = "network",
             note: str = "") -> str:
    """The SNN YAML text (see the module doc).  ``fan``: the
    :class:`~neuroemu.energy.traffic.Fanout` of ``topo`` on its hardware map; ``arch``: the
    :class:`~neuroemu.energy.sanafe_arch.Arch` whose unit names the mapping uses; ``raster``:
    bool ``[step, sample, neuron]`` recorded spikes (None: no replay section, no input trains)."""
    from ..energy.graph import _blocks
    from ..energy.traffic import soma_units, synapse_units
    hw = fan.hw
    check_fits(hw, arch)
    groups = _group_names(topo.names)
    off, sizes = topo.off, topo.sizes
    somas = soma_units(arch, topo, hw)
    syns = synapse_units(arch, topo)
    inp = arch.input_soma
    L = [f"# {note}" if note else "# neuroemu export for SANA-FE",
         "# A traffic replay: edges carry weight 0; neurons fire when the replay forces them",
         "# (docs/sanafe.md).  The neuroemu_replay section holds the recorded spikes.",
         "network:", f"  name: {re.sub(r'[^A-Za-z0-9_.-]', '_', name)}", "  groups:"]
    first = None if raster is None else np.asarray(raster)[:, 0, :]
    for l, g in enumerate(groups):
        L += [f"    - name: {g}", "      attributes: []", "      neurons:"]
        n = sizes[l]
        if inp is not None and somas[l] == inp.name:
            for i in range(n):
                train = "" if first is None else "soma: {spikes: [" + ", ".join(
                    "true" if v else "false" for v in first[:, off[l] + i]) + "]}"
                L.append(f"        - {i}: [{train}]")
        elif n:
            L.append(f"        - 0..{n - 1}: [soma: {{threshold: {THRESHOLD}}}]")
    L.append("  edges:")
    for p, link in enumerate(topo.links):
        for d in ((0, 1) if link.back else (0,)):
            a, b = (link.pre, link.post) if d == 0 else (link.post, link.pre)
            if link.kind == "dense":
                L.append(f"    - {groups[a]} -> {groups[b]}: [type: dense, weight: "
                         f"{_zeros(sizes[a] * sizes[b])}]")
                continue
            pairs = [f"[{s}, {j}]" for s_, j_ in _blocks(link, d, sizes[a], sizes[b])
                     for s, j in zip(s_.tolist(), j_.tolist())]
            L.append(f"    - {groups[a]} -> {groups[b]}: [type: sparse, source_target_pairs: "
                     f"[{', '.join(pairs)}], weight: {_zeros(len(pairs))}]")
    L.append("mappings:")
    for l, g in enumerate(groups):
        cores = hw.core[off[l]:off[l + 1]]
        syn = f", synapse: {syns[l]}"
        if inp is not None and somas[l] == inp.name:
            slot: dict = {}
            for i, c in enumerate(cores.tolist()):
                k = slot[c] = slot.get(c, -1) + 1
                L.append(f"  - {g}.{i}: [core: {_core(hw, arch, c)}, soma: "
                         f"\"{inp.instance(k)}\"{syn}]")
            continue
        i = 0
        while i < len(cores):       # runs of consecutive neurons on one core
            j = i
            while j + 1 < len(cores) and cores[j + 1] == cores[i]:
                j += 1
            rng = f"{i}..{j}" if j > i else f"{i}"
            L.append(f"  - {g}.{rng}: [core: {_core(hw, arch, int(cores[i]))}, soma: "
                     f"{somas[l]}{syn}]")
            i = j + 1
    if raster is not None:
        r = np.asarray(raster)
        T, B, N = r.shape
        ids = list(range(B)) if sample_ids is None else [int(s) for s in sample_ids]
        inputs = [int(off[l]) + i for l in range(len(sizes))
                  if inp is not None and somas[l] == inp.name for i in range(sizes[l])]
        L += ["neuroemu_replay:", f"  steps: {T}", f"  neurons: {N}",
              f"  groups: [{', '.join(f'[{g}, {n}]' for g, n in zip(groups, sizes))}]",
              f"  inputs: [{', '.join(map(str, inputs))}]",
              "  # per sample: every spike as (step - 1) * neurons + neuron (global index)",
              "  samples:"]
        for b in range(B):
            t, i = np.nonzero(r[:, b, :])
            ev = (t.astype(np.int64) * N + i).tolist()
            L.append(f"    - {{id: {ids[b]}, spikes: [{', '.join(map(str, ev))}]}}")
    return "\n".join(L) + "\n"


def _core(hw, arch, c: int) -> str:
    """SANA-FE's ``tile.core`` of used core ``c``: the tile at the same mesh column and row."""
    tile = int(hw.x[c]) * arch.height + int(hw.y[c])
    return f"{tile}.{int(hw.cores[c]) % hw.cores_per_tile}"


def export_snn(path, topo, fan, arch, raster=None, sample_ids=None, name="network",
               note="") -> Path:
    """Write :func:`snn_text` to ``path`` atomically."""
    return write_text(path, snn_text(topo, fan, arch, raster, sample_ids, name, note))


def read_replay(path) -> tuple[np.ndarray, list[int], dict]:
    """The recorded spikes of an exported file: bool ``[step, sample, neuron]``, the sample ids
    and the section itself (``groups``: [name, size] in order, ``inputs``: global indices of
    the neurons on input soma units)."""
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = Path(path).read_text(encoding="utf-8")
        rep = yaml.load(text[text.index("\nneuroemu_replay:") + 1:],
                        Loader=loader)["neuroemu_replay"]
        T, N = int(rep["steps"]), int(rep["neurons"])
        samples = rep["samples"]
        r = np.zeros((T, len(samples), N), dtype=bool)
        for b, s in enumerate(samples):
            ev = np.asarray(s["spikes"], dtype=np.int64)
            r[ev // N, b, ev % N] = True
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError,
            IndexError) as exc:
        raise InteropError(f"{path}: neuroemu_replay: cannot read the recorded spikes "
                           f"({type(exc).__name__}: {exc})") from None
    return r, [int(s["id"]) for s in samples], rep


def _flush_c() -> None:
    """Flush the C library's stdout buffer (SANA-FE's C++ output goes through it)."""
    try:
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):    # pragma: no cover - no C library to ask
        pass


@contextmanager
def _quiet():
    """SANA-FE prints progress on the process's stdout, through C++ and through Python's
    ``sys.stdout``: send both to /dev/null meanwhile."""
    import io
    from contextlib import redirect_stdout
    sys.stdout.flush()
    _flush_c()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        with redirect_stdout(io.StringIO()):
            yield
    finally:
        _flush_c()
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def run_sanafe(snn_path, arch_path, *, timing_model: str = "detailed", quiet: bool = True,
               progress=None) -> dict:
    """Replay an exported file's recorded spikes in SANA-FE on ``arch_path``.

    Returns per sample (lists in sample order): ``energy`` per component (J: synapse,
    dendrite, soma, network, total), ``spikes`` (neurons fired), ``messages`` (packets sent),
    ``syn_events`` (SANA-FE's spikes processed), ``updated`` (neurons updated), ``hops``,
    ``sim_time_s``; and ``wall_s`` (load and run)."""
    try:
        import sanafe
    except ImportError:
        raise InteropError("the SANA-FE cross-check needs SANA-FE: pip install sanafe "
                           "(or pip install neuroemu[sanafe])") from None
    raster, ids, rep = read_replay(snn_path)
    T, B, N = raster.shape
    t0 = time.perf_counter()
    ctx = _quiet() if quiet else _nothing()
    with ctx:
        try:
            arch = sanafe.load_arch(str(arch_path))
            net = sanafe.load_net(str(snn_path), arch)
            chip = sanafe.SpikingChip(arch)
            chip.load(net)
        except Exception as exc:    # SANA-FE raises its own and std exceptions
            raise InteropError(f"{snn_path}: SANA-FE could not load it on {arch_path} "
                               f"({type(exc).__name__}: {exc})") from None
        groups = chip.mapped_neuron_groups
        try:
            neurons = [groups[str(g)][i] for g, n in rep["groups"] for i in range(int(n))]
        except (KeyError, IndexError) as exc:
            raise InteropError(f"{snn_path}: neuroemu_replay.groups: does not match the "
                               f"network SANA-FE loaded ({exc})") from None
        inputs = set(int(i) for i in rep["inputs"])
        out = {k: [] for k in ("spikes", "messages", "syn_events", "updated", "hops",
                               "sim_time_s")}
        out["energy"] = []
        forced: set = set()
        for b in range(B):
            chip.reset()
            for i in forced:
                neurons[i].set_attributes(model_attributes={"bias": 0.0})
            forced = set()
            for i in inputs:
                neurons[i].set_attributes(model_attributes={"spikes": raster[:, b, i].tolist()})
            acc = {"spikes": 0, "messages": 0, "syn_events": 0, "updated": 0, "hops": 0,
                   "sim_time_s": 0.0}
            en = dict.fromkeys(("synapse", "dendrite", "soma", "network", "total"), 0.0)
            for t in range(T):
                now = set(np.flatnonzero(raster[t, b]).tolist()) - inputs
                for i in forced - now:
                    neurons[i].set_attributes(model_attributes={"bias": 0.0})
                for i in now - forced:
                    neurons[i].set_attributes(model_attributes={"bias": FORCE})
                forced = now
                res = chip.sim(1, timing_model=timing_model, perf_trace=True)
                for k in en:
                    en[k] += float(res["energy"][k])
                acc["spikes"] += int(res["perf_trace"]["fired"][0])
                acc["messages"] += int(res["packets_sent"])
                acc["syn_events"] += int(res["spikes"])
                acc["updated"] += int(res["perf_trace"]["updated"][0])
                acc["hops"] += int(res["perf_trace"]["hops"][0])
                acc["sim_time_s"] += float(res["sim_time"])
            for k, v in acc.items():
                out[k].append(v)
            out["energy"].append(en)
            if progress is not None:
                progress(b + 1, B)
    out["wall_s"] = time.perf_counter() - t0
    out["samples"] = ids
    out["steps"] = T
    return out


@contextmanager
def _nothing():
    yield


# --------------------------------------------------------------------------- the cross-check

SIDE_KEYS = ("spikes", "messages", "hops", "syn_events", "updated")


def arch_side(setup, counts, profile, raster, *, last_step: str = "deliver",
              cores_per_tile: int = 1) -> dict:
    """neuroemu's figures of a recorded run on a SANA-FE architecture (``profile.arch``): per
    sample the counts SANA-FE reports, the energy per component (:func:`arch_energy`) and the
    latency (:func:`neuroemu.energy.timing.latency_report`, with the energy for the EDP)."""
    from ..energy import timing
    from ..energy import traffic as tr
    from ..energy.sanafe_arch import arch_energy
    arch = profile.arch
    hwm = tr.hw_map(setup.placement, cores_per_tile)
    fan = tr.fanout(setup.topology, hwm)
    sc = tr.step_counts(fan, raster, last_step, always=tr.always_updated(arch, setup.topology,
                                                                         hwm))
    uc = tr.unit_counts(sc, fan, arch)
    e = arch_energy(arch, uc)
    lat = timing.latency_report(counts, setup, profile, raster=raster, last_step=last_step,
                                cores_per_tile=cores_per_tile, energy_j=e["total"])
    B = uc.spikes.shape[0]
    hops = sum(uc.hops[d] for d in tr.DIRS)
    side = {"spikes": uc.spikes, "messages": uc.messages, "hops": hops,
            "syn_events": uc.syn_events, "updated": uc.updated.sum(axis=1)}
    return {"per_sample": [dict({k: int(round(float(v[b]))) for k, v in side.items()},
                                energy_j={k: float(e[k][b]) for k in
                                          ("synapse", "dendrite", "soma", "network", "total")},
                                latency_per_inference_s=lat["per_sample"][b][
                                    "latency_per_inference_s"],
                                overlap_latency_per_inference_s=lat["per_sample"][b][
                                    "overlap_latency_per_inference_s"])
                           for b in range(B)],
            "network_split_j": {k: float(e[k].mean()) for k in
                                ("network_hops", "network_axon_out", "network_axon_in")},
            "latency": lat, "last_step": last_step}


def sanafe_side(res: dict) -> dict:
    """:func:`run_sanafe`'s result in the layout of :func:`arch_side`."""
    B = len(res["samples"])
    return {"per_sample": [dict({k: int(res[k][b]) for k in SIDE_KEYS},
                                energy_j=dict(res["energy"][b]),
                                latency_per_inference_s=float(res["sim_time_s"][b]))
                           for b in range(B)], "wall_s": res["wall_s"]}


def agreement(ours: dict, theirs: dict) -> dict:
    """Largest relative difference over the samples of every count, energy component and the
    latency (0 where both are 0)."""
    def rel(a, b):
        a, b = float(a), float(b)
        return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))

    out = {}
    pairs = list(zip(ours["per_sample"], theirs["per_sample"]))
    for k in SIDE_KEYS:
        out[k] = max(rel(a[k], b[k]) for a, b in pairs)
    for k in ("synapse", "dendrite", "soma", "network", "total"):
        out[f"energy_{k}"] = max(rel(a["energy_j"][k], b["energy_j"][k]) for a, b in pairs)
    out["latency_per_inference"] = max(rel(a["latency_per_inference_s"],
                                           b["latency_per_inference_s"]) for a, b in pairs)
    out["overlap_latency_per_inference"] = max(
        rel(a["overlap_latency_per_inference_s"], b["latency_per_inference_s"])
        for a, b in pairs)
    return out


def mean_side(side: dict) -> dict:
    """Means over the samples of every count, energy and latency of a side."""
    ps = side["per_sample"]
    out = {k: float(np.mean([p[k] for p in ps])) for k in ps[0] if k != "energy_j"}
    out["energy_j"] = {k: float(np.mean([p["energy_j"][k] for p in ps]))
                       for k in ps[0]["energy_j"]}
    return out

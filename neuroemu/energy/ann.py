"""What a chip designer compares a spiking run with: the same network as a one-pass quantised
ANN, synaptic events per weight, the weight-memory traffic of a training update and the
memory footprint (docs/energy-model.md sections 6, 9 and 10).

* :func:`ann_counts` counts the **one-pass ANN** of a :class:`~neuroemu.energy.graph.Topology`
  with ``b``-bit weights and activations: every projection evaluated once in its forward
  direction (pre -> post; a symmetric projection's backward use, a recurrent or feedback
  projection's further passes are not repeated) -- a multiply-accumulate per synapse (dense
  ``n_pre n_post``, sparse its entries, conv the kernel taps inside the maps for every output
  unit and channel, one-to-one ``n``), an add per pooling tap, a bias add per non-input neuron;
  every weight and bias read once, every activation written once and read once per projection
  that leaves its population.  Values are packed into 32-bit words (:func:`words`); the
  parameters that do not fit the on-chip memory are read from DRAM.
  :func:`ann_baseline` prices the counts with a profile's ``[memory]`` table.
* :func:`events_per_weight`: synaptic events through weighted projections per distinct weight
  (Dampfhoffer et al.'s "spikes per synapse per inference").
* :func:`training_memory`: a training update's read and write of every changed weight and
  bias, 32 bits each, from on-chip SRAM or, past the on-chip capacity, DRAM.
* :func:`footprint`: bytes of weights, biases and neuron state at float32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ProfileError, where
from .hardware import MAX_PJ, Profile

WORD_BITS = 32          # memory energies are per 32-bit word
TRAIN_BITS = 32         # weights and biases as a learning rule keeps them
FLOAT_BYTES = 4         # the footprint's precision (float32)
DEFAULT_ANN_BITS = 8
MAX_ONCHIP_BYTES = 1 << 50
# energy kinds of the ANN baseline, in report order
ANN_KINDS = ("mac", "add", "weight_sram_read", "weight_dram_read", "activation_sram_read",
             "activation_sram_write")
ANN_REQUIRED = ("sram_read_pj", "sram_write_pj", "mac_pj", "add_pj")
# The published break-even, in synaptic events (spikes arriving at a synapse) per weight per
# inference: below it the spiking network can cost less than an efficient ANN.
BREAK_EVEN = {
    "range": [0.15, 1.38],
    "unit": "synaptic events per synapse per inference (per weight where no weight is shared; "
            "a conv weight serves many synapses)",
    "source": "Dampfhoffer et al., 'Are SNNs really more energy-efficient than ANNs? An in-depth "
              "hardware-aware study', IEEE TETCI 7(3):731-741, 2023: IF-neuron SNNs compete with "
              "efficient ANN implementations between 0.15 and 1.38 spikes per synapse per "
              "inference, depending on the ANN implementation",
    "also": "Yan et al., arXiv 2409.08290 (v2): with T in [5, 10] time steps the average spike "
            "rate must stay below 6.4% per neuron and step to beat the equivalent quantised ANN "
            "(v4: below 5.7% at T = 5), i.e. about 0.3-0.64 spikes per neuron per inference",
}
DEFINITION = ("one pass: every projection once, forwards (pre -> post); a MAC per synapse, an add "
              "per pooling tap and per bias; each weight and bias read once, each activation "
              "written once and read once per projection leaving its population; b-bit values "
              "packed floor(32/b) to a 32-bit word; parameters past memory.onchip_bytes read "
              "from DRAM; activations in SRAM")


def words(n: int, bits: int) -> int:
    """32-bit words holding ``n`` values of ``bits`` bits: ``floor(32 / bits)`` values to a
    word (no value straddles two words), or ``ceil(bits / 32)`` words per value past 32 bits."""
    n, bits = int(n), int(bits)
    if bits <= WORD_BITS:
        per = WORD_BITS // bits
        return -(-n // per)
    return n * -(-bits // WORD_BITS)


def _split(total: int, onchip_words: int | None) -> tuple[int, int]:
    """(words on chip, words off chip) of ``total``: the on-chip memory fills first."""
    if onchip_words is None:
        return total, 0
    on = min(total, onchip_words)
    return on, total - on


@dataclass(frozen=True)
class AnnCounts:
    """Counts of one inference of the one-pass ANN (see the module's docstring)."""

    bits: int
    macs: int
    adds: int
    weights: int                 # distinct weights (a pool has none)
    biases: int                  # one per non-input neuron
    param_words: int             # 32-bit words holding the weights and biases
    weight_sram_reads: int       # words of parameters read from on-chip SRAM
    weight_dram_reads: int       # ... from off-chip DRAM (those past the on-chip capacity)
    activation_reads: int        # words of activations read
    activation_writes: int       # words of activations written

    def to_dict(self) -> dict:
        return asdict(self)


def ann_counts(topo, bits: int, onchip_bytes: int | None = None) -> AnnCounts:
    """The one-pass ANN's counts for ``topo`` (:class:`~neuroemu.energy.graph.Topology`) at
    ``bits``-bit weights and activations; ``onchip_bytes``: the on-chip memory for parameters
    (None: unbounded).  Each tensor (a projection's weights, a population's biases or
    activations) is packed into words on its own."""
    macs = adds = weights = biases = pwords = reads = writes = 0
    for link in topo.links:
        if link.kind == "avgpool2d":
            adds += link.synapses          # every tap summed; 1/k^2 folded into what follows
        else:
            macs += link.synapses
            weights += link.n_weights
            pwords += words(link.n_weights, bits)
        reads += words(topo.sizes[link.pre], bits)
    for r, n in enumerate(topo.sizes):
        writes += words(n, bits)
        if not topo.inputs[r]:
            adds += n
            biases += n
            pwords += words(n, bits)
    on, off = _split(pwords, None if onchip_bytes is None else int(onchip_bytes) // 4)
    return AnnCounts(int(bits), int(macs), int(adds), int(weights), int(biases), int(pwords),
                     int(on), int(off), int(reads), int(writes))


# --------------------------------------------------------------------------- the profile

def check_memory(profile: Profile) -> None:
    """What :func:`~neuroemu.energy.hardware.load_profile` leaves to the users of ``[memory]``:
    energies at most ``MAX_PJ`` pJ (so no total can overflow), ``onchip_bytes`` a whole number
    of bytes; a :class:`ProfileError` naming the file, the field and the value."""
    path = profile.path or profile.name
    for key, value in profile.memory.items():
        if key.endswith("_pj") and value > MAX_PJ:
            raise ProfileError(f"{where(path, f'memory.{key}')}: must be at most {MAX_PJ:g} "
                               f"picojoules (got {value:g})")
    ob = profile.memory.get("onchip_bytes")
    if ob is not None and (ob != int(ob) or ob > MAX_ONCHIP_BYTES):
        raise ProfileError(f"{where(path, 'memory.onchip_bytes')}: must be a whole number of "
                           f"bytes, at most 2**50 (got {ob:g})")


def ann_bits(profile: Profile, bits=None) -> tuple[int, int]:
    """(the baseline's bits, the bits the profile's ``mac_pj`` and ``add_pj`` are given at):
    ``bits`` overrides the profile's ``memory.ann_bits`` (default 8)."""
    b0 = int(profile.memory.get("ann_bits", DEFAULT_ANN_BITS))
    if bits is None:
        return b0, b0
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 64:
        raise ProfileError(f"--ann-bits: must be an integer in [1, 64] (got {bits!r})")
    return int(bits), b0


def ann_baseline(topo, profile: Profile, bits=None) -> tuple[dict | None, str]:
    """The one-pass ANN priced on ``profile``'s ``[memory]`` table, per inference, or None and
    the reason when the profile lacks what it needs.  ``bits`` (default the profile's
    ``ann_bits``, else 8): the width of weights and activations; a MAC's energy scales as
    ``(b / b0)^2`` and an add's as ``b / b0`` from the profile's width ``b0``
    (docs/energy-model.md)."""
    check_memory(profile)
    mem = profile.memory
    b, b0 = ann_bits(profile, bits)
    missing = [k for k in ANN_REQUIRED if k not in mem]
    if missing:
        return None, (f"profile {profile.name} gives no {', '.join('memory.' + k for k in missing)}"
                      f": no ANN baseline")
    onchip = mem.get("onchip_bytes")
    c = ann_counts(topo, b, None if onchip is None else int(onchip))
    if c.weight_dram_reads and "dram_read_pj" not in mem:
        raise ProfileError(f"{where(profile.path or profile.name, 'memory.dram_read_pj')}: is "
                           f"required: {c.param_words} words of {b}-bit parameters do not fit "
                           f"memory.onchip_bytes = {int(onchip)} (got none)")
    mac = mem["mac_pj"] * (b / b0) ** 2
    add = mem["add_pj"] * (b / b0)
    pj = {"mac": c.macs * mac, "add": c.adds * add,
          "weight_sram_read": c.weight_sram_reads * mem["sram_read_pj"],
          "weight_dram_read": c.weight_dram_reads * mem.get("dram_read_pj", 0.0),
          "activation_sram_read": c.activation_reads * mem["sram_read_pj"],
          "activation_sram_write": c.activation_writes * mem["sram_write_pj"]}
    return {"bits": b, "profile_bits": b0, "mac_pj": mac, "add_pj": add,
            "onchip_bytes": None if onchip is None else int(onchip),
            "weights_fit_onchip": c.weight_dram_reads == 0,
            "counts": c.to_dict(),
            "by_kind_j": {k: v * 1e-12 for k, v in pj.items()},
            "total_j": sum(pj.values()) * 1e-12,
            "definition": DEFINITION}, ""


def n_weights(topo) -> int:
    """Distinct weights of a network (every projection's; a pool has none)."""
    return int(sum(link_weights(topo)))


def link_weights(topo) -> list[int]:
    """Distinct weights of each projection of a Topology (a pool: 0)."""
    return [int(link.n_weights) for link in topo.links]


def link_synapses(topo) -> list[int]:
    """Synapses (connections: the non-zero pattern of the matrix each projection implies) of
    each weighted projection of a Topology (a pool: 0).  A dense or sparse projection has one
    weight per synapse; a conv weight serves a synapse at every output position."""
    return [int(link.synapses) if link.n_weights else 0 for link in topo.links]


def events_per_weight(syn_events, weights) -> float | None:
    """Synaptic events through weighted projections per distinct weight: ``syn_events`` per
    projection, (P, 2) forwards and backwards (e.g. one inference's); ``weights`` the distinct
    weights of each projection (:func:`link_weights`) or a Topology.  Given
    :func:`link_synapses` instead: events per synapse.  None for a network without weights."""
    if not isinstance(weights, (list, tuple, np.ndarray)):
        weights = link_weights(weights)
    total = int(sum(weights))
    if not total:
        return None
    ev = np.asarray(syn_events, dtype=np.float64).reshape(len(weights), -1)
    return float(ev[np.asarray(weights) > 0].sum()) / total


# --------------------------------------------------------------------------- training

def n_parameters(topo) -> int:
    """Weights and biases a training update changes (every weight; every non-input neuron's
    bias) -- the parameters the ``weight_update`` kind counts."""
    return n_weights(topo) + int(sum(n for n, inp in zip(topo.sizes, topo.inputs) if not inp))


def training_memory(topo, profile: Profile) -> tuple[dict | None, str]:
    """A training update's weight-memory traffic per sample: every changed weight and bias
    read and written once, one 32-bit word each, from on-chip SRAM up to ``onchip_bytes`` and
    from DRAM past it; or None and the reason when the profile gives no SRAM energies."""
    check_memory(profile)
    mem = profile.memory
    missing = [k for k in ("sram_read_pj", "sram_write_pj") if k not in mem]
    if missing:
        return None, (f"profile {profile.name} gives no "
                      f"{', '.join('memory.' + k for k in missing)}: weight memory not priced")
    params = n_parameters(topo)
    total = words(params, TRAIN_BITS)
    onchip = mem.get("onchip_bytes")
    on, off = _split(total, None if onchip is None else int(onchip) // 4)
    if off:
        for k in ("dram_read_pj", "dram_write_pj"):
            if k not in mem:
                raise ProfileError(f"{where(profile.path or profile.name, 'memory.' + k)}: is "
                                   f"required: {total} 32-bit words of weights and biases do "
                                   f"not fit memory.onchip_bytes = {int(onchip)} (got none)")
    pj = (on * (mem["sram_read_pj"] + mem["sram_write_pj"])
          + off * (mem.get("dram_read_pj", 0.0) + mem.get("dram_write_pj", 0.0)))
    return {"parameters": params, "word_bits": TRAIN_BITS,
            "sram_reads": on, "sram_writes": on, "dram_reads": off, "dram_writes": off,
            "j": pj * 1e-12}, ""


# --------------------------------------------------------------------------- footprint

def state_variables(topo, coding) -> list[int]:
    """State variables per neuron of each population, as a digital design keeps them: a
    clamped input its value; a non-input neuron its state (or membrane) and its input
    accumulator; a spiking neuron of the paper's model its encoder's memory, plus the
    predictive wrapper's memory, the predictive decoder's value and the OSA annealer's four
    statistics where it has them (IF/LIF neurons: membrane and accumulator only)."""
    paper = getattr(coding, "paper", None)
    out = []
    for r in range(len(topo.sizes)):
        p = True if paper is None else bool(paper[r])
        n = 1 if topo.inputs[r] else 2
        if p and not coding.real[r]:
            n += 1
        n += int(coding.predictive[r]) + int(coding.decoder[r]) + 4 * int(coding.osa[r])
        out.append(n)
    return out


def footprint(topo, coding, weight_bits: int | None = None) -> dict:
    """NeuroBench's memory footprint: bytes of the weights, biases and neuron state, float32
    (the weights at ``weight_bits`` each for a fixed-point network)."""
    w = n_weights(topo)
    b = n_parameters(topo) - w
    s = int(sum(n * k for n, k in zip(topo.sizes, state_variables(topo, coding))))
    wb = FLOAT_BYTES * w if weight_bits is None else -(-w * int(weight_bits) // 8)
    precision = ("float32 (4 bytes per weight, bias and neuron state variable)"
                 if weight_bits is None else
                 f"{weight_bits}-bit weights (packed), float32 biases and neuron state")
    return {"bytes": wb + FLOAT_BYTES * (b + s), "weights_bytes": wb,
            "biases_bytes": FLOAT_BYTES * b, "state_bytes": FLOAT_BYTES * s,
            "precision": precision}


def fits(total_bytes: int, profile: Profile) -> bool | None:
    """Whether ``total_bytes`` fit the profile's on-chip memory (None: not given)."""
    ob = profile.memory.get("onchip_bytes")
    return None if ob is None else total_bytes <= ob


def fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


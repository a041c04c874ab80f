"""Pictures of traces show what they claim: marks at the spikes' (step, neuron) cells and no
bigger than a cell, density bins that add up to the spike counts and are named in the title,
bus-engine bins that hold one tick of every cluster, state plots with markers where records
are sparse and legends outside the data, and every function drawing into given Axes and
returning the figure."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from neuroemu import describe, engines, record
from neuroemu.engines import compiled as compiler
from neuroemu.errors import TraceError
from neuroemu.record import plots

from conftest import NETLISTS, make_netlist

CONT = {"encoder": "none", "predictive": False, "decoder": "identity",
        "eps": {"kind": "constant", "eps0": 0.5}}


@pytest.fixture(scope="module")
def tiny_trace(tmp_path_factory):
    """tiny.toml, 2 samples, 80 steps, hidden probed every 10 steps and output every step."""
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    sess = engines.session(cn, np.random.default_rng(2).random((2, 4)), seed=3)
    path = tmp_path_factory.mktemp("plots") / "tiny.h5"
    with record.TraceWriter.for_session(path, sess, probes={"hidden": None, "output": None},
                                        probe_every=10) as w:
        w.append(sess.run(80, record_spikes=True, record_states=True, record_extra=True))
    return path, cn, sess.phases[0]


@pytest.fixture(scope="module")
def mnist_trace(tmp_path_factory):
    cn = compiler.build(describe.load(NETLISTS / "mnist-binary.toml"))
    path = tmp_path_factory.mktemp("plots") / "mnist.h5"
    record.run_traced(path, cn, np.random.default_rng(4).random((1, 784)), 120, seed=1,
                      progress=False)
    return path, cn


def cells(phase, cn, sample, layer):
    """(step, neuron) of every spike of one layer of one sample, from the engine's record."""
    l = cn.layer(layer)
    r, j = np.nonzero(phase.spikes[:, sample, cn.off[l]:cn.off[l + 1]])
    return np.stack([r + 1 + phase.t_start, j], axis=1).astype(float)


def panel(fig, layer):
    return next(a for a in fig.axes if a.get_ylabel().startswith(layer + "\n"))


def test_raster_marks_sit_at_the_spike_cells_and_fit_them(tiny_trace):
    path, cn, ph = tiny_trace
    with record.open(path) as t:
        fig = plots.raster(t, sample=1)
    assert isinstance(fig, Figure)
    assert "one mark per spike: output, hidden, input" in fig.get_suptitle()
    drawn = 0
    for layer in cn.names:
        ax = panel(fig, layer)
        assert not ax.images
        (marks,) = ax.collections
        want = cells(ph, cn, 1, layer)
        got = np.asarray(marks.get_offsets())
        assert np.array_equal(got[np.lexsort(got.T[::-1])], want[np.lexsort(want.T[::-1])])
        drawn += len(got)
        # a mark fills at most its cell, and at least half of it (sized to the pixel grid)
        box = ax.get_window_extent()
        cell = (box.width / 80, box.height / cn.sizes[cn.layer(layer)])
        v = marks.get_paths()[0].vertices
        side = np.sqrt(marks.get_sizes()[0]) * fig.dpi / 72
        extent = (np.ptp(v[:, 0]) * side, np.ptp(v[:, 1]) * side)
        assert all(c / 2 <= e <= c + 1e-9 for e, c in zip(extent, cell)), (extent, cell)
    assert drawn > 20


def test_raster_density_bins_add_up_to_the_spike_counts(mnist_trace):
    path, cn = mnist_trace
    with record.open(path) as t:
        fig = plots.raster(t)
        title = fig.get_suptitle()
        for layer in ("input", "hidden"):       # 784 and 500 neurons: more than the pixels
            ax = panel(fig, layer)
            (im,) = ax.images
            img = im.get_array()
            x0, x1, y0, y1 = im.get_extent()
            bin_steps = round((x1 - x0) / img.shape[1])
            bin_neurons = round((y1 - y0) / img.shape[0])
            assert bin_neurons > 1 and im.get_interpolation() == "nearest"
            assert f"{bin_steps} step" in title and f"x {bin_neurons} neurons" in title
            assert im.colorbar is not None
            n = t.info(layer)["size"]
            # cells per bin (the last row holds what the population has left)
            height = np.minimum(bin_neurons, n - bin_neurons * np.arange(img.shape[0]))
            counts = img * height[:, None] * bin_steps
            assert np.allclose(counts, np.round(counts))
            steps, ids = t.spikes(layer)
            assert round(counts.sum()) == len(ids) == t.info(layer)["spikes"]
            ref = np.zeros(img.shape)
            np.add.at(ref, (ids.astype(int) // bin_neurons, (steps - 1) // bin_steps), 1)
            assert np.array_equal(np.round(counts), ref)
        assert not panel(fig, "output").images   # 10 neurons fit: marks
        # a narrow panel bins time too, in whole steps
        small = Figure(figsize=(1.2, 2), dpi=100)
        ax = small.add_subplot()
        assert plots.raster(t, layers=["hidden"], ax=ax) is small
        (im,) = ax.images
        img = im.get_array()
        x0, x1, y0, y1 = im.get_extent()
        bin_steps = round((x1 - x0) / img.shape[1])
        bin_neurons = round((y1 - y0) / img.shape[0])
        assert bin_steps >= 2 and f"bins of {bin_steps} steps" in ax.get_title()
        width = np.minimum(bin_steps, 120 - bin_steps * np.arange(img.shape[1]))
        height = np.minimum(bin_neurons, 500 - bin_neurons * np.arange(img.shape[0]))
        counts = img * height[:, None] * width[None, :]
        assert round(counts.sum()) == t.info("hidden")["spikes"]


def test_raster_draws_into_given_axes_and_names_wrong_ones(tiny_trace):
    path, cn, ph = tiny_trace
    fig = Figure()
    axes = fig.subplots(3, 1)
    assert plots.raster(path, ax=axes, start=11, stop=31) is fig   # a path works too
    assert all(a.collections for a in axes)
    offs = panel(fig, "hidden").collections[0].get_offsets()
    want = cells(ph, cn, 0, "hidden")
    want = want[(want[:, 0] >= 11) & (want[:, 0] < 31)]
    assert len(offs) == len(want) > 0 and set(map(tuple, offs)) == set(map(tuple, want))
    assert axes[0].get_xlim() == (10.5, 30.5)
    with pytest.raises(TraceError, match=r"ax: a raster of 3 layers needs 3 Axes \(got 2\)"):
        plots.raster(path, ax=Figure().subplots(2))
    with pytest.raises(TraceError, match=r"layers: must name layers of the trace \(input, "
                                         r"hidden, output\) \(got nosuch\)"):
        plots.raster(path, layers=["nosuch"])
    with pytest.raises(TraceError, match=r"raster: sample 5 was not recorded"):
        plots.raster(path, sample=5)


def test_bus_engine_bins_hold_one_tick_of_every_cluster(tmp_path):
    """Clusters tick at k + phase_c + jitter: with phase offsets up to half a step some ticks
    cross the half-step edges, so bins from start - 0.5 hold 0 or 2 ticks; the raster's bins
    start between the clusters' ticks and every bin holds exactly one."""
    hw = {"quanta": 100, "cluster_size": 50, "clock": {"phase": 50, "jitter": 20}}
    net = compiler.build(make_netlist([200, 8, 3], CONT, seed=1, bias=0.1,
                                      extra={"hardware": hw}))
    x = np.random.default_rng(0).random((1, 200)) + 0.1       # never zero: a message per tick
    path = tmp_path / "bus.h5"
    record.run_traced(path, net, x, 60, seed=7, engine="async", hardware=hw, progress=False)
    with record.open(path) as t:
        assert t.info("input")["spikes"] == 200 * 60
        fig = Figure(figsize=(8, 1.2), dpi=100)   # 200 neurons in fewer pixels: density
        ax = fig.add_subplot()
        plots.raster(t, layers=["input"], ax=ax)
        (im,) = ax.images
        assert im.get_array().shape[1] == 60      # bins of one step
        assert np.array_equal(im.get_array(), np.ones(im.get_array().shape))
        assert "between the clusters' ticks" in ax.get_title()
        times, ids = t.spikes("input", as_time=True)
        naive = plots.density(times, ids.astype(int), 200, 0.5, 60, 1, 50)
        assert naive.min() == 0 and naive.max() == 2   # the stripes the origin avoids
        x0, gap = plots.bin_origin(np.mod(times, 1), 1)
        assert 0.5 <= x0 < 1.5 and gap >= 0.1


def test_bin_origin_is_half_a_step_before_whole_steps():
    assert plots.bin_origin(np.array([0.0]), 7) == (6.5, 1.0)
    assert plots.bin_origin(np.array([]), 3) == (2.5, 1.0)
    x0, gap = plots.bin_origin(np.array([0.1, 0.2, 0.45]), 1)   # widest gap 0.45 .. 1.1
    assert x0 == pytest.approx(0.775) and gap == pytest.approx(0.65)


def test_states_markers_when_sparse_and_legend_outside_the_data(tiny_trace):
    path, cn, ph = tiny_trace
    with record.open(path) as t:
        fig = plots.states(t, neurons=["hidden:0-2", "output:1"])
        fig.canvas.draw()
        data = [a for a in fig.axes if a.lines]
        assert data
        for ax in data:   # every 10 steps over 80: 8 points per line, each a marker
            assert all(len(l.get_xdata()) == 8 and l.get_marker() == "o" for l in ax.lines)
        legends = [a.get_legend() for a in fig.axes if a.get_legend()]
        assert len(legends) == 2
        renderer = fig.canvas.get_renderer()
        for leg in legends:
            box = leg.get_window_extent(renderer)
            assert not any(box.overlaps(a.get_window_extent(renderer)) for a in fig.axes)
            assert [tx.get_text() for tx in leg.get_texts()] in (
                ["neuron 0", "neuron 1", "neuron 2"], ["neuron 1"])
        # one variable of one population into a given Axes; dense records: lines only
        ax = Figure(figsize=(3, 2), dpi=100).add_subplot()
        with pytest.raises(TraceError, match=r"ax: 4 variables of 1 population needs 4 Axes"):
            plots.states(t, ax=ax, neurons=["output:0"])
        assert plots.states(t, ax=ax, neurons=["output:0"], variables=["s"]) is ax.figure
        (line,) = ax.lines
        steps, s = t.states("output", "s")
        assert np.array_equal(line.get_xydata(), np.stack([steps, s[:, 0, 0]], axis=1))
        with pytest.raises(TraceError, match=r"variables: must be some of the probed s, v, "
                                             r"eps, phi \(got q\)"):
            plots.states(t, variables=["q"])


def test_states_lines_without_markers_when_records_are_dense(tmp_path):
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    sess = engines.session(cn, np.full((1, 4), 0.5), seed=1)
    with record.TraceWriter.for_session(tmp_path / "d.h5", sess, probes={"hidden": [0]},
                                        probe_vars=["s"]) as w:
        w.append(sess.run(400, record_spikes=True, record_states=True))
    fig = plots.states(tmp_path / "d.h5", path=tmp_path / "d.png")
    (line,) = [l for a in fig.axes for l in a.lines]
    assert len(line.get_xdata()) == 400 and line.get_marker() in (None, "None", "")
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"

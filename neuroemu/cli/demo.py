"""``neuroemu demo``: classify MNIST digits with the shipped trained spiking network.

Needs no dataset and runs from any folder: the trained binary 784-500-10 network
(``mnist-binary-trained``) and 300 digits of the official MNIST test set
(``neuroemu/data/mnist_test_digits.npz``) ship inside the package.  Each digit is
classified the way the network was trained (docs/model.md section 4.5): a free phase of
100 spiking steps from the zero state -- sigma-delta encoders, predictive coding
(lambda = 0.275), OSA step sizes -- then ``argmax`` of the output states.

Prints the accuracy, the spikes per digit and the energy per classified digit on a hardware
profile, and writes an HDF5 spike trace of one digit and a raster PNG (under ``traces/`` of the
current folder unless ``--out-dir`` says otherwise).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import describe, engines
from ..files import check_partial, netlist_inputs, replacing
from ..learn.datasets import digits
from ..learn.evaluate import default_steps, evaluate
from .options import check_outputs, check_plot, integer, resolve_profile

NETWORK = "mnist-binary-trained"
EXAMPLE = """examples:
  neuroemu demo
  neuroemu demo --digits 100 --profile truenorth --out-dir /tmp/demo"""


def energy_summary(cn, x, steps, profile_name):
    from ..energy import accounting as energy
    from ..energy import hardware as hw
    profile = profile_name if isinstance(profile_name, hw.Profile) else \
        hw.load_profile(profile_name)
    phases = energy.run_network(cn, x, steps)
    names, sizes = cn.names, cn.sizes
    placement = hw.place(sizes)
    setup = energy.Setup(names, sizes, energy.coding_of(cn.netlist), placement,
                         hw.route_table(placement, sizes, True))
    return energy.report(setup, phases, profile)


def raster_png(path, cn, x, label, pred, steps, seed):
    """Spike raster of one digit's free phase, with the digit and the output states."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sess = engines.session(cn, x[None, :], seed=seed)
    ph = sess.run(steps, record_spikes=True, record_states=True)
    spk, st = ph.spikes[:, 0, :], ph.states[:, 0, :]
    off = cn.off
    fig = plt.figure(figsize=(10, 8), dpi=100)
    gs = fig.add_gridspec(3, 4, height_ratios=[1.1, 2.6, 1.4])
    ax0 = fig.add_subplot(gs[0, 0])
    ax0.imshow(x.reshape(28, 28), cmap="gray_r")
    ax0.set_title(f"test digit: label {label}, predicted {pred}", fontsize=9)
    ax0.axis("off")
    axc = fig.add_subplot(gs[0, 1:])
    per_step = [spk[:, off[l]:off[l + 1]].sum(1) for l in range(len(cn.sizes))]
    for l, name in enumerate(cn.names):
        axc.plot(np.arange(1, steps + 1), per_step[l], label=f"{name} ({cn.sizes[l]})", lw=1)
    axc.set_ylabel("spikes per step")
    axc.legend(fontsize=7, loc="upper right")
    axc.set_title("spikes sent per step, by population", fontsize=9)
    ax1 = fig.add_subplot(gs[1, :])
    n_show = min(120, cn.sizes[1])
    hid = spk[:, off[1]:off[1] + n_show].T
    outs = spk[:, off[-2]:off[-1]].T
    gap = np.zeros((3, steps), dtype=bool)
    ax1.imshow(np.vstack([hid, gap, outs]), aspect="auto", cmap="Greys", interpolation="nearest",
               extent=(0.5, steps + 0.5, n_show + 3 + outs.shape[0] - 0.5, -0.5))
    ax1.axhline(n_show + 1, color="tab:red", lw=0.8)
    ax1.set_yticks([0, n_show // 2, n_show + 3, n_show + 3 + outs.shape[0] - 1])
    ax1.set_yticklabels([f"{cn.names[1]} 0", f"{cn.names[1]} {n_show // 2}", f"{cn.names[-1]} 0",
                         f"{cn.names[-1]} {outs.shape[0] - 1}"], fontsize=7)
    ax1.set_title(f"spike raster: {cn.names[1]} neurons 0-{n_show - 1} (of {cn.sizes[1]}) above "
                  f"the red line, the {outs.shape[0]} output neurons below (black = spike)",
                  fontsize=9)
    ax2 = fig.add_subplot(gs[2, :])
    out = st[:, off[-2]:off[-1]]
    for k in range(out.shape[1]):
        ax2.plot(np.arange(1, steps + 1), out[:, k], lw=2.0 if k == pred else 0.8,
                 label=str(k))
    ax2.set_xlabel("step")
    ax2.set_ylabel("output state s")
    ax2.set_xlim(0, steps + 1)
    ax2.legend(ncol=1, fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5),
               title="class", title_fontsize=7)
    ax2.set_title("output states (the prediction is the largest at the last step)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return sess.result()


def add_demo_arguments(p) -> None:
    p.epilog = EXAMPLE
    p.add_argument("--netlist", default=NETWORK,
                   help=f"trained network, a file or a shipped name (default {NETWORK})")
    p.add_argument("--digits", type=integer(1, 300), default=300,
                   help="how many bundled digits (1..300, default 300)")
    p.add_argument("--profile", default="loihi", help="hardware profile for the energy estimate "
                   "(a shipped name, or a .toml file)")
    p.add_argument("--out-dir", default="traces",
                   help="where the trace and raster go (default ./traces): demo-trace.h5 and "
                   "demo-raster.png, the demo's own files, which a later demo replaces "
                   "(atomically; never a folder or a FIFO of that name, nor the netlist)")
    p.add_argument("--no-files", action="store_true", help="write no trace or PNG")


def demo_main(args) -> int:
    from ..energy import hardware as hw
    path = describe.resolve(args.netlist)
    out = Path(args.out_dir)
    if not args.no_files:   # its own two files in its own folder: replaced, never an input
        check_outputs([("--out-dir", out / "demo-raster.png"),
                       ("--out-dir", out / "demo-trace.h5")],
                      inputs=netlist_inputs(path), force=True)
        check_partial(out / "demo-trace.h5", force=True, option="--out-dir")
        check_plot(out / "demo-raster.png", "--out-dir")
    profile = hw.load_profile(resolve_profile(args.profile))
    nl = describe.load(path)
    cn = engines.build(nl)
    x, labels = digits()
    x, labels = x[:args.digits], labels[:args.digits]
    print(f"network {nl.name} ({'-'.join(map(str, cn.sizes))}) from {path}")
    if nl.description:
        print(f"  {nl.description}")
    print(f"classifying {len(x)} MNIST test digits (official test images 0-{len(x) - 1}) with "
          f"{default_steps(cn)} spiking steps each ...")
    t0 = time.perf_counter()
    res = evaluate(cn, x, labels, batch=100)
    dt = time.perf_counter() - t0
    pred = res.predictions
    print(f"accuracy {100 * res.accuracy:.2f}% ({res.errors} errors in {len(x)}), "
          f"{dt:.2f} s ({len(x) / dt:.0f} digits/s)")
    print(f"spikes per digit: {res.spikes_per_sample:.0f} in total = "
          + " + ".join(f"{v:.0f} {n}" for n, v in res.spikes_per_population.items())
          + f" (over {res.steps} steps; the {cn.sizes[0]} inputs spike too)")
    wrong = np.nonzero(pred != labels)[0][:10]
    if len(wrong):
        print("first misclassified: " + ", ".join(f"#{i} ({labels[i]}->{pred[i]})" for i in wrong))

    from ..energy.accounting import fmt_j
    rep = energy_summary(cn, x, res.steps, profile)
    ratio = rep.get("spike_vs_real_ratio")
    print(f"energy on profile '{rep['profile']}': {fmt_j(rep['per_inference_j'])} per "
          f"classified digit"
          + (f" (the same network sending real-valued words every step: "
             f"{fmt_j(rep['real_valued_total_j_per_sample'])}, {1 / ratio:.1f}x)"
             if ratio else ""))
    if not args.no_files:
        out.mkdir(parents=True, exist_ok=True)
        png = out / "demo-raster.png"
        with replacing(png) as tmp:
            run = raster_png(tmp, cn, x[0], int(labels[0]), int(pred[0]), res.steps, nl.seed)
        print(f"wrote {png} (spike raster of test digit #0)")
        from .. import record
        tpath = record.write(out / "demo-trace.h5", cn, run, x=x[:1])
        print(f"wrote {tpath} (HDF5 spike trace of digit #0; neuroemu inspect {tpath})")
    return 0

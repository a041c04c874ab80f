"""Learning: datasets, Equilibrium Propagation training, and the convergence experiment of the
paper's Fig. 2 -- all on top of the engines' sessions, none inside them.

- :mod:`.datasets` -- MNIST and Fashion-MNIST from local IDX files, verified;
- :mod:`.eqprop` -- the EP trainer, its hyper-parameter presets, checkpoints;
- :mod:`.converge` -- the Fig. 2 protocol and its scores.
"""

from __future__ import annotations

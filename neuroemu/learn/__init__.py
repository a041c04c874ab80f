"""Learning: datasets, Equilibrium Propagation training, evaluation, and the convergence
experiment of the paper's Fig. 2 -- all on top of the engines' sessions, none inside them.

- :mod:`.datasets` -- MNIST and Fashion-MNIST from local IDX files, verified;
- :mod:`.eqprop` -- the EP trainer (one minibatch), its hyper-parameter presets, checkpoints;
- :mod:`.train` -- epochs of training (:func:`~.train.run_epochs`, which ``neuroemu train``
  runs) and the library's one-call :func:`~.train.train` (``neuroemu.train``);
- :mod:`.evaluate` -- a network's error, spikes and synaptic events on a set of images;
- :mod:`.plots` -- the learning curve;
- :mod:`.converge` -- the Fig. 2 protocol, its scores and its plot.
"""

from __future__ import annotations

"""neuroemu: an event-driven emulator of neuromorphic hardware running the spiking
Equilibrium-Propagation model of O'Connor, Gavves & Welling (AISTATS 2019)."""

__version__ = "0.1.0"

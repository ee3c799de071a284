"""The seven experiments, one module each (see :mod:`initlab.lab.runner` for the protocol)."""

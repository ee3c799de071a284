"""initlab for Flax: one-call model initialization for NNX modules and Linen parameter trees.

Owns Flax discovery into the shared shadow path and writing drawn weights back in Flax's layout
(:mod:`._trace`: discovery from one ``jax.make_jaxpr`` trace of the forward, with :mod:`._inventory` (the
parameter leaves and their modules), :mod:`._acts` (activations named from their values) and :mod:`._units`
(ConvTranspose, LSTM cells, attention); :mod:`._model`: layer kinds and the tree walk used without an example
input; :mod:`._api`: the entry points). May import flax, jax, numpy and
:mod:`initlab.frameworks` (which brings the model package and torch). Nothing else in initlab imports it. For
single initializers use :func:`initlab.jax.get`.

- ``init_model(module_or_params, scheme="auto", *, seed=None, example_input=None, apply_fn=None,
  activation=None) -> InitReport``
- ``init_params(params, scheme="auto", *, seed=None, example_input=None, apply_fn=None, activation=None)
  -> (params, InitReport)``
"""

from ._api import init_model, init_params

__all__ = ["init_model", "init_params"]

"""initlab for Keras 3: catalog schemes as Keras initializers and one-call model initialization.

Owns the Keras initializer (:mod:`._initializer`), Keras model discovery into the shared shadow path
(:mod:`._layers`: layer kinds; :mod:`._model`: the graph walk) and writing drawn weights back in Keras'
layout.
May import keras, numpy, the catalog and :mod:`initlab.frameworks` (which brings the model package and torch);
works on any Keras backend. Nothing else in initlab imports this package.

- ``get(scheme, *, seed=None) -> Initializer``:
  ``Dense(64, kernel_initializer=initlab.keras.get("he_normal"))``
- ``init_model(model, scheme="auto", *, seed=None) -> InitReport``: every weight of a built Keras model, the
  same weights as ``initlab.frameworks.init_torch`` gives an equivalent torch model.
"""

from ._initializer import Initializer, get
from ._model import init_model

__all__ = ["Initializer", "get", "init_model"]

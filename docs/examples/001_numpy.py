"""Example 001: why the scale of the initial weights matters, in 30 lines of numpy.

Push a batch of unit-variance inputs through ``depth`` random linear layers of width ``width``:

- with w ~ N(0, 1) every layer multiplies the activation std by about sqrt(fan_in), so after depth layers it
  is about sqrt(fan_in)^depth (here 16^10 ~ 1e12: the signal explodes);
- with w ~ N(0, 1/fan_in) (``lecun_normal``) the std stays about 1 at every depth.

Weights come from ``initlab.sample`` with a numpy ``Generator``: same seed, same numbers, and numpy's global
RNG is never touched. Run: ``python docs/examples/001_numpy.py``.
"""

from __future__ import annotations

import numpy as np

from initlab import sample


def activation_stds(scheme: str, *, width: int = 256, depth: int = 10, batch: int = 512,
                    seed: int = 1) -> list[float]:
    """Std of the activations after each of ``depth`` linear layers initialized with ``scheme``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width))
    stds = []
    for _ in range(depth):
        w = sample(scheme, (width, width), rng, dtype=np.float64)  # torch layout: (out, in)
        x = x @ w.T
        stds.append(float(x.std()))
    return stds


def main() -> None:
    width = 256
    plain, scaled = activation_stds("normal(0, 1)", width=width), activation_stds("lecun_normal", width=width)
    print(f"{'layer':>5}  {'N(0, 1)':>12}  {'sqrt(fan_in)^l':>14}  {'N(0, 1/fan_in)':>14}")
    for layer, (a, b) in enumerate(zip(plain, scaled, strict=True), start=1):
        print(f"{layer:>5}  {a:12.4g}  {width ** (layer / 2):14.4g}  {b:14.4f}")


if __name__ == "__main__":
    main()

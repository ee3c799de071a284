"""Gains: the classic table and a variance-preserving gain computed for any activation.

The classic table is PyTorch's ``calculate_gain`` (linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2),
leaky_relu sqrt(2/(1+s^2)), selu 3/4). The variance-preserving gain is derived, not looked up:
``gain(phi, q) = sqrt(q / E[phi(z)^2])`` with ``z ~ N(0, q)``, evaluated by Gauss-Hermite quadrature, so that
``Var[w] = gain^2 / fan_in`` keeps the second moment of the pre-activations at ``q`` layer after layer (ReLU
gives sqrt(2), SELU 1, linear 1). Mean-field quantities (Poole et al. 2016, Schoenholz et al. 2017) come
along:
the fixed point ``q*`` of ``q <- s_w^2 E[phi(sqrt(q) z)^2] + s_b^2`` and the order-to-chaos slope
``chi = s_w^2 E[phi'(sqrt(q*) z)^2]``; ``chi = 1`` is the edge of chaos.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from .activations import Activation, activation

CLASSIC_GAINS: dict[str, str] = {
    "linear": "1", "conv1d": "1", "conv2d": "1", "conv3d": "1", "conv_transpose1d": "1",
    "conv_transpose2d": "1", "conv_transpose3d": "1", "sigmoid": "1", "tanh": "5/3", "relu": "sqrt(2)",
    "leaky_relu": "sqrt(2 / (1 + negative_slope^2)), negative_slope = 0.01", "selu": "3/4",
}

ActivationLike = str | Activation | Callable[[np.ndarray], Any]


def classic_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's ``calculate_gain`` table, value for value.

    >>> classic_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    True
    """
    name = nonlinearity.lower()
    if name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid", "identity"):
        return 1.0
    if name == "tanh":
        return 5.0 / 3
    if name == "relu":
        return math.sqrt(2.0)
    if name == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, int | float):
            raise ValueError(f"negative_slope {param} not a valid number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if name == "selu":
        return 3.0 / 4
    raise ValueError(f"no classic gain for {nonlinearity!r}; use variance_gain() for any activation")


@lru_cache(maxsize=8)
def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes, weights / math.sqrt(2 * math.pi)


_NODES = 201


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], q: float = 1.0, n: int = _NODES) -> float:
    """``E[f(z)]`` for ``z ~ N(0, q)`` by ``n``-point Gauss-Hermite quadrature."""
    nodes, weights = _hermite(n)
    return float(np.dot(weights, f(math.sqrt(q) * nodes)))


def _derivative(phi: Activation) -> Callable[[np.ndarray], np.ndarray]:
    h = 1e-5
    return lambda x: (phi(x + h) - phi(x - h)) / (2 * h)


@dataclass(frozen=True)
class Moments:
    """Moments of ``phi(z)``, ``z ~ N(0, q)``: mean, second moment, and ``E[phi'(z)^2]``."""

    q: float
    mean: float
    second: float
    slope2: float

    @property
    def var(self) -> float:
        return max(self.second - self.mean**2, 0.0)


def moments(phi: ActivationLike, q: float = 1.0) -> Moments:
    """The catalog's numeric moment map of an activation at input variance ``q``."""
    act = activation(phi)
    d = _derivative(act)
    nodes, weights = _hermite(_NODES)
    y = np.asarray(act(math.sqrt(q) * nodes))  # evaluated once for both moments (a model's module, maybe)
    return Moments(
        q,
        float(np.dot(weights, y)),
        float(np.dot(weights, y**2)),
        gaussian_expectation(lambda x: d(x) ** 2, q),
    )


def variance_gain(phi: ActivationLike, q: float = 1.0) -> float:
    """Gain that preserves the pre-activation second moment ``q`` through ``phi``: ``sqrt(q / E[phi(z)^2])``.

    >>> round(variance_gain("relu"), 6) == round(math.sqrt(2), 6)
    True
    """
    second = moments(phi, q).second
    if not second > 0:
        name = activation(phi).name
        raise ValueError(f"activation {name} has E[phi(z)^2] = 0 at q={q}: no gain preserves it")
    return math.sqrt(q / second)


def gain(phi: ActivationLike, table: Literal["classic", "variance"] = "classic") -> float:
    """The one gain function: the classic gain (torch's table) when ``table="classic"`` and the table has
    one, else the variance-preserving gain ``1 / sqrt(E[phi(z)^2])``. ``VarianceScaling`` calls this."""
    act = activation(phi)
    if table == "classic":
        try:
            return classic_gain(act.name, act.params.get("negative_slope"))
        except ValueError:
            pass
    return variance_gain(act)


def fixed_point_q(phi: ActivationLike, sigma_w2: float, sigma_b2: float = 0.0, *, q0: float = 1.0,
                  iters: int = 500, tol: float = 1e-12) -> float:
    """Fixed point ``q*`` of the length map ``q <- s_w^2 E[phi(sqrt(q) z)^2] + s_b^2``."""
    act = activation(phi)
    q = q0
    for _ in range(iters):
        new = sigma_w2 * gaussian_expectation(lambda x: act(x) ** 2, q) + sigma_b2
        if abs(new - q) < tol * max(1.0, q):
            return new
        q = new
    return q


def chi(phi: ActivationLike, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """Order-to-chaos slope ``chi = s_w^2 E[phi'(sqrt(q*) z)^2]`` at the fixed point ``q*``."""
    act = activation(phi)
    q = fixed_point_q(act, sigma_w2, sigma_b2)
    d = _derivative(act)
    return sigma_w2 * gaussian_expectation(lambda x: d(x) ** 2, q)


def critical_sigma_w2(phi: ActivationLike, sigma_b2: float = 0.0,
                      bracket: tuple[float, float] = (0.5, 4.0)) -> float:
    """``s_w^2`` at the edge of chaos (``chi = 1``) for bias variance ``s_b^2``.

    >>> round(critical_sigma_w2("tanh", 0.05), 3)
    1.761
    """
    act = activation(phi)
    if sigma_b2 == 0.0:
        # At s_b^2 = 0 the fixed point is q* = 0 for odd phi; chi = s_w^2 phi'(0)^2 there.
        slope0 = float(_derivative(act)(np.array([0.0]))[0])
        if slope0 != 0 and abs(float(act(np.array([0.0]))[0])) < 1e-12:
            return 1.0 / slope0**2
    from scipy import optimize  # on first use: ~23 MB that a process drawing weights does not need

    return float(optimize.brentq(lambda s: chi(act, s, sigma_b2) - 1.0, *bracket, xtol=1e-10))

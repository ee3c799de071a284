"""Datasets for the lab, generated or loaded offline: mnist1d (``make_dataset``) and scikit-learn's digits.

mnist1d is generated once per (seed, size) and cached as ``.npz`` under ``$INITLAB_CACHE`` (default
``~/.cache/initlab``). ``make_dataset`` seeds Python's and numpy's global RNGs; both are restored afterwards.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("mnist1d", "digits")


@dataclass(frozen=True)
class Dataset:
    """Standardized features (train statistics), integer labels, as float32/int64 torch tensors."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max().item()) + 1

    def subset_classes(self, classes: list[int]) -> Dataset:
        """Only the samples of ``classes``, relabelled 0..len(classes)-1 in that order."""
        lookup = torch.full((self.n_classes,), -1, dtype=torch.int64)
        lookup[torch.tensor(classes)] = torch.arange(len(classes))
        train, test = lookup[self.y_train] >= 0, lookup[self.y_test] >= 0
        return Dataset(
            f"{self.name}[{','.join(map(str, classes))}]",
            self.x_train[train],
            lookup[self.y_train[train]],
            self.x_test[test],
            lookup[self.y_test[test]],
        )


def cache_dir() -> Path:
    return Path(os.environ.get("INITLAB_CACHE", Path.home() / ".cache" / "initlab"))


def load(name: str = "mnist1d", *, seed: int = 42, num_samples: int = 5000) -> Dataset:
    """``mnist1d`` (4000/1000 split of ``num_samples`` generated with ``seed``) or ``digits`` (1797 images,
    a fixed 80/20 split drawn with ``seed``)."""
    if name == "mnist1d":
        x, y, xt, yt = _mnist1d_arrays(seed, num_samples)
    elif name == "digits":
        x, y, xt, yt = _digits_arrays(seed)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    return Dataset(
        name,
        _features((x - mean) / std),
        torch.from_numpy(y.astype(np.int64)),
        _features((xt - mean) / std),
        torch.from_numpy(yt.astype(np.int64)),
    )


def _features(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _mnist1d_arrays(seed: int, num_samples: int) -> tuple[np.ndarray, ...]:
    path = cache_dir() / f"mnist1d-seed{seed}-n{num_samples}.npz"
    if path.exists():
        with np.load(path) as f:
            return f["x"], f["y"], f["x_test"], f["y_test"]
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed, args.num_samples = seed, num_samples
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    arrays = {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, x=arrays["x"], y=arrays["y"], x_test=arrays["x_test"], y_test=arrays["y_test"])
    os.replace(tmp, path)  # atomic: parallel workers never read half a file
    return arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"]


def _digits_arrays(seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.8 * len(y))
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]

"""Trainability of a deep plain MLP in Keras (jax backend) and Flax NNX: initlab "auto" beside each
framework's default initialization, in the same run (as benchmarks/trainability.py does for PyTorch).

A 50-layer width-128 MLP (no normalization, no residuals) on mnist1d (generated offline), batch 128,
``--steps`` steps, ``--seeds`` seeds; mean test accuracy per (framework, activation/optimizer, init). Both
train with optax (Adam / SGD) under ``jax.jit``. Keras' default is glorot_uniform kernels, Flax's
lecun_normal; initlab's weights come from ``initlab.keras.init_model`` / ``initlab.flax.init_model`` (the
plan initlab makes for the same torch model). Batches are the same index sequence for every init of a seed.

    python benchmarks/trainability_frameworks.py                 # 2000 steps, 3 seeds, both frameworks
    python benchmarks/trainability_frameworks.py --steps 200 --seeds 1 --frameworks flax --configs relu-adam
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np

CONFIGS = {"relu-adam": ("relu", "adam", 1e-3), "tanh-sgd": ("tanh", "sgd", 1e-2)}
TARGET = {"relu-adam": 0.55, "tanh-sgd": 0.45}
DEPTH, WIDTH, BATCH = 50, 128, 128


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    d = make_dataset(get_dataset_args())
    x, xt = (np.asarray(d[k], dtype=np.float32) for k in ("x", "x_test"))
    mean, std = x.mean(0), x.std(0)
    y, yt = (np.asarray(d[k], dtype=np.int32) for k in ("y", "y_test"))
    return (x - mean) / std, y, (xt - mean) / std, yt


def batches(seed: int, n: int, steps: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, (steps, BATCH))


def run_keras(act: str, opt: str, lr: float, init: str, seed: int, steps: int, xy: tuple) -> float:
    import jax
    import keras
    import optax

    import initlab.keras as ikeras

    x, y, xt, yt = xy
    keras.utils.set_random_seed(seed)  # Keras' default init draws from its global seed
    hidden = [keras.layers.Dense(WIDTH, activation=act) for _ in range(DEPTH - 1)]
    model = keras.Sequential([keras.Input((x.shape[1],)), *hidden, keras.layers.Dense(10)])
    if init == "initlab auto":
        ikeras.init_model(model, "auto", seed=seed)
    # Keras' JAX-native training loop (stateless_call under jax.jit; train_on_batch is ~10x slower here),
    # with the same optax optimizer as the Flax run
    tx = optax.adam(lr) if opt == "adam" else optax.sgd(lr)
    params = [v.value for v in model.trainable_variables]
    state = tx.init(params)

    @jax.jit
    def step(params, state, xb, yb):  # type: ignore[no-untyped-def]
        def loss(p):  # type: ignore[no-untyped-def]
            logits, _ = model.stateless_call(p, [], xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for idx in batches(seed, len(x), steps):
        params, state = step(params, state, x[idx], y[idx])
    logits, _ = model.stateless_call(params, [], xt)
    return float((np.asarray(logits).argmax(1) == yt).mean())


def run_flax(act: str, opt: str, lr: float, init: str, seed: int, steps: int, xy: tuple) -> float:
    import jax
    import optax
    from flax import nnx

    import initlab.flax as iflax

    x, y, xt, yt = xy
    rngs = nnx.Rngs(seed)
    fn = {"relu": nnx.relu, "tanh": jax.numpy.tanh}[act]
    items: list = [nnx.Linear(x.shape[1], WIDTH, rngs=rngs), fn]
    for _ in range(DEPTH - 2):
        items += [nnx.Linear(WIDTH, WIDTH, rngs=rngs), fn]
    model = nnx.Sequential(*items, nnx.Linear(WIDTH, 10, rngs=rngs))
    if init == "initlab auto":
        iflax.init_model(model, "auto", seed=seed)
    tx = optax.adam(lr) if opt == "adam" else optax.sgd(lr)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):  # type: ignore[no-untyped-def]
        def loss(m):  # type: ignore[no-untyped-def]
            return optax.softmax_cross_entropy_with_integer_labels(m(xb), yb).mean()
        grads = nnx.grad(loss)(model)
        optimizer.update(model, grads)

    for idx in batches(seed, len(x), steps):
        step(model, optimizer, x[idx], y[idx])
    return float((np.asarray(model(xt)).argmax(1) == yt).mean())


RUNNERS: dict[str, Callable[..., float]] = {"keras": run_keras, "flax": run_flax}
DEFAULTS = {"keras": "keras default (glorot_uniform)", "flax": "flax default (lecun_normal)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--configs", default="relu-adam,tanh-sgd")
    ap.add_argument("--frameworks", default="keras,flax")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    xy = data()
    results: dict[str, dict[str, list[float]]] = {}
    for seed in range(args.seeds):  # seeds outermost: an interrupted run has every cell for its first seeds
        for cname in args.configs.split(","):
            act, opt, lr = CONFIGS[cname]
            for auto in (True, False):
                for fw in args.frameworks.split(","):
                    init = "initlab auto" if auto else DEFAULTS[fw]
                    t0 = time.perf_counter()
                    acc = RUNNERS[fw](act, opt, lr, init, seed, args.steps, xy)
                    results.setdefault(f"{fw} {cname}", {}).setdefault(init, []).append(acc)
                    print(f"{fw:5s} {cname:9s} {init:30s} seed {seed}: test acc {acc:.3f} "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    head = f"framework, config ({args.steps} steps, {args.seeds} seeds)"
    print(f"\n| {head} | default | initlab auto | target |")
    print("|---|---|---|---|")
    for key, row in results.items():
        fw, cname = key.split()
        mean = {k: float(np.mean(v)) for k, v in row.items()}
        auto = mean["initlab auto"]
        print(f"| {fw}, {cname} | {mean[DEFAULTS[fw]]:.3f} | {auto:.3f} | >= {TARGET[cname]} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"steps": args.steps, "seeds": args.seeds, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()

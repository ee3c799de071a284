"""Trainability of a deep plain MLP in Keras (jax backend) and Flax NNX: initlab "auto" beside each
framework's default initialization, in the same run (as benchmarks/trainability.py does for PyTorch).

A 50-layer width-128 MLP (no normalization, no residuals) on mnist1d (generated offline), batch 128,
``--steps`` steps, ``--seeds`` seeds; mean test accuracy per (framework, activation/optimizer, init). Both
train with optax (Adam / SGD) under ``jax.jit``. Keras' default is glorot_uniform kernels, Flax's
lecun_normal; initlab's weights come from ``initlab.keras.init_model`` / ``initlab.flax.init_model`` (the
plan initlab makes for the same torch model). The data and each seed's batches are those of
benchmarks/trainability.py (torch's generator), the same for every init of a seed: the PyTorch experiment.

    python benchmarks/trainability_frameworks.py                 # 2000 steps, 3 seeds, both frameworks
    python benchmarks/trainability_frameworks.py --steps 200 --seeds 1 --frameworks flax --configs relu-adam
    python benchmarks/trainability_frameworks.py --frameworks torch --configs relu-adam   # the PyTorch twin
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np

CONFIGS = {"relu-adam": ("relu", "adam", 1e-3), "tanh-sgd": ("tanh", "sgd", 1e-2)}
TARGET = {"relu-adam": 0.55, "tanh-sgd": 0.45}
DEPTH, WIDTH, BATCH = 50, 128, 128
CHUNK = 100  # steps per compiled scan


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """benchmarks/trainability.py's standardized mnist1d, as numpy arrays (int32 labels)."""
    import trainability

    x, y, xt, yt = (t.numpy() for t in trainability.data())
    return x, y.astype(np.int32), xt, yt.astype(np.int32)


BATCH_ORDER = {"order": "torch"}  # --batches numpy: the order of the first runs (numpy's generator)


def batches(seed: int, n: int, steps: int) -> np.ndarray:
    """benchmarks/trainability.py's batches for ``seed`` (torch's generator): the same data order as the
    PyTorch benchmark, so that with the same weights the three frameworks run the same experiment."""
    if BATCH_ORDER["order"] == "numpy":
        return np.random.default_rng(seed).integers(0, n, (steps, BATCH))
    import trainability

    return trainability.batch_indices(seed, n, steps, BATCH).numpy()


Apply = Callable[[Any, Any], Any]  # (params, x) -> logits: a pure function of the parameter pytree


def build_keras(act: str, init: str, seed: int, n_in: int) -> tuple[Apply, Any]:
    import keras

    import initlab.keras as ikeras

    keras.utils.set_random_seed(seed)  # Keras' default init draws from its global seed
    hidden = [keras.layers.Dense(WIDTH, activation=act) for _ in range(DEPTH - 1)]
    model = keras.Sequential([keras.Input((n_in,)), *hidden, keras.layers.Dense(10)])
    if init == "initlab auto":
        ikeras.init_model(model, "auto", seed=seed)
    # Keras' JAX-native functional call (train_on_batch is ~10x slower here)
    return (lambda p, xb: model.stateless_call(p, [], xb)[0]), [v.value for v in model.trainable_variables]


def build_flax(act: str, init: str, seed: int, n_in: int) -> tuple[Apply, Any]:
    import jax
    from flax import nnx

    import initlab.flax as iflax

    rngs = nnx.Rngs(seed)
    fn = {"relu": nnx.relu, "tanh": jax.numpy.tanh}[act]
    items: list = [nnx.Linear(n_in, WIDTH, rngs=rngs), fn]
    for _ in range(DEPTH - 2):
        items += [nnx.Linear(WIDTH, WIDTH, rngs=rngs), fn]
    model = nnx.Sequential(*items, nnx.Linear(WIDTH, 10, rngs=rngs))
    if init == "initlab auto":
        iflax.init_model(model, "auto", seed=seed)
    graphdef, params = nnx.split(model, nnx.Param)  # the model has no other state
    return (lambda p, xb: nnx.merge(graphdef, p)(xb)), params


def train(apply: Apply, params: Any, opt: str, lr: float, seed: int, steps: int, xy: tuple) -> float:
    """``steps`` optax steps, ``CHUNK`` of them per ``jax.jit``-compiled ``lax.scan`` with the data on the
    device: one dispatch per chunk instead of a per-step Python call (whose pytree flattening -- and
    ``nnx.jit``'s graph walk -- cost more than the step's arithmetic here). The same optimizer update as
    ``nnx.Optimizer`` (``tx.update`` then ``optax.apply_updates``), the same batches for every init."""
    import jax
    import jax.numpy as jnp
    import optax

    x, y, xt, yt = (jnp.asarray(a) for a in xy)
    tx = optax.adam(lr) if opt == "adam" else optax.sgd(lr)

    def one(carry: Any, idx: Any) -> tuple[Any, None]:
        p, state = carry
        def loss(q: Any) -> Any:
            return optax.softmax_cross_entropy_with_integer_labels(apply(q, x[idx]), y[idx]).mean()
        updates, state = tx.update(jax.grad(loss)(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    run = jax.jit(lambda carry, idxs: jax.lax.scan(one, carry, idxs)[0])
    carry = (params, tx.init(params))
    order = batches(seed, len(x), steps)
    for start in range(0, steps, CHUNK):
        carry = run(carry, jnp.asarray(order[start:start + CHUNK]))
    return float((np.asarray(apply(carry[0], xt)).argmax(1) == np.asarray(yt)).mean())


def run_keras(act: str, opt: str, lr: float, init: str, seed: int, steps: int, xy: tuple) -> float:
    return train(*build_keras(act, init, seed, xy[0].shape[1]), opt, lr, seed, steps, xy)


def run_flax(act: str, opt: str, lr: float, init: str, seed: int, steps: int, xy: tuple) -> float:
    return train(*build_flax(act, init, seed, xy[0].shape[1]), opt, lr, seed, steps, xy)


TORCH_KEY = {"key": "order"}  # --key name: the twin drawn as init_model draws (keyed by parameter name)


def run_torch(act: str, opt: str, lr: float, init: str, seed: int, steps: int, xy: tuple) -> float:
    """The PyTorch twin (``--frameworks torch``, a reference): the same weights as Keras and Flax
    (``init_torch``, keyed by layer order; ``--key name``: other weights of the same plan, as
    ``init_model`` draws them), the same batches, torch's Adam / SGD."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from initlab.frameworks import init_torch

    torch.set_num_threads(1)  # as benchmarks/trainability.py: two runs side by side do not oversubscribe
    torch.manual_seed(seed)  # PyTorch's default init
    fn = {"relu": nn.ReLU, "tanh": nn.Tanh}[act]
    layers: list[nn.Module] = [nn.Linear(xy[0].shape[1], WIDTH), fn()]
    for _ in range(DEPTH - 2):
        layers += [nn.Linear(WIDTH, WIDTH), fn()]
    model = nn.Sequential(*layers, nn.Linear(WIDTH, 10))
    if init == "initlab auto":
        init_torch(model, "auto", seed=seed, key=TORCH_KEY["key"])
    x, y, xt, yt = (torch.as_tensor(a) for a in xy)
    optim = (torch.optim.Adam if opt == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
    for idx in batches(seed, len(x), steps):
        i = torch.as_tensor(idx)
        loss = F.cross_entropy(model(x[i]), y[i].long())
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


RUNNERS: dict[str, Callable[..., float]] = {"keras": run_keras, "flax": run_flax, "torch": run_torch}
DEFAULTS = {"keras": "keras default (glorot_uniform)", "flax": "flax default (lecun_normal)",
            "torch": "pytorch default"}


def _compile_cache() -> None:
    """Every (framework, config) compiles the same program for each init and seed: XLA's persistent cache
    compiles it once (a cached executable is the same binary, so the numbers do not change)."""
    import tempfile

    import jax

    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="initlab-xla-"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _dump(path: str, steps: int, seeds: int, results: dict[str, dict[str, list[float]]]) -> None:
    with open(path, "w") as fh:
        json.dump({"steps": steps, "seeds": seeds, "results": results}, fh, indent=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--configs", default="relu-adam,tanh-sgd")
    ap.add_argument("--frameworks", default="keras,flax")
    ap.add_argument("--json", default="")
    ap.add_argument("--batches", choices=("torch", "numpy"), default="torch",
                    help="each seed's batch order: benchmarks/trainability.py's (torch) or numpy's")
    ap.add_argument("--key", choices=("order", "name"), default="order",
                    help="the torch twin's counter keys: layer order (Keras/Flax's weights) or name")
    ap.add_argument("--inits", default="auto,default", help="auto, the framework's default, or both")
    args = ap.parse_args()
    BATCH_ORDER["order"], TORCH_KEY["key"] = args.batches, args.key
    xy = data()
    _compile_cache()
    results: dict[str, dict[str, list[float]]] = {}
    for seed in range(args.seeds):  # seeds outermost: an interrupted run has every cell for its first seeds
        for cname in args.configs.split(","):
            act, opt, lr = CONFIGS[cname]
            for auto in [k == "auto" for k in args.inits.split(",")]:
                for fw in args.frameworks.split(","):
                    init = "initlab auto" if auto else DEFAULTS[fw]
                    t0 = time.perf_counter()
                    acc = RUNNERS[fw](act, opt, lr, init, seed, args.steps, xy)
                    results.setdefault(f"{fw} {cname}", {}).setdefault(init, []).append(acc)
                    print(f"{fw:5s} {cname:9s} {init:30s} seed {seed}: test acc {acc:.3f} "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
                    if args.json:  # after every run: an interrupted run keeps what it measured
                        _dump(args.json, args.steps, seed + 1, results)
    head = f"framework, config ({args.steps} steps, {args.seeds} seeds)"
    print(f"\n| {head} | default: mean (per seed) | initlab auto: mean (per seed) | target |")
    print("|---|---|---|---|")
    for key, row in results.items():
        fw, cname = key.split()
        cells = {k: f"{np.mean(v):.3f} ({', '.join(f'{a:.3f}' for a in v)})" for k, v in row.items()}
        default, auto = cells.get(DEFAULTS[fw], "-"), cells.get("initlab auto", "-")
        print(f"| {fw}, {cname} | {default} | {auto} | >= {TARGET[cname]} |")


if __name__ == "__main__":
    main()

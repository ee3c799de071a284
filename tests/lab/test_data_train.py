import random

import numpy as np
import torch
from torch import nn

from initlab.lab.data import load
from initlab.lab.train import ResidualMLP, init_weights_, mlp, train


def test_mnist1d_is_generated_offline_cached_and_leaves_global_rngs_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("INITLAB_CACHE", str(tmp_path))
    py, npy, th = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    d = load("mnist1d")
    assert random.getstate() == py and np.array_equal(np.random.get_state()[1], npy)
    assert torch.equal(torch.get_rng_state(), th)
    assert list(tmp_path.glob("mnist1d-*.npz"))
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40) and d.n_classes == 10
    assert abs(float(d.x_train.mean())) < 1e-4  # standardized with the training statistics
    again = load("mnist1d")  # from the cache
    assert torch.equal(again.x_test, d.x_test) and torch.equal(again.y_train, d.y_train)


def test_digits_and_class_subsets():
    d = load("digits")
    assert d.n_features == 64 and len(d.y_train) + len(d.y_test) == 1797
    sub = d.subset_classes([3, 7])
    assert set(sub.y_train.tolist()) == {0, 1}
    assert len(sub.y_train) == int(((d.y_train == 3) | (d.y_train == 7)).sum())


def test_init_uses_the_activation_that_follows_each_layer():
    model = mlp(40, 512, 2, 10, "relu", batchnorm=True)
    init_weights_(model, "he_normal", seed=0)
    std = model[3].weight.std().item()
    # He: std sqrt(2/512); sample std of 262144 draws is within 5 standard errors (0.14% each)
    assert abs(std / (2 / 512) ** 0.5 - 1) < 5 * (1 / (2 * 512 * 512)) ** 0.5
    assert abs(model[6].weight.std().item() / (1 / 512) ** 0.5 - 1) < 0.05  # the head: linear gain 1
    assert all(float(m.bias.detach().abs().max()) == 0 for m in model if isinstance(m, nn.Linear))


def test_same_seed_same_training():
    d = load("digits")
    runs = [
        train(
            init_weights_(ResidualMLP(64, 16, 2, 10), "he_normal", seed=3), d, epochs=2, lr=0.05, seed=3
        ).to_dict()
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    other = train(
        init_weights_(ResidualMLP(64, 16, 2, 10), "he_normal", seed=4), d, epochs=2, lr=0.05, seed=4
    )
    assert other.to_dict() != runs[0]
    assert runs[0]["test_acc"][-1] > 0.5  # digits is easy: the loop does learn


def test_divergence_is_detected_and_curves_keep_their_length():
    d = load("digits")
    model = init_weights_(mlp(64, 32, 6, 10, "relu"), "he_normal", seed=0, scale=30.0)
    h = train(model, d, epochs=3, lr=1.0, seed=0)
    assert h.diverged and len(h.test_acc) == 4 and len(h.loss) == 4

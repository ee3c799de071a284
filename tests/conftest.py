"""Shared test setup: single-threaded torch per worker, so that two xdist workers share 2 cores fairly."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
# Keras 3 defaults to TensorFlow, which is not installed: the Keras tests run on the jax backend
os.environ.setdefault("KERAS_BACKEND", "jax")

import torch

torch.set_num_threads(1)

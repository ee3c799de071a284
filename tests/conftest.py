"""Shared test setup: single-threaded torch per worker, so that two xdist workers share 2 cores fairly."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)

"""Whether a parameter-free custom module is an elementwise activation is decided once per class, so it must
not depend on which instance is asked first. timm's ``DropPath`` asked in training with a drop rate gave
"no" (two calls draw two masks), and that answer then held for every later model in the process: NextViT-S
was planned differently after NesT than alone (12 layers outside 3x), the zoo's rare "flake"."""

from __future__ import annotations

import torch
from torch import nn

from initlab.model.layers import module_act


def _drop_path_class() -> type[nn.Module]:
    class DropPathLike(nn.Module):  # a fresh class per call: the answer is kept per class
        def __init__(self, p: float) -> None:
            super().__init__()
            self.p = p

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.p == 0.0 or not self.training:
                return x
            keep = torch.empty(x.shape[:1] + (1,) * (x.dim() - 1), dtype=x.dtype).bernoulli_(1 - self.p)
            return x * keep / (1 - self.p)

    return DropPathLike


def test_the_answer_does_not_depend_on_which_instance_is_asked_first() -> None:
    answers = []
    for first_p in (0.5, 0.0):
        cls = _drop_path_class()
        first, later = cls(first_p).train(), cls(0.0)
        answers.append((module_act(first) is not None, module_act(later) is not None))
    assert answers == [(True, True), (True, True)]  # the identity in eval mode, whoever is asked first


def test_asking_draws_nothing_and_keeps_the_training_flag() -> None:
    module = _drop_path_class()(0.5).train()
    state = torch.get_rng_state()
    module_act(module)
    assert torch.equal(torch.get_rng_state(), state)
    assert module.training

"""diagnose restores the model afterwards; an init_model on the same model from another thread must not be
undone by that restore (issue 14 item 9): the two take turns through the per-model lock."""

import threading

import torch
from torch import nn

import initlab


class Gate(nn.Module):
    """Blocks the first forward until released, so the test controls the interleaving."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.release.is_set():
            self.entered.set()
            self.release.wait(timeout=30)
        return x


def test_init_model_during_diagnose_is_not_undone() -> None:
    torch.manual_seed(0)
    gate = Gate()
    model = nn.Sequential(nn.Linear(16, 16), gate, nn.ReLU(), nn.Linear(16, 4))
    expected = nn.Sequential(nn.Linear(16, 16), nn.Identity(), nn.ReLU(), nn.Linear(16, 4))
    gate.release.set()  # the reference run must not block
    initlab.init_model(expected, "he_normal", seed=3)
    gate.release.clear()
    batch = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    diag = threading.Thread(target=initlab.diagnose, args=(model, batch))
    diag.start()
    assert gate.entered.wait(timeout=30)  # diagnose is inside its forward, holding the model
    init = threading.Thread(target=initlab.init_model, args=(model, "he_normal"), kwargs={"seed": 3})
    init.start()
    init.join(timeout=0.5)
    assert init.is_alive()  # waits for diagnose instead of being undone by its restore
    gate.release.set()
    diag.join(timeout=60)
    init.join(timeout=60)
    for (name, got), want in zip(model.state_dict().items(), expected.state_dict().values(), strict=True):
        assert torch.equal(got, want), name

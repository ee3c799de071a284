import subprocess
import sys

import pytest
import torch
from torch import nn

import initlab
from initlab.methods import DataInitError
from initlab.model.state import ModelState


class Res(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(6, 16)
        self.fc1, self.fc2 = nn.Linear(16, 16), nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        return self.head(h + self.fc2(torch.relu(self.fc1(h))))


def batch(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(seed)) * 4


def test_init_model_lsuv_through_discovery():
    torch.manual_seed(0)
    model = Res()
    report = initlab.init_model(model, "lsuv", example_input=batch(512), seed=0, tol=0.05)
    assert [r.layer for r in report.rows] == ["stem", "fc1", "fc2", "head"]
    assert "residual branch 0" in report.row("fc2.weight").note
    assert "branch" not in report.row("stem.weight").note
    assert "tol 0.05" in report.notes[0]
    outs: dict[str, float] = {}
    hooks = [getattr(model, n).register_forward_hook(lambda m, a, o, n=n: outs.__setitem__(n, o.var().item()))
             for n in ("stem", "fc1", "fc2", "head")]
    with torch.no_grad():
        model(batch(4096, seed=1))
    for h in hooks:
        h.remove()
    assert all(abs(v - 1) < 0.1 for v in outs.values()), outs


def test_schemes_are_registered_and_validate_options():
    import initlab.model as model_api

    assert {"lsuv", "fixup", "data_dependent", "weight_norm", "rezero", "skipinit", "t_fixup", "deepnorm",
            "gpt2", "zero_residual_norm", "delta_orthogonal_gain"} <= set(model_api.model_schemes())
    model = Res()
    snap = ModelState.capture(model)
    with pytest.raises(DataInitError, match="example_input"):
        initlab.init_model(model, "lsuv", seed=0)
    with pytest.raises(TypeError, match="unexpected option"):
        initlab.init_model(model, "lsuv", example_input=batch(32), bogus=1)
    report = initlab.init_model(model, "data_dependent", example_input=batch(32), seed=0, dry_run=True)
    assert report.dry_run and len(report.rows) == 4
    assert snap.matches(model)


def test_top_level_init_model_knows_the_schemes_in_a_fresh_process():
    code = ("import initlab, torch; m = torch.nn.Sequential(torch.nn.Linear(4, 4)); "
            "initlab.init_model(m, 'lsuv', example_input=torch.randn(16, 4), seed=0); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr

"""Layer types beyond the zoo (HF Conv1D, Bilinear, bf16, torch.compile, zero_init_residual, GPT-2 profile)
and the ``initlab init`` command."""

import math

import pytest
import torch
from safetensors import safe_open
from torch import nn

from initlab.cli.main import main
from initlab.model import init_model


class Conv1D(nn.Module):
    """The layout of HuggingFace's Conv1D: weight (in, out), y = x @ W + b."""

    def __init__(self, nf: int, nx: int):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(*x.shape[:-1], self.nf)


class HFBlock(nn.Module):
    def __init__(self, d: int = 64):
        super().__init__()
        self.c_fc, self.c_proj = Conv1D(4 * d, d), Conv1D(d, 4 * d)

    def forward(self, x):
        return x + self.c_proj(torch.relu(self.c_fc(x)))


def test_hf_conv1d_in_out_layout_and_gpt2_residual_profile():
    model = nn.Sequential(*[HFBlock() for _ in range(3)])
    report = init_model(model, "he_normal", seed=0)
    row = report.row("0.c_fc.weight")
    assert row.module == "Conv1D" and row.fan_in == 64 and row.fan_out == 256  # (in, out) layout
    assert row.std == pytest.approx(math.sqrt(2 / 64))
    report = init_model(model, "hf:gpt2", seed=0)
    assert report.row("0.c_fc.weight").std == pytest.approx(0.02)
    assert report.row("0.c_proj.weight").std == pytest.approx(
        0.02 / math.sqrt(2 * 2)
    )  # 3 branches -> n_layer 2


class Compiled(nn.Module):
    def __init__(self, mod: nn.Module):
        super().__init__()
        self._orig_mod = mod

    def forward(self, *args):
        return self._orig_mod(*args)


def test_bilinear_bf16_and_compiled_wrapper():
    bil = nn.Bilinear(16, 8, 4)
    report = init_model(bil, "lecun_normal", seed=0)
    assert report.row("weight").fan_in == 16 * 8
    half = nn.Linear(256, 256).to(torch.bfloat16)
    init_model(half, "he_normal", seed=0)
    assert half.weight.dtype == torch.bfloat16
    assert abs(half.weight.float().std().item() - math.sqrt(2 / 256)) < 0.01
    inner = nn.Sequential(nn.Linear(8, 8), nn.Tanh())
    compiled = Compiled(
        inner
    )  # torch.compile's OptimizedModule keeps the model as _orig_mod (13 s to import)
    report = init_model(compiled, "glorot_normal", seed=0)
    assert report.row("0.weight").activation == "tanh" and report.rows[0].name == "0.weight"


def test_zero_init_residual_and_tied_embedding_takes_the_head_scale():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.n1, self.c2, self.n2 = (
                nn.Linear(8, 8),
                nn.LayerNorm(8),
                nn.Linear(8, 8),
                nn.LayerNorm(8),
            )

        def forward(self, x):
            return x + self.n2(self.c2(torch.relu(self.n1(self.c1(x)))))

    net = Net()
    report = init_model(net, "auto", seed=0, zero_init_residual=True)
    assert torch.count_nonzero(net.n2.weight) == 0 and torch.count_nonzero(net.n1.weight) == 8
    assert report.row("n2.weight").rule == "auto:zero_init_residual"

    class Tied(nn.Module):
        def __init__(self, d: int = 64):
            super().__init__()
            self.emb, self.ln, self.head = (
                nn.Embedding(100, d),
                nn.LayerNorm(d),
                nn.Linear(d, 100, bias=False),
            )
            self.head.weight = self.emb.weight

        def forward(self, idx):
            return self.head(self.ln(self.emb(idx)))

    report = init_model(Tied(), "auto", seed=0)
    # tied input/output embedding: the output use's scale (unit logits), not the geometric mean 64**-0.25
    assert report.row("emb.weight").std == pytest.approx(64**-0.5)
    assert any("the output use's, as a tied embedding" in n for n in report.notes)


def test_unknown_module_left_untouched_with_reason():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gamma = nn.Parameter(torch.full((8,), 3.0))

        def forward(self, x):
            return x * self.gamma

    model = nn.Sequential(nn.Linear(8, 8), Scale())
    report = init_model(model, "auto", seed=0)
    row = report.row("1.gamma")
    assert row.status == "untouched" and "mul" in row.note
    assert torch.equal(model[1].gamma, torch.full((8,), 3.0))
    assert any("1.gamma" in w for w in report.warnings)


MODEL_FILE = """
import torch.nn as nn

class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.head = nn.Embedding(20, 8), nn.Linear(8, 20, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx):
        return self.head(self.emb(idx))

def convnet():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
"""


def test_cli_init_writes_safetensors(tmp_path, capsys):
    src = tmp_path / "models.py"
    src.write_text(MODEL_FILE)
    out = tmp_path / "w.safetensors"
    assert main(["init", f"{src}:convnet", "--input-shape", "2,3,8,8", "--out", str(out), "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "0.weight" in text and "auto" in text
    with safe_open(str(out), "pt") as f:
        assert set(f.keys()) == {"0.weight", "0.bias", "3.weight", "3.bias"}
        assert f.get_tensor("3.weight").shape == (10, 288)
    tied = tmp_path / "t.safetensors"
    assert main(["init", f"{src}:Tied", "--scheme", "hf:gpt2", "--out", str(tied), "--json"]) == 0
    assert '"scheme": "hf:gpt2"' in capsys.readouterr().out
    with safe_open(str(tied), "pt") as f:
        assert list(f.keys()) == ["emb.weight"] and f.metadata() == {"tied:head.weight": "emb.weight"}
    assert main(["init", f"{src}:convnet", "--scheme", "he_nromal"]) == 2

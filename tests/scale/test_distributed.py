"""init_sharded on CPU process groups (gloo, 127.0.0.1), 2 and 3 ranks spawned here: the gathered weights of
FSDP2 and DTensor Shard(0)/Shard(1)/Replicate models (uneven sizes) equal the single-process
``init_model(..., generator="counter")`` result bit for bit; ranks hold different values; the statistics match
the plan. One spawn per world size runs every case; a 2 x 2 mesh (4 ranks) checks FSDP2 on top of tensor
parallelism."""

import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from scipy import stats
from torch import nn

import initlab
from initlab.catalog import draws as d

pytestmark = pytest.mark.distributed
SEED = 1234
MODES = ("fsdp", "shard0", "shard1")


def build(case: str) -> nn.Module:
    if case == "linear":
        return nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))
    if case == "embedding":
        return nn.Sequential(nn.Embedding(11, 5, padding_idx=2), nn.Linear(5, 7))
    if case == "conv":
        return nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Conv2d(5, 4, 1))
    if case == "weight_norm":  # parametrized: the originals (g, v) are what gets sharded
        from torch.nn.utils.parametrizations import weight_norm

        return nn.Sequential(weight_norm(nn.Linear(7, 6)), nn.ReLU(), nn.Linear(6, 3))
    if case.startswith("res_"):  # residual schemes: plan transforms
        return ResMLP()
    if case == "custom":  # a layer type the user registered (weight stored (in, out), used as x @ w)
        return nn.Sequential(InOutLinear(7, 6), nn.ReLU(), InOutLinear(6, 3))
    if case == "transformer":
        return nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=13, dropout=0.0,
                                          batch_first=True)
    raise ValueError(case)


class InOutLinear(nn.Module):
    """No built-in layer type covers it: taught to initlab with one register_layer call (below)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(torch.empty(n_in, n_out)), nn.Parameter(torch.empty(n_out))

    def forward(self, x):
        return x @ self.w + self.b


initlab.register_layer(InOutLinear, params={"w": "in_out", "b": "bias"})  # in every spawned rank too


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


class ResMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp, self.blocks, self.head = nn.Linear(5, 6), nn.Sequential(Block(6), Block(6)), nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.blocks(self.inp(x)))


RESIDUAL = ("fixup", "t_fixup", "deepnorm", "gpt2", "skipinit")
CASES = {"linear": "auto", "embedding": "auto", "conv": "he_normal", "transformer": "auto", "custom": "auto",
         "ortho": "orthogonal", "weight_norm": "he_normal", **{f"res_{s}": s for s in RESIDUAL}}


def _shard(model: nn.Module, mode: str, mesh) -> None:
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    if mode == "fsdp":
        fully_shard(model, mesh=mesh)
        return
    dim = int(mode[-1])
    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            placement = Shard(dim) if p.dim() > dim else Replicate()
            dt = distribute_tensor(p.detach(), mesh, [placement], src_data_rank=None)
            module.register_parameter(name, nn.Parameter(dt, requires_grad=p.requires_grad))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor

    from initlab.distributed import init_sharded

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))
        results = {}
        for case, scheme in CASES.items():
            for mode in MODES:
                with torch.device("meta"):
                    model = build("linear" if case == "ortho" else case)
                _shard(model, mode, mesh)
                init_sharded(model, scheme, seed=SEED)
                full, local = {}, {}
                for name, p in model.named_parameters():
                    full[name] = (p.full_tensor() if isinstance(p, DTensor) else p).detach().clone()
                    local[name] = (p.to_local() if isinstance(p, DTensor) else p).detach().clone()
                pieces = [None] * world
                dist.all_gather_object(pieces, local)
                results[(case, mode)] = (full, pieces)
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reference(case: str):
    torch.manual_seed(0)  # only to construct; init_model overwrites every parameter
    model = build("linear" if case == "ortho" else case)
    report = initlab.init_model(model, CASES[case], seed=SEED, generator="counter")
    return dict(model.named_parameters()), report.plan


@pytest.fixture(scope="module", params=[2, 3])
def gathered(request, tmp_path_factory):
    world = request.param
    out = str(tmp_path_factory.mktemp(f"ws{world}") / "results.pt")
    # fork: the ranks start with torch, initlab and the compiled kernels already loaded (spawn costs ~10 s per
    # rank on a busy 2-core machine); the process group is created in each child
    mp.start_processes(_worker, args=(world, _free_port(), out), nprocs=world, join=True, start_method="fork")
    return world, torch.load(out, weights_only=False)


def test_gathered_equals_single_process(gathered):
    world, results = gathered
    for case in CASES:
        ref, _ = _reference(case)
        for mode in MODES:
            full, _ = results[(case, mode)]
            assert set(full) == set(ref), (case, mode)
            for name, value in full.items():
                assert torch.equal(value, ref[name].detach()), (world, case, mode, name)


def test_shards_differ(gathered):
    """Sharded parameters: no two ranks hold the same values (torch's own sharded init gives every rank the
    same shard). Replicated ones: every rank holds the full, identical tensor."""
    _, results = gathered
    for (case, mode), (full, pieces) in results.items():
        for name, value in full.items():
            parts = [p[name] for p in pieces]
            if value.numel() < 2 or float(value.std()) == 0:  # constants (biases, norms) are equal everywhere
                continue
            if all(q.shape == value.shape for q in parts):  # replicated
                assert all(torch.equal(q, value) for q in parts), (case, mode, name)
                continue
            for i in range(len(parts)):
                for j in range(i + 1, len(parts)):
                    same_shape = parts[i].shape == parts[j].shape and parts[i].numel() > 0
                    assert not (same_shape and torch.equal(parts[i], parts[j])), (case, mode, name, i, j)


def test_statistics_of_gathered_weights(gathered):
    _, results = gathered
    for case in ("linear", "transformer"):
        _, plan = _reference(case)
        full, _ = results[(case, "shard1")]
        for a in plan.assignments:
            draw = a.draws[0]
            x = full[a.name].double().numpy().ravel()
            if not isinstance(draw, (d.Normal, d.Uniform, d.TruncatedNormal)) or x.size < 40 or draw.std == 0:
                continue
            n = x.size
            assert abs(x.mean() - draw.mean) < 5 * draw.std / math.sqrt(n), a.name
            assert abs(x.var() - draw.std**2) < 5 * draw.std**2 * math.sqrt(2 / n), a.name
            if isinstance(draw, d.Normal):
                assert stats.kstest(x, stats.norm(draw.mean, draw.std).cdf).pvalue > 1e-3, a.name


def test_retie_after_to_empty():
    from initlab.distributed import init_sharded

    with torch.device("meta"):
        model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight
    init_sharded(model, "auto", seed=3)
    assert model[1].weight is model[0].weight and model[0].weight.device.type == "cpu"
    assert np.isfinite(model[0].weight.detach().numpy()).all()


def test_report_names_the_tensors_built_in_full():
    from initlab.distributed import init_sharded

    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    notes = init_sharded(model, "orthogonal", seed=3).notes
    assert any("built in full" in n and "0.weight" in n and "2.weight" in n for n in notes), notes
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    assert not any("built in full" in n for n in init_sharded(model, "he_normal", seed=3).notes)


def _worker_2d(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    from initlab.distributed import init_sharded

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
        with torch.device("meta"):
            model = _mlp_2d()
        parallelize_module(model, mesh["tp"], {"0": ColwiseParallel(), "2": RowwiseParallel()})
        fully_shard(model, mesh=mesh["dp"])
        init_sharded(model, "auto", seed=SEED)
        local = {n: p.to_local().clone() for n, p in model.named_parameters()}
        full = {n: p.full_tensor() for n, p in model.named_parameters()}
        pieces: list = [None] * world
        dist.all_gather_object(pieces, local)
        if rank == 0:
            places = {n: str(p.placements) for n, p in model.named_parameters()}
            torch.save((full, places, pieces), out)
    finally:
        dist.destroy_process_group()


def _mlp_2d() -> nn.Module:
    # 14 rows over tp=2 then dp=2: 4 + 3 rows per rank (uneven), placements (_StridedShard(0), Shard(0))
    return nn.Sequential(nn.Linear(10, 14), nn.ReLU(), nn.Linear(14, 6), nn.ReLU(), nn.Linear(6, 3))


def test_fsdp_plus_tensor_parallel_2d_mesh(tmp_path):
    """FSDP2 over "dp" on top of tensor parallelism over "tp" (a 2 x 2 mesh, 4 ranks): colwise weights get
    torch's strided sharding; gathered tensors equal the single-process result, and no two ranks that hold
    different pieces hold the same values."""
    out = str(tmp_path / "2d.pt")
    mp.start_processes(_worker_2d, args=(4, _free_port(), out), nprocs=4, join=True, start_method="fork")
    full, places, pieces = torch.load(out, weights_only=False)
    assert "_StridedShard" in places["0.weight"] and "Shard(dim=1)" in places["2.weight"]
    ref = _mlp_2d()
    initlab.init_model(ref, "auto", seed=SEED)
    for name, p in ref.named_parameters():
        assert torch.equal(full[name], p.detach()), name
    weight = [piece["0.weight"] for piece in pieces]
    assert sorted(w.shape[0] for w in weight) == [3, 3, 4, 4]
    assert all(not torch.equal(weight[i][:3], weight[j][:3]) for i in range(4) for j in range(i))

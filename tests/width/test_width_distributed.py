"""μP on an FSDP2-sharded model at world size 2 (gloo, CPU): ``init_sharded(model, "mup", base=...)`` gives
the single-process ``init_model(model, "mup", base=...)`` weights bit for bit, and ``mup_param_groups`` the
same groups (names, learning rates, weight decay) -- nothing is stored on tensors."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from width_models import TinyLM, on_meta

import initlab
import initlab.width

pytestmark = pytest.mark.distributed
SEED = 77


def _groups(model, base):
    return [(g["mup_class"], sorted(g["names"]), g["lr"], g["weight_decay"])
            for g in initlab.mup_param_groups(model, 1e-3, "adam", weight_decay=0.1, base=base)]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    from initlab.distributed import init_sharded

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))
        model = on_meta(TinyLM, 64)
        fully_shard(model, mesh=mesh)
        base = on_meta(TinyLM, 16)
        init_sharded(model, "mup", seed=SEED, base=base)
        full = {n: (p.full_tensor() if isinstance(p, DTensor) else p).detach().clone()
                for n, p in model.named_parameters()}
        sharded = all(isinstance(p, DTensor) for p in model.parameters())
        if rank == 0:
            torch.save({"full": full, "groups": _groups(model, base), "sharded": sharded}, out)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fsdp2_world_size_2_equals_one_process(tmp_path):
    out = str(tmp_path / "r.pt")
    mp.start_processes(_worker, args=(2, _free_port(), out), nprocs=2, join=True, start_method="fork")
    got = torch.load(out, weights_only=False)
    assert got["sharded"]
    base = on_meta(TinyLM, 16)
    ref = TinyLM(64)
    initlab.init_model(ref, "mup", base=base, seed=SEED)
    assert got["groups"] == _groups(ref, base)
    for name, p in ref.named_parameters():
        assert torch.equal(got["full"][name], p.detach()), name

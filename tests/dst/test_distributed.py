"""Under torch.distributed every rank holds the same masks after every update.

Two CPU processes (gloo) train one DDP model with different seeds per rank (different batches,
different updater seeds), so rank-local dense gradients and random draws differ.
"""

import gc
import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import sprig
from sprig.dst import make_updater

METHODS = ["rigl", "set", "snfs", "deepr"]


def _worker(rank: int, world: int, init_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        for method in METHODS:
            torch.manual_seed(100 + rank)  # different weights and masks per rank before DDP
            net = nn.Sequential(nn.Linear(8, 24), nn.ReLU(), nn.Linear(24, 4))
            sprig.sparsify(net, density=0.3, seed=rank)
            # broadcast_buffers=False: DDP syncs rank 0's weights but not the masks
            ddp = DistributedDataParallel(net, broadcast_buffers=False)
            opt = torch.optim.Adam(ddp.parameters(), lr=0.01)
            kwargs = {"temperature": 1e-3} if method == "deepr" else {"every": 2}
            upd = make_updater(method, net, t_end=12, seed=rank, **kwargs)  # adopts rank 0's masks
            gen = torch.Generator().manual_seed(rank)
            for step in range(12):
                x = torch.randn(16, 8, generator=gen)  # each rank its own batch
                opt.zero_grad()
                with upd.backward_context(step):
                    ddp(x).square().mean().backward()
                upd.after_backward(step, ddp, opt)
                opt.step()
                upd.after_step(step, ddp, opt)
                if upd.is_update_step(step):
                    for mp_ in sprig.masked_parameters(net):
                        for t in (mp_.mask.to(torch.uint8), mp_.param.detach()):
                            got = [torch.zeros_like(t) for _ in range(world)]
                            dist.all_gather(got, t.contiguous())
                            assert torch.equal(got[0], got[1]), (
                                method,
                                step,
                                mp_.qualname,
                                t.dtype,
                                (got[0] != got[1]).sum(),
                                (got[0] - got[1]).abs().max(),
                            )
            assert upd.updates > 0, method
    finally:
        # DDP's reducers sit in reference cycles; collect them while the group still lives.
        # Left to interpreter shutdown, a rank aborted about one run in six
        # ("terminate called without an active exception", torch 2.13, gloo).
        gc.collect()
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous")
def test_ranks_agree_on_masks(tmp_path):
    init_file = str(tmp_path / "rendezvous")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_worker, args=(2, init_file), nprocs=2, join=True)


def _compressed_worker(rank: int, world: int, init_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        for method in ("rigl", "set", "deepr"):
            torch.manual_seed(100 + rank)
            # different structures and values per rank before DDP and the updater
            net = sprig.SparseMLP([8, 24, 4], 0.3, seed=rank, storage="compressed")
            # the index buffers are the updater's to keep in step, not DDP's
            ddp = DistributedDataParallel(net, broadcast_buffers=False)
            opt = torch.optim.Adam(ddp.parameters(), lr=0.01)
            upd = make_updater(method, net, t_end=12, every=2, seed=rank)  # adopts rank 0's
            gen = torch.Generator().manual_seed(rank)
            for step in range(12):
                x = torch.randn(16, 8, generator=gen)  # each rank its own batch
                opt.zero_grad()
                with upd.backward_context(step):
                    ddp(x).square().mean().backward()
                for layer in net.layers:  # gradients all-reduced: the same on every rank
                    g = layer.values.grad
                    got = [torch.zeros_like(g) for _ in range(world)]
                    dist.all_gather(got, g)
                    assert torch.equal(got[0], got[1]), (method, step)
                opt.step()
                upd.after_step(step, ddp, opt)
                for layer in net.layers:  # identical structure and values after every step
                    for t in (layer.active_flat(), layer.values.detach()):
                        got = [torch.zeros_like(t) for _ in range(world)]
                        dist.all_gather(got, t.contiguous())
                        assert torch.equal(got[0], got[1]), (method, step, t.dtype)
            assert upd.updates == 5, method
    finally:
        gc.collect()  # see _worker
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
@pytest.mark.skipif(sys.platform == "win32", reason="file:// rendezvous")
def test_ranks_agree_on_compressed_structure(tmp_path):
    init_file = str(tmp_path / "rendezvous")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_compressed_worker, args=(2, init_file), nprocs=2, join=True)

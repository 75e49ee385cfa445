"""All rank / world-size logic in one place: torchrun env parsing, process-group set-up, reductions."""
from __future__ import annotations

import datetime
import os
from typing import List

import torch
import torch.distributed as dist


def is_dist() -> bool:
    """True when a process group is initialised (torchrun or a test spawning ranks)."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    return get_rank() == 0


def launched_by_torchrun() -> bool:
    """torchrun (and SLURM wrappers calling it) export WORLD_SIZE/RANK/MASTER_ADDR."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_distributed(device: str = "auto", timeout_s: int = 1800) -> torch.device:
    """Initialise the process group if launched by torchrun and pick this rank's device.

    NCCL on CUDA, gloo on CPU. Single-process runs return the device without a group.
    """
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("config asks for device 'cuda' but CUDA is not available")
    if use_cuda:
        torch.cuda.set_device(get_local_rank())
        dev = torch.device("cuda", get_local_rank())
    else:
        dev = torch.device("cpu")
    if launched_by_torchrun() and not is_dist():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return dev


def cleanup_distributed() -> None:
    if is_dist():
        dist.destroy_process_group()


def barrier() -> None:
    if is_dist():
        dist.barrier()


def average_gradients(params: List[torch.nn.Parameter]) -> None:
    """Average .grad over ranks for parameters trained outside DDP (e.g. the discriminators)."""
    if not is_dist():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def max_over_ranks(value: int) -> int:
    """The largest `value` over all ranks (e.g. a signal number seen by any rank; 0 = none)."""
    if not is_dist():
        return value
    t = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def wrap_ddp(model: torch.nn.Module, bn_policy: str, device: torch.device) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel when several ranks run (with SyncBatchNorm for
    bn_policy 'sync', which is GPU-only), else ``model`` itself."""
    if get_world_size() == 1:
        return model
    if bn_policy == "sync":
        if device.type != "cuda":  # DDP rejects SyncBatchNorm on CPU modules
            raise ValueError("model.bn_policy=sync needs CUDA (SyncBatchNorm is GPU-only under DDP); "
                             "use 'frozen' or 'train' for multi-process CPU runs")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)

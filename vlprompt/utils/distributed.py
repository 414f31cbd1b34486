"""Data-parallel training across processes launched by ``torchrun`` (NCCL on CUDA, gloo on CPU).

The global batch (``DATALOADER.TRAIN_X.BATCH_SIZE``) is what one process would draw; each rank takes a
contiguous slice of it (:class:`vlprompt.data.sharding.ShardedBatchSampler`). Each rank back-propagates its
slice's mean loss weighted by its share of the global batch, and the gradients are summed across ranks in
one all-reduce of a flat buffer (:func:`sum_gradients`), so a step is the single-process step on the global
batch up to float summation order. The learnable parameters of prompt methods are small (thousands to a few
million values), so one flat all-reduce per step costs less than DDP's bucketing machinery and handles
uneven slices (images skipped as unreadable) exactly. Evaluation is sharded into contiguous slices of the
test set and gathered exactly (:func:`gather_rows`). Work that every process would repeat on the same
rows, above all encoding the class prompts, is split by rows too (:func:`split_rows`). With one process
every function here is a no-op.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from vlprompt.utils.launch import launched_world_size

logger = logging.getLogger(__name__)


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def backend() -> str:
    return str(dist.get_backend()) if world_size() > 1 else "none"




def init_from_env(use_cuda: bool) -> bool:
    """Join the process group torchrun set up (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``...); each rank drives
    the GPU ``LOCAL_RANK``. Returns whether it created the group (False for a single process, or when the
    group exists already, e.g. several runs in one launch)."""
    if launched_world_size() <= 1 or dist.is_initialized():
        return False
    cuda = use_cuda and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return True


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard_bounds(n: int, world: Optional[int] = None, index: Optional[int] = None) -> tuple[int, int]:
    """``[start, stop)`` of slice ``index`` when ``n`` units are split into ``world`` contiguous slices whose
    sizes differ by at most one (the first ``n % world`` slices get the extra unit)."""
    world = world_size() if world is None else world
    index = rank() if index is None else index
    base, extra = divmod(n, world)
    start = index * base + min(index, extra)
    return start, start + base + (index < extra)


def all_reduce_sum(values: Tensor) -> Tensor:
    """The element-wise sum of ``values`` over ranks (in place; returned)."""
    if world_size() > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather_rows(t: Tensor) -> Tensor:
    """Every rank's ``t`` concatenated along dim 0 in rank order; ranks may hold different row counts,
    and no padding reaches the result."""
    return gather_rows_counted(t)[0]


def gather_rows_counted(t: Tensor) -> tuple[Tensor, list[int]]:
    """:func:`gather_rows` and the number of rows each rank contributed."""
    if world_size() == 1:
        return t, [t.shape[0]]
    sizes = [torch.zeros(1, dtype=torch.long, device=t.device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([t.shape[0]], dtype=torch.long, device=t.device))
    counts = [int(s) for s in sizes]
    padded = torch.cat([t, t.new_zeros((max(counts) - t.shape[0], *t.shape[1:]))]) if max(counts) > t.shape[0] else t
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)]), counts


def sum_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Sum ``.grad`` over ranks in one all-reduce. A parameter without a gradient on every rank keeps none
    (as a single process would leave it, so the optimizer skips it); one that has a gradient somewhere gets
    the sum, zeros standing in for ranks without one."""
    if world_size() == 1 or not params:
        return
    ref = params[0]
    flat = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=ref.device, dtype=p.dtype)
            for p in params]
    present = torch.tensor([p.grad is not None for p in params], device=ref.device, dtype=flat[0].dtype)
    dtypes = {f.dtype for f in flat}
    if len(dtypes) > 1:  # mixed-precision learnables: sum in float32
        flat = [f.float() for f in flat]
        present = present.float()
    buffer = torch.cat([*flat, present])
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    counts = buffer[-len(params):]
    offset = 0
    for p, n in zip(params, counts):
        size = p.numel()
        if n > 0:
            grad = buffer[offset: offset + size].view_as(p).to(p.dtype)
            if p.grad is None:
                p.grad = grad.clone()
            else:
                p.grad.copy_(grad)
        offset += size


def step_stats(local: dict[str, float], count: int, failed: bool, device: torch.device
               ) -> tuple[dict[str, float], int, bool]:
    """One all-reduce per training step: the global-batch means of the per-rank means ``local`` (each over
    ``count`` items; the same keys in the same order on every rank), the global item count, and whether any
    rank ``failed``."""
    keys = list(local)
    stats = torch.tensor([float(count), float(failed), *(local[k] * count for k in keys)], dtype=torch.float64,
                         device=device)
    all_reduce_sum(stats)
    total = int(stats[0].item())
    return {k: float(v) / max(total, 1) for k, v in zip(keys, stats[2:].tolist())}, total, bool(stats[1] > 0)




_split_rows_enabled = [True]


@contextlib.contextmanager
def rows_not_split() -> Iterator[None]:
    """Within: :func:`split_rows` computes every row in this process (for a step in which some process has no
    images, so it runs no forward pass and cannot take part in the gathers)."""
    _split_rows_enabled[0] = False
    try:
        yield
    finally:
        _split_rows_enabled[0] = True


def split_rows(fn: Callable[..., Tensor], rows: Sequence[Tensor]) -> Tensor:
    """``fn(*rows)`` for ``rows`` (tensors whose dim 0 indexes the same rows) that are identical in every
    process, e.g. the class prompts: each process computes ``fn`` on its contiguous slice of the rows and the
    results are gathered, so that cost is divided by the number of processes. Gradients flow back to each
    process's slice, summed over the processes' losses (the learnable parameters then get their sum over
    processes from :func:`sum_gradients`). Every process must call it at the same point."""
    n = rows[0].shape[0]
    if world_size() == 1 or not _split_rows_enabled[0] or n < world_size():
        return fn(*rows)
    start, stop = shard_bounds(n)
    return _GatherSlices.apply(fn(*(r[start:stop] for r in rows)), n)


class _GatherSlices(torch.autograd.Function):
    """Forward: the slices of every process (sizes from :func:`shard_bounds`), concatenated. Backward: the
    sum over processes of the gradient of the whole, restricted to this process's slice."""

    @staticmethod
    def forward(ctx: Any, local: Tensor, n: int) -> Tensor:  # type: ignore[override]
        bounds = [shard_bounds(n, world_size(), r) for r in range(world_size())]
        ctx.bounds = bounds[rank()]
        longest = max(b - a for a, b in bounds)
        padded = local if local.shape[0] == longest else torch.cat(
            [local, local.new_zeros((longest - local.shape[0], *local.shape[1:]))])
        parts = [torch.empty_like(padded) for _ in bounds]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[: b - a] for p, (a, b) in zip(parts, bounds)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start, stop = ctx.bounds
        return grad[start:stop], None

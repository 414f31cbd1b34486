"""The body of test_distributed's multi-process test, in a module that imports little (each spawned
process imports it)."""
import torch

from vlprompt.utils import distributed as dist


def collectives_worker(rank: int, world: int, init: str, out: dict) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        rows = torch.arange(rank * 10, rank * 10 + [3, 0, 2][rank]).view(-1, 1)
        gathered = dist.gather_rows(rows).flatten().tolist()
        a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
        a.grad = torch.full((2,), float(rank + 1))  # every rank has a gradient of a
        if rank == 1:
            b.grad = torch.ones(3)  # only rank 1 has one of b
        c = torch.nn.Parameter(torch.zeros(1))  # nobody has one of c
        dist.sum_gradients([a, b, c])
        means, total, failed = dist.step_stats({"loss": float(rank), "acc": 50.0}, [3, 0, 2][rank], rank == 2,
                                               torch.device("cpu"))
        # rows computed split across ranks (5 rows: slices of 2, 2, 1), each rank with a loss of its own
        w = torch.nn.Parameter(torch.ones(3))
        x = torch.arange(15.0).view(5, 3)
        y = dist.split_rows(lambda r: r * w, [x])
        ((y.sum(1) * torch.arange(5.0)).sum() * (rank + 1)).backward()
        dist.sum_gradients([w])
        out[rank] = (gathered, a.grad.tolist(), b.grad.tolist(), c.grad, means, total, failed,
                     dist.broadcast_object({"from": rank}), torch.equal(y, x), w.grad.tolist())
    finally:
        torch.distributed.destroy_process_group()

"""ZeRO and FSDP: the memory formula, the sharding arithmetic, and a process launcher.

ZeRO (Rajbhandari et al. 2020) counts the bytes one data-parallel rank keeps for a model
of Ψ parameters trained with mixed-precision Adam: 2Ψ for the float16 parameters, 2Ψ for
their gradients and KΨ for the optimizer state (K = 12: a float32 copy of the
parameters, Adam's momentum and variance). Stage 1 shards the optimizer state over the
N_d ranks, stage 2 the gradients too, stage 3 the parameters too (the paper's Fig. 1):

>>> gb = [zero_memory(7.5e9, 64, s)["total"] / 1e9 for s in (0, 1, 2, 3)]
>>> [round(x, 1) for x in gb]
[120.0, 31.4, 16.6, 1.9]

PyTorch's FSDP2 (``torch.distributed.fsdp.fully_shard``) is ZeRO stage 3. It shards
every parameter on its first dimension as ``torch.chunk`` does: ranks get
ceil(n / N) rows each, in order, and the last ranks get what is left (maybe nothing):

>>> shard_sizes(10, 4)
[3, 3, 3, 1]
>>> shard_sizes(3, 4)
[1, 1, 1, 0]

``all_gather`` and ``reduce_scatter`` are the two collectives of that schedule, written
for N ranks simulated in one process (a list holds one tensor per rank);
``simulate_zero3`` trains with them as N ranks would. ``launch`` starts real processes
(``torch.multiprocessing.spawn``) that join one process group: gloo on CPUs, NCCL on
GPUs; ``mlf.fsdp_worker`` is the code they run.
"""
from __future__ import annotations

import copy
import os
import socket
from collections.abc import Callable

import torch
from torch import nn

STAGES = (0, 1, 2, 3)  # 0: plain data parallelism (every rank keeps everything)


def zero_memory(psi: float, n_d: int, stage: int, k: float = 12,
                param_bytes: float = 2, grad_bytes: float = 2) -> dict:
    """Bytes per rank of parameters, gradients and optimizer state under ZeRO ``stage``.

    ``psi`` parameters, ``n_d`` data-parallel ranks, ``k`` bytes of optimizer state per
    parameter (12 for mixed-precision Adam, 8 for float32 Adam, whose parameters are
    their own master copy), ``param_bytes`` and ``grad_bytes`` per parameter and
    gradient (2 in float16, 4 in float32). Returns a dict with ``parameters``,
    ``gradients``, ``optimizer`` and their ``total``.
    """
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not psi >= 0:
        raise ValueError(f"psi (the number of parameters) must be >= 0, got {psi!r}")
    _check_world(n_d, "n_d")
    if stage not in STAGES or isinstance(stage, bool):
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    for name, value in (("k", k), ("param_bytes", param_bytes),
                        ("grad_bytes", grad_bytes)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not value >= 0:
            raise ValueError(f"{name} must be a number of bytes >= 0, got {value!r}")
    # stage s shards the first s of (optimizer state, gradients, parameters)
    optimizer = k * psi / (n_d if stage >= 1 else 1)
    gradients = grad_bytes * psi / (n_d if stage >= 2 else 1)
    parameters = param_bytes * psi / (n_d if stage >= 3 else 1)
    return {"parameters": parameters, "gradients": gradients, "optimizer": optimizer,
            "total": parameters + gradients + optimizer}


def shard_sizes(n: int, world: int) -> list[int]:
    """Rows of a first dimension of size ``n`` that each of ``world`` ranks keeps.

    FSDP2's convention, ``torch.chunk``'s: ceil(n / world) rows per rank in rank order;
    the remainder goes to the last non-empty rank, and ranks after it get none.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer (rows), got {n!r}")
    _check_world(world)
    rows = -(-n // world)  # ceil(n / world)
    return [max(0, min(rows, n - r * rows)) for r in range(world)]


def shard(x: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s slice of ``x`` along its first dimension (a view)."""
    if not isinstance(x, torch.Tensor) or x.ndim < 1:
        raise ValueError("shard expects a tensor with at least one dimension, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    sizes = shard_sizes(x.shape[0], world)
    _check_rank(rank, world)
    start = sum(sizes[:rank])
    return x[start:start + sizes[rank]]


def all_gather(shards: list[torch.Tensor]) -> torch.Tensor:
    """Every rank's shard, joined: the full tensor each rank holds afterwards."""
    if not isinstance(shards, (list, tuple)) or not shards:
        raise ValueError("all_gather expects a non-empty list with one shard per rank")
    sizes = shard_sizes(sum(s.shape[0] for s in shards), len(shards))
    if [s.shape[0] for s in shards] != sizes:
        raise ValueError(f"shards have {[s.shape[0] for s in shards]} rows; ranks of "
                         f"a tensor sharded like torch.chunk have {sizes}")
    return torch.cat(list(shards))


def reduce_scatter(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Average one full tensor per rank, and hand rank r only its shard of the mean.

    The output is what ``ReduceOp.AVG`` leaves on each rank; an all-reduce is this
    followed by an all-gather, so it moves the same bytes as the two together.
    """
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise ValueError("reduce_scatter expects a non-empty list with one tensor per "
                         "rank")
    if len({tuple(t.shape) for t in tensors}) != 1:
        raise ValueError("every rank must contribute a tensor of the same shape, got "
                         f"{[tuple(t.shape) for t in tensors]}")
    mean = torch.stack(list(tensors)).mean(0)
    return [shard(mean, r, len(tensors)) for r in range(len(tensors))]


def split_batch(batch: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s equal share of a global batch (rows rank*b/N .. (rank+1)*b/N).

    The shares must be equal: then the mean of the ranks' mean losses is the mean loss
    of the whole batch, and averaging their gradients gives the full-batch gradient.
    """
    if not isinstance(batch, torch.Tensor) or batch.ndim < 1:
        raise ValueError("batch must be a tensor whose first dimension is the batch")
    _check_world(world)
    _check_rank(rank, world)
    if batch.shape[0] % world:
        raise ValueError(f"a global batch of {batch.shape[0]} does not split evenly "
                         f"over {world} ranks; use a multiple of {world}, or the "
                         "averaged gradient is not the full batch's")
    per = batch.shape[0] // world
    return batch[rank * per:(rank + 1) * per]


def simulate_zero3(model: nn.Module, batches: list[torch.Tensor], world: int,
                   loss_fn: Callable, lr: float) -> dict:
    """Train a copy of ``model`` with Adam on ``batches`` as ``world`` ZeRO-3 ranks
    would, one after another in this process. Returns the final full parameters.

    Rank r keeps only its shard of each parameter and the Adam state of that shard.
    Each step: all-gather the parameters, compute the gradient of ``loss_fn(model,
    rank's share of the batch)``, reduce-scatter (average) the gradients, and let
    each rank's Adam update its own shard.
    """
    _check_world(world)
    work = copy.deepcopy(model)
    names = [n for n, _ in work.named_parameters()]
    # shards[r][name]: rank r's rows of a parameter; opts[r]: Adam over them only
    shards = [{n: shard(p.detach(), r, world).clone().requires_grad_()
               for n, p in work.named_parameters()} for r in range(world)]
    opts = [torch.optim.Adam(list(s.values()), lr=lr) for s in shards]
    for batch in batches:
        # all-gather: every rank rebuilds the same full parameters for this step
        full = {n: all_gather([s[n].detach() for s in shards]) for n in names}
        with torch.no_grad():
            for n, p in work.named_parameters():
                p.copy_(full[n])
        grads = []  # grads[r][name]: rank r's full gradient of its own micro-batch
        for r in range(world):
            work.zero_grad(set_to_none=True)
            loss_fn(work, split_batch(batch, r, world)).backward()
            grads.append({n: p.grad for n, p in work.named_parameters()})
        for n in names:  # each rank receives the average gradient of its rows only
            for r, g in enumerate(reduce_scatter([grads[q][n] for q in range(world)])):
                shards[r][n].grad = g
        for opt in opts:  # Adam is elementwise: a shard's update needs only its rows
            opt.step()
    return {n: all_gather([s[n].detach() for s in shards]) for n in names}


def local_bytes(tensors) -> int:
    """Bytes this process holds for ``tensors``: a DTensor counts its local shard."""
    total = 0
    for t in tensors:
        if t is None:
            continue
        if hasattr(t, "to_local"):
            t = t.to_local()
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"local_bytes counts tensors, got {type(t).__name__}")
        total += t.numel() * t.element_size()
    return total


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None
                ) -> dict:
    """Bytes this rank holds of ``model``'s parameters and gradients and of
    ``optimizer``'s per-parameter state (Adam's ``exp_avg`` and ``exp_avg_sq``; the
    scalar ``step`` counter is left out, as ZeRO's K leaves it out)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    state = [] if optimizer is None else [
        v for s in optimizer.state.values() for key, v in s.items()
        if key != "step" and isinstance(v, torch.Tensor)]
    return {"parameters": local_bytes(params),
            "gradients": local_bytes(p.grad for p in params),
            "optimizer": local_bytes(state)}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now, for the process group to meet at."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(fn: Callable, world: int, *args) -> None:
    """Run ``fn(rank, world, port, *args)`` in ``world`` new processes and wait.

    The processes are started fresh (start method "spawn"), so ``fn`` must be
    importable from a module: a function defined in a notebook is not. A worker that
    raises makes ``launch`` raise too, and no worker outlives ``launch``: on an error
    or an interrupt the ones still running are terminated.
    """
    import torch.multiprocessing as mp

    if not callable(fn):
        raise TypeError(f"fn must be a function, got {fn!r}")
    if getattr(fn, "__module__", "__main__") == "__main__":
        raise ValueError("spawned processes cannot import a function defined in "
                         "__main__ (a notebook or script); put it in a module")
    _check_world(world)
    context = mp.start_processes(fn, args=(world, free_port(), *args), nprocs=world,
                                 join=False, start_method="spawn")
    try:
        while not context.join():  # raises once any worker has failed
            pass
    finally:  # subtle: a rank left waiting in a collective would wait for minutes
        for process in context.processes:
            if process.is_alive():
                process.terminate()
            process.join()


def init_process(rank: int, world: int, port: int) -> torch.device:
    """Join the process group (NCCL with a GPU per rank, else gloo); return the
    device this rank computes on."""
    import torch.distributed as dist

    _check_world(world)
    _check_rank(rank, world)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    if torch.cuda.is_available() and torch.cuda.device_count() >= world:
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
        torch.set_num_threads(1)  # the ranks share the machine's cores
    dist.init_process_group(backend, rank=rank, world_size=world, device_id=None)
    return device


def _check_world(world, name="world") -> None:
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError(f"{name} (the number of ranks) must be a positive integer, "
                         f"got {world!r}")


def _check_rank(rank, world) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world:
        raise ValueError(f"rank must be an integer in 0..{world - 1}, got {rank!r}")

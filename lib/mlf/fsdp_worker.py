"""What each process runs in the FSDP chapter: the book's GPT trained by real engines.

``train(rank, world, port, folder)`` is started by ``mlf.sharding.launch``, once a rank.
It reads ``folder/setup.pt`` (written by the chapter: the model's config and initial
weights, the global batches, the learning rate and how many steps each run takes) and
trains three ways, each from the same initial weights on the same batches:

* ``zero3``: FSDP2, ``fully_shard`` on every block and on the whole model, default
  schedule (a block's parameters are freed after its forward and all-gathered again
  for its backward; the root group's stay gathered from forward to backward);
* ``zero2``: the same with ``reshard_after_forward=False``: the parameters gathered for
  forward stay until backward, so each is gathered once a step, as in ZeRO stage 2;
* ``zero1``: ``DistributedDataParallel`` with ``ZeroRedundancyOptimizer``: full
  parameters and gradients on every rank, Adam's state sharded (ZeRO stage 1).

Each rank writes ``folder/rank{r}.pt``: the bytes it holds of parameters, gradients and
optimizer state (``mlf.sharding.state_bytes``), the collectives FSDP issued in the first
step (kind, phase, elements of the full tensor), the global mean loss of every step,
and, from rank 0, the final parameters gathered in full.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist

from mlf.gpt import GPT, GPTConfig
from mlf.sharding import init_process, split_batch, state_bytes


class CollectiveLog:
    """Records FSDP2's all-gathers and reduce-scatters while ``recording``.

    FSDP2 calls ``torch.distributed.all_gather_single`` and ``reduce_scatter_single``
    (``torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py``); the log wraps the
    two for as long as it records and notes the size of the full tensor each moves.
    """

    def __init__(self):
        self.calls: list[tuple[str, str, int]] = []  # (kind, phase, full elements)
        self.phase = "forward"

    @contextmanager
    def recording(self):
        saved = dist.all_gather_single, dist.reduce_scatter_single

        def gather(output_tensor, input_tensor, *args, **kwargs):
            self.calls.append(("all-gather", self.phase, output_tensor.numel()))
            return saved[0](output_tensor, input_tensor, *args, **kwargs)

        def scatter(*args, **kwargs):
            full = kwargs["input"] if "input" in kwargs else args[1]
            self.calls.append(("reduce-scatter", self.phase, full.numel()))
            return saved[1](*args, **kwargs)

        dist.all_gather_single, dist.reduce_scatter_single = gather, scatter
        try:
            yield self
        finally:
            dist.all_gather_single, dist.reduce_scatter_single = saved


def global_mean(value: float, device: torch.device) -> float:
    """The mean of ``value`` over all ranks (every rank gets it). ``device`` is the
    rank's device: NCCL reduces only tensors on a GPU."""
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


def run_fsdp(setup, rank, world, device, reshard, steps):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model = GPT(GPTConfig(**setup["config"]))
    model.load_state_dict(setup["state"])
    model.to(device)
    # subtle: FSDP2's default mesh is on the GPU whenever one exists, even when the
    # ranks chose gloo on CPUs; this mesh is on the device init_process chose
    mesh = init_device_mesh(device.type, (world,))
    # reshard None: FSDP2's default, True for every group except the root's
    # (subtle: the root's are needed first in backward, so it keeps them gathered)
    kwargs = {"mesh": mesh} if reshard is None else {
        "mesh": mesh, "reshard_after_forward": reshard}
    for block in model.blocks:  # one all-gather / reduce-scatter group per block
        fully_shard(block, **kwargs)
    fully_shard(model, **kwargs)  # the root group: embeddings, positions, ln_f
    opt = torch.optim.Adam(model.parameters(), lr=setup["lr"])
    log, losses, held, grads = CollectiveLog(), [], {}, {}
    for step, batch in enumerate(setup["batches"][:steps]):
        ids = split_batch(batch, rank, world).to(device)  # this rank's share
        with log.recording() if step == 0 else _nothing():
            log.phase = "forward"
            loss = model.loss(ids)
            log.phase = "backward"
            loss.backward()
        if step == 0:
            held = state_bytes(model)  # parameters and gradients, sharded
            grads = {n: p.grad.full_tensor().cpu()  # a collective: every rank calls
                     for n, p in model.named_parameters()}
        opt.step()
        if step == 0:
            held["optimizer"] = state_bytes(model, opt)["optimizer"]
        opt.zero_grad(set_to_none=True)
        losses.append(global_mean(loss.item(), device))
    full = {n: p.full_tensor().cpu() for n, p in model.named_parameters()}
    return {"bytes": held, "collectives": log.calls, "losses": losses}, full, grads


def run_zero1(setup, rank, world, device, steps):
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel

    model = GPT(GPTConfig(**setup["config"]))
    model.load_state_dict(setup["state"])
    ddp = DistributedDataParallel(model.to(device))
    opt = ZeroRedundancyOptimizer(model.parameters(), torch.optim.Adam,
                                  lr=setup["lr"])
    losses, held, grads = [], {}, {}
    for step, batch in enumerate(setup["batches"][:steps]):
        ids = split_batch(batch, rank, world).to(device)
        logits = ddp(ids[:, :-1])  # DDP averages gradients in its backward hooks
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1),
                                                 ids[:, 1:].flatten())
        loss.backward()
        if step == 0:
            held = state_bytes(model)
            grads = {n: p.grad.cpu() for n, p in model.named_parameters()}
        opt.step()
        if step == 0:
            held["optimizer"] = state_bytes(model, opt.optim)["optimizer"]
        opt.zero_grad(set_to_none=True)
        losses.append(global_mean(loss.item(), device))
    full = {n: p.detach().cpu() for n, p in model.named_parameters()}
    return {"bytes": held, "losses": losses}, full, grads


@contextmanager
def _nothing():
    yield


def train(rank: int, world: int, port: int, folder: str) -> None:
    folder = Path(folder)
    device = init_process(rank, world, port)
    try:
        setup = torch.load(folder / "setup.pt", weights_only=True)
        steps = setup["steps"]
        out, params, grads = {}, {}, {}
        for name, reshard in (("zero3", None), ("zero2", False)):
            out[name], params[name], grads[name] = run_fsdp(
                setup, rank, world, device, reshard, steps[name])
        out["zero1"], params["zero1"], grads["zero1"] = run_zero1(
            setup, rank, world, device, steps["zero1"])
        if rank == 0:  # every rank holds the same gathered tensors
            out["params"], out["grads"] = params, grads
        torch.save(out, folder / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


# --- what the chapter calls, in the notebook's own process ----------------------------

def make_setup(model: GPT, stream: torch.Tensor, steps: int, batch: int, length: int,
               lr: float, generator: torch.Generator | None = None) -> dict:
    """The experiment every engine runs: ``model``'s weights, ``steps`` global batches
    of ``batch`` random windows of ``length + 1`` ids from ``stream``, Adam's ``lr``."""
    from dataclasses import asdict

    from mlf.gpt import random_windows

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    batches = torch.stack([random_windows(stream, batch, length + 1, generator)
                           for _ in range(steps)])  # (steps, batch, length + 1)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"config": asdict(model.cfg), "state": state, "batches": batches,
            "lr": float(lr), "steps": {"zero3": steps, "zero2": 1, "zero1": steps}}


def train_single(setup: dict, steps: int | None = None, device=None):
    """The reference: one process, the whole batch, plain Adam. Returns the model
    after ``steps`` (default all) and a dict of its losses, the bytes it held and its
    first gradients."""
    model = GPT(GPTConfig(**setup["config"]))
    model.load_state_dict(setup["state"])
    model.to(device or "cpu")
    opt = torch.optim.Adam(model.parameters(), lr=setup["lr"])
    losses, held, grads = [], {}, {}
    for step, batch in enumerate(setup["batches"][:steps]):
        loss = model.loss(batch.to(device or "cpu"))
        loss.backward()
        if step == 0:
            held = state_bytes(model)
            grads = {n: p.grad.cpu() for n, p in model.named_parameters()}
        opt.step()
        if step == 0:
            held["optimizer"] = state_bytes(model, opt)["optimizer"]
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return model, {"losses": losses, "bytes": held, "grads": grads}


def run(setup: dict, world: int) -> list[dict]:
    """Launch ``world`` processes on ``setup`` and return each rank's results."""
    import tempfile

    from mlf.sharding import launch

    with tempfile.TemporaryDirectory() as folder:
        torch.save(setup, Path(folder) / "setup.pt")
        launch(train, world, folder)
        return [torch.load(Path(folder) / f"rank{r}.pt", weights_only=True)
                for r in range(world)]


def gap(a: dict, b: dict, skip: tuple[str, ...] = ()) -> float:
    """The largest |a[name] - b[name]| over the tensors of two name -> tensor dicts,
    leaving out names that end with one of ``skip``."""
    if set(a) != set(b):
        raise ValueError(f"the dicts name different tensors: {sorted(set(a) ^ set(b))}")
    return max(((a[n].cpu() - b[n].cpu()).abs().max().item() for n in a
                if not n.endswith(skip)), default=0.0)

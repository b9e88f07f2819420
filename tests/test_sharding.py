"""ZeRO's memory formula, FSDP2's sharding arithmetic, the simulated collectives, and
one real launch of two gloo processes training a tiny GPT with FSDP2."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from mlf import fsdp_worker as fw
from mlf import sharding
from mlf.gpt import GPT, GPTConfig
from torch import nn

# --- the formula --------------------------------------------------------------------

def test_zero_memory_reproduces_fig1():
    # ZeRO Fig. 1: 7.5B parameters, N_d = 64, K = 12: 120, 31.4, 16.6 and 1.9 GB
    gb = [sharding.zero_memory(7.5e9, 64, s)["total"] / 1e9 for s in range(4)]
    assert [round(x, 1) for x in gb] == [120.0, 31.4, 16.6, 1.9]
    assert gb[0] == 16 * 7.5  # (2 + 2 + K) Ψ


def test_zero_memory_terms():
    m = sharding.zero_memory(100, 4, 2, k=8, param_bytes=4, grad_bytes=4)
    assert m == {"parameters": 400, "gradients": 100, "optimizer": 200, "total": 700}


@given(psi=st.integers(0, 10**12), n_d=st.integers(1, 4096))
def test_zero_memory_laws(psi, n_d):
    totals = [sharding.zero_memory(psi, n_d, s)["total"] for s in range(4)]
    assert totals == sorted(totals, reverse=True)  # every stage saves more
    assert math.isclose(totals[3] * n_d, totals[0], rel_tol=1e-12, abs_tol=1e-9)
    assert sharding.zero_memory(psi, 1, 3) == sharding.zero_memory(psi, 1, 0)


@pytest.mark.parametrize("kwargs", [
    {"psi": -1, "n_d": 2, "stage": 0}, {"psi": 10, "n_d": 0, "stage": 0},
    {"psi": 10, "n_d": 2.0, "stage": 0}, {"psi": 10, "n_d": 2, "stage": 4},
    {"psi": 10, "n_d": 2, "stage": True}, {"psi": 10, "n_d": 2, "stage": 1, "k": -1},
    {"psi": True, "n_d": 2, "stage": 1}])
def test_zero_memory_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        sharding.zero_memory(**kwargs)


# --- sharding arithmetic and simulated collectives ----------------------------------

@given(n=st.integers(0, 300), world=st.integers(1, 17))
def test_shard_sizes_follow_torch_chunk(n, world):
    sizes = sharding.shard_sizes(n, world)
    chunks = [c.shape[0] for c in torch.chunk(torch.empty(n), world)] if n else []
    assert sizes == chunks + [0] * (world - len(chunks))
    assert sum(sizes) == n and len(sizes) == world


@given(rows=st.integers(1, 40), world=st.integers(1, 9), cols=st.integers(1, 3))
def test_shard_then_all_gather_round_trip(rows, world, cols):
    x = torch.arange(rows * cols, dtype=torch.float32).view(rows, cols)
    shards = [sharding.shard(x, r, world) for r in range(world)]
    assert torch.equal(sharding.all_gather(shards), x)


def test_reduce_scatter_then_all_gather_is_an_all_reduce():
    g = torch.Generator().manual_seed(0)
    per_rank = [torch.randn(7, 3, generator=g) for _ in range(3)]
    out = sharding.reduce_scatter(per_rank)
    assert [o.shape[0] for o in out] == [3, 3, 1]
    assert torch.allclose(sharding.all_gather(out), torch.stack(per_rank).mean(0))


def test_split_batch():
    batch = torch.arange(12).view(6, 2)
    parts = [sharding.split_batch(batch, r, 3) for r in range(3)]
    assert torch.equal(torch.cat(parts), batch)
    with pytest.raises(ValueError, match="does not split evenly"):
        sharding.split_batch(batch, 0, 4)
    with pytest.raises(ValueError, match="rank"):
        sharding.split_batch(batch, 3, 3)


@pytest.mark.parametrize("call", [
    lambda: sharding.shard_sizes(-1, 2), lambda: sharding.shard_sizes(4, 0),
    lambda: sharding.shard(torch.tensor(1.0), 0, 2),
    lambda: sharding.shard(torch.ones(4), 2, 2),
    lambda: sharding.all_gather([]),
    lambda: sharding.all_gather([torch.ones(1), torch.ones(3)]),  # not chunk-shaped
    lambda: sharding.reduce_scatter([torch.ones(2), torch.ones(3)]),
    lambda: sharding.reduce_scatter([])])
def test_collectives_reject_bad_input(call):
    with pytest.raises(ValueError):
        call()


def _mse(model, batch):
    return ((model(batch[:, :4]) - batch[:, 4:]) ** 2).mean()


@pytest.mark.parametrize("world", [1, 2, 3])
def test_simulate_zero3_matches_one_process(world):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    batches = [torch.randn(6, 6) for _ in range(4)]
    ref = [p.detach().clone() for p in model.parameters()]
    ref_model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    ref_model.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(ref_model.parameters(), lr=1e-2)
    for b in batches:
        _mse(ref_model, b).backward()
        opt.step()
        opt.zero_grad()
    out = sharding.simulate_zero3(model, batches, world, _mse, lr=1e-2)
    for (name, p), before in zip(ref_model.named_parameters(), ref):
        assert torch.allclose(out[name], p.detach(), atol=1e-6)
        assert not torch.equal(out[name], before)  # it trained
    for p, before in zip(model.parameters(), ref):
        assert torch.equal(p.detach(), before)  # the model given is left alone


def test_state_bytes_of_plain_model():
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    assert sharding.state_bytes(model, opt) == {"parameters": 32, "gradients": 0,
                                                "optimizer": 0}
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    assert sharding.state_bytes(model, opt) == {"parameters": 32, "gradients": 32,
                                                "optimizer": 64}
    with pytest.raises(TypeError):
        sharding.state_bytes("model")


def _defined_here(rank, world, port):
    pass


def test_launch_rejects_bad_input():
    with pytest.raises(ValueError):
        sharding.launch(fw.train, 0, "folder")
    with pytest.raises(TypeError):
        sharding.launch("train", 2)
    _defined_here.__module__ = "__main__"  # as a function defined in a notebook
    with pytest.raises(ValueError, match="__main__"):
        sharding.launch(_defined_here, 2)


def test_launch_raises_when_a_worker_fails_and_leaves_none_running():
    import multiprocessing

    # math.sqrt(rank, world, port) raises TypeError in every worker
    with pytest.raises(Exception, match="sqrt"):
        sharding.launch(math.sqrt, 2)
    assert not multiprocessing.active_children()


# --- a real launch: two gloo processes ----------------------------------------------

TINY = GPTConfig(vocab_size=65, context=16, d_model=16, n_heads=2, n_layers=2, d_ff=32)


def test_fsdp_on_two_processes_matches_one():
    torch.manual_seed(0)
    model = GPT(TINY)
    stream = torch.randint(0, TINY.vocab_size, (500,))
    setup = fw.make_setup(model, stream, steps=3, batch=4, length=8, lr=1e-3,
                          generator=torch.Generator().manual_seed(0))
    single, ref = fw.train_single(setup)
    final = {n: p.detach() for n, p in single.named_parameters()}
    ranks = fw.run(setup, 2)
    key_bias = ("attn.w_k.bias",)  # zero gradient up to rounding: Adam amplifies it
    for engine in ("zero3", "zero1"):
        assert fw.gap(ranks[0]["grads"][engine], ref["grads"]) < 1e-6
        assert fw.gap(ranks[0]["params"][engine], final, key_bias) < 1e-5
        assert max(abs(a - b) for a, b in zip(ranks[0][engine]["losses"],
                                               ref["losses"])) < 1e-5
    # per-rank bytes: every parameter's rows split as shard_sizes says (65 = 33 + 32)
    for rank, result in enumerate(ranks):
        rows = sum(sharding.shard_sizes(p.shape[0], 2)[rank] * p[0].numel()
                   for p in single.parameters())
        assert result["zero3"]["bytes"] == {"parameters": 4 * rows,
                                            "gradients": 4 * rows,
                                            "optimizer": 8 * rows}
    assert sum(r["zero3"]["bytes"]["parameters"] for r in ranks) \
        == ref["bytes"]["parameters"]
    assert ranks[0]["zero3"]["bytes"] != ranks[1]["zero3"]["bytes"]  # uneven shards
    # the schedule: every group gathered in forward; only non-root groups in backward
    calls = ranks[0]["zero3"]["collectives"]
    kinds = [(k, phase) for k, phase, _ in calls]
    assert kinds.count(("all-gather", "forward")) == 3  # root + 2 blocks
    assert kinds.count(("all-gather", "backward")) == 2
    assert kinds.count(("reduce-scatter", "backward")) == 3
    calls2 = ranks[0]["zero2"]["collectives"]
    assert [k for k, phase, _ in calls2].count("all-gather") == 3

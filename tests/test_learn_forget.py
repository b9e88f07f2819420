"""LoRA learns less and forgets less: the spectral tools against numpy.linalg.svd on
random and edge matrices (zero, rank 1, non-square, one row), LoRA's ΔW rank, the
LoRA set-up's trainable count against peft's on the book's model, the windows, one
short run of each kind, and bad input."""
import copy
import logging
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf.gpt import load_book_lm
from mlf.learn_forget import (
    LEARN_FORGET_SETUP,
    TARGETS,
    energy_curve,
    finetune,
    rank_for_energy,
    source_windows,
    spectrum,
    target_windows,
    weight_changes,
)
from mlf.lora import add_lora, count_parameters, lora_modules
from mlf.quant import domain_split

os.environ.setdefault("HF_HUB_OFFLINE", "1")
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def numpy_rank_for_energy(m: np.ndarray, fraction: float) -> int:
    s2 = np.linalg.svd(m, compute_uv=False) ** 2
    if s2.sum() == 0:
        return 0
    return int(np.argmax(np.cumsum(s2) / s2.sum() >= fraction - 1e-12) + 1)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 30), cols=st.integers(1, 30), seed=st.integers(0, 999),
       fraction=st.floats(0.05, 1.0))
def test_spectrum_and_rank_match_numpy(rows, cols, seed, fraction):
    m = np.random.default_rng(seed).normal(size=(rows, cols))
    assert np.allclose(spectrum(m).numpy(), np.linalg.svd(m, compute_uv=False),
                       atol=1e-10)
    assert rank_for_energy(m, fraction) == numpy_rank_for_energy(m, fraction)
    curve = energy_curve(torch.from_numpy(m))
    assert len(curve) == min(rows, cols) and abs(curve[-1].item() - 1) < 1e-12
    assert bool((curve[1:] >= curve[:-1] - 1e-15).all())  # E_k never decreases


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 20), cols=st.integers(1, 20), r=st.integers(1, 5),
       seed=st.integers(0, 999))
def test_rank_r_product_needs_at_most_r(rows, cols, r, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(rows, r, generator=g, dtype=torch.float64) @ \
        torch.randn(r, cols, generator=g, dtype=torch.float64)
    assert rank_for_energy(m, 0.9) <= min(r, rows, cols)
    assert rank_for_energy(m, 1.0) <= min(r, rows, cols)


def test_edges():
    assert rank_for_energy(torch.zeros(5, 3)) == 0
    assert torch.equal(energy_curve(torch.zeros(2, 4)),
                       torch.zeros(2, dtype=torch.float64))
    u, v = torch.randn(7, 1), torch.randn(1, 4)
    assert rank_for_energy(u @ v, 0.9) == 1 and rank_for_energy(u @ v, 1.0) == 1
    assert rank_for_energy(torch.eye(6), 0.5) == 3  # equal σ: energy grows linearly
    assert rank_for_energy(torch.eye(6), 0.51) == 4
    assert rank_for_energy(torch.eye(6), 1.0) == 6
    assert rank_for_energy(torch.tensor([[3.0, 4.0]]), 0.9) == 1  # one row: rank 1
    assert rank_for_energy(torch.diag(torch.tensor([2.0, 1.0])), 0.8) == 1  # 4/5
    assert rank_for_energy(torch.diag(torch.tensor([2.0, 1.0])), 0.81) == 2
    assert rank_for_energy(torch.ones(3, 3, dtype=torch.int64)) == 1  # integers too


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        spectrum(torch.zeros(3))
    with pytest.raises(ValueError, match="2-D"):
        rank_for_energy(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="empty"):
        spectrum(torch.zeros(0, 3))
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        spectrum([[1.0, 2.0]])
    with pytest.raises(TypeError, match="real numbers"):
        spectrum(torch.zeros(2, 2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="NaN or infinite"):
        spectrum(torch.tensor([[1.0, float("nan")]]))
    for bad in (0, 0.0, -0.1, 1.5, float("nan"), True, "0.9"):
        with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 1\]"):
            rank_for_energy(torch.eye(3), bad)
    model, bpe, record = load_book_lm()
    with pytest.raises(ValueError, match="method must be one of"):
        finetune(model, "lora r=8", torch.arange(500), 0, 1e-3, 1)
    with pytest.raises(ValueError, match="every must be"):
        finetune(model, "full", torch.arange(500), 0, 1e-3, 1, every=0)
    with pytest.raises(TypeError, match="nn.Modules"):
        weight_changes(model, torch.zeros(2))
    with pytest.raises(ValueError, match="no layer"):
        weight_changes(model, copy.deepcopy(model), targets=("nothing",))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        source_windows(bpe, record, 129, n=0)


@pytest.fixture(scope="module")
def book():
    return load_book_lm()


def test_lora_delta_has_rank_at_most_r_and_weight_changes_reads_it(book):
    model, _, _ = book
    for r in (1, 4):
        adapted = add_lora(copy.deepcopy(model), TARGETS, r, 2 * r, seed=0)
        g = torch.Generator().manual_seed(r)
        with torch.no_grad():
            for m in lora_modules(adapted).values():
                m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g))
        deltas = weight_changes(model, adapted)
        assert len(deltas) == 6 * len(model.blocks)
        for name, d in deltas.items():
            a = lora_modules(adapted)[name]
            assert torch.allclose(d, a.delta_weight().detach(), atol=1e-6)
            # subtle: float32 rounding has full rank; multiply out in float64
            exact = a.scaling * a.lora_B.detach().double() @ a.lora_A.detach().double()
            assert torch.linalg.matrix_rank(exact.double()).item() == r
            assert rank_for_energy(exact) <= r and rank_for_energy(d) <= r
            # the float32 rounding of W_0 + ΔW has full rank at float64's tolerance,
            # and vanishes at float32's (the tensor's own dtype)
            assert d.dtype == torch.float32
            assert torch.linalg.matrix_rank(d).item() == r
            assert torch.linalg.matrix_rank(d.double()).item() > 10 * r
            top = torch.linalg.svdvals(exact.double())[:r]
            assert torch.allclose(spectrum(d)[:r], top, rtol=1e-4)


def test_trainable_count_equals_peft_on_the_book_model(book):
    peft = pytest.importorskip("peft")
    model, _, _ = book
    for r in (1, 16, 64):
        ours = add_lora(copy.deepcopy(model), TARGETS, r, 2 * r, seed=0)
        cfg = peft.LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(TARGETS),
                              lora_dropout=0.0)
        ref = peft.get_peft_model(copy.deepcopy(model), cfg)
        assert count_parameters(ours) == ref.get_nb_trainable_parameters()
        # r (d_in + d_out) a layer: four 160 x 160 and two 160 <-> 640 a block
        per_block = 4 * (160 + 160) + 2 * (160 + 640)
        assert count_parameters(ours)[0] == r * per_block * len(model.blocks)


def test_windows(book):
    model, bpe, record = book
    span = model.cfg.context + 1
    train, dev, test = target_windows(bpe, span)
    ref_train, ref_test = domain_split(bpe, span)
    assert torch.equal(train, ref_train) and torch.equal(test, ref_test)
    assert dev.shape == (LEARN_FORGET_SETUP["dev_windows"], span)
    # dev windows are not test windows
    assert not any(torch.equal(d, t) for d in dev for t in test)
    src = source_windows(bpe, record, span)
    assert src.shape == (LEARN_FORGET_SETUP["source_windows"], span)
    assert len({tuple(w.tolist()) for w in src}) == len(src)


def test_short_runs_full_changes_everything_lora_only_adapters(book):
    model, bpe, _ = book
    train, _, _ = target_windows(bpe, model.cfg.context + 1)
    seen = []
    full = copy.deepcopy(model)
    finetune(full, "full", train, 0, 1e-3, 2, lambda s, m: seen.append(s), every=1)
    assert seen == [1, 2]
    assert not torch.equal(full.blocks[0].attn.w_q.weight,
                           model.blocks[0].attn.w_q.weight)
    lora = copy.deepcopy(model)
    finetune(lora, "lora r=4", train, 0, 3e-3, 2)
    for m in lora_modules(lora).values():  # W frozen, B moved off zero
        assert not m.base.weight.requires_grad and m.lora_B.abs().sum() > 0
    assert torch.equal(lora.blocks[0].attn.w_q.base.weight,
                       model.blocks[0].attn.w_q.weight)
    # the same seed gives the same run
    again = copy.deepcopy(model)
    finetune(again, "lora r=4", train, 0, 3e-3, 2)
    assert torch.equal(again.blocks[1].ffn.w_1.lora_B, lora.blocks[1].ffn.w_1.lora_B)

"""Tests for mlf.ntm: addressing laws, cross-checks with torch, heads, the copy task,
the tools that read the learned program, and the Fig. 1 diagram."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mlf.ntm import (EPS, NTM, Head, LSTMBaseline, address, bit_errors,
                     build_copy_models, content_weights, copy_batch, copy_cost_bits,
                     copy_outputs, copy_program_rows, copy_program_stats, evaluate_copy,
                     interpolate, linear_probe_accuracy, read, sharpen, shift,
                     train_copy, write)

F64 = torch.float64
CONFIG = {"bits": 3, "controller_size": 16, "memory_rows": 8, "memory_width": 6,
          "lstm_hidden": 8, "init_seed": 0}


def _dist(b, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(b, n, generator=g, dtype=F64), -1)


def _one_hot(b, n, i):
    w = torch.zeros(b, n, dtype=F64)
    w[:, i] = 1
    return w


def _tiny_ntm(seed=0):
    torch.manual_seed(seed)
    return NTM(4, 3, controller_size=16, memory_rows=8, memory_width=6)


# --- the addressing equations ---------------------------------------------------------


def test_content_weights_match_cosine_similarity_softmax():
    g = torch.Generator().manual_seed(1)
    memory = torch.randn(3, 7, 5, generator=g, dtype=F64)
    key = torch.randn(3, 5, generator=g, dtype=F64)
    beta = torch.tensor([0.0, 1.5, 20.0], dtype=F64)
    cos = F.cosine_similarity(memory, key[:, None], dim=-1)
    expected = torch.softmax(beta[:, None] * cos, -1)
    torch.testing.assert_close(content_weights(memory, key, beta), expected,
                               rtol=0, atol=1e-12)


def test_beta_zero_gives_uniform_weights():
    memory = torch.randn(2, 6, 4)
    w = content_weights(memory, torch.randn(2, 4), torch.zeros(2))
    torch.testing.assert_close(w, torch.full((2, 6), 1 / 6))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 12), k=st.integers(0, 1), seed=st.integers(0, 1000))
def test_shift_equals_sum_of_rolls(n, k, seed):
    w = _dist(2, n, seed)
    s = _dist(2, 2 * k + 1, seed + 1)
    expected = sum(s[:, j:j + 1] * torch.roll(w, j - k, dims=-1)
                   for j in range(2 * k + 1))
    torch.testing.assert_close(shift(w, s), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("i", [0, 3, 7])
def test_one_hot_shift_moves_one_hot_weighting_by_one_slot(i):
    w = _one_hot(1, 8, i)
    forward = torch.tensor([[0.0, 0.0, 1.0]], dtype=F64)  # shifts -1, 0, +1
    backward = torch.tensor([[1.0, 0.0, 0.0]], dtype=F64)
    assert torch.equal(shift(w, forward), _one_hot(1, 8, (i + 1) % 8))
    assert torch.equal(shift(w, backward), _one_hot(1, 8, (i - 1) % 8))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 10), seed=st.integers(0, 1000))
def test_shift_preserves_a_distribution(n, seed):
    out = shift(_dist(3, n, seed), _dist(3, 3, seed + 7))
    assert (out >= 0).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(3, dtype=F64))


def test_large_gamma_sharpens_a_clear_maximum_to_one_hot():
    w = torch.tensor([[0.1, 0.5, 0.3, 0.1]], dtype=F64)  # runner-up ratio 0.6
    out = sharpen(w, torch.tensor([200.0], dtype=F64))
    torch.testing.assert_close(out, _one_hot(1, 4, 1), rtol=0, atol=1e-12)
    torch.testing.assert_close(sharpen(w, torch.ones(1, dtype=F64)), w,
                               rtol=0, atol=1e-7)


def test_large_gamma_does_not_make_a_near_tie_one_hot():
    w = torch.tensor([[0.35, 0.3499, 0.3, 0.0001]], dtype=F64)  # rho = 0.9997
    out = sharpen(w, torch.tensor([300.0], dtype=F64))
    assert 0.2 < out[0, 0].item() < 0.8  # the two near-equal entries share the mass


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 32), gamma=st.floats(1.0, 400.0), scale=st.floats(0.1, 5.0),
       seed=st.integers(0, 10_000))
def test_sharpen_leaves_the_rest_at_most_n_minus_1_rho_to_the_gamma(n, gamma, scale,
                                                                    seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.softmax(scale * torch.randn(4, n, generator=g, dtype=F64), -1)
    out = sharpen(w, torch.full((4,), gamma, dtype=F64))
    top2 = (w + EPS).topk(2, dim=-1).values
    rho = top2[:, 1] / top2[:, 0]  # runner-up over the largest
    top = out.argmax(-1)
    rest = out.scatter(-1, top[:, None], 0.0).sum(-1)  # accurate when tiny
    upper, lower = (n - 1) * rho ** gamma, rho ** gamma / (1 + rho ** gamma)
    assert (rest <= upper * (1 + 1e-9) + 1e-300).all()  # slack: subnormal rounding
    assert (rest >= lower * (1 - 1e-9) - 1e-300).all()
    assert torch.equal(top, w.argmax(-1))
    one_hot = rho <= (1e-9 / (n - 1)) ** (1 / gamma)  # the gap the bound needs
    assert (rest[one_hot] <= 1e-9).all()


@settings(max_examples=30, deadline=None)
@given(gamma=st.floats(1.0, 30.0), seed=st.integers(0, 1000))
def test_sharpen_matches_power_formula_and_keeps_the_argmax(gamma, seed):
    w = _dist(2, 6, seed)
    expected = w ** gamma / (w ** gamma).sum(-1, keepdim=True)
    out = sharpen(w, torch.full((2,), gamma, dtype=F64))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-7)
    assert torch.equal(out.argmax(-1), w.argmax(-1))


def test_interpolation_endpoints():
    w_c, w_prev = _dist(2, 5, 1), _dist(2, 5, 2)
    torch.testing.assert_close(interpolate(w_c, w_prev, torch.ones(2, dtype=F64)), w_c)
    torch.testing.assert_close(interpolate(w_c, w_prev, torch.zeros(2, dtype=F64)),
                               w_prev)


def test_address_location_only_walks_one_slot():
    memory = torch.randn(1, 8, 4, dtype=F64)
    w = address(memory, _one_hot(1, 8, 2), torch.randn(1, 4, dtype=F64),
                torch.ones(1, dtype=F64), torch.zeros(1, dtype=F64),
                torch.tensor([[0.0, 0.0, 1.0]], dtype=F64), torch.ones(1, dtype=F64))
    torch.testing.assert_close(w, _one_hot(1, 8, 3), rtol=0, atol=1e-7)  # log guard


def test_checks_do_not_change_the_numbers():
    memory = torch.randn(2, 6, 3, dtype=F64)
    args = (memory, _dist(2, 6, 1), torch.randn(2, 3, dtype=F64),
            torch.tensor([1.0, 3.0], dtype=F64), torch.tensor([0.2, 0.9], dtype=F64),
            _dist(2, 3, 2), torch.tensor([1.5, 4.0], dtype=F64))
    assert torch.equal(address(*args), address(*args, check=False))


def test_write_then_read_one_hot_recovers_the_vector():
    memory = torch.randn(2, 5, 3)
    w = torch.zeros(2, 5)
    w[:, 4] = 1
    a = torch.randn(2, 3)
    new = write(memory, w, torch.ones(2, 3), a)  # full erase, then add
    torch.testing.assert_close(read(new, w), a)
    torch.testing.assert_close(new[:, :4], memory[:, :4])  # other rows untouched


def test_write_with_zero_erase_adds():
    memory, w = torch.randn(1, 4, 3), _dist(1, 4).float()
    a = torch.randn(1, 3)
    new = write(memory, w, torch.zeros(1, 3), a)
    torch.testing.assert_close(new, memory + w[..., None] * a[:, None])


# --- bad input: what was wrong, and what is expected --------------------------------

M3, W2 = torch.randn(2, 4, 3), torch.full((2, 4), 0.25)
BAD = [
    # read / write
    (lambda: read(M3.tolist(), W2), TypeError, "memory must be a torch.Tensor"),
    (lambda: read(M3.long(), W2), TypeError, "floating-point"),
    (lambda: read(torch.randn(4, 3), W2), ValueError, r"\(B, N, M\)"),
    (lambda: read(M3, torch.full((2, 5), 0.2)), ValueError, r"w must have shape"),
    (lambda: read(M3, torch.full((3, 4), 0.25)), ValueError, r"\(2, 4\)"),
    (lambda: read(torch.randn(0, 4, 3), torch.ones(0, 4)), ValueError, "empty batch"),
    (lambda: read(torch.randn(2, 0, 3), torch.ones(2, 0)), ValueError, "empty dim"),
    (lambda: read(M3, torch.ones(2, 4)), ValueError, "sum to 1"),
    (lambda: read(M3, torch.tensor([[1.5, -0.5, 0, 0]] * 2)), ValueError, r">= 0|\[0"),
    (lambda: read(M3, W2.double()), TypeError, "dtype"),
    (lambda: write(M3, W2, torch.ones(2, 2), torch.ones(2, 3)), ValueError, "e must"),
    (lambda: write(M3, W2, torch.full((2, 3), 1.5), torch.ones(2, 3)), ValueError,
     "erase"),
    (lambda: write(M3, W2, torch.ones(2, 3), torch.ones(3, 3)), ValueError, "a must"),
    # content addressing
    (lambda: content_weights(M3, torch.randn(2, 3), -torch.ones(2)), ValueError,
     "beta"),
    (lambda: content_weights(M3, torch.randn(2, 3), torch.tensor([1.0, math.nan])),
     ValueError, "beta"),
    (lambda: content_weights(M3, torch.randn(2, 5), torch.ones(2)), ValueError, "key"),
    (lambda: content_weights(M3, torch.randn(2, 3), torch.ones(2, 1)), ValueError,
     "beta must have shape"),
    (lambda: content_weights(torch.randn(0, 4, 3), torch.randn(0, 3), torch.ones(0)),
     ValueError, "empty"),
    # location addressing
    (lambda: interpolate(_dist(2, 4), _dist(2, 4), torch.full((2,), 1.5, dtype=F64)),
     ValueError, "gate"),
    (lambda: interpolate(_dist(2, 4), _dist(2, 5), torch.ones(2, dtype=F64)),
     ValueError, "w_prev must have shape"),
    (lambda: interpolate(_dist(2, 4), 2 * _dist(2, 4), torch.ones(2, dtype=F64)),
     ValueError, "w_prev must sum to 1"),
    (lambda: shift(_dist(2, 4), _dist(2, 2)), ValueError, "odd"),
    (lambda: shift(_dist(2, 4), _dist(3, 3)), ValueError, "B = 2"),
    (lambda: shift(_dist(2, 4), _dist(2, 5)), ValueError, "do not fit"),
    (lambda: shift(_dist(2, 4), torch.ones(2, 3, dtype=F64)), ValueError,
     "s must sum to 1"),
    (lambda: sharpen(_dist(2, 4), torch.full((2,), 0.5, dtype=F64)), ValueError,
     "gamma"),
    (lambda: sharpen(_dist(2, 4), torch.ones(3, dtype=F64)), ValueError, "gamma"),
    (lambda: sharpen(-_dist(2, 4), torch.ones(2, dtype=F64)), ValueError, "weighting"),
    # heads and models
    (lambda: Head(0, 4), ValueError, "controller_size"),
    (lambda: Head(8, 4, shifts=2), ValueError, "odd"),
    (lambda: Head(8, 4, shifts=-1), ValueError, "odd"),
    (lambda: Head(8, 4, write="yes"), TypeError, "write"),
    (lambda: Head(8, 4)(torch.randn(2, 7), M3.new_zeros(2, 5, 4) + 1e-6,
                        torch.full((2, 5), 0.2)), ValueError, "H = 8"),
    (lambda: Head(8, 4)(torch.randn(2, 8), M3, W2), ValueError, "M = 4"),
    (lambda: Head(8, 4).params(torch.randn(2, 5)), ValueError, "H = 8"),
    (lambda: NTM(0, 4), ValueError, "input_size"),
    (lambda: NTM(5, 4, memory_rows=-3), ValueError, "memory_rows"),
    (lambda: NTM(5, 4, memory_rows=4, shifts=5), ValueError, "do not fit"),
    (lambda: NTM(5, 4, shifts=4), ValueError, "odd"),
    (lambda: NTM(5, 4)(torch.zeros(0, 3, 5)), ValueError, "empty"),
    (lambda: NTM(5, 4)(torch.zeros(2, 0, 5)), ValueError, "empty dim"),
    (lambda: NTM(5, 4)(torch.zeros(2, 3, 6)), ValueError, "input_size = 5"),
    (lambda: NTM(5, 4)(torch.zeros(2, 3)), ValueError, r"\(B, T, input_size\)"),
    (lambda: NTM(5, 4)(torch.zeros(2, 3, 5, dtype=torch.long)), TypeError, "floating"),
    (lambda: NTM(5, 4)(torch.zeros(2, 3, 5, dtype=F64)), TypeError, "convert"),
    (lambda: LSTMBaseline(5, 4)(torch.zeros(2, 3, 5, dtype=F64)), TypeError, "convert"),
    (lambda: LSTMBaseline(5, 4, hidden_size=0), ValueError, "hidden_size"),
    (lambda: LSTMBaseline(5, 4)(torch.zeros(2, 3, 4)), ValueError, "input_size = 5"),
    # the copy task
    (lambda: copy_batch(0, 3, 4), ValueError, "batch"),
    (lambda: copy_batch(2, -1, 4), ValueError, "length"),
    (lambda: copy_batch(2, 3, 2.5), ValueError, "bits"),
    (lambda: copy_batch(2, 3, 4, generator=0), TypeError, "generator"),
    (lambda: copy_cost_bits(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError,
     "differ"),
    (lambda: copy_cost_bits(torch.zeros(0, 3, 2), torch.zeros(0, 3, 2)), ValueError,
     "non-empty"),
    (lambda: copy_cost_bits(torch.zeros(1, 3, 2), torch.full((1, 3, 2), 2.0)),
     ValueError, "target"),
    (lambda: bit_errors(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2).long()), TypeError,
     "target"),
    (lambda: copy_outputs(NTM(5, 4), torch.zeros(1, 5, 5), 3), ValueError, "7 steps"),
    (lambda: train_copy(NTM(5, 4), 0, 4, 3), ValueError, "steps"),
    (lambda: train_copy(NTM(5, 4), 1, 4, 0), ValueError, "max_len"),
    (lambda: train_copy(NTM(5, 4), 1, 4, 3, lr=0), ValueError, "lr"),
    (lambda: train_copy(NTM(5, 4), 1, 4, 3, clip=-1.0), ValueError, "clip"),
    (lambda: train_copy(NTM(5, 4), 1, 6, 3), ValueError, "takes 5"),
    (lambda: train_copy(torch.nn.ReLU(), 1, 4, 3), ValueError, "parameters"),
    (lambda: train_copy(NTM(5, 4), 1, 4, 3, seed=1.5), TypeError, "seed"),
    # reading the learned program
    (lambda: copy_program_rows(0, 8), ValueError, "length"),
    (lambda: copy_program_rows(3, 8, direction=2), ValueError, "direction"),
    (lambda: linear_probe_accuracy(torch.randn(4, 3, 2), torch.ones(4, 2, 1), 2),
     ValueError, r"\(B, T\)"),
    (lambda: linear_probe_accuracy(torch.randn(4, 3, 2), torch.full((4, 3, 1), 0.5), 2),
     ValueError, "0 or 1"),
    (lambda: linear_probe_accuracy(torch.randn(4, 3, 2), torch.ones(4, 3, 1), 4),
     ValueError, "held-out"),
    (lambda: copy_program_stats(LSTMBaseline(4, 3), torch.zeros(4, 7, 4), 3),
     TypeError, "mlf.ntm.NTM"),
    (lambda: copy_program_stats(_tiny_ntm(), torch.zeros(4, 6, 4), 3), ValueError,
     "length 3"),
    (lambda: copy_program_stats(_tiny_ntm(), torch.zeros(2, 7, 4), 3), ValueError,
     "at least 4"),
    (lambda: build_copy_models({"bits": 3}), ValueError, "lacks"),
    (lambda: build_copy_models([1, 2]), TypeError, "dict"),
    (lambda: evaluate_copy({}, [3], 2, 3), ValueError, "non-empty"),
    (lambda: evaluate_copy({"m": _tiny_ntm()}, [], 2, 3), ValueError, "lengths"),
    (lambda: evaluate_copy({"m": _tiny_ntm()}, [0], 2, 3), ValueError, "length"),
]


@pytest.mark.parametrize("call, error, message", BAD)
def test_bad_input_is_rejected_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- heads, models, the copy task -----------------------------------------------------


def test_head_params_are_in_their_ranges():
    head = Head(8, 4, write=True)
    p = head.params(10 * torch.randn(5, 8))
    assert (p["beta"] >= 0).all() and ((p["g"] > 0) & (p["g"] < 1)).all()
    torch.testing.assert_close(p["s"].sum(-1), torch.ones(5))
    assert (p["gamma"] >= 1).all() and ((p["e"] >= 0) & (p["e"] <= 1)).all()
    assert (p["a"].abs() <= 1).all() and p["key"].shape == (5, 4)
    assert "e" not in Head(8, 4).params(torch.randn(5, 8))


def test_copy_batch_layout():
    x, y = copy_batch(3, 4, 5, torch.Generator().manual_seed(0))
    assert x.shape == (3, 9, 6) and y.shape == (3, 4, 5)
    torch.testing.assert_close(x[:, :4, :5], y)
    assert (x[:, 4, 5] == 1).all() and x[:, 4, :5].sum() == 0 and x[:, 5:].sum() == 0


def test_cost_in_bits_and_bit_errors():
    target = torch.tensor([[[1.0, 0.0]]])
    cost = copy_cost_bits(torch.zeros(1, 1, 2), target).item()
    assert cost == pytest.approx(2.0)  # one bit per target bit
    assert bit_errors(torch.tensor([[[3.0, 2.0]]]), target).item() == 1


def test_models_shapes_and_weightings_are_distributions():
    x, _ = copy_batch(2, 3, 3)
    ntm = _tiny_ntm()
    logits, reads, writes = ntm(x, return_weights=True)
    assert logits.shape == (2, 7, 3) and reads.shape == writes.shape == (2, 7, 8)
    torch.testing.assert_close(reads.sum(-1), torch.ones(2, 7))
    torch.testing.assert_close(writes.sum(-1), torch.ones(2, 7))
    assert LSTMBaseline(4, 3, hidden_size=8)(x).shape == (2, 7, 3)


def test_trace_agrees_with_forward_and_reads_after_writing():
    x, _ = copy_batch(3, 4, 3, torch.Generator().manual_seed(2))
    ntm = _tiny_ntm()
    tr = ntm.trace(x)
    logits, reads, writes = ntm(x, return_weights=True)
    assert torch.equal(tr["logits"], logits) and torch.equal(tr["w_read"], reads)
    assert torch.equal(tr["w_write"], writes)
    assert tr["h"].shape == (3, 9, 16) and tr["add"].shape == tr["erase"].shape
    memory = ntm.initial_state(3)[0]  # replay: r_t is read from M_t, after the write
    for t in range(9):
        memory = write(memory, tr["w_write"][:, t], tr["erase"][:, t], tr["add"][:, t])
        torch.testing.assert_close(read(memory, tr["w_read"][:, t]), tr["read"][:, t])


def test_a_float64_model_runs_in_float64():
    x, _ = copy_batch(2, 3, 3)
    ntm = _tiny_ntm().double()
    assert ntm(x.double()).dtype == F64 and ntm.initial_state(2)[0].dtype == F64


def test_train_copy_is_deterministic_and_lowers_the_cost():
    def run():
        return train_copy(_tiny_ntm(), 60, bits=3, max_len=3, batch=8, lr=3e-3, seed=1,
                          desc="test")
    first, second = run(), run()
    assert first == second
    costs, lengths = train_copy(_tiny_ntm(), 5, bits=3, max_len=3, batch=8, lr=3e-3,
                                seed=1, desc="test", return_lengths=True)
    assert costs == first[:5] and len(lengths) == 5
    assert all(1 <= n <= 3 for n in lengths)
    assert sum(first[-10:]) / 10 < sum(first[:10]) / 10
    assert all(math.isfinite(c) for c in first)


def test_build_copy_models_is_seeded():
    (a, la), (b, lb) = build_copy_models(CONFIG), build_copy_models(CONFIG)
    for m1, m2 in ((a, b), (la, lb)):
        for p1, p2 in zip(m1.parameters(), m2.parameters()):
            assert torch.equal(p1, p2)
    assert a.input_size == 4 and a.N == 8 and la.input_size == 4


def test_evaluate_copy_shows_both_models_the_same_sequences():
    twin_a, twin_b = _tiny_ntm(3), _tiny_ntm(3)
    table = evaluate_copy({"a": twin_a, "b": twin_b}, [1, 4], 5, 3,
                          torch.Generator().manual_seed(0))
    assert table["a"] == table["b"] and len(table["a"]["cost"]) == 2
    assert all(c > 0 for c in table["a"]["cost"])


# --- reading the learned program ------------------------------------------------------


def test_copy_program_rows():
    write_rows, read_rows = copy_program_rows(4, 8)
    assert write_rows.tolist() == [0, 0, 7, 6, 5] and read_rows.tolist() == [0, 7, 6, 5]
    write_rows, read_rows = copy_program_rows(3, 8, direction=1)
    assert write_rows.tolist() == [0, 0, 1, 2] and read_rows.tolist() == [0, 1, 2]


def test_linear_probe_decodes_a_linear_code_and_not_noise():
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(0, 2, (40, 5, 3), generator=g).double()
    mix = torch.randn(3, 7, generator=g, dtype=F64)
    coded = (2 * bits - 1) @ mix + 0.01 * torch.randn(40, 5, 7, generator=g, dtype=F64)
    assert linear_probe_accuracy(coded, bits, 20) == 1.0
    noise = torch.randn(40, 5, 7, generator=g, dtype=F64)
    assert 0.3 < linear_probe_accuracy(noise, bits, 20) < 0.7


def test_copy_program_stats_keys_and_ranges():
    x, _ = copy_batch(6, 3, 3, torch.Generator().manual_seed(0))
    stats = copy_program_stats(_tiny_ntm(), x, 3)
    fractions = ["write_follows", "read_follows", "read_parked", "read_focus_09",
                 "probe_add_same", "probe_add_next", "probe_add_later", "probe_h_same",
                 "write_waits", "read_waits", "probe_add_after", "probe_add_first",
                 "write_stays_after",
                 "write_moves_after"]
    for key in fractions:
        assert 0 <= stats[key] <= 1, key
    assert stats["cost"] > 0 and stats["cost_no_erase"] > 0
    assert len(stats["write_move_prob"]) == len(stats["read_move_prob"]) == 4
    assert 0 <= stats["erase_columns_below_005"] <= 6


def test_no_erase_hook_is_removed_after_measuring():
    ntm = _tiny_ntm()
    x, _ = copy_batch(4, 3, 3, torch.Generator().manual_seed(1))
    before = ntm(x)
    copy_program_stats(ntm, x, 3)
    assert torch.equal(ntm(x), before)


# --- the diagram ----------------------------------------------------------------------


def test_fig1_diagram_has_the_papers_blocks():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlf.diagrams.ntm import draw_ntm

    fig = draw_ntm()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for label in ("External\ninput", "External\noutput", "Controller", "Read heads",
                  "Write heads", "Memory"):
        assert label in texts, label
    plt.close(fig)
    with pytest.raises(ValueError, match="rows"):
        draw_ntm(rows=0)
    with pytest.raises(TypeError, match="order"):
        draw_ntm(order=1)

"""The seq2seq toolkit: GRU cell vs nn.GRU, attention laws and gradients, batching, decoding, BLEU."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mlf.seq2seq import (AdditiveAttention, Batch, GRUCell, RNNSearch, Vocab, corpus_bleu,
                         greedy_decode, length_sorted_batches, make_batch, pad_batch,
                         sequence_loss, train)


def copy_into_nn_gru(cell: GRUCell) -> torch.nn.GRU:
    gru = torch.nn.GRU(cell.ih.in_features, cell.hidden_size, batch_first=True)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(cell.ih.weight)
        gru.bias_ih_l0.copy_(cell.ih.bias)
        gru.weight_hh_l0.copy_(cell.hh.weight)
        gru.bias_hh_l0.copy_(cell.hh.bias)
    return gru


def test_gru_cell_equals_nn_gru():
    torch.manual_seed(0)
    cell = GRUCell(5, 7)
    gru = copy_into_nn_gru(cell)
    x, s0 = torch.randn(3, 9, 5), torch.randn(3, 7)
    s, states = s0, []
    for t in range(9):
        s = cell(x[:, t], s)
        states.append(s)
    expected, last = gru(x, s0.unsqueeze(0))
    torch.testing.assert_close(torch.stack(states, 1), expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(s, last[0], atol=1e-6, rtol=1e-5)


def test_paper_gru_resets_before_the_matrix():
    torch.manual_seed(0)
    cell = GRUCell(4, 6, reset_after=False)
    x, s = torch.randn(2, 4), torch.randn(2, 6)
    W, U = cell.ih.weight.chunk(3), cell.hh.weight.chunk(3)
    bW, bU = cell.ih.bias.chunk(3), cell.hh.bias.chunk(3)
    r = torch.sigmoid(x @ W[0].T + bW[0] + s @ U[0].T + bU[0])
    z = torch.sigmoid(x @ W[1].T + bW[1] + s @ U[1].T + bU[1])
    candidate = torch.tanh(x @ W[2].T + bW[2] + (r * s) @ U[2].T + bU[2])
    torch.testing.assert_close(cell(x, s), z * s + (1 - z) * candidate)
    assert not torch.allclose(cell(x, s), copy_into_nn_gru(cell)(x[:, None], s[None])[0][:, 0])


def test_attention_weights_sum_to_one_and_skip_padding():
    torch.manual_seed(0)
    attn = AdditiveAttention(4, 6, 5)
    h = torch.randn(3, 7, 6)
    mask = torch.arange(7) < torch.tensor([7, 3, 1]).unsqueeze(1)
    c, alpha = attn(torch.randn(3, 4), h, mask)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3))
    assert bool((alpha[~mask] == 0).all())
    torch.testing.assert_close(c[2], h[2, 0])  # one word: all weight on it


def test_attention_gradcheck_float64():
    torch.manual_seed(0)
    attn = AdditiveAttention(3, 4, 5).double()
    s = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(6) < torch.tensor([6, 4]).unsqueeze(1)
    assert torch.autograd.gradcheck(lambda s, h: attn(s, h, mask), (s, h))


@given(st.lists(st.lists(st.integers(3, 9), min_size=1, max_size=6), min_size=1, max_size=5))
def test_pad_batch_keeps_every_sequence(seqs):
    out, lengths = pad_batch(seqs, pad_id=0)
    assert out.shape == (len(seqs), max(map(len, seqs)))
    for row, n, s in zip(out.tolist(), lengths.tolist(), seqs):
        assert row[:n] == s and all(v == 0 for v in row[n:])


def test_vocab_round_trip_and_batch_layout():
    v = Vocab(["b", "a", "a"])
    assert v.itos == ["<pad>", "<s>", "</s>", "a", "b"]
    assert v.decode(v.encode(["b", "a"]) + [v.eos, 3]) == ["b", "a"]
    batch = make_batch([["a"], ["a", "b"]], [["b", "a"], ["a"]], v, v)
    assert batch.tgt_in.tolist() == [[1, 4, 3], [1, 3, 0]]
    assert batch.tgt_out.tolist() == [[4, 3, 2], [3, 2, 0]]
    assert batch.src_len.tolist() == [1, 2]


def test_length_sorted_batches_cover_everything_in_similar_lengths():
    lengths = [k % 17 for k in range(400)]
    it = length_sorted_batches(lengths, 10, seed=0, pool=40)  # one pool: the whole set
    first_round = [next(it) for _ in range(40)]
    assert sorted(k for b in first_round for k in b) == list(range(400))
    assert max(max(lengths[k] for k in b) - min(lengths[k] for k in b) for b in first_round) <= 1


def toy_task(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = Vocab(list("abcdef"))
    src = [[v.itos[int(i)] for i in torch.randint(3, 9, (int(k),), generator=g)]
           for k in torch.randint(1, 6, (n,), generator=g)]
    return v, src, [list(reversed(s)) for s in src]  # reverse the sentence


@pytest.mark.parametrize("attention", [True, False])
def test_training_learns_to_reverse_and_decoding_matches(attention):
    torch.manual_seed(0)
    v, src, tgt = toy_task()
    batch = make_batch(src, tgt, v, v)
    model = RNNSearch(len(v), len(v), emb_size=16, hidden_size=32, attn_size=16, maxout_size=16,
                      attention=attention)
    losses = train(model, lambda step: batch, 150, lr=1e-2)
    assert losses[-1] < 0.2 * losses[0]
    hyps, alpha = greedy_decode(model, batch.src, batch.src_len, v.bos, v.eos, 10)
    accuracy = sum(v.decode(h) == t for h, t in zip(hyps, tgt)) / len(tgt)
    assert accuracy > 0.8
    if attention:
        torch.testing.assert_close(alpha.sum(-1), torch.ones(alpha.shape[:2]))
    else:
        assert alpha is None


def test_greedy_decode_matches_teacher_forcing_on_its_own_output():
    torch.manual_seed(0)
    v, src, _ = toy_task(8)
    model = RNNSearch(len(v), len(v), emb_size=8, hidden_size=8, attn_size=8, maxout_size=8)
    batch = make_batch(src, src, v, v)
    hyps, _ = greedy_decode(model, batch.src, batch.src_len, v.bos, v.eos, 5)
    tgt_in, _ = pad_batch([[v.bos] + h for h in hyps])
    with torch.no_grad():
        logits, _ = model(batch.src, batch.src_len, tgt_in)
    for b, h in enumerate(hyps):
        assert logits[b, : len(h)].argmax(-1).tolist() == h


def test_bleu_values():
    ref = "the cat is on the mat".split()
    assert corpus_bleu([ref], [ref]) == pytest.approx(100.0)
    assert corpus_bleu([["x", "y", "z", "w"]], [ref]) == 0.0
    hyp = "the cat is on the".split()  # all n-grams match; only the brevity penalty bites
    assert corpus_bleu([hyp], [ref]) == pytest.approx(100 * math.exp(1 - 6 / 5))


@pytest.mark.parametrize("call, message", [
    (lambda: pad_batch([]), "empty batch"),
    (lambda: pad_batch([[1], []]), "empty sequence"),
    (lambda: Vocab([]), "at least one token"),
    (lambda: Vocab(["a"]).encode(["b"]), "not in the vocabulary"),
    (lambda: make_batch([["a"]], [], Vocab(["a"]), Vocab(["a"])), "one target per source"),
    (lambda: corpus_bleu([["a"]], []), "one reference per hypothesis"),
    (lambda: corpus_bleu([], []), "at least one sentence pair"),
    (lambda: sequence_loss(torch.zeros(2, 3, 4), torch.zeros(2, 2, dtype=torch.long)), "disagree"),
    (lambda: GRUCell(3, 4)(torch.zeros(2, 3), torch.zeros(3, 4)), "GRUCell expects"),
    (lambda: AdditiveAttention(2, 2, 2)(torch.zeros(1, 2), torch.zeros(1, 3, 2),
                                        torch.zeros(1, 3, dtype=torch.bool)), "at least one True"),
    (lambda: length_sorted_batches([1, 2], 3).__next__(), "at least batch_size"),
    (lambda: train(RNNSearch(4, 4), lambda s: None, 0), "steps must be a positive integer"),
    (lambda: RNNSearch(4, 4).encode(torch.zeros(0, 3, dtype=torch.long),
                                    torch.zeros(0, dtype=torch.long)), "B > 0"),
])
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_batch_to_keeps_lengths_on_cpu():
    b = Batch(torch.zeros(1, 2, dtype=torch.long), torch.tensor([2]), torch.zeros(1, 1), torch.zeros(1, 1))
    assert b.to("cpu").src_len.device.type == "cpu"


def test_plot_alignment_checks_shapes():
    import matplotlib

    matplotlib.use("Agg")
    from mlf.plotting import plot_alignment

    ax = plot_alignment([[0.2, 0.8]], ["a", "b"], ["x"], reference=[1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    with pytest.raises(ValueError, match="shape"):
        plot_alignment([[0.2, 0.8]], ["a"], ["x"])
    with pytest.raises(ValueError, match="reference has 2 entries"):
        plot_alignment([[0.2, 0.8]], ["a", "b"], ["x"], reference=[0, 1])

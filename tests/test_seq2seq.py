"""The seq2seq toolkit: GRU cell vs nn.GRU, attention laws and gradients, batching,
decoding, BLEU against sacrebleu, Adam's settings, bad input, the RNNsearch diagram."""
import copy
import inspect
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sacrebleu.metrics import BLEU

from mlf.seq2seq import (AdditiveAttention, Batch, BiEncoder, GRUCell, RNNSearch, Vocab,
                         corpus_bleu, greedy_decode, length_sorted_batches, make_batch,
                         pad_batch, sequence_loss, target_batch, train)


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
    pytorch_form = copy_into_nn_gru(cell)(x[:, None], s[None])[0][:, 0]
    assert not torch.allclose(cell(x, s), pytorch_form)


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


@given(st.lists(st.lists(st.integers(3, 9), min_size=1, max_size=6), min_size=1,
                max_size=5))
def test_pad_batch_keeps_every_sequence(seqs):
    out, lengths = pad_batch(seqs, pad_id=0)
    assert out.shape == (len(seqs), max(map(len, seqs)))
    for row, n, s in zip(out.tolist(), lengths.tolist(), seqs):
        assert row[:n] == s and all(v == 0 for v in row[n:])


def test_vocab_round_trip_and_batch_layout():
    v = Vocab(["b", "a", "a"])
    assert v.itos == ["<pad>", "<s>", "</s>", "a", "b"]
    assert v.decode(v.encode(["b", "a"]) + [v.eos, 3]) == ["b", "a"]
    assert v.decode(torch.tensor([4, 3, 0, v.eos])) == ["b", "a"]
    batch = make_batch([["a"], ["a", "b"]], [["b", "a"], ["a"]], v, v)
    assert batch.tgt_in.tolist() == [[1, 4, 3], [1, 3, 0]]
    assert batch.tgt_out.tolist() == [[4, 3, 2], [3, 2, 0]]
    assert batch.src_len.tolist() == [1, 2]


def test_length_sorted_batches_cover_everything_in_similar_lengths():
    lengths = [k % 17 for k in range(400)]
    it = length_sorted_batches(lengths, 10, seed=0, pool=40)  # one pool: the whole set
    first_round = [next(it) for _ in range(40)]
    assert sorted(k for b in first_round for k in b) == list(range(400))
    spread = max(max(lengths[k] for k in b) - min(lengths[k] for k in b)
                 for b in first_round)
    assert spread <= 1


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
    model = RNNSearch(len(v), len(v), emb_size=16, hidden_size=32, attn_size=16,
                      maxout_size=16, attention=attention)
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
    model = RNNSearch(len(v), len(v), emb_size=8, hidden_size=8, attn_size=8,
                      maxout_size=8)
    batch = make_batch(src, src, v, v)
    hyps, _ = greedy_decode(model, batch.src, batch.src_len, v.bos, v.eos, 5)
    tgt_in, _ = pad_batch([[v.bos] + h for h in hyps])
    with torch.no_grad():
        logits, _ = model(batch.src, batch.src_len, tgt_in)
    for b, h in enumerate(hyps):
        assert logits[b, : len(h)].argmax(-1).tolist() == h


# --- Adam's β1, β2 and ε -------------------------------------------------------------

def adam_by_hand(model, batch, steps, lr, betas, eps, clip=1.0):
    """What train must do: Adam with these settings, gradient norm clipped."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps)
    for _ in range(steps):
        logits, _ = model(batch.src, batch.src_len, batch.tgt_in)
        loss = sequence_loss(logits, batch.tgt_out)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()


def test_train_defaults_are_adams():
    params = inspect.signature(train).parameters
    adam = inspect.signature(torch.optim.Adam).parameters
    assert params["betas"].default == adam["betas"].default == (0.9, 0.999)
    assert params["eps"].default == adam["eps"].default == 1e-8


@pytest.mark.parametrize("settings_", [{}, {"betas": (0.5, 0.9), "eps": 1e-3},
                                       {"betas": [0.0, 0.98], "eps": 1e-9}])
def test_train_uses_the_given_betas_and_eps(settings_):
    torch.manual_seed(0)
    v, src, tgt = toy_task(16)
    batch = make_batch(src, tgt, v, v)
    model = RNNSearch(len(v), len(v), emb_size=8, hidden_size=8, attn_size=8,
                      maxout_size=8)
    by_hand, default = copy.deepcopy(model), copy.deepcopy(model)
    train(model, lambda step: batch, 4, lr=1e-2, desc="test", **settings_)
    expected = {"betas": (0.9, 0.999), "eps": 1e-8} | settings_
    adam_by_hand(by_hand, batch, 4, 1e-2, tuple(expected["betas"]), expected["eps"])
    for p, q in zip(model.parameters(), by_hand.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # the very same updates
    if settings_:  # ... and other settings than the defaults do change them
        train(default, lambda step: batch, 4, lr=1e-2, desc="test")
        assert any(not torch.equal(p, q)
                   for p, q in zip(model.parameters(), default.parameters()))


# --- BLEU against sacrebleu ----------------------------------------------------------

def sacrebleu_score(hypotheses, references, max_n=4) -> float:
    """sacrebleu's corpus BLEU with our definition: the tokens as they are (joined by
    spaces, split on them again: tokenize="none"), no smoothing, no effective order."""
    metric = BLEU(tokenize="none", smooth_method="none", max_ngram_order=max_n)
    return metric.corpus_score([" ".join(h) for h in hypotheses],
                               [[" ".join(r) for r in references]]).score


REF = "the cat is on the mat".split()
BLEU_CASES = {
    "identical": ([REF], [REF]),
    "shorter hypothesis (brevity penalty)": (["the cat is on the".split()], [REF]),
    "longer hypothesis": (["the cat is on the mat today".split()], [REF]),
    "same length, some n-grams wrong": (["the cat is on a mat".split()], [REF]),
    "no 4-gram match": (["the cat sat on the mat".split()], [REF]),
    "no match at all": ([["x", "y", "z", "w"]], [REF]),
    "empty hypothesis in a corpus": ([[], "the cat is on the mat".split()],
                                     ["a b c".split(), REF]),
    "every hypothesis empty": ([[]], [REF]),
    "hypothesis shorter than 4 words": ([["the", "cat", "is"]], [REF]),
    "repeated word (clipped counts)": ([["the"] * 6], [REF]),
    "corpus of sentences": (["vier und dreißig , ein hundert".split(), "zwei".split(),
                             "acht und achtzig".split()],
                            ["vier und dreißig , ein hundert eins".split(),
                             "zwei".split(), "acht und siebzig".split()]),
}


@pytest.mark.parametrize("case", BLEU_CASES)
def test_corpus_bleu_equals_sacrebleu(case):
    hypotheses, references = BLEU_CASES[case]
    ours = corpus_bleu(hypotheses, references)
    assert ours == pytest.approx(sacrebleu_score(hypotheses, references), abs=1e-9)


def test_bleu_values():
    assert corpus_bleu([REF], [REF]) == pytest.approx(100.0)
    assert corpus_bleu([["x", "y", "z", "w"]], [REF]) == 0.0
    hyp = "the cat is on the".split()  # every n-gram matches; only the brevity penalty
    assert corpus_bleu([hyp], [REF]) == pytest.approx(100 * math.exp(1 - 6 / 5))


sentences = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(sentences, sentences), min_size=1, max_size=5),
       st.integers(1, 4))
def test_corpus_bleu_equals_sacrebleu_on_random_corpora(pairs, max_n):
    hypotheses, references = [h for h, _ in pairs], [r for _, r in pairs]
    ours = corpus_bleu(hypotheses, references, max_n=max_n)
    assert ours == pytest.approx(sacrebleu_score(hypotheses, references, max_n),
                                 abs=1e-9)


# --- bad input -----------------------------------------------------------------------

V = Vocab(["a", "b"])  # ids 0 to 4
SRC, SRC_LEN = torch.tensor([[3, 4, 0], [4, 0, 0]]), torch.tensor([2, 1])


def small_model(**kwargs):
    torch.manual_seed(0)
    return RNNSearch(5, 5, emb_size=4, hidden_size=4, attn_size=4, maxout_size=4,
                     **kwargs)


def good_batch():
    return make_batch([["a", "b"], ["b"]], [["b"], ["a", "a"]], V, V)


BAD_INPUT = [
    # Vocab
    (lambda: Vocab([]), ValueError, "at least one token"),
    (lambda: Vocab(["a", ""]), ValueError, "non-empty str"),
    (lambda: Vocab("hello world"), TypeError, "split it into tokens|split into tokens"),
    (lambda: Vocab(["a", 3]), TypeError, "tokens must be str"),
    (lambda: Vocab(7), TypeError, "sequence of tokens"),
    (lambda: V.encode(["c"]), ValueError, "not in the vocabulary"),
    (lambda: V.encode("a b"), TypeError, "split into tokens"),
    (lambda: V.encode([["a"]]), TypeError, "tokens must be str"),
    (lambda: V.decode([3, 9]), ValueError, "outside the vocabulary of size 5"),
    (lambda: V.decode([3, -1]), ValueError, "outside the vocabulary"),
    (lambda: V.decode([3.0]), TypeError, "integer ids"),
    (lambda: V.decode([[3, 4]]), TypeError, "row by row"),
    (lambda: V.decode(torch.tensor([[3, 4]])), ValueError, "1 dimensions"),
    (lambda: V.decode(torch.tensor([3.0])), TypeError, "integer dtype"),
    # padding and batches
    (lambda: pad_batch([]), ValueError, "empty batch"),
    (lambda: pad_batch([[1], []]), ValueError, "empty sequence"),
    (lambda: pad_batch([1, 2, 3]), TypeError, "list of id lists"),
    (lambda: pad_batch(["ab"]), TypeError, "list of id lists"),
    (lambda: pad_batch(torch.ones(2, 3, dtype=torch.long)), TypeError, "id lists"),
    (lambda: pad_batch([[1, 2.5]]), TypeError, "non-negative integers"),
    (lambda: pad_batch([[1, -2]]), ValueError, "non-negative integers"),
    (lambda: pad_batch([[1]], pad_id=-1), ValueError, "pad_id"),
    (lambda: make_batch([["a"]], [], V, V), ValueError, "one target per source"),
    (lambda: make_batch([["a"]], [["a"]], V, None), TypeError, "must be a Vocab"),
    (lambda: make_batch(["a b"], [["a"]], V, V), TypeError, "split into tokens"),
    (lambda: make_batch([[]], [["a"]], V, V), ValueError, "empty sequence"),
    (lambda: target_batch([["a"]], ["a"]), TypeError, "must be a Vocab"),
    (lambda: Batch(SRC, SRC_LEN, [[1]], [[1]]), TypeError, "torch.Tensor"),
    (lambda: Batch(SRC, torch.tensor([2]), SRC[:, :1], SRC[:, :1]), ValueError,
     "expected src"),
    (lambda: Batch(SRC, SRC_LEN, SRC[:, :1], SRC), ValueError, "expected src"),
    (lambda: next(length_sorted_batches([1, 2], 3)), ValueError, "at least batch_size"),
    (lambda: next(length_sorted_batches([1, 2], 0)), ValueError, "batch_size"),
    (lambda: next(length_sorted_batches([1, 2], 1, pool=0)), ValueError, "pool"),
    (lambda: next(length_sorted_batches([1, -2], 1)), ValueError, "non-negative"),
    # the GRU cell
    (lambda: GRUCell(3, 4)(torch.zeros(2, 3), torch.zeros(3, 4)), ValueError,
     "GRUCell expects"),
    (lambda: GRUCell(3, 4)(torch.zeros(2, 5), torch.zeros(2, 4)), ValueError,
     r"x \(B, 3\)"),
    (lambda: GRUCell(3, 4)(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4)),
     TypeError, "floating"),
    (lambda: GRUCell(3, 4)(torch.zeros(2, 3).double(), torch.zeros(2, 4).double()),
     TypeError, "dtype torch.float32"),
    (lambda: GRUCell(0, 4), ValueError, "input_size must be a positive integer"),
    (lambda: GRUCell(3, -4), ValueError, "hidden_size must be a positive integer"),
    # the encoder
    (lambda: BiEncoder(5, 4, 4)(SRC, torch.tensor([4, 1])), ValueError,
     "between 1 and the source length"),
    (lambda: BiEncoder(5, 4, 4)(SRC, torch.tensor([2, 0])), ValueError,
     "between 1 and the source length"),
    (lambda: BiEncoder(5, 4, 4)(SRC.float(), SRC_LEN), TypeError, "integer dtype"),
    (lambda: BiEncoder(5, 4, 4)(SRC + 3, SRC_LEN), ValueError,
     r"ids from 3 to 7; expected ids in \[0, 5\)"),
    (lambda: BiEncoder(5, 4, 4)(SRC, SRC_LEN.float()), TypeError, "src_len"),
    (lambda: BiEncoder(5, 4, 4)(SRC, torch.tensor([2, 1, 1])), ValueError,
     "src_len"),
    (lambda: BiEncoder(5, -4, 4), ValueError, "emb_size"),
    # attention
    (lambda: AdditiveAttention(2, 2, 2)(torch.zeros(1, 2), torch.zeros(1, 3, 2),
                                        torch.zeros(1, 3, dtype=torch.bool)),
     ValueError, "at least one True"),
    (lambda: AdditiveAttention(2, 2, 2)(torch.zeros(1, 2), torch.zeros(1, 3, 2),
                                        torch.ones(1, 3)),
     TypeError, "torch.bool"),
    (lambda: AdditiveAttention(2, 2, 2)(torch.zeros(1, 3), torch.zeros(1, 3, 2),
                                        torch.ones(1, 3, dtype=torch.bool)),
     ValueError, r"s_prev \(B, 2\)"),
    (lambda: AdditiveAttention(2, 2, 2)(torch.zeros(1, 2), torch.zeros(1, 3, 5),
                                        torch.ones(1, 3, dtype=torch.bool)),
     ValueError, r"h \(B, S, 2\)"),
    (lambda: AdditiveAttention(2, 2, 2)(torch.zeros(1, 2), torch.zeros(1, 3, 2),
                                        torch.ones(1, 3, dtype=torch.bool),
                                        Uh=torch.zeros(1, 3, 7)),
     ValueError, "Uh must be None or a tensor"),
    (lambda: AdditiveAttention(2, 0, 2), ValueError, "key_size"),
    # the model
    (lambda: RNNSearch(None, 5), ValueError, "src_vocab"),
    (lambda: RNNSearch(5, 0), ValueError, "tgt_vocab"),
    (lambda: small_model().encode(torch.zeros(0, 3, dtype=torch.long),
                                  torch.zeros(0, dtype=torch.long)),
     ValueError, "B > 0"),
    (lambda: small_model().encode([[3, 4]], SRC_LEN), TypeError, "torch.Tensor"),
    (lambda: small_model().encode(SRC, torch.tensor([5, 1])), ValueError,
     "between 1 and the source length"),
    (lambda: small_model()(SRC, SRC_LEN, torch.ones(2, 0, dtype=torch.long)),
     ValueError, "T >= 1"),
    (lambda: small_model()(SRC, SRC_LEN, torch.ones(3, 2, dtype=torch.long)),
     ValueError, "source batch of 2"),
    (lambda: small_model()(SRC, SRC_LEN, torch.ones(2, 2)), TypeError, "tgt_in"),
    (lambda: small_model()(SRC, SRC_LEN, torch.full((2, 2), 5)), ValueError,
     r"y_prev holds ids from 5 to 5"),
    (lambda: small_model().decode_step(small_model().encode(SRC, SRC_LEN),
                                       torch.tensor([1]), torch.zeros(2, 4)),
     ValueError, "expected y_prev"),
    # the loss and training
    (lambda: sequence_loss(torch.zeros(2, 3, 4), torch.ones(2, 2, dtype=torch.long)),
     ValueError, "disagree"),
    (lambda: sequence_loss(torch.zeros(1, 2, 4), torch.tensor([[1, 4]])), ValueError,
     r"ids in \[0, 4\)"),
    (lambda: sequence_loss(torch.zeros(1, 2, 4), torch.zeros(1, 2, dtype=torch.long)),
     ValueError, "only padding"),
    (lambda: sequence_loss(torch.zeros(1, 2, 4), torch.ones(1, 2)), TypeError,
     "tgt_out"),
    (lambda: sequence_loss(torch.zeros(1, 2, 4), torch.ones(1, 2, dtype=torch.long),
                           label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: train(small_model(), lambda s: None, 0), ValueError,
     "steps must be a positive integer"),
    (lambda: train(small_model(), lambda s: None, 1), TypeError, "must return a Batch"),
    (lambda: train(small_model(), good_batch(), 1), TypeError, "function of the step"),
    (lambda: train(torch.nn.ReLU(), lambda s: good_batch(), 1), ValueError,
     "no parameters"),
    (lambda: train("model", lambda s: good_batch(), 1), TypeError, "nn.Module"),
    (lambda: train(small_model(), lambda s: good_batch(), 1, lr=0), ValueError,
     "lr must be a positive number"),
    (lambda: train(small_model(), lambda s: good_batch(), 1, lr=float("nan")),
     ValueError, "lr must be a positive number"),
    (lambda: train(small_model(), lambda s: good_batch(), 1, clip=-1.0), ValueError,
     "clip"),
    (lambda: train(small_model(), lambda s: good_batch(), 1, betas=(0.9, 1.0)),
     ValueError, "betas"),
    (lambda: train(small_model(), lambda s: good_batch(), 1, betas=0.9), ValueError,
     "betas"),
    (lambda: train(small_model(), lambda s: good_batch(), 1, eps=-1e-8), ValueError,
     "eps"),
    (lambda: train(small_model(), lambda s: good_batch(), 1, schedule=2.0), TypeError,
     "schedule"),
    # decoding
    (lambda: greedy_decode(small_model(), SRC, SRC_LEN, 1, 2, 0), ValueError,
     "max_len"),
    (lambda: greedy_decode(small_model(), SRC, SRC_LEN, 1, 2, 2.5), ValueError,
     "max_len"),
    (lambda: greedy_decode(small_model(), SRC, SRC_LEN, -1, 2, 3), ValueError,
     "bos and eos"),
    (lambda: greedy_decode(small_model(), SRC, SRC_LEN, 7, 2, 3), ValueError,
     r"ids in \[0, 5\)"),
    (lambda: greedy_decode(small_model(), SRC, torch.tensor([3, 4]), 1, 2, 3),
     ValueError, "between 1 and the source length"),
    (lambda: greedy_decode(small_model(), SRC.tolist(), SRC_LEN, 1, 2, 3), TypeError,
     "torch.Tensor"),
    # BLEU
    (lambda: corpus_bleu([["a"]], []), ValueError, "one reference per hypothesis"),
    (lambda: corpus_bleu([], []), ValueError, "at least one sentence pair"),
    (lambda: corpus_bleu(["the cat"], [["the", "cat"]]), TypeError,
     "split the sentence into tokens"),
    (lambda: corpus_bleu("the cat", "the cat"), TypeError, "list of sentences"),
    (lambda: corpus_bleu([["a"]], [["a"]], max_n=0), ValueError, "max_n"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUT)
def test_bad_input_is_rejected(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_batch_to_keeps_lengths_on_cpu():
    b = Batch(torch.zeros(1, 2, dtype=torch.long), torch.tensor([2]), torch.zeros(1, 1),
              torch.zeros(1, 1))
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


@pytest.mark.parametrize("columns", [2, 4, 6])
def test_rnnsearch_diagram_has_every_part(columns):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlf.diagrams.rnnsearch import draw_rnnsearch

    fig = draw_rnnsearch(columns)
    texts = [t.get_text() for t in fig.axes[0].texts]
    names = [str(j) for j in range(1, columns)] + ["T"]
    for j in names:  # a column per source position: x_j, h→_j, h←_j, h_j and α_{t,j}
        for label in (f"$x_{{{j}}}$", rf"$\overrightarrow{{h}}_{{{j}}}$",
                      rf"$\overleftarrow{{h}}_{{{j}}}$", f"$h_{{{j}}}$",
                      rf"$\alpha_{{t,{j}}}$"):
            assert texts.count(label) == 1, label
    for label in ("$s_{t-1}$", "$s_t$", "$y_{t-1}$", "$y_t$",
                  r"$c_t = \sum_j \alpha_{t,j}\, h_j$"):
        assert texts.count(label) == 1, label
    plt.close(fig)


@pytest.mark.parametrize("kwargs, error", [({"columns": 1}, ValueError),
                                           ({"columns": 7}, ValueError),
                                           ({"columns": True}, ValueError),
                                           ({"columns": 3.0}, ValueError),
                                           ({"scores": "yes"}, TypeError)])
def test_rnnsearch_diagram_rejects_bad_input(kwargs, error):
    from mlf.diagrams.rnnsearch import draw_rnnsearch

    with pytest.raises(error):
        draw_rnnsearch(**kwargs)

"""BERT: the lib encoder with MiniLM's weights against transformers.BertModel, the
80/10/10 masking against DataCollatorForLanguageModeling, heads, training helpers and
bad input."""
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import bert

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ATOL = 1e-4  # float32, 6 layers: the measured gap is about 3e-6


@pytest.fixture(scope="module")
def minilm():
    from transformers import BertModel

    ours, tok = bert.from_pretrained_minilm()
    ref = BertModel.from_pretrained(str(bert.minilm_path())).eval()
    return ours.eval(), tok, ref


def compare(ours, ref, ids, seg, am):
    with torch.no_grad():
        hidden, pooled = ours(ids, seg, am)
        out = ref(input_ids=ids, token_type_ids=seg, attention_mask=am)
    keep = am.bool()  # padded positions are not compared: they are never read
    assert (hidden - out.last_hidden_state)[keep].abs().max() < ATOL
    assert (pooled - out.pooler_output).abs().max() < ATOL


def test_hidden_states_equal_bertmodel_on_a_padded_batch_of_pairs(minilm):
    ours, tok, ref = minilm
    enc = [tok.encode("To be, or not to be", "that is the question"),
           tok.encode("Hi"), tok.encode("Wherefore art thou Romeo?", "Deny thy father")]
    ids, seg, am = bert.pad_batch(enc)
    assert seg.max() == 1 and (am == 0).any()  # both segments, and real padding
    compare(ours, ref, ids, seg, am)


def test_single_token_and_default_arguments(minilm):
    ours, _, ref = minilm
    ids = torch.tensor([[101]])
    compare(ours, ref, ids, torch.zeros_like(ids), torch.ones_like(ids))
    with torch.no_grad():
        a, _ = ours(ids)
        b, _ = ours(ids, torch.zeros_like(ids), torch.ones_like(ids))
    assert torch.equal(a, b)


def test_padding_does_not_change_the_real_positions(minilm):
    ours, tok, _ = minilm
    e = tok.encode("Good night, sweet prince")
    ids, seg, am = bert.pad_batch([e, tok.encode("a " * 20)])
    with torch.no_grad():
        alone, _ = ours(*bert.pad_batch([e]))
        padded, _ = ours(ids, seg, am)
    n = len(e["input_ids"])
    assert (alone[0] - padded[0, :n]).abs().max() < 1e-5


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), layers=st.integers(1, 2))
def test_random_weights_round_trip_into_bertmodel(seed, layers):
    """The other direction: our random BERT's weights, renamed, run in BertModel."""
    from transformers import BertConfig as HFConfig
    from transformers import BertModel

    torch.manual_seed(seed)
    cfg = bert.BertConfig(vocab_size=50, d_model=16, n_layers=layers, n_heads=4,
                          d_ff=32, max_len=12, dropout=0.0)
    ours = bert.Bert(cfg).eval()
    ref = BertModel(HFConfig(vocab_size=50, hidden_size=16, num_hidden_layers=layers,
                             num_attention_heads=4, intermediate_size=32,
                             max_position_embeddings=12, layer_norm_eps=1e-12)).eval()
    state = {hf: dict(ours.named_parameters())[name]
             for name, hf in bert.hf_names(layers).items()}
    ref.load_state_dict(state, strict=False)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 50, (3, 12), generator=g)
    seg = torch.randint(0, 2, (3, 12), generator=g)
    am = torch.ones(3, 12, dtype=torch.long)
    am[1, 5:] = 0
    compare(ours, ref, ids, seg, am)


def test_masking_statistics_match_the_data_collator(minilm):
    from transformers import DataCollatorForLanguageModeling

    _, tok, _ = minilm
    from transformers import AutoTokenizer

    ref_tok = AutoTokenizer.from_pretrained(str(bert.minilm_path()))
    collator = DataCollatorForLanguageModeling(ref_tok, mlm_probability=0.15, seed=0)
    ids = torch.randint(1000, 2000, (400, 50), generator=torch.Generator().manual_seed(1))
    ids[:, 0], ids[:, -1] = 101, 102
    special = (ids == 101) | (ids == 102)
    stats = {}
    for name in ("ours", "collator"):
        if name == "ours":
            inputs, labels = bert.mask_tokens(ids, 103, len(tok), special,
                                              generator=torch.Generator().manual_seed(2))
        else:
            batch = collator([{"input_ids": row} for row in ids.tolist()])
            inputs, labels = batch["input_ids"], batch["labels"]
        picked = labels != -100
        stats[name] = torch.tensor([
            picked[~special].float().mean(),
            (inputs[picked] == 103).float().mean(),
            ((inputs != ids) & (inputs != 103))[picked].float().mean(),
            (inputs == ids)[picked].float().mean()])
        assert not picked[special].any()  # [CLS] and [SEP] are never picked
        assert torch.equal(inputs[~picked], ids[~picked])  # the rest is untouched
        assert torch.equal(labels[picked], ids[picked])
    # 19,200 candidates, about 2,900 picked: 4 standard errors of each fraction
    assert torch.allclose(stats["ours"], torch.tensor([0.15, 0.8, 0.1, 0.1]), atol=0.025)
    assert torch.allclose(stats["ours"], stats["collator"], atol=0.03)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), b=st.integers(1, 4), t=st.integers(1, 30))
def test_mask_tokens_changes_only_picked_positions(seed, b, t):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 40, (b, t), generator=g)
    special = torch.zeros(b, t, dtype=torch.bool)
    special[:, 0] = True
    inputs, labels = bert.mask_tokens(ids, 4, 40, special, p=0.5, generator=g)
    picked = labels != bert.IGNORE
    assert torch.equal(inputs[~picked], ids[~picked])
    assert torch.equal(labels[picked], ids[picked])
    assert not picked[:, 0].any()
    assert ((inputs >= 0) & (inputs < 40)).all()


def test_heads_and_weight_tying():
    cfg = bert.BertConfig(vocab_size=30, d_model=16, n_layers=1, n_heads=2, d_ff=32,
                          max_len=8)
    model = bert.Bert(cfg).eval()
    mlm, nsp = bert.MLMHead(model), bert.NSPHead(model)
    assert mlm.embedding.weight is model.embeddings.token.weight
    hidden, pooled = model(torch.randint(0, 30, (2, 8)))
    assert mlm(hidden).shape == (2, 8, 30) and nsp(pooled).shape == (2, 2)
    clf = bert.BertClassifier(model, 3)
    assert clf(torch.randint(0, 30, (2, 8))).shape == (2, 3)
    assert abs(model.embeddings.token.weight.std().item() - 0.02) < 0.005


def test_pretraining_and_fine_tuning_helpers_learn_a_toy_task():
    torch.manual_seed(0)
    cfg = bert.BertConfig(vocab_size=12, d_model=32, n_layers=1, n_heads=2, d_ff=64,
                          max_len=9, dropout=0.0)
    model = bert.Bert(cfg)
    head = bert.MLMHead(model)
    # every window is [CLS] then 0 1 2 ... 7: each masked token is its position - 1
    windows = torch.cat([torch.full((64, 1), 10), torch.arange(8).repeat(64, 1)], 1)
    losses = bert.pretrain_mlm(model, head, windows, 150, 3e-3, mask_id=11, batch=16,
                               warmup=10)
    assert sum(losses[-10:]) / 10 < 0.3 * sum(losses[:10]) / 10
    acc, truth = bert.mlm_accuracy(model, head, windows, mask_id=11)
    assert acc > 0.9 and len(truth) > 20


def test_sentiment_lines_are_balanced_and_labelled():
    data = bert.sentiment_lines(["hamlet"], 20, seed=3)
    assert len(data) == 40 and sum(y for _, y in data) == 20
    assert all(len(x.split()) >= 6 for x, _ in data)
    with pytest.raises(ValueError, match="only"):
        bert.sentiment_lines(["hamlet"], 100_000)


def test_bad_input_is_rejected(minilm):
    ours, _, _ = minilm
    with pytest.raises(ValueError, match="divisible"):
        bert.BertConfig(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="eps"):
        bert.BertConfig(eps=0)
    with pytest.raises(ValueError, match="n_layers"):
        bert.BertConfig(n_layers=0)
    with pytest.raises(TypeError, match="BertConfig"):
        bert.Bert({"d_model": 8})
    ids = torch.tensor([[101, 7592, 102]])
    with pytest.raises(ValueError, match="integer token ids"):
        ours(ids.float())
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ours(torch.tensor([[30522]]))
    with pytest.raises(ValueError, match="segment ids in 0..1"):
        ours(ids, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="row of zeros"):
        ours(ids, None, torch.zeros_like(ids))
    with pytest.raises(ValueError, match="0 \\(padding\\) and 1"):
        ours(ids, None, torch.full_like(ids, 2))
    with pytest.raises(ValueError, match="outside 1..512"):
        ours(torch.ones(1, 513, dtype=torch.long))
    with pytest.raises(ValueError, match="n_classes"):
        bert.BertClassifier(ours, 1)


def test_mismatched_weights_are_rejected(minilm):
    _, _, ref = minilm
    state = dict(ref.state_dict())
    small = bert.Bert(bert.BertConfig(n_layers=2))
    with pytest.raises(ValueError, match="lacks the model's|parameters the model lacks"):
        bert.load_hf_bert_state(small, state)  # 6 layers into 2
    deeper = bert.Bert(bert.BertConfig(n_layers=7))
    with pytest.raises(ValueError, match="lacks 16 BertModel parameters"):
        bert.load_hf_bert_state(deeper, state)
    wide = bert.Bert(bert.BertConfig(d_ff=768))
    with pytest.raises(ValueError, match="config does not match"):
        bert.load_hf_bert_state(wide, state)
    with pytest.raises(TypeError, match="mlf.bert.Bert"):
        bert.load_hf_bert_state(ref, state)
    with pytest.raises(TypeError, match="dict"):
        bert.load_hf_bert_state(small, list(state.items()))
    prefixed = {f"bert.{k}": v for k, v in state.items()}  # BertForMaskedLM's names
    bert.load_hf_bert_state(bert.Bert(bert.BertConfig()), prefixed)
    with pytest.raises(ValueError, match="hidden_act"):
        bert.config_from_hf({"hidden_act": "relu"})


def test_mask_tokens_rejects_bad_arguments():
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match="integer tensor"):
        bert.mask_tokens(ids.float(), 1, 10)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        bert.mask_tokens(ids, 10, 10)
    with pytest.raises(ValueError, match="probability"):
        bert.mask_tokens(ids, 1, 10, p=1.5)
    with pytest.raises(ValueError, match="special"):
        bert.mask_tokens(ids, 1, 10, special=torch.zeros(2, 3, dtype=torch.bool))


def test_book_mlm_data_and_windows():
    bpe, train, held = bert.book_mlm_data(16, 5)
    cls = bert.BOOK_SPECIALS["[CLS]"]
    assert held.shape == (5, 16) and train.shape[1] == 16 and len(train) > 10_000
    assert (train[:, 0] == cls).all() and (train[:, 1:] < 2048).all()
    # consecutive rows continue the text: 15 tokens per row after [CLS]
    assert bpe.decode(train[:2, 1:].flatten().tolist()).startswith(
        bpe.decode(train[0, 1:].tolist()))
    assert set(bert.BOOK_SPECIALS.values()) == {2048, 2049, 2050, 2051}
    with pytest.raises(ValueError, match="n_eval"):
        bert.book_mlm_data(16, 0)
    with pytest.raises(ValueError, match="window"):
        bert.mlm_windows(torch.arange(10), 1, 0)
    with pytest.raises(ValueError, match="1-d"):
        bert.mlm_windows(torch.arange(10).view(2, 5), 4, 0)


def test_count_baselines_on_a_sequence_that_its_left_neighbour_decides():
    # every window is [CLS] then 0 1 ... 7, so a visible left (or right) neighbour
    # gives the blank away; the unigram ties at 0..7 and picks 0, the token at column 1
    windows = torch.cat([torch.full((64, 1), 10), torch.arange(8).repeat(64, 1)], 1)
    blanks = bert.mlm_blanks(windows, p=0.3, seed=1)
    assert not blanks[:, 0].any() and 0.2 < blanks.float().mean() < 0.4
    got = bert.count_baselines(windows, windows, blanks, 12)
    row, col = blanks.nonzero().unbind(1)
    left = (col >= 2) & ~blanks[row, col - 1]
    right = (col <= 7) & ~blanks[row, (col + 1).clamp(max=8)]
    first = col == 1
    assert got["unigram"] == pytest.approx(first.float().mean().item())
    assert got["left bigram"] == pytest.approx((left | first).float().mean().item())
    assert got["both neighbours"] == pytest.approx(
        (left | right | first).float().mean().item())
    with pytest.raises(ValueError, match="blanks"):
        bert.count_baselines(windows, windows, blanks[:, 1:], 12)
    with pytest.raises(ValueError, match="train"):
        bert.count_baselines(windows.float(), windows, blanks, 12)
    with pytest.raises(ValueError, match="probability"):
        bert.mlm_blanks(windows, p=0)


def test_count_baselines_both_neighbours_use_the_right_one_and_break_ties_low():
    # "1 x 2": x is 5 twice and 4 twice, the smaller id wins (as argmax); "1 x 3": 6.
    # After 1 alone, 4, 5 and 6 tie (twice each): the left bigram always says 4
    train = torch.tensor([[9, 1, 5, 2, 0], [9, 1, 4, 2, 0], [9, 1, 5, 2, 0],
                          [9, 1, 4, 2, 0], [9, 1, 6, 3, 0], [9, 1, 6, 3, 0]])
    held = torch.tensor([[9, 1, 4, 2, 0], [9, 1, 6, 3, 0]])
    blanks = torch.zeros_like(held, dtype=torch.bool)
    blanks[:, 2] = True
    got = bert.count_baselines(train, held, blanks, 10)
    assert got == {"unigram": 0.0, "left bigram": 0.5, "both neighbours": 1.0}

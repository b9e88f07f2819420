"""LoRA: the adapter's algebra, merging, add_lora on a BERT encoder against peft (same
trainable count, same outputs with the same A and B, padding, a batch of one), the
subspace similarity's laws, and bad input."""
import copy
import logging
import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf.lora import (
    LoRALinear,
    add_lora,
    count_parameters,
    lora_modules,
    lora_parameters,
    merge_lora,
    subspace_similarity,
)
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

TINY_BERT = {"vocab_size": 120, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 4, "intermediate_size": 48,
             "max_position_embeddings": 40}


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    return transformers.BertModel(transformers.BertConfig(**TINY_BERT)).eval()


def randomize_b(model, seed=1):
    """B = 0 at init hides every bug in B's use: give each B random entries."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in lora_modules(model).values():
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=gen) * 0.1)


def test_starts_as_the_base_model_and_shapes():
    base = nn.Linear(7, 5)
    layer = LoRALinear(base, r=3, alpha=6)
    assert layer.lora_A.shape == (3, 7) and layer.lora_B.shape == (5, 3)
    assert torch.count_nonzero(layer.lora_B) == 0 and layer.scaling == 2.0
    x = torch.randn(4, 2, 7)
    assert torch.equal(layer(x), base(x))
    assert not any(p.requires_grad for p in base.parameters())
    assert [p.requires_grad for p in (layer.lora_A, layer.lora_B)] == [True, True]


@settings(max_examples=40)
@given(d_in=st.integers(1, 12), d_out=st.integers(1, 12), r_frac=st.floats(0, 1),
       alpha=st.floats(0.1, 64), bias=st.booleans(), seed=st.integers(0, 999))
def test_forward_is_wx_plus_scaled_bax_and_merge_equals_it(d_in, d_out, r_frac, alpha,
                                                           bias, seed):
    torch.manual_seed(seed)
    r = 1 + int(r_frac * (min(d_in, d_out) - 1))
    layer = LoRALinear(nn.Linear(d_in, d_out, bias=bias), r=r, alpha=alpha)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(3, d_in)
    w, b_ = layer.base.weight, layer.base.bias
    want = x @ w.T + (alpha / r) * x @ layer.lora_A.T @ layer.lora_B.T
    if bias:
        want = want + b_
    assert torch.allclose(layer(x), want, atol=1e-5)
    merged = layer.merge()
    assert type(merged) is nn.Linear and (merged.bias is not None) == bias
    assert torch.allclose(merged(x), layer(x), atol=1e-5)
    assert torch.allclose(merged.weight, w + layer.delta_weight(), atol=1e-6)


def test_inits_gaussian_and_kaiming():
    base = nn.Linear(400, 300)
    gen = torch.Generator().manual_seed(0)
    g = LoRALinear(base, r=8, alpha=8, init="gaussian", generator=gen).lora_A
    assert abs(g.std().item() - 1 / 8) < 0.005  # peft's "gaussian": σ = 1/r
    k = LoRALinear(nn.Linear(400, 300), r=8, alpha=8, init="kaiming").lora_A
    bound = 1 / math.sqrt(400)
    assert k.abs().max() <= bound and k.abs().max() > 0.95 * bound
    # the same bound as nn.Linear's own Kaiming-uniform(a=√5) weight, and as peft's A
    assert nn.Linear(400, 8).weight.abs().max() <= bound
    ref = peft.get_peft_model(nn.Sequential(nn.Linear(400, 300)),
                              peft.LoraConfig(r=8, lora_alpha=8, target_modules=["0"]))
    a_ref = ref.base_model.model[0].lora_A.default.weight
    assert a_ref.abs().max() <= bound and abs(a_ref.std() - k.std()) < 0.002


def test_seed_makes_add_lora_reproducible():
    a = add_lora(tiny_bert(), ("query", "value"), r=2, alpha=4, seed=3)
    b = add_lora(tiny_bert(), ("query", "value"), r=2, alpha=4, seed=3)
    c = add_lora(tiny_bert(), ("query", "value"), r=2, alpha=4, seed=4)
    pa, pb, pc = lora_parameters(a), lora_parameters(b), lora_parameters(c)
    assert len(pa) == 8  # 2 layers x (query, value) x (A, B)
    assert all(torch.equal(x, y) for x, y in zip(pa, pb))
    assert not torch.equal(pa[0], pc[0])


def test_works_on_any_module_with_in_and_out_features():
    class Scaled(nn.Module):  # no .weight: a stand-in for a quantized layer
        in_features, out_features = 6, 4

        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(6, 4)

        def forward(self, x):
            return 2 * self.inner(x)

    layer = LoRALinear(Scaled(), r=2, alpha=2)
    x = torch.randn(5, 6)
    assert torch.equal(layer(x), 2 * layer.base.inner(x))
    layer(x).sum().backward()  # gradients reach A and B only
    assert layer.lora_B.grad is not None and layer.base.inner.weight.grad is None
    with pytest.raises(TypeError, match="floating .weight"):
        layer.merge()


def test_dropout_acts_on_the_adapter_input_in_training_only():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 16), r=4, alpha=4, dropout=0.5)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(8, 16)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    assert not torch.allclose(layer(x), layer(x))
    layer.lora_B.data.zero_()  # dropout never touches W x
    assert torch.equal(layer(x), layer.base(x))


def test_add_lora_freezes_all_but_a_b_and_trainable():
    model = tiny_bert()
    total = count_parameters(model)[1]
    add_lora(model, ("query", "value"), r=4, alpha=8, trainable=("pooler.dense",))
    trainable, total_after = count_parameters(model)
    per_layer = 2 * 4 * (32 + 32)  # query and value: r (d_in + d_out) each
    pooler = 32 * 32 + 32
    assert trainable == 2 * per_layer + pooler
    assert total_after == total + 2 * per_layer
    assert sum(p.numel() for p in lora_parameters(model)) == 2 * per_layer
    names = sorted(lora_modules(model))
    assert names[0] == "encoder.layer.0.attention.self.query"


def peft_twin(model, targets, r, alpha, init="gaussian"):
    """peft's LoRA on a copy of ``model``'s base, with our A and B copied in."""
    ours = add_lora(copy.deepcopy(model), targets, r=r, alpha=alpha, init=init, seed=0)
    randomize_b(ours)
    cfg = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets),
                          lora_dropout=0.0)
    ref = peft.get_peft_model(copy.deepcopy(model), cfg)
    for name, m in lora_modules(ours).items():
        twin = ref.base_model.model.get_submodule(name)
        with torch.no_grad():
            twin.lora_A["default"].weight.copy_(m.lora_A)
            twin.lora_B["default"].weight.copy_(m.lora_B)
    return ours.eval(), ref.eval()


@pytest.mark.parametrize("targets", [("query", "value"), ("query", "key", "value",
                                                          "attention.output.dense")])
@pytest.mark.parametrize("r,alpha", [(1, 1), (4, 16), (8, 8)])
def test_matches_peft_outputs_and_trainable_count(targets, r, alpha):
    ours, ref = peft_twin(tiny_bert(), targets, r, alpha)
    assert count_parameters(ours)[0] == ref.get_nb_trainable_parameters()[0]
    assert count_parameters(ours)[1] == ref.get_nb_trainable_parameters()[1]
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 120, (3, 11), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # padded positions
    mask[2, 2:] = 0
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask).last_hidden_state
        b = ref(input_ids=ids, attention_mask=mask).last_hidden_state
        base = tiny_bert()(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, base, atol=1e-3)  # the adapters do change the output
    # real positions do not depend on the padding's content, for both
    ids2 = ids.clone()
    ids2[1, 7:] = 5
    with torch.no_grad():
        a2 = ours(input_ids=ids2, attention_mask=mask).last_hidden_state
    assert torch.allclose(a[1, :7], a2[1, :7], atol=1e-5)
    # a batch of one equals its row of the batch
    with torch.no_grad():
        one = ours(input_ids=ids[2:3, :2]).last_hidden_state
    assert torch.allclose(one[0], a[2, :2], atol=1e-5)


def test_merged_equals_adapter_and_peft_merge():
    ours, ref = peft_twin(tiny_bert(), ("query", "value"), 4, 8)
    ids = torch.randint(0, 120, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ours(input_ids=ids).last_hidden_state
        merged = merge_lora(copy.deepcopy(ours))
        got = merged(input_ids=ids).last_hidden_state
        peft_merged = ref.merge_and_unload()(input_ids=ids).last_hidden_state
    assert not lora_modules(merged)
    assert type(merged.encoder.layer[0].attention.self.query) is nn.Linear
    assert count_parameters(merged)[1] == count_parameters(tiny_bert())[1]
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(peft_merged, want, atol=1e-5)
    assert merge_lora(LoRALinear(nn.Linear(3, 3), 1, 1)).__class__ is nn.Linear


def test_kaiming_init_also_matches_peft_with_copied_weights():
    ours, ref = peft_twin(tiny_bert(), ("value",), 2, 4, init="kaiming")
    ids = torch.randint(0, 120, (2, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(ours(input_ids=ids).last_hidden_state,
                              ref(input_ids=ids).last_hidden_state, atol=1e-5)


def test_subspace_similarity_laws():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(8, 50, generator=gen, dtype=torch.float64)
    assert subspace_similarity(a, a, 8, 8) == pytest.approx(1.0)
    # invariant to an invertible mix of A's rows: only the row space counts
    m = torch.randn(8, 8, generator=gen, dtype=torch.float64) + 4 * torch.eye(8)
    assert subspace_similarity(a, m @ a, 8, 8) == pytest.approx(1.0)
    # the top-i directions of A lie inside A's own row space
    assert subspace_similarity(a, a, 3, 8) == pytest.approx(1.0)
    b = torch.randn(4, 50, generator=gen, dtype=torch.float64)
    phi = subspace_similarity(a, b, 5, 3)
    assert phi == pytest.approx(subspace_similarity(b, a, 3, 5))
    e = torch.eye(50, dtype=torch.float64)
    assert subspace_similarity(e[:4], e[4:10], 4, 6) == pytest.approx(0.0)
    assert subspace_similarity(e[:4], e[2:6], 4, 4) == pytest.approx(0.5)


@settings(max_examples=30)
@given(r1=st.integers(1, 6), r2=st.integers(1, 6), seed=st.integers(0, 999))
def test_subspace_similarity_is_between_0_and_1(r1, r2, seed):
    gen = torch.Generator().manual_seed(seed)
    a1, a2 = torch.randn(r1, 10, generator=gen), torch.randn(r2, 10, generator=gen)
    for i in range(1, r1 + 1):
        phi = subspace_similarity(a1, a2, i, r2)
        assert -1e-9 <= phi <= 1 + 1e-9


def test_bad_input():
    lin = nn.Linear(6, 4)
    with pytest.raises(ValueError, match=r"r must be in 1..min.* = 1..4, got r=0"):
        LoRALinear(lin, r=0, alpha=1)
    with pytest.raises(ValueError, match="got r=5"):
        LoRALinear(lin, r=5, alpha=1)
    with pytest.raises(TypeError, match="r must be an int"):
        LoRALinear(lin, r=2.0, alpha=1)
    with pytest.raises(ValueError, match="alpha must be a positive"):
        LoRALinear(lin, r=2, alpha=0)
    with pytest.raises(ValueError, match="dropout"):
        LoRALinear(lin, r=2, alpha=1, dropout=1.0)
    with pytest.raises(ValueError, match="init must be one of"):
        LoRALinear(lin, r=2, alpha=1, init="xavier")
    with pytest.raises(TypeError, match="in_features and out_features"):
        LoRALinear(nn.ReLU(), r=1, alpha=1)
    with pytest.raises(TypeError, match="already a LoRALinear"):
        LoRALinear(LoRALinear(lin, 1, 1), r=1, alpha=1)
    with pytest.raises(ValueError, match="target 'qeury' matches no module"):
        add_lora(tiny_bert(), ("qeury", "value"), r=2, alpha=2)
    with pytest.raises(ValueError, match="r must be in .* for module "
                                         "'encoder.layer.0.attention.self.query'"):
        add_lora(tiny_bert(), ("query",), r=33, alpha=2)
    with pytest.raises(ValueError, match="cannot take LoRA"):
        add_lora(tiny_bert(), ("attention",), r=2, alpha=2)
    with pytest.raises(ValueError, match="non-empty"):
        add_lora(tiny_bert(), (), r=2, alpha=2)
    with pytest.raises(ValueError, match="trainable 'head' matches no module"):
        add_lora(tiny_bert(), "query", r=2, alpha=2, trainable=("head",))
    model = add_lora(tiny_bert(), "query", r=2, alpha=2)
    with pytest.raises(ValueError, match="already a LoRALinear"):
        add_lora(model, "query", r=2, alpha=2)
    with pytest.raises(ValueError, match="the same d"):
        subspace_similarity(torch.randn(2, 5), torch.randn(2, 6), 1, 1)
    with pytest.raises(ValueError, match="i must be an int in 1..2"):
        subspace_similarity(torch.randn(2, 5), torch.randn(2, 5), 3, 1)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        count_parameters("bert")


def test_word_order_task_is_balanced_and_only_reorders():
    from mlf.lora import HELD_OUT, _words, word_order_task

    for corrupt in ("swap", "shuffle"):
        texts, labels = word_order_task(200, HELD_OUT, seed=0, corrupt=corrupt)
        assert len(texts) == 200 and sum(labels) == 100
        originals = {" ".join(_words(line)) for t in HELD_OUT
                     for line in __import__("mlf.corpora").corpora.shakespeare_lines(t)}
        for text, label in zip(texts, labels):
            assert text == text.lower() and 6 <= len(text.split()) <= 12
            assert (text in originals) or label == 0
        assert word_order_task(200, HELD_OUT, 0, corrupt=corrupt) == (texts, labels)
    with pytest.raises(ValueError, match="corrupt must be"):
        word_order_task(10, HELD_OUT, corrupt="drop")
    with pytest.raises(ValueError, match="only .* lines"):
        word_order_task(10**6, HELD_OUT)


def test_top_classifier_on_cached_states_equals_the_whole_encoder():
    from mlf.lora import TopClassifier, features

    bert = tiny_bert()
    ids = torch.randint(0, 120, (4, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.zeros(4).long()}
    for n_top in (1, 2):
        top = TopClassifier(bert, n_top).eval()
        with torch.no_grad():
            got = top.embed(features(bert, data, n_top)["x"], mask)
            states = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        want = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        assert torch.allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="n_top must be an int in 1..2"):
        TopClassifier(bert, 3)


def test_finetune_trains_only_what_requires_grad():
    from mlf.lora import TopClassifier, accuracy, finetune, fit_head

    bert = tiny_bert()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, 32, generator=gen)
    data = {"x": x, "attention_mask": torch.ones(64, 6, dtype=torch.long),
            "labels": (x[:, 0, 0] > 0).long()}
    model = add_lora(TopClassifier(bert, 1), ("query", "value"), r=2, alpha=4,
                     trainable=("head",))
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    losses = finetune(model, data, epochs=3, lr=1e-2, batch=16)
    assert len(losses) == 12 and losses[-1] < losses[0]
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters()
               if n in frozen)
    probe = TopClassifier(bert, 1)
    for p in probe.layers.parameters():
        p.requires_grad_(False)
    fit_head(probe, data, steps=200)
    assert accuracy(probe, data) > 0.7  # a linear read-out of one random layer
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        finetune(model, data, epochs=1, lr=1e-2)


def test_encode_pads_to_max_length_and_embeddings_average_real_tokens():
    from mlf.lora import TopClassifier, embeddings, encode, features, load_minilm

    encoder, tokenizer = load_minilm()
    data = encode(tokenizer, ["to be or not to be", "o brave new world"], [1, 0],
                  max_length=12)
    assert data["input_ids"].shape == data["attention_mask"].shape == (2, 12)
    assert data["labels"].tolist() == [1, 0]
    assert data["attention_mask"][1].sum() < data["attention_mask"][0].sum() <= 12
    data = features(encoder, data, n_top=2)
    got = embeddings(TopClassifier(encoder, 2), data)
    with torch.no_grad():
        states = encoder(input_ids=data["input_ids"],
                         attention_mask=data["attention_mask"]).last_hidden_state
    mask = data["attention_mask"][..., None].float()
    assert torch.allclose(got, (states * mask).sum(1) / mask.sum(1), atol=1e-5)


def test_word_order_task_bad_input():
    from mlf.lora import HELD_OUT, word_order_task

    with pytest.raises(ValueError, match="n must be an int >= 2"):
        word_order_task(1, HELD_OUT)
    with pytest.raises(ValueError, match="min_words <= max_words"):
        word_order_task(10, HELD_OUT, min_words=8, max_words=6)
    with pytest.raises(TypeError, match="exclude must be a collection"):
        word_order_task(10, HELD_OUT, exclude="to be or not to be")


def test_word_order_task_exclude_gives_a_disjoint_split():
    from mlf.lora import HELD_OUT, word_order_task

    train = word_order_task(300, HELD_OUT, seed=0, corrupt="shuffle")
    dev = word_order_task(200, HELD_OUT, seed=2, corrupt="shuffle", exclude=train[0])
    bag = {tuple(sorted(t.split())) for t in train[0]}
    assert not bag & {tuple(sorted(t.split())) for t in dev[0]}
    assert sum(dev[1]) == 100
    # without exclude the same seed overlaps the training lines (so the test bites)
    plain = word_order_task(200, HELD_OUT, seed=2, corrupt="shuffle")
    assert bag & {tuple(sorted(t.split())) for t in plain[0]}
    # an empty exclude changes nothing
    assert word_order_task(50, HELD_OUT, 3, exclude=[]) == word_order_task(50, HELD_OUT,
                                                                            3)


@pytest.mark.parametrize("shapes", [((8, 40), (64, 40)), ((1, 30), (1, 30)),
                                    ((3, 20), (5, 20)), ((6, 4), (2, 4))])
def test_subspace_similarity_grid_equals_the_scalar_function(shapes):
    from mlf.lora import subspace_similarity_grid

    gen = torch.Generator().manual_seed(sum(map(sum, shapes)))
    a1, a2 = (torch.randn(*s, generator=gen) for s in shapes)
    max_i, max_j = min(a1.shape), min(a2.shape)  # i = max and j = max included
    grid = subspace_similarity_grid(a1, a2, max_i, max_j)
    assert grid.shape == (max_i, max_j) and grid.dtype == torch.float64
    points = {(1, 1), (max_i, max_j), (1, max_j), (max_i, 1),
              ((max_i + 1) // 2, (max_j + 2) // 3)}
    for i, j in points:
        assert grid[i - 1, j - 1].item() == pytest.approx(
            subspace_similarity(a1, a2, i, j), abs=1e-12)
    # a smaller grid is the top-left corner of a bigger one
    assert torch.allclose(subspace_similarity_grid(a1, a2, 1, max_j), grid[:1])
    # the same matrix: phi(A, A, i, j) = 1 wherever one span contains the other
    same = subspace_similarity_grid(a1, a1, max_i, max_i)
    assert torch.allclose(same, torch.ones_like(same), atol=1e-9)


def test_subspace_similarity_grid_bad_input():
    from mlf.lora import subspace_similarity_grid

    a = torch.randn(4, 10)
    with pytest.raises(ValueError, match="a1 must be a 2-d tensor"):
        subspace_similarity_grid(torch.randn(10), a, 1, 1)
    with pytest.raises(ValueError, match="a2 must be a 2-d tensor"):
        subspace_similarity_grid(a, [[1.0]], 1, 1)
    with pytest.raises(ValueError, match="the same d"):
        subspace_similarity_grid(a, torch.randn(4, 9), 1, 1)
    with pytest.raises(ValueError, match=r"max_i must be an int in 1..4"):
        subspace_similarity_grid(a, a, 5, 1)
    with pytest.raises(ValueError, match=r"max_j must be an int in 1..4 .*, got 0"):
        subspace_similarity_grid(a, a, 1, 0)
    with pytest.raises(ValueError, match="max_i must be an int"):
        subspace_similarity_grid(a, a, 2.0, 1)

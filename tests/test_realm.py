"""mlf.realm: the world, the encoders, REALM's marginal likelihood and its gradient."""
import faiss
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import facts, realm


@pytest.fixture(scope="module")
def world():
    return realm.make_world(12, seed=3)


def test_world_masks_the_value_only(world):
    for j in range(len(world.x)):
        words = world.tokens(world.x[j])
        assert words.count(realm.MASK) == 1
        person = world.people[int(world.gold[j])]
        assert person.name.lower().split() == words[:2] or "of" in words
        doc = world.tokens(world.docs[world.gold[j]])
        assert world.vocab[world.y[j]] in doc and world.vocab[world.y[j]] not in words


def test_split_holds_out_one_fact_per_person(world):
    train, held = realm.split_facts(world, seed=0)
    assert len(held) == len(world.people) and len(train) == 4 * len(world.people)
    assert sorted(torch.cat([train, held]).tolist()) == list(range(len(world.x)))
    assert sorted(world.gold[held].tolist()) == list(range(len(world.people)))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1), st.booleans())
def test_reward_is_the_autograd_gradient(k, seed, with_zero):
    g = torch.Generator().manual_seed(seed)
    scores = (3 * torch.randn(4, k, generator=g, dtype=torch.float64)).requires_grad_()
    log_p_y = torch.rand(4, k, generator=g, dtype=torch.float64).log()
    if with_zero and k > 1:
        log_p_y[:, 0] = float("-inf")          # a document with p(y|z,x) = 0
    realm.marginal_log_likelihood(scores, log_p_y).sum().backward()
    r = realm.retrieval_reward(scores.detach(), log_p_y)
    assert torch.allclose(scores.grad, r, atol=1e-12)
    assert torch.allclose(r.sum(-1), torch.zeros(4, dtype=torch.float64), atol=1e-12)


def test_marginal_matches_the_plain_sum():
    scores = torch.tensor([[1.0, 0.0, -2.0]])
    p_y = torch.tensor([[0.5, 0.1, 0.0]])
    expected = (scores.softmax(-1) * p_y).sum().log()
    got = realm.marginal_log_likelihood(scores, p_y.log())
    assert torch.allclose(got, expected.view(1))


def test_index_search_matches_exact_topk(world):
    model = realm.Realm(world, k=5)
    model.refresh()
    ids = model.retrieve(world.x)
    with torch.no_grad():
        f = model.embed_input(world.x) @ model.embed_doc(world.docs).T
    assert torch.equal(ids, f.topk(5, 1).indices)
    assert isinstance(model.index, faiss.IndexFlatIP) and model.refreshes == 1


def test_fresh_scores_differ_from_stale_after_an_update(world):
    torch.manual_seed(0)
    model = realm.Realm(world, k=3)
    model.refresh()
    ids = model.retrieve(world.x[:4])
    _, stale_f, _ = model.log_likelihood(world.x[:4], world.y[:4], ids, False)
    _, fresh_f, _ = model.log_likelihood(world.x[:4], world.y[:4], ids, True)
    assert torch.allclose(stale_f, fresh_f, atol=1e-5)  # same theta: same scores
    with torch.no_grad():
        model.embed_doc.proj.weight.add_(0.5)
    _, fresh_f, _ = model.log_likelihood(world.x[:4], world.y[:4], ids, True)
    assert not torch.allclose(stale_f, fresh_f, atol=1e-3)


def test_reader_probabilities(world):
    reader = realm.PointerReader(len(world.vocab), world.docs.shape[1], eps=0.1)
    log_p = reader(world.x[:3], world.docs[:2].expand(3, 2, -1))
    assert log_p.shape == (3, 2, len(world.vocab))
    assert torch.allclose(log_p.exp().sum(-1), torch.ones(3, 2), atol=1e-5)
    absent = torch.tensor([i for i in range(2, len(world.vocab))
                           if i not in world.docs[:2].tolist()[0]
                           and i not in world.docs[:2].tolist()[1]][:1])
    floor = torch.tensor(0.1 / len(world.vocab))
    assert torch.allclose(log_p[..., absent].exp(), floor)


def test_training_is_deterministic_and_counts_refreshes():
    world = realm.make_world(30, seed=1)
    train, held = realm.split_facts(world, 1)
    a = realm.train_realm(world, 60, 10, seed=1, train_idx=train, held_idx=held,
                          eval_every=30)
    b = realm.train_realm(world, 60, 10, seed=1, train_idx=train, held_idx=held,
                          eval_every=30)
    assert a["recall_at_1"] == b["recall_at_1"] and a["loss"][1:] == b["loss"][1:]
    assert a["overlap"] == b["overlap"] and len(a["overlap"]) == 60
    assert a["overlap"][0] == a["overlap"][10] == 1.0   # right after a refresh
    assert a["docs_embedded"] == [30, 90, 180]   # refreshed at steps 0, 10, 20, ...
    never = realm.train_realm(world, 30, None, seed=1, eval_every=30)
    assert never["docs_embedded"] == [30, 30]


def test_tokenize():
    assert facts.tokenize("Kaven Torsil plays the harp.") == [
        "kaven", "torsil", "plays", "the", "harp", "."]


@pytest.mark.parametrize("call, error", [
    (lambda w: facts.tokenize(3), TypeError),
    (lambda w: realm.make_world(0), ValueError),
    (lambda w: realm.Realm(w, k=0), ValueError),
    (lambda w: realm.Realm(w, k=True), ValueError),
    (lambda w: realm.Realm(w).retrieve(w.x), ValueError),
    (lambda w: realm.BagEncoder(0), ValueError),
    (lambda w: realm.BagEncoder(5)(torch.tensor([[1.0]])), TypeError),
    (lambda w: realm.BagEncoder(5)(torch.tensor([[7]])), ValueError),
    (lambda w: realm.PointerReader(5, 3, eps=0), ValueError),
    (lambda w: realm.marginal_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 2)),
     ValueError),
    (lambda w: realm.marginal_log_likelihood(torch.zeros(2, 0), torch.zeros(2, 0)),
     ValueError),
    (lambda w: realm.retrieval_reward(torch.zeros(2, 3), torch.ones(2, 3)), ValueError),
    (lambda w: realm.retrieval_reward(torch.zeros(2, 3, dtype=torch.long),
                                      torch.zeros(2, 3)), TypeError),
    (lambda w: realm.train_realm(w, 0, 1), ValueError),
    (lambda w: realm.train_realm(w, 5, 0), ValueError),
    (lambda w: realm.recall_at_1(realm.Realm(w), w, torch.tensor([999])), ValueError),
    (lambda w: realm.recall_at_1(realm.Realm(w), w, [0, 1]), TypeError),
])
def test_bad_input(world, call, error):
    with pytest.raises(error):
        call(world)


def test_stale_numpy_is_float32(world):
    model = realm.Realm(world)
    model.refresh()
    assert model.stale.dtype == torch.float32 and np.isfinite(model.stale.numpy()).all()


def test_models_follow_the_world_device(world):
    meta = world.to("meta")
    assert meta.docs.device.type == "meta" and meta.vocab is world.vocab
    assert {p.device.type for p in realm.Realm(meta).parameters()} == {"meta"}
    assert torch.equal(world.to("cpu").x, world.x)


def test_retriever_gradient_is_the_reward_alone(world):
    torch.manual_seed(0)
    model = realm.Realm(world, k=4)
    model.refresh()
    retriever = {id(p): p for m in (model.embed_input, model.embed_doc)
                 for p in m.parameters()}
    assert len(retriever) == 3   # one shared word table, W_input, W_doc
    assert not retriever.keys() & {id(p) for p in model.reader.parameters()}
    x, y = world.x[:8], world.y[:8]
    log_lik, f, log_p_y = model.log_likelihood(x, y, model.retrieve(x))
    params = list(retriever.values())
    from_loss = torch.autograd.grad(-log_lik.mean(), params, retain_graph=True)
    r = realm.retrieval_reward(f.detach(), log_p_y.detach())
    from_r = torch.autograd.grad(-(r * f).sum() / len(x), params)
    for a, b in zip(from_loss, from_r):
        assert torch.allclose(a, b, atol=1e-6)


def test_training_never_reads_the_gold_document():
    world = realm.make_world(30, seed=2)
    train, held = realm.split_facts(world, 2)
    scrambled = realm.World(world.people, world.vocab, world.docs, world.x, world.y,
                            world.gold[torch.randperm(len(world.gold))],
                            world.attribute)
    a, b = (realm.train_realm(w, 40, 10, seed=2, train_idx=train, held_idx=held,
                              eval_every=20) for w in (world, scrambled))
    assert a["loss"][1:] == b["loss"][1:] and a["overlap"] == b["overlap"]
    assert a["mlm_accuracy"] == b["mlm_accuracy"]   # gold feeds the recall only

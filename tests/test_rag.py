"""Tests for mlf.rag: the marginals against brute force, retrieval, decoding, errors."""
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import facts, rag


def brute_sequence(p_tok, prior, lengths):
    """-log Σ_z p(z) Π_i p(y_i | z), with Python loops, mean over the batch."""
    out = []
    for b in range(len(prior)):
        total = 0.0
        for z in range(len(prior[b])):
            prod = prior[b][z]
            for i in range(lengths[b]):
                prod *= p_tok[b][z][i]
            total += prod
        out.append(-math.log(total))
    return sum(out) / len(out)


def brute_token(p_tok, prior, lengths):
    """-log of the sum over every choice of one document per token (K^T terms):
    Σ_{z_1..z_T} Π_i p(z_i) p(y_i | z_i)."""
    out = []
    for b in range(len(prior)):
        k, t = len(prior[b]), lengths[b]
        total = 0.0
        for zs in itertools.product(range(k), repeat=t):
            prod = 1.0
            for i, z in enumerate(zs):
                prod *= prior[b][z] * p_tok[b][z][i]
            total += prod
        out.append(-math.log(total))
    return sum(out) / len(out)


def random_case(seed, b=3, k=3, t=4):
    g = torch.Generator().manual_seed(seed)
    token_logp = torch.log_softmax(torch.randn(b, k, t, 7, generator=g), -1)[..., 0]
    log_prior = torch.log_softmax(torch.randn(b, k, generator=g), -1)
    lengths = torch.randint(1, t + 1, (b,), generator=g).tolist()
    mask = torch.tensor([[1.0] * n + [0.0] * (t - n) for n in lengths])
    return token_logp.double(), log_prior.double(), mask.double(), lengths


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_marginals_equal_brute_force(seed):
    token_logp, log_prior, mask, lengths = random_case(seed)
    p_tok, prior = token_logp.exp().tolist(), log_prior.exp().tolist()
    seq = rag.rag_sequence_loss(token_logp, log_prior, mask).item()
    tok = rag.rag_token_loss(token_logp, log_prior, mask).item()
    assert seq == pytest.approx(brute_sequence(p_tok, prior, lengths), rel=1e-9)
    assert tok == pytest.approx(brute_token(p_tok, prior, lengths), rel=1e-9)


def test_one_token_answers_make_the_two_marginals_equal():
    token_logp, log_prior, _, _ = random_case(3, t=1)
    mask = torch.ones(3, 1, dtype=torch.double)
    assert torch.allclose(rag.rag_sequence_loss(token_logp, log_prior, mask),
                          rag.rag_token_loss(token_logp, log_prior, mask))


def test_token_marginal_is_never_below_sequence_likelihood_on_two_docs():
    # doc 0 knows token 1, doc 1 knows token 2: only RAG-Token can be sure of both
    p = torch.tensor([[[0.99, 0.01], [0.01, 0.99]]]).log()
    prior = torch.tensor([[0.5, 0.5]]).log()
    mask = torch.ones(1, 2)
    assert rag.rag_token_loss(p, prior, mask) < rag.rag_sequence_loss(p, prior, mask)


def test_marginal_shapes_are_checked():
    token_logp, log_prior, mask, _ = random_case(0)
    with pytest.raises(ValueError, match="log_prior"):
        rag.rag_token_loss(token_logp, log_prior[:, :2], mask)
    with pytest.raises(ValueError, match="mask"):
        rag.rag_sequence_loss(token_logp, log_prior, mask[:, :2])
    with pytest.raises(ValueError, match="token_logp"):
        rag.rag_sequence_loss(token_logp[0], log_prior, mask)


def test_vocab_spells_names_as_syllables_and_round_trips():
    v = rag.GenVocab()
    for p in facts.make_people(50, seed=2):
        ids = v.encode(facts.biography(p))
        assert rag.UNK not in ids
        first = p.name.split()[0].lower()
        assert "".join(v.words(ids)).startswith(first)
    assert v.encode("Zzz lives") == [rag.UNK, v.ids["lives"]]
    with pytest.raises(TypeError):
        v.encode(3)


def test_pair_questions_hold_two_answers_in_two_documents():
    people = facts.make_people(4, seed=1)
    text, answer = rag.pair_question(people[0], "job", "colour")
    assert text.count(people[0].name) == 2
    assert answer == [people[0].facts["job"], people[0].facts["colour"]]
    with pytest.raises(ValueError, match="two different"):
        rag.pair_question(people[0], "job", "job")
    docs = rag.documents(people)
    qs = rag.make_questions(people, n_pairs=3)
    assert len(qs) == 4 * 5 + 3
    for q in qs:  # each answer word stands in the document named by `about`
        assert len(q["about"]) == len(q["answer"])
        for z, word in zip(q["about"], q["answer"]):
            assert docs[z].rstrip(".").split()[-1] == word or f" {word} " in docs[z]
    assert len(rag.make_questions(people, n_pairs=0, per_person=1)) == 4
    with pytest.raises(ValueError, match="per_person"):
        rag.make_questions(people, 1, per_person=6)
    with pytest.raises(ValueError, match="empty"):
        rag.make_questions([], 1)


def test_mean_pool_ignores_padding():
    h = torch.randn(2, 4, 6)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    changed = h.clone()
    changed[0, 2:] = 100.0  # padding positions of row 0
    assert torch.allclose(rag.mean_pool(h, mask), rag.mean_pool(changed, mask))
    expected = torch.nn.functional.normalize(h[0, :2].mean(0), dim=0)
    assert torch.allclose(rag.mean_pool(h, mask)[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="mask"):
        rag.mean_pool(h, mask[:, :3])


def test_retrieve_equals_exact_search_and_rejects_bad_input():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((50, 8)).astype(np.float32)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    scores, ids = rag.retrieve(rag.build_index(docs), queries, 4)
    exact = np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :4]
    assert (ids == exact).all()
    expected = np.take_along_axis(queries @ docs.T, exact, 1)
    assert np.allclose(scores, expected, atol=1e-5)
    index = rag.build_index(docs)
    with pytest.raises(ValueError, match="d = 7"):
        rag.retrieve(index, queries[:, :7], 2)
    with pytest.raises(ValueError, match="exceeds"):
        rag.retrieve(index, queries, 51)
    with pytest.raises(ValueError, match="non-empty"):
        rag.build_index(np.zeros((0, 8)))
    import faiss
    with pytest.raises(ValueError, match="empty"):
        rag.retrieve(faiss.IndexFlatIP(8), queries, 1)


def test_doc_prior_is_a_log_softmax_and_checks_tau():
    s = np.array([[0.9, 0.5, 0.1]])
    lp = rag.doc_prior(s, 0.1)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(1))
    assert torch.allclose(lp, torch.log_softmax(torch.tensor(s / 0.1).float(), -1))
    for bad in (0, -1.0, True):
        with pytest.raises(ValueError, match="tau"):
            rag.doc_prior(s, bad)


def tiny_setup(seed=0):
    torch.manual_seed(seed)
    v = rag.GenVocab()
    model = rag.Generator(len(v), d_model=16, n_heads=2, n_layers=1, d_ff=32).eval()
    people = facts.make_people(3, seed=seed)
    docs = [v.encode(d) for d in rag.documents(people)]
    qs = rag.make_questions(people, n_pairs=2, seed=seed)
    return v, model, docs, qs


def test_generator_logp_agrees_with_the_loss_and_with_one_document():
    v, model, docs, qs = tiny_setup()
    picked = [qs[0], qs[-1]]  # a single and a pair question
    retrieved = np.array([[0, 1], [7, 0]])
    src = rag.sources(v, [v.encode(q["text"]) for q in picked], docs, retrieved)
    tgt_in, tgt_out, mask = rag.targets(v, [q["answer"] for q in picked])
    logp = rag.target_logp(model, src, tgt_in, tgt_out, 2)  # (B, K, T)
    assert logp.shape == (2, 2, 3)
    # a prior certain of document 0 makes both marginals that document's likelihood
    certain = torch.log(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    nll = -(logp[:, 0] * mask).sum(-1).mean()
    assert torch.allclose(rag.rag_sequence_loss(logp, certain, mask), nll)
    assert torch.allclose(rag.rag_token_loss(logp, certain, mask), nll)


def test_sequence_decoding_scores_are_marginals_and_token_decoding_runs():
    v, model, docs, qs = tiny_setup(1)
    src = rag.sources(v, [v.encode(qs[-1]["text"])], docs, np.array([[0, 1, 2]]))
    prior = torch.log_softmax(torch.tensor([[1.0, 0.5, 0.0]]), -1)
    answers, scores = rag.decode_sequence(model, src, prior)
    assert answers[0] in [list(p) for p in rag.greedy_per_doc(model, src)]
    tin, tout, mask = rag.targets(v, [v.words(answers[0])])
    logp = rag.target_logp(model, src, tin, tout, 3)
    expected = -rag.rag_sequence_loss(logp, prior, mask)
    assert max(scores[0]) == pytest.approx(expected.item(), abs=1e-5)
    assert len(rag.decode_token(model, src, prior, max_len=3)[0]) <= 4  # no <eos>: 4


def test_train_rejects_bad_arguments_and_repeats_itself():
    v, _, docs, qs = tiny_setup()
    ids = [v.encode(q["text"]) for q in qs]
    retrieved = np.zeros((len(qs), 1), dtype=np.int64)
    prior = torch.zeros(len(qs), 1)
    curves = []
    for _ in range(2):
        torch.manual_seed(0)
        model = rag.Generator(len(v), d_model=16, n_heads=2, n_layers=1, d_ff=32)
        curves.append(rag.train(model, v, qs, ids, docs, retrieved, prior,
                                loss="sequence", steps=3, batch=4))
    assert curves[0] == curves[1]
    with pytest.raises(ValueError, match="loss"):
        rag.train(model, v, qs, ids, docs, retrieved, prior, loss="bag", steps=1)
    with pytest.raises(ValueError, match="steps"):
        rag.train(model, v, qs, ids, docs, retrieved, prior, loss="token", steps=0)
    with pytest.raises(ValueError, match="retrieved"):
        rag.sources(v, ids[:2], docs, retrieved[:3])

"""Retrieval-augmented generation (Lewis et al. 2020) over the world of ``mlf.facts``.

The pieces, in the paper's notation (section 2):

* **retriever** p_η(z | x): documents z and the query x are embedded by MiniLM
  (``embed``: mean of the token states over the attention mask, then L2-normalised,
  as sentence-transformers' all-MiniLM-L6-v2); the top-k documents by inner product
  (maximum inner product search, ``retrieve`` on a faiss ``IndexFlatIP``) get
  p(z | x) = softmax(d(z)ᵀ q(x) / τ) over those k (``doc_prior``);
* **generator** p_θ(y_i | x, z, y_{1:i-1}): the book's encoder-decoder Transformer
  (``mlf.transformer.Transformer``, the layers of {ref}`transformer`), reading
  [question ; document] and writing the answer (``Generator``);
* **RAG-Sequence**: one document for the whole answer,
  p(y | x) = Σ_z p(z | x) Π_i p(y_i | x, z, y_{<i})  (``rag_sequence_loss``);
* **RAG-Token**: a document per answer token,
  p(y | x) = Π_i Σ_z p(z | x) p(y_i | x, z, y_{<i})  (``rag_token_loss``).

For an answer of one token the two are the same; they part when an answer needs two
documents (``pair_question``: two attributes of one person, in two documents).

The generator's words (``GenVocab``) are the template words, the attribute values and
the name syllables of ``mlf.facts``: a name is spelled as its syllables, so the
generator can tell whether a document is about the person asked about.

Bad arguments raise ``ValueError`` (or ``TypeError``) saying what was expected.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from mlf import facts
from mlf.notebook import progress
from mlf.seq2seq import pad_batch
from mlf.transformer import Transformer
from mlf.vector_index import build_index, checked_search  # noqa: F401 (re-exported)

DATA = Path(__file__).resolve().parents[2] / "data" / "rag"  # scripts/rag_train.py
SPECIALS = ("<pad>", "<unk>", "<sep>", "<bos>", "<eos>")
PAD, UNK, SEP, BOS, EOS = range(len(SPECIALS))
_TEMPLATE_WORDS = ("lives in works as a keeps at home plays the favourite colour of is "
                   "which city home to what job animal does keep instrument play like "
                   "best . ?")


# ------------------------------------------------------------------ the questions
def pair_question(person: facts.Person, attr1: str,
                  attr2: str) -> tuple[str, list[str]]:
    """Two questions in one about one person: (text, [answer 1, answer 2]).

    The two answers stand in two different documents (``documents``), so no single
    retrieved document holds the whole answer.

    >>> p = facts.make_people(1, seed=0)[0]
    >>> text, answer = pair_question(p, "city", "pet")
    >>> answer == [p.facts["city"], p.facts["pet"]]
    True
    """
    if attr1 == attr2:
        raise ValueError(f"a pair question asks two different attributes, got "
                         f"{attr1!r} twice")
    q1, a1 = facts.question(person, attr1)
    q2, a2 = facts.question(person, attr2)
    return f"{q1} {q2}", [a1, a2]


def documents(people) -> list[str]:
    """The knowledge base: one sentence per fact, person by person (5 per person).

    Document ``5 * i + j`` states attribute j (in ``facts.ATTRIBUTES`` order) of
    person i; like the paper's 100-word chunks of Wikipedia, a document is a piece
    of a page, not the whole page.
    """
    return [facts.statement(p, attr) for p in people for attr in facts.ATTRIBUTES]


def make_questions(people, n_pairs: int, seed: int = 0, per_person: int = 5):
    """``per_person`` single questions about each of ``people`` (all 5 attributes, or
    that many drawn at random) and ``n_pairs`` pair questions about random people.

    Returns a list of dicts: text, answer (list of words), about (the index in
    ``documents(people)`` of the document that holds each answer word).
    """
    if not people:
        raise ValueError("people is empty: expected at least one Person")
    rng = random.Random(seed)
    if isinstance(per_person, bool) or per_person not in range(6):
        raise ValueError(f"per_person must be an int in 0..5, got {per_person!r}")
    attrs, out = list(facts.ATTRIBUTES), []
    for i, p in enumerate(people):
        asked = (range(5) if per_person == 5
                 else sorted(rng.sample(range(5), per_person)))
        for j in asked:
            attr = attrs[j]
            text, answer = facts.question(p, attr)
            out.append({"text": text, "answer": [answer], "about": [5 * i + j]})
    for _ in range(n_pairs):
        i = rng.randrange(len(people))
        a, b = rng.sample(range(5), 2)
        text, answer = pair_question(people[i], attrs[a], attrs[b])
        out.append({"text": text, "answer": answer, "about": [5 * i + a, 5 * i + b]})
    return out


# ------------------------------------------------------------ the generator's words
class GenVocab:
    """Template words, attribute values and name syllables, plus five specials.

    >>> v = GenVocab()
    >>> v.words(v.encode("Kaven Torsil plays the harp."))
    ['ka', 'ven', 'tor', 'sil', 'plays', 'the', 'harp', '.']
    """

    def __init__(self):
        values = [v for vs in facts.ATTRIBUTES.values() for v in vs]
        # subtle: no syllable is a prefix of another, so a name splits in one way only
        syllables = list(facts.SYLLABLES)
        self.tokens = list(SPECIALS) + sorted(set(_TEMPLATE_WORDS.split())) + values \
            + syllables
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        if len(self.ids) != len(self.tokens):
            raise ValueError("a word appears twice among templates, values, syllables")
        self.syllables = syllables

    def __len__(self) -> int:
        return len(self.tokens)

    def _split_name(self, word: str) -> list[str] | None:
        pieces, rest = [], word
        while rest:
            match = [s for s in self.syllables if rest.startswith(s)]
            if not match:
                return None
            pieces.append(match[0])
            rest = rest[len(match[0]):]
        return pieces

    def encode(self, text: str) -> list[int]:
        """Lower-case words and '.', '?'; a name becomes its syllables; else <unk>."""
        out = []
        for word in facts.tokenize(text):
            if word in self.ids:
                out.append(self.ids[word])
            else:
                pieces = self._split_name(word)
                out += [UNK] if pieces is None else [self.ids[p] for p in pieces]
        return out

    def words(self, ids) -> list[str]:
        return [self.tokens[i] for i in ids]


# ------------------------------------------------------------------ the retriever
def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states over the real tokens, then L2-normalised.

    hidden (B, T, H), mask (B, T) of 0 (padding) and 1 -> (B, H) unit vectors.
    """
    if hidden.ndim != 3 or mask.shape != hidden.shape[:2]:
        raise ValueError(f"hidden must be (B, T, H) and mask (B, T), got "
                         f"{tuple(hidden.shape)} and {tuple(mask.shape)}")
    m = mask.to(hidden.dtype)[..., None]  # (B, T, 1)
    # subtle: sentence-transformers clamps the count at 1e-9; a row needs a real token
    mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, H)
    return F.normalize(mean, dim=-1)


@torch.no_grad()
def embed(texts, encoder, tokenizer, batch: int = 64, desc: str | None = None):
    """MiniLM sentence vectors (N, 384), float32 numpy, of a list of strings.

    ``encoder, tokenizer`` are ``mlf.bert.from_pretrained_minilm()``'s.
    """
    from mlf import bert

    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of strings")
    if not texts:
        raise ValueError("texts is empty")
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    for s in progress(range(0, len(texts), batch), desc=desc, disable=desc is None):
        ids, seg, mask = bert.pad_batch(
            [tokenizer.encode(t) for t in texts[s:s + batch]], device)
        hidden, _ = encoder(ids, seg, mask)
        out.append(mean_pool(hidden, mask).cpu())
    return torch.cat(out).numpy().astype(np.float32)


def retrieve(index, queries, k: int):
    """(scores, ids), each (nq, k), of the top-k documents by inner product.

    Errors, not faiss's silent -1 ids, for a wrong dimension, an empty index or
    k larger than the number of documents (``mlf.vector_index.checked_search``).
    """
    return checked_search(index, np.asarray(queries, dtype=np.float32), k)


def doc_prior(scores, tau: float) -> torch.Tensor:
    """log p(z | x) over the top-k: log softmax(scores / τ), (nq, k) -> (nq, k)."""
    if not (isinstance(tau, (int, float)) and not isinstance(tau, bool) and tau > 0):
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    s = torch.as_tensor(np.asarray(scores), dtype=torch.float32)
    if s.ndim != 2 or s.shape[1] < 1:
        raise ValueError(f"scores must be (nq, k), got {tuple(s.shape)}")
    return torch.log_softmax(s / tau, dim=-1)


# ------------------------------------------------------------------ the marginals
def _check_marginal_inputs(token_logp, log_prior, mask):
    if token_logp.ndim != 3:
        raise ValueError(f"token_logp must be (B, K, T), got {tuple(token_logp.shape)}")
    b, k, t = token_logp.shape
    if tuple(log_prior.shape) != (b, k):
        raise ValueError(f"log_prior must be (B, K) = {(b, k)}, got "
                         f"{tuple(log_prior.shape)}")
    if tuple(mask.shape) != (b, t):
        raise ValueError(f"mask must be (B, T) = {(b, t)}, got {tuple(mask.shape)}")


def rag_sequence_loss(token_logp, log_prior, mask):
    """-log p(y | x), p = Σ_z p(z | x) Π_i p(y_i | x, z, y_{<i}); mean over B.

    token_logp (B, K, T): log p(y_i | x, z_k, y_{<i}) of the target tokens;
    log_prior (B, K): log p(z_k | x); mask (B, T): 1 at real answer tokens.
    """
    _check_marginal_inputs(token_logp, log_prior, mask)
    seq = (token_logp * mask[:, None, :]).sum(-1)  # (B, K): log Π_i p(y_i | z)
    return -torch.logsumexp(log_prior + seq, dim=-1).mean()


def rag_token_loss(token_logp, log_prior, mask):
    """-log p(y | x), p = Π_i Σ_z p(z | x) p(y_i | x, z, y_{<i}); mean over B."""
    _check_marginal_inputs(token_logp, log_prior, mask)
    per_token = torch.logsumexp(log_prior[..., None] + token_logp, dim=1)  # (B, T)
    return -(per_token * mask).sum(-1).mean()


# ------------------------------------------------------------------ the generator
class Generator(torch.nn.Module):
    """p_θ(y_i | x, z, y_{<i}): an encoder-decoder Transformer reading
    [question <sep> document] and writing <bos> answer <eos>."""

    def __init__(self, vocab_size: int, d_model: int = 64, n_heads: int = 4,
                 n_layers: int = 2, d_ff: int = 256):
        super().__init__()
        # orig: RAG's generator is BART-large (400M parameters, pre-trained); ours is
        # a small Transformer trained from scratch on this task alone
        self.net = Transformer(vocab_size, vocab_size, d_model, n_heads, d_ff,
                               n_layers, dropout=0.0, norm_first=True,
                               tie_output=True)

    def forward(self, src, tgt_in):  # (N, S), (N, T) -> (N, T, V) log-probabilities
        src_mask = (src != PAD)[:, None, None, :]  # (N, 1, 1, S)
        return torch.log_softmax(self.net(src, tgt_in, src_mask), dim=-1)


def pad(rows) -> torch.Tensor:
    """Right-pad lists of ids with PAD into one (N, T) long tensor."""
    return pad_batch(rows, PAD)[0]


def sources(vocab: GenVocab, question_ids, doc_ids, retrieved) -> torch.Tensor:
    """(B * K, S) generator inputs [question <sep> document] for each retrieved doc.

    question_ids: B lists of ids; doc_ids: every document's ids; retrieved: (B, K).
    """
    retrieved = np.asarray(retrieved)
    if retrieved.ndim != 2 or len(retrieved) != len(question_ids):
        raise ValueError(f"retrieved must be (B, K) with B = {len(question_ids)}, got "
                         f"{retrieved.shape}")
    rows = [q + [SEP] + doc_ids[z] for q, zs in zip(question_ids, retrieved)
            for z in zs]
    return pad(rows)


def targets(vocab: GenVocab, answers):
    """(tgt_in, tgt_out, mask), each (B, T): <bos> y -> y <eos>, padding masked."""
    ids = [[vocab.ids[w] for w in a] for a in answers]
    tgt_in = pad([[BOS] + a for a in ids])
    tgt_out = pad([a + [EOS] for a in ids])
    return tgt_in, tgt_out, (tgt_out != PAD).float()


def target_logp(model, src, tgt_in, tgt_out, k: int):
    """log p(y_i | x, z, y_{<i}) of the target tokens, (B, K, T)."""
    logp = model(src, tgt_in.repeat_interleave(k, 0))  # (B*K, T, V)
    gold = logp.gather(-1, tgt_out.repeat_interleave(k, 0)[..., None])[..., 0]
    return gold.view(-1, k, gold.shape[-1])


# ------------------------------------------------------------------ decoding
@torch.no_grad()
def decode_token(model, src, log_prior, max_len: int = 3):
    """RAG-Token greedy decoding: at each step the next-token distribution is
    Σ_z p(z | x) p(y_i | x, z, y_{<i}); the argmax is appended for every z.

    src (B * K, S), log_prior (B, K) -> B answers (lists of ids, without <eos>;
    max_len + 1 ids if no <eos> came).
    """
    b, k = log_prior.shape
    prefix = torch.full((b, 1), BOS, dtype=torch.long, device=src.device)
    for _ in range(max_len + 1):
        logp = model(src, prefix.repeat_interleave(k, 0))[:, -1]  # (B*K, V)
        marginal = torch.logsumexp(log_prior[..., None] + logp.view(b, k, -1), 1)
        prefix = torch.cat([prefix, marginal.argmax(-1, keepdim=True)], 1)
    return [_cut(row[1:].tolist()) for row in prefix]


def _cut(ids):
    return ids[:ids.index(EOS)] if EOS in ids else ids


@torch.no_grad()
def greedy_per_doc(model, src, max_len: int = 3):
    """Greedy decoding from each (question, document) input alone: B * K answers."""
    prefix = torch.full((len(src), 1), BOS, dtype=torch.long, device=src.device)
    for _ in range(max_len + 1):
        nxt = model(src, prefix)[:, -1].argmax(-1, keepdim=True)
        prefix = torch.cat([prefix, nxt], 1)
    return [_cut(row[1:].tolist()) for row in prefix]


@torch.no_grad()
def decode_sequence(model, src, log_prior, max_len: int = 3):
    """RAG-Sequence "thorough decoding" with a beam of one per document.

    Each document proposes its greedy answer; every proposal y is scored by
    p(y | x) = Σ_z p(z | x) p(y | x, z) (a forward pass under every document, also
    those that did not propose it); the best proposal wins. Returns (answers, scores).
    """
    b, k = log_prior.shape
    proposals = greedy_per_doc(model, src, max_len)
    answers, scores = [], []
    for q in range(b):
        cands = list(dict.fromkeys(tuple(p) for p in proposals[q * k:(q + 1) * k]))
        tgt_in = pad([[BOS, *c] for c in cands])  # (C, T)
        tgt_out = pad([[*c, EOS] for c in cands])
        mask = (tgt_out != PAD).float()
        n = len(cands)
        src_q = src[q * k:(q + 1) * k].repeat(n, 1)  # (C*K, S): doc-major per cand
        logp = model(src_q, tgt_in.to(src.device).repeat_interleave(k, 0))
        gold_ids = tgt_out.to(src.device).repeat_interleave(k, 0)[..., None]
        gold = logp.gather(-1, gold_ids)
        seq = (gold[..., 0] * mask.to(src.device).repeat_interleave(k, 0)).sum(-1)
        total = torch.logsumexp(log_prior[q][None] + seq.view(n, k), -1)  # (C,)
        best = int(total.argmax())
        answers.append(list(cands[best]))
        scores.append(total.tolist())
    return answers, scores


# ------------------------------------------------------------------ training
def train(model, vocab, questions, question_ids, doc_ids, retrieved, log_prior, *,
          loss: str, steps: int, batch: int = 32, lr: float = 2e-3, seed: int = 0,
          desc: str | None = None, callback=None) -> list[float]:
    """Adam updates on random batches of questions with the RAG-Token or
    RAG-Sequence loss; returns the loss of every update (constant learning rate, so
    the first n updates of a run equal a run of n updates)."""
    fn = {"token": rag_token_loss, "sequence": rag_sequence_loss}.get(loss)
    if fn is None:
        raise ValueError(f"loss must be 'token' or 'sequence', got {loss!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    k = log_prior.shape[1]
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in progress(range(steps), desc=desc, disable=desc is None):
        pick = torch.randint(len(questions), (batch,), generator=g).tolist()
        src = sources(vocab, [question_ids[i] for i in pick], doc_ids,
                      np.asarray(retrieved)[pick]).to(device)
        tgt_in, tgt_out, mask = (t.to(device) for t in
                                 targets(vocab, [questions[i]["answer"] for i in pick]))
        logp = target_logp(model, src, tgt_in, tgt_out, k)
        value = fn(logp, log_prior[pick].to(device), mask)
        opt.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(value.item())
        if callback is not None:
            callback(len(losses), model)
    model.eval()
    return losses

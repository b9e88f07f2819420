"""REALM at toy scale: a retriever trained only through a masked-language-model signal.

Guu et al. (2020) model a masked sentence x and its missing span y through a latent
document z of a knowledge corpus Z:

    p(y | x) = sum_z p(y | z, x) p(z | x),   p(z | x) = softmax_z f(x, z),
    f(x, z) = Embed_input(x)^T Embed_doc(z),

and train both the retriever (theta) and the reader (phi) by maximising log p(y | x).
The sum runs over the top k documents of a maximum-inner-product search (MIPS) whose
index holds document embeddings that are refreshed only every few hundred steps; the
k retrieved documents are then scored again with the *current* encoders, so p(z | x)
and its gradient are fresh even when the index is stale.

Here Z is the biographies of ``mlf.facts`` people and x a statement with its salient
span (the attribute's value) masked. The encoders are bags of word embeddings with a
linear projection (orig: BERT's [CLS] vector, projected), and the reader points at one
token of the retrieved document (orig: BERT over join(x, z_body) with an MLM head).

>>> world = make_world(4, seed=0)
>>> world.docs.shape[0], world.x.shape[0]          # 4 biographies, 5 facts each
(4, 20)
>>> world.tokens(world.x[0])[-3:]
['in', '[MASK]', '.']
>>> world.vocab[world.y[0]] == world.people[0].facts["city"]
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlf import facts
from mlf.seq2seq import pad_batch
from mlf.vector_index import build_index, checked_search

PAD, MASK = "[PAD]", "[MASK]"
# the stored runs of scripts/realm_pretrain.py
DATA = Path(__file__).resolve().parents[2] / "data" / "realm"


@dataclass
class World:
    """The knowledge corpus Z and the masked pre-training sentences X, as token ids."""
    people: list
    vocab: list[str]
    docs: torch.Tensor      # (N, L_z) token ids of the N biographies
    x: torch.Tensor         # (M, L_x) masked statements, [PAD]-padded on the right
    y: torch.Tensor         # (M,) the masked value's token id
    gold: torch.Tensor      # (M,) index of the biography that states the fact
    attribute: list[str] = field(default_factory=list)  # (M,) which fact was masked

    def tokens(self, ids) -> list[str]:
        return [self.vocab[i] for i in ids.tolist() if self.vocab[i] != PAD]

    def to(self, device) -> World:
        """The same world with its tensors on device; models built on it follow."""
        return replace(self, docs=self.docs.to(device), x=self.x.to(device),
                       y=self.y.to(device), gold=self.gold.to(device))


def make_world(n_people: int, seed: int = 0) -> World:
    """n_people biographies (Z) and one masked statement per fact (X): 5 n_people."""
    people = facts.make_people(n_people, seed)  # checks n_people
    bios = [facts.tokenize(facts.biography(p)) for p in people]
    masked, answers, gold, attrs = [], [], [], []
    for i, p in enumerate(people):
        for attr in facts.ATTRIBUTES:
            words = facts.tokenize(facts.statement(p, attr))
            value = p.facts[attr]
            # salient span masking: the value, the one word only Z can tell
            masked.append([MASK if w == value else w for w in words])
            answers.append(value)
            gold.append(i)
            attrs.append(attr)
    vocab = [PAD, MASK] + sorted({w for b in bios for w in b})
    index = {w: i for i, w in enumerate(vocab)}

    def ids(rows):  # (len(rows), longest) word ids, right-padded with PAD = 0
        return pad_batch([[index[w] for w in r] for r in rows], 0)[0]
    return World(people, vocab, ids(bios), ids(masked),
                 torch.tensor([index[a] for a in answers]), torch.tensor(gold), attrs)


class BagEncoder(nn.Module):
    """Embed(t) = W mean_i E[t_i]: a bag of word embeddings, projected to d dims.

    orig: W BERT_CLS(join(t)); a bag of words is enough to match names at this scale.
    """

    def __init__(self, vocab_size: int, d_embed: int = 32, d: int = 32):
        super().__init__()
        for name, v in (("vocab_size", vocab_size), ("d_embed", d_embed), ("d", d)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.embed = nn.Embedding(vocab_size, d_embed, padding_idx=0)
        self.proj = nn.Linear(d_embed, d, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (..., L) -> (..., d)
        _check_ids(ids, self.embed.num_embeddings)
        keep = (ids != 0).unsqueeze(-1).float()             # [PAD] is id 0
        bag = (self.embed(ids) * keep).sum(-2) / keep.sum(-2).clamp(min=1)
        return self.proj(bag)


class PointerReader(nn.Module):
    """p(y | z, x): attend from x to the tokens of z, then copy the attended token.

    alpha_j = softmax_j q(x)^T k(z_j, j),
    p(y | z, x) = (1 - eps) sum_j alpha_j [z_j = y] + eps / V.
    The floor eps / V keeps log p finite when z does not contain y.
    orig: a 12-layer BERT over join(x, z_body) predicting each [MASK] from the vocab.
    """

    def __init__(self, vocab_size: int, doc_len: int, d: int = 32, eps: float = 0.05):
        super().__init__()
        if not 0 < eps < 1:
            raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
        self.vocab_size, self.eps = vocab_size, eps
        self.embed = nn.Embedding(vocab_size, d, padding_idx=0)
        self.position = nn.Parameter(torch.randn(doc_len, d))
        self.query = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x (B, L_x), z (B, k, L_z) -> log p(token | z, x): (B, k, V)."""
        _check_ids(x, self.vocab_size)
        _check_ids(z, self.vocab_size)
        keep = (x != 0).unsqueeze(-1).float()
        q = self.query((self.embed(x) * keep).sum(1) / keep.sum(1).clamp(min=1))
        keys = self.embed(z) + self.position[: z.shape[-1]]           # (B, k, L_z, d)
        logits = torch.einsum("bd,bkld->bkl", q, keys) / math.sqrt(q.shape[-1])
        alpha = logits.masked_fill(z == 0, float("-inf")).softmax(-1)
        copy = torch.zeros(*z.shape[:2], self.vocab_size, device=z.device)
        copy = copy.scatter_add(-1, z, alpha)                         # (B, k, V)
        return ((1 - self.eps) * copy + self.eps / self.vocab_size).log()


def marginal_log_likelihood(scores: torch.Tensor,
                            log_p_y: torch.Tensor) -> torch.Tensor:
    """log p(y|x) = log sum_z p(y|z,x) softmax(f(x,.))_z, for scores f (B, k) and
    log p(y|z,x) (B, k); computed in log space (logsumexp), (B,)."""
    _check_pair(scores, log_p_y)
    return torch.logsumexp(scores.log_softmax(-1) + log_p_y, -1)


def retrieval_reward(scores: torch.Tensor, log_p_y: torch.Tensor) -> torch.Tensor:
    """REALM's r(z) = [p(y|z,x) / p(y|x) - 1] p(z|x), the gradient of log p(y|x) with
    respect to f(x, z): the score of a document that predicts y better than the
    average retrieved document goes up. (B, k)."""
    _check_pair(scores, log_p_y)
    log_p_z = scores.log_softmax(-1)
    log_marginal = torch.logsumexp(log_p_z + log_p_y, -1, keepdim=True)
    return ((log_p_y - log_marginal).exp() - 1) * log_p_z.exp()


class Realm(nn.Module):
    """Retriever (Embed_input, Embed_doc) and reader, with a stale MIPS index.

    The model is built on the device of world's tensors (``World.to``); the index
    stays in faiss on the CPU.
    """

    def __init__(self, world: World, d: int = 32, k: int = 8, eps: float = 0.05,
                 tied: bool = True):
        super().__init__()
        n = len(world.docs)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
            raise ValueError(f"k must be an int in 1..{len(world.docs)}, got {k!r}")
        v = len(world.vocab)
        self.k, self.world = k, world
        self.embed_input, self.embed_doc = BagEncoder(v, d, d), BagEncoder(v, d, d)
        if tied:  # one word-embedding table, two projections W_input, W_doc.
            # orig: REALM's two BERTs start from one checkpoint and then move apart;
            # ours stay tied. The table is the retriever's alone (the reader has its
            # own), so it learns only through f(x, z), i.e. from r(z).
            self.embed_doc.embed = self.embed_input.embed
        self.reader = PointerReader(v, world.docs.shape[1], d, eps)
        self.index = None       # faiss.IndexFlatIP of stale document embeddings
        self.stale = None       # (N, d) on the CPU, like the index
        self.refreshes = 0
        self.to(world.docs.device)

    def refresh(self) -> None:
        """Re-embed every document with the current theta and rebuild the index."""
        with torch.no_grad():
            emb = self.embed_doc(self.world.docs).float().cpu().numpy()
        self.stale = torch.from_numpy(emb)                      # (N, d), theta'
        self.index = build_index(emb)                           # exact MIPS
        self.refreshes += 1

    def retrieve(self, x: torch.Tensor) -> torch.Tensor:
        """Top-k document ids for each x by MIPS over the (stale) index: (B, k)."""
        if self.index is None:
            raise ValueError("the index is empty: call refresh() first")
        with torch.no_grad():
            q = self.embed_input(x).float().cpu().numpy()
        _, ids = checked_search(self.index, q, self.k)
        return torch.from_numpy(ids).to(x.device)

    def log_likelihood(self, x, y, doc_ids, fresh: bool = True):
        """log p(y|x) over the documents doc_ids (B, k), scored with the current
        encoders (fresh=True, REALM) or with the stale index's embeddings."""
        z = self.world.docs.to(x.device)[doc_ids]                   # (B, k, L_z)
        if fresh:
            scores = torch.einsum("bd,bkd->bk", self.embed_input(x), self.embed_doc(z))
        else:
            stale = self.stale.to(x.device)[doc_ids]                # no gradient
            scores = torch.einsum("bd,bkd->bk", self.embed_input(x), stale)
        log_p_y = self.reader(x, z).gather(
            -1, y.view(-1, 1, 1).expand(-1, z.shape[1], 1)).squeeze(-1)  # (B, k)
        return marginal_log_likelihood(scores, log_p_y), scores, log_p_y


def split_facts(world: World, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) statement indices: one random fact per person is held out of
    pre-training; only its biography can tell it."""
    g = torch.Generator().manual_seed(seed)
    n = len(world.people)
    per = len(world.x) // n
    held = torch.arange(n) * per + torch.randint(per, (n,), generator=g)
    mask = torch.ones(len(world.x), dtype=torch.bool)
    mask[held] = False
    return torch.arange(len(world.x))[mask], held


def _subset(world: World, idx):
    if idx is None:
        return torch.arange(len(world.x))
    if not isinstance(idx, torch.Tensor) or idx.dtype != torch.long or idx.dim() != 1:
        raise TypeError("idx must be a 1-d torch.long tensor of statement indices")
    if len(idx) == 0 or idx.min() < 0 or idx.max() >= len(world.x):
        raise ValueError(f"idx must be non-empty and lie in 0..{len(world.x) - 1}")
    return idx


@torch.no_grad()
def recall_at_1(model: Realm, world: World, idx=None) -> float:
    """Share of statements whose best document under the *current* encoders is the
    biography that states the fact (exact search over all of Z)."""
    idx = _subset(world, idx)
    f = model.embed_input(world.x[idx]) @ model.embed_doc(world.docs).T   # (M, N)
    return (f.argmax(1) == world.gold[idx]).float().mean().item()


@torch.no_grad()
def mlm_accuracy(model: Realm, world: World, idx=None) -> float:
    """Share of masks filled correctly by argmax_y p(y|x), with top-k from the index."""
    idx = _subset(world, idx)
    x = world.x[idx]
    z = world.docs[model.retrieve(x)]                                   # (M, k, L_z)
    scores = torch.einsum("bd,bkd->bk", model.embed_input(x), model.embed_doc(z))
    log_p_z = scores.log_softmax(-1).unsqueeze(-1)                     # (M, k, 1)
    log_p = torch.logsumexp(log_p_z + model.reader(x, z), 1)            # (M, V)
    return (log_p.argmax(-1) == world.y[idx]).float().mean().item()


def train_no_retrieval(world: World, train_idx, steps: int, *, seed: int = 0,
                       batch: int = 32, lr: float = 0.01) -> BagEncoder:
    """The same masked statements, no retrieval: a bag of words of x -> the vocabulary.
    It can memorise the facts it is trained on, in its parameters, and nothing else."""
    train_idx = _subset(world, train_idx)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = BagEncoder(len(world.vocab), 32, len(world.vocab)).to(world.x.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        i = train_idx[torch.randint(len(train_idx), (batch,), generator=g)]
        loss = nn.functional.cross_entropy(model(world.x[i]), world.y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def train_realm(world: World, steps: int, refresh_every: int | None, *, seed: int = 0,
                train_idx=None, held_idx=None, batch: int = 32, lr: float = 0.01,
                k: int = 8, d: int = 32, fresh: bool = True, tied: bool = True,
                eval_every: int = 25, progress=None) -> dict:
    """Pre-train REALM from random encoders and reader on the statements train_idx;
    refresh the index every refresh_every steps (None: built once, never refreshed);
    fresh=False scores the top k with the stale index's embeddings instead of the
    current encoders; tied=False gives the two encoders separate word embeddings.
    Metrics are measured on held_idx (default: all statements) every
    eval_every steps; "overlap", at every step, is the share of the stale index's top k
    that an index rebuilt with the current encoders would also return. Training never
    reads world.gold (which biography states a fact); only recall@1 does."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    r = refresh_every
    if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 1):
        raise ValueError(f"refresh_every must be a positive int or None, "
                         f"got {refresh_every!r}")
    train_idx, held_idx = _subset(world, train_idx), _subset(world, held_idx)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = Realm(world, d=d, k=k, tied=tied)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.refresh()
    out = {"step": [], "recall_at_1": [], "mlm_accuracy": [], "loss": [],
           "docs_embedded": [], "overlap": []}  # overlap: one value per step
    losses = []

    def record(done):
        out["step"].append(done)
        out["recall_at_1"].append(recall_at_1(model, world, held_idx))
        out["mlm_accuracy"].append(mlm_accuracy(model, world, held_idx))
        out["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        out["docs_embedded"].append(model.refreshes * len(world.docs))
        losses.clear()

    record(0)
    for step in progress(range(steps)) if progress else range(steps):
        if refresh_every is not None and step > 0 and step % refresh_every == 0:
            model.refresh()            # theta' <- theta: re-embed all of Z
        i = train_idx[torch.randint(len(train_idx), (batch,), generator=g)]
        doc_ids = model.retrieve(world.x[i])                # top k by the stale index
        with torch.no_grad():   # what a fresh index would return: the stale one's error
            f = model.embed_input(world.x[i]) @ model.embed_doc(world.docs).T
            best = f.topk(k, dim=1).indices                                   # (B, k)
        same = (doc_ids.unsqueeze(2) == best.unsqueeze(1)).any(2)        # (B, k)
        out["overlap"].append(round(same.float().mean().item(), 5))
        log_lik, _, _ = model.log_likelihood(world.x[i], world.y[i], doc_ids, fresh)
        loss = -log_lik.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % eval_every == 0:
            record(step + 1)
    out["model"] = model
    return out


def _check_ids(ids, vocab_size) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        raise TypeError(f"token ids must be a torch.long tensor, got {ids!r:.60}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in 0..{vocab_size - 1}, got "
                         f"{ids.min().item()}..{ids.max().item()}")


def _check_pair(scores, log_p_y) -> None:
    for name, t in (("scores", scores), ("log_p_y", log_p_y)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {t!r:.60}")
    if scores.shape != log_p_y.shape or scores.dim() < 1 or scores.shape[-1] < 1:
        raise ValueError("scores and log_p_y must have the same shape (..., k) with k"
                         f" >= 1, got {tuple(scores.shape)} and {tuple(log_p_y.shape)}")
    if (log_p_y > 1e-6).any():
        raise ValueError("log_p_y holds log-probabilities: every entry must be <= 0")

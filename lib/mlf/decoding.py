"""Decoding a language model: truncation filters, samplers, beam search, and measures
of degenerate text (Holtzman et al. 2020, "The curious case of neural text
degeneration").

A *filter* maps next-token logits (..., V) to logits of the same shape in which the
tokens it removes are set to -inf; softmax then renormalises over the kept ones.

* ``top_k_filter`` keeps every token whose logit is >= the k-th largest logit. Ties at
  the k-th place are all kept, so more than k tokens may survive: the convention of
  ``transformers``' ``TopKLogitsWarper`` (``scores < topk(scores, k)[0][..., -1]``).
* ``top_p_filter`` keeps the nucleus V^(p), the smallest set of most probable tokens
  whose mass reaches p (Holtzman et al., eq. 2). Computed as ``TopPLogitsWarper``
  computes it: sort the logits in *ascending* order, accumulate the softmax, remove
  the tokens whose cumulative mass is <= 1 - p, and keep the most probable token
  always. Where tokens tied in probability straddle the boundary, which of them are
  kept is decided by the order ``torch.sort`` puts them in, as in ``transformers``
  (an unstable sort: by id for short rows on a CPU, otherwise unspecified). How many
  are kept, and their mass, do not depend on that order.

``sampler`` chains temperature -> top-k -> top-p (``transformers``' order) and draws;
``beam_search`` keeps the ``width`` most probable prefixes at every step (the book's
model has no end-of-text token: every hypothesis has the same length, so no length
penalty is needed).
``continuation_logprobs`` scores a text under a model (perplexity;
``sequence_logprobs`` is the same with gradients, for training losses), and
``ends_in_repetition`` and ``distinct_n`` measure how repetitive a text is.

>>> logits = torch.tensor([[2.0, 1.0, 1.0, 0.0]])
>>> top_k_filter(logits, 2)  # the tie at the 2nd place is kept
tensor([[2., 1., 1., -inf]])
>>> ends_in_repetition([5, 1, 2, 1, 2, 1, 2])  # "1 2" three times at the end
True
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch


def _check_logits(logits) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a floating-point tensor (..., V), got "
                        f"{getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError("logits must have shape (..., V) with V >= 1 tokens, got "
                         f"{tuple(logits.shape)}")


def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {k!r}")


def _check_p(p) -> None:
    if isinstance(p, bool) or not isinstance(p, Real) or not 0 < p <= 1:
        raise ValueError(f"top_p must be a number in (0, 1], got {p!r}")


def _check_temperature(t) -> None:
    if isinstance(t, bool) or not isinstance(t, Real) or not t > 0 \
            or math.isinf(t):
        raise ValueError(f"temperature must be a positive finite number, got {t!r}")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the tokens whose logit is >= the k-th largest (ties kept); others -inf."""
    _check_logits(logits)
    _check_k(k)
    k = min(int(k), logits.shape[-1])
    kth = logits.topk(k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest logit
    return logits.masked_fill(logits < kth, -math.inf)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the nucleus: the most probable tokens whose mass first reaches ``p``."""
    _check_logits(logits)
    _check_p(p)
    # subtle: the same (unstable) sort as transformers, so that tied tokens at the
    # boundary are split between kept and removed exactly as theirs are
    ascending, order = logits.sort(dim=-1)  # least probable first
    mass = ascending.softmax(-1).cumsum(-1)  # mass of this token and all below it
    # the tail is what lies at or below 1 - p; its complement, the nucleus, then
    # holds mass >= p. Comparing in the logits' dtype, as transformers does, keeps
    # the kept sets equal even where the mass lands exactly on 1 - p.
    drop = mass <= 1 - p
    drop[..., -1] = False  # the most probable token is always kept
    drop = drop.scatter(-1, order, drop)  # back to vocabulary order
    return logits.masked_fill(drop, -math.inf)


def nucleus_size(logits: torch.Tensor, p: float) -> torch.Tensor:
    """|V^(p)|: how many tokens ``top_p_filter`` keeps, for each row (...,)."""
    return top_p_filter(logits, p).isfinite().sum(-1)


def sampler(temperature: float = 1.0, top_k: int | None = None,
            top_p: float | None = None):
    """A sampler (logits (B, V), generator) -> ids (B,) for ``mlf.gpt.generate``.

    Divides the logits by ``temperature``, keeps the ``top_k`` most probable tokens,
    then the nucleus of mass ``top_p``, and draws from the softmax of what is left.
    ``sampler()`` is pure sampling from the model's own distribution.
    """
    _check_temperature(temperature)
    if top_k is not None:
        _check_k(top_k)
    if top_p is not None:
        _check_p(top_p)

    def sample(logits, generator=None):
        z = logits.float() / temperature  # (B, V)
        if top_k is not None:
            z = top_k_filter(z, top_k)
        if top_p is not None:
            z = top_p_filter(z, top_p)
        return torch.multinomial(z.softmax(-1), 1, generator=generator).squeeze(-1)

    return sample


# --- beam search --------------------------------------------------------------------

def _check_prompt(prompt) -> None:
    if not isinstance(prompt, torch.Tensor) or prompt.ndim != 2 \
            or prompt.dtype != torch.long or prompt.shape[1] < 1:
        raise ValueError("prompt must be a (batch, time) tensor of token ids "
                         "(torch.long) with at least one token, got "
                         f"{getattr(prompt, 'dtype', type(prompt).__name__)} "
                         f"{tuple(getattr(prompt, 'shape', ()))}")


def _check_count(name, value, least) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


@torch.no_grad()
def beam_search(model, prompt: torch.Tensor, steps: int, width: int):
    """For each prompt, keep the ``width`` most probable continuations step by step;
    return the best ones, ``prompt`` (B, T0) extended by ``steps`` ids
    -> (B, T0 + steps), and their log-probabilities log P(y_1..y_steps | prompt) in
    nats -> (B,).

    ``model`` is a ``mlf.gpt.GPT`` (or anything with its ``new_cache`` and
    ``forward(ids, cache)``). Width 1 is greedy decoding; a width of at least
    V^(steps - 1) keeps every prefix, so the search is exact. The prompts of a batch
    are searched side by side, each with its own beam. With no end-of-text token this
    is ``transformers``' beam search (``num_beams=width``): the same continuations.
    """
    _check_prompt(prompt)
    _check_count("steps", steps, 0)
    _check_count("width", width, 1)
    was_training = model.training
    model.eval()
    batch = prompt.shape[0]
    cache = model.new_cache()
    beams = prompt  # (B * n, T): n <= width live hypotheses per prompt, prompt-major
    scores = torch.zeros(batch, 1, device=prompt.device)  # (B, n): log P so far
    if steps:
        logp = model(prompt, cache)[:, -1].float().log_softmax(-1)  # (B * n, V)
    for step in range(steps):
        n, vocab = scores.shape[1], logp.shape[-1]
        # every extension of every hypothesis of a prompt, (B, n * V)
        candidates = (scores[..., None] + logp.view(batch, n, vocab)).flatten(1)
        scores, flat = candidates.topk(min(width, n * vocab), dim=-1)  # (B, n')
        parent = flat // vocab + n * torch.arange(batch, device=flat.device)[:, None]
        parent, token = parent.flatten(), (flat % vocab).flatten()  # (B * n',)
        beams = torch.cat([beams[parent], token[:, None]], dim=1)
        for layer in cache:  # each surviving hypothesis takes its parent's keys
            layer.k, layer.v = layer.k[parent], layer.v[parent]
        if step + 1 < steps:
            logp = model(token[:, None], cache)[:, -1].float().log_softmax(-1)
    model.train(was_training)
    best = beams.view(batch, scores.shape[1], -1)[:, 0]  # topk sorts: 0 is the best
    return best, scores[:, 0]


# --- scoring and measuring text -----------------------------------------------------

def _check_continuation(ids, start) -> None:
    """ids: a non-empty (B, T) batch of token ids; start: where the scored part
    begins."""
    _check_prompt(ids)
    if ids.shape[0] == 0:
        raise ValueError("ids must hold at least one sequence")
    if isinstance(start, bool) or not isinstance(start, Integral) \
            or not 1 <= start < ids.shape[1]:
        raise ValueError(f"start must be an integer in 1..{ids.shape[1] - 1} (the "
                         f"first token has no context), got {start!r}")


def sequence_logprobs(model, ids: torch.Tensor, start: int) -> torch.Tensor:
    """log P(ids[:, t] | ids[:, :t]) under ``model`` for t = start .. T-1 ->
    (B, T - start), in nats, with gradients and in the model's current mode (what a
    training loss needs). Sum over the last dim for the continuation's log-prob."""
    _check_continuation(ids, start)
    logp = model(ids[:, :-1]).float().log_softmax(-1)  # (B, T-1, V): predicts 1..T-1
    return logp.gather(-1, ids[:, 1:, None])[..., 0][:, start - 1:]  # (B, T - start)


@torch.no_grad()
def continuation_logprobs(model, ids: torch.Tensor, start: int) -> torch.Tensor:
    """``sequence_logprobs`` for measuring: in eval mode, without gradients. How
    probable the model finds each token of a continuation that begins at ``start``;
    perplexity is exp(-mean)."""
    was_training = model.training
    model.eval()
    try:
        return sequence_logprobs(model, ids, start)
    finally:
        model.train(was_training)


def _tokens(seq) -> list:
    if isinstance(seq, torch.Tensor):
        if seq.ndim != 1:
            raise ValueError(f"expected one sequence (1-d), got shape "
                             f"{tuple(seq.shape)}")
        return seq.tolist()
    if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
        raise TypeError(f"expected a sequence of tokens (list or 1-d tensor), got "
                        f"{type(seq).__name__}")
    return list(seq)


def ends_in_repetition(seq, min_len: int = 2, times: int = 3) -> bool:
    """Whether ``seq`` ends in a loop: a phrase of at least ``min_len`` tokens
    repeated at least ``times`` times in a row at its very end (the paper's
    repetition measure: min length 2, three times)."""
    _check_count("min_len", min_len, 1)
    _check_count("times", times, 2)
    tokens = _tokens(seq)
    for length in range(min_len, len(tokens) // times + 1):
        phrase = tokens[len(tokens) - length:]
        if tokens[len(tokens) - times * length:] == phrase * times:
            return True
    return False


def distinct_n(seq, n: int) -> float:
    """Distinct n-grams over all n-grams of ``seq`` (Li et al. 2016), in (0, 1]: 1
    when no n-gram repeats, 1 / (len - n + 1) when one n-gram fills the text."""
    _check_count("n", n, 1)
    tokens = _tokens(seq)
    if len(tokens) < n:
        raise ValueError(f"a sequence of {len(tokens)} tokens has no {n}-grams")
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams)

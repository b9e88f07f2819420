"""Grouped-query attention (Ainslie et al. 2023): fewer key/value heads than queries.

Multi-head attention (MHA) gives each of the h query heads its own key and value head;
multi-query attention (MQA, Shazeer 2019) gives all h query heads one shared key and
value head; grouped-query attention with G groups (GQA-G) sits between them: query heads
are cut into G groups of h / G, and each group shares one key and value head. GQA-1 is
MQA, GQA-h is MHA. The attention itself is ``mlf.transformer.MultiHeadAttention`` with
``n_kv_heads = G``; this module adds what the paper adds around it:

* ``grouped_attention``: the grouped computation written out, each query head reading
  its group's key/value head without copying it (checked against
  ``F.scaled_dot_product_attention(..., enable_gqa=True)`` in the tests);
* ``convert``: a multi-head checkpoint turned into a GQA-G one, the paper's section 2.1:
  the key and value projection matrices of each group's heads are mean-pooled
  ("mean"), or the group's first head is kept ("first"), or the new heads start from
  scratch ("random"); the model is then uptrained briefly (``mlf.gpt.train_steps``);
* ``kv_cache_bytes``: what the key/value cache of a decoder holds, which is where the
  memory (and, for large models, the decoding time) goes.

The grouping convention is ``MultiHeadAttention``'s, and the one of
``F.scaled_dot_product_attention(enable_gqa=True)`` and of Llama's ``repeat_kv``: query
head i reads key/value head i // (h / G), so a group is h / G *consecutive* query heads.
"""
from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch
from torch import nn

from mlf.gpt import GPT
from mlf.transformer import MultiHeadAttention

METHODS = ("mean", "first", "random")


def grouped_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(Q_i K_g^T / sqrt(d_k)) V_g for every query head i of group g.

    q: (B, h, T_q, d_k); k, v: (B, G, T_k, d_k) with G dividing h; mask: bool,
    (T_q, T_k) or broadcastable to it (the same for every sequence and head), True
    where attention is allowed.
    Returns (B, h, T_q, d_k). Query heads g * h/G .. (g + 1) * h/G - 1 share head g.
    """
    _check_qkv(q, k, v, mask)
    (b, h, t_q, d_k), g = q.shape, k.shape[1]
    t_k, n = k.shape[2], h // g  # n = h / G query heads per group
    # a group's n query heads read the same keys: stack their queries as if they were
    # n * T_q positions of one head, so each key/value head is read once, never copied
    q = q.reshape(b, g, n * t_q, d_k)  # (B, G, n T_q, d_k)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (B, G, n T_q, T_k)
    if mask is not None:  # the same (T_q, T_k) mask for each of the n heads
        scores = scores.view(b, g, n, t_q, t_k).masked_fill(~mask, float("-inf"))
    # subtle: a query row with nothing allowed becomes NaN, as in
    # mlf.transformer; PyTorch's F.scaled_dot_product_attention returns 0 there
    weights = scores.view(b, g, n * t_q, t_k).softmax(-1)
    out = weights @ v  # (B, G, n T_q, d_k)
    return out.view(b, h, t_q, d_k)


def pool_heads(weight: torch.Tensor, n_heads: int, n_kv_heads: int,
               method: str = "mean", generator: torch.Generator | None = None,
               std: float = 0.02) -> torch.Tensor:
    """Key or value projection of h heads -> of G heads: (h d_k, ...) -> (G d_k, ...).

    ``weight`` stacks the heads' rows, head j in rows j * d_k .. (j + 1) * d_k - 1 (an
    ``nn.Linear`` weight, or its bias). Group g holds heads g h/G .. (g + 1) h/G - 1;
    "mean" averages their rows, "first" keeps head g * h/G, "random" draws new rows from
    N(0, std^2) (a weight) or zeros (a bias), as the model was initialised.
    """
    _check_heads(n_heads, n_kv_heads)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(weight, torch.Tensor) or weight.ndim not in (1, 2) \
            or weight.shape[0] % n_heads:
        raise ValueError(f"weight must be a 1-d or 2-d tensor whose first dimension is "
                         f"a multiple of n_heads ({n_heads}), got "
                         f"{tuple(getattr(weight, 'shape', ())) or type(weight)}")
    d_k, rest = weight.shape[0] // n_heads, weight.shape[1:]
    heads = weight.reshape(n_kv_heads, n_heads // n_kv_heads, d_k, *rest)
    if method == "mean":  # W_g = (1 / (h/G)) sum of W_j over the group's heads j
        pooled = heads.mean(1)
    elif method == "first":
        pooled = heads[:, 0]
    elif weight.ndim == 1:  # "random": biases start at zero, as in GPT._init
        pooled = torch.zeros_like(heads[:, 0])
    else:
        pooled = torch.randn(heads[:, 0].shape, generator=generator) * std
        pooled = pooled.to(weight)
    return pooled.reshape(n_kv_heads * d_k, *rest)  # (G * d_k, ...)


def convert_attention(attn: MultiHeadAttention, n_kv_heads: int, method: str = "mean",
                      generator: torch.Generator | None = None) -> MultiHeadAttention:
    """A multi-head ``attn`` (one key/value head per query head) with its keys and
    values pooled into ``n_kv_heads`` heads; queries and output are copied."""
    if not isinstance(attn, MultiHeadAttention):
        raise TypeError(f"attn must be a MultiHeadAttention, got {type(attn).__name__}")
    if attn.h_kv != attn.h:
        raise ValueError(f"convert a multi-head checkpoint: this attention has "
                         f"{attn.h_kv} key/value heads for {attn.h} query heads")
    _check_heads(attn.h, n_kv_heads)
    bias, w = attn.w_k.bias is not None, attn.w_k.weight
    new = copy.deepcopy(attn)  # W^Q, W^O and everything else as they are
    new.h_kv = n_kv_heads
    with torch.no_grad():
        for name in ("w_k", "w_v"):
            old = getattr(attn, name)
            # subtle: skip_init leaves the global random state alone, so converting
            # does not change what later random draws give
            fresh = nn.utils.skip_init(nn.Linear, attn.d_model, n_kv_heads * attn.d_k,
                                       bias=bias, device=w.device, dtype=w.dtype)
            fresh.weight.copy_(pool_heads(old.weight, attn.h, n_kv_heads, method,
                                          generator))
            if bias:
                fresh.bias.copy_(pool_heads(old.bias, attn.h, n_kv_heads, method))
            setattr(new, name, fresh)
    return new


def convert(model: GPT, n_kv_heads: int, method: str = "mean",
            generator: torch.Generator | None = None) -> GPT:
    """A copy of the multi-head ``model`` with ``n_kv_heads`` key/value heads in every
    layer (GQA; 1 is MQA), by ``method``: "mean" (the paper's), "first" or "random".

    With ``n_kv_heads`` equal to the number of heads every method but "random" returns
    the same model. Nothing else changes; uptrain it with ``mlf.gpt.train_steps``.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an mlf.gpt.GPT, got {type(model).__name__}")
    _check_heads(model.cfg.n_heads, n_kv_heads)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    new = copy.deepcopy(model)
    new.cfg = replace(model.cfg, n_kv_heads=n_kv_heads)
    for block in new.blocks:
        block.attn = convert_attention(block.attn, n_kv_heads, method, generator)
    return new


def kv_cache_bytes(n_layers: int, n_kv_heads: int, d_k: int, batch: int, length: int,
                   bytes_per_value: int = 2) -> int:
    """Bytes of a decoder's key/value cache: keys and values (2) of ``n_kv_heads`` heads
    of size ``d_k`` in each of ``n_layers`` layers, for ``batch`` sequences of
    ``length`` tokens, ``bytes_per_value`` each (2 for float16 or bfloat16, 4 for
    float32)."""
    for name, value in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads),
                        ("d_k", d_k), ("batch", batch), ("length", length),
                        ("bytes_per_value", bytes_per_value)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return 2 * n_layers * batch * length * n_kv_heads * d_k * bytes_per_value


def _check_qkv(q, k, v, mask) -> None:
    """grouped_attention's inputs: q (B, h, T_q, d_k); k, v (B, G, T_k, d_k), G | h;
    mask None or bool, broadcastable to (T_q, T_k)."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shown = tuple(getattr(x, "shape", ())) or type(x).__name__
            raise ValueError(f"{name} must be a 4-d tensor (batch, heads, time, d_k), "
                             f"got {shown}")
    (b, h, t_q, d_k), g = q.shape, k.shape[1]
    if k.shape != v.shape or k.shape[0] != b or k.shape[3] != d_k:
        raise ValueError(f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)}; expected q (B, h, T_q, d_k) and "
                         "k, v (B, G, T_k, d_k)")
    if h % g:
        raise ValueError(f"the {g} key/value heads must divide the {h} query heads")
    if mask is None:
        return
    shape = tuple(getattr(mask, "shape", ()))
    fits = len(shape) <= 2 and all(
        m in (1, want) for m, want in zip(shape[::-1], (k.shape[2], t_q)))
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or not fits:
        raise ValueError("mask must be a bool tensor broadcastable to (T_q, T_k) = "
                         f"({t_q}, {k.shape[2]}), got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)} {shape}")


def _check_heads(n_heads, n_kv_heads) -> None:
    for name, value in (("n_heads", n_heads), ("n_kv_heads", n_kv_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads ({n_kv_heads}) must divide n_heads ({n_heads}): "
                         "each key/value head serves a group of h / G query heads")


__all__ = ["METHODS", "convert", "convert_attention", "grouped_attention",
           "kv_cache_bytes", "pool_heads"]

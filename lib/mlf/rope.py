"""Rotary position embeddings, RoPE (Su et al. 2021, RoFormer, section 3.4).

Each query and key vector of a head, of even size d, is cut into d/2 pairs of
coordinates; pair i at position m is rotated by the angle m * theta_i, with
theta_i = base^(-2(i-1)/d) (the paper's eq. 15, base 10000). A rotation R(m) followed
by R(n)^T is R(n - m), so the score q_m . k_n depends on the positions only through
n - m.

Pairing: the paper pairs adjacent coordinates (x_1, x_2), (x_3, x_4), ...
(``interleaved``, our default, as the authors' RoFormer and Hugging Face's
``RoFormerModel``). GPT-NeoX, Llama and Hugging Face's ``apply_rotary_pos_emb`` pair
coordinate j with j + d/2 (``rotate_half``). The two are the same rotation up to a fixed
permutation of the coordinates (``split_halves_order``), but weights trained with one
pairing are wrong for the other.

>>> rope = Rotary(4)
>>> x = torch.ones(1, 1, 3, 4)                      # (B, heads, T, d)
>>> bool(torch.allclose(rope(x).norm(dim=-1), x.norm(dim=-1)))   # rotations keep norms
True
>>> split_halves_order(6).tolist()    # pairs (0, 1), (2, 3), (4, 5) -> (j, j + 3)
[0, 2, 4, 1, 3, 5]
"""
from __future__ import annotations

import torch
from torch import nn


class Rotary(nn.Module):
    """``rotate(x, offset)`` for ``MultiHeadAttention``: x (..., T, d) at the positions
    offset .. offset + T - 1.

    ``scale`` < 1 is position interpolation (Chen et al. 2023): position m is used as
    m * scale, so a model trained on T positions sees a longer input within its range.
    """

    def __init__(self, d: int, base: float = 10000.0, interleaved: bool = True,
                 scale: float = 1.0):
        super().__init__()
        if isinstance(d, bool) or not isinstance(d, int) or d < 2 or d % 2:
            raise ValueError(f"rotary embeddings rotate pairs: the head size d must be "
                             f"a positive even integer, got {d!r}")
        for name, value in (("base", base), ("scale", scale)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if not base > 1:
            raise ValueError(f"base must be greater than 1, got {base!r}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        if not isinstance(interleaved, bool):
            raise ValueError(f"interleaved must be True (adjacent pairs, the paper's) "
                             f"or False (split halves, Llama's), got {interleaved!r}")
        self.d, self.base, self.interleaved = d, float(base), interleaved
        self.scale = float(scale)
        # theta_i = base^(-2(i-1)/d), i = 1..d/2
        theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        self.register_buffer("theta", theta.float(), persistent=False)

    def angles(self, t: int, offset: int = 0, device=None) -> torch.Tensor:
        """(t, d/2): m * theta_i for the positions m = offset .. offset + t - 1."""
        m = torch.arange(offset, offset + t, device=device, dtype=torch.float32)
        return (m * self.scale)[:, None] * self.theta.to(device)[None, :]

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        self._check(x, offset)
        a = self.angles(x.shape[-2], offset, x.device)  # (T, d/2)
        cos, sin = a.cos().to(x.dtype), a.sin().to(x.dtype)
        if self.interleaved:  # pairs (x_1, x_2), (x_3, x_4), ...: the paper's eq. 34
            x1, x2 = x[..., 0::2], x[..., 1::2]
        else:  # pairs (x_j, x_{j + d/2}): rotate_half, as GPT-NeoX and Llama do
            x1, x2 = x[..., : self.d // 2], x[..., self.d // 2:]
        # each pair (x1, x2) turns by its angle: the 2-d rotation of eq. 13
        y1, y2 = x1 * cos - x2 * sin, x1 * sin + x2 * cos
        if self.interleaved:
            return torch.stack((y1, y2), dim=-1).flatten(-2)
        return torch.cat((y1, y2), dim=-1)

    def _check(self, x, offset):
        if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[-1] != self.d:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected a tensor (..., T, d) with d = {self.d} in the "
                             f"last dimension, got {shape}")
        if not x.is_floating_point():
            raise ValueError(f"expected floating-point vectors, got {x.dtype}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be a non-negative integer, got {offset!r}")


def split_halves_order(d: int) -> torch.Tensor:
    """The coordinate order that turns the paper's layout into Llama's:
    ``x[..., order]`` moves pair i, coordinates (2i, 2i+1), to (i, i + d/2). Applied to
    the rows of a head's W_Q and W_K, it converts weights from one pairing to the
    other."""
    if isinstance(d, bool) or not isinstance(d, int) or d < 2 or d % 2:
        raise ValueError(f"d must be a positive even integer, got {d!r}")
    return torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])


def decay_bound(distance: torch.Tensor, d: int, base: float = 10000.0) -> torch.Tensor:
    """The paper's relative upper bound (section 3.4.3, Fig. 2) at each relative
    distance r = m - n: (1/(d/2)) * sum_{j=1..d/2} |S_j|, with
    S_j = sum_{k<j} e^{i r theta_k}, theta_k = base^(-2k/d), k = 0..d/2-1. The score's
    size is at most d/2 times this times max_i |h_{i+1} - h_i|, which depends on the
    query and key, not on r."""
    if isinstance(d, bool) or not isinstance(d, int) or d < 2 or d % 2:
        raise ValueError(f"d must be a positive even integer, got {d!r}")
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 1:
        raise ValueError(f"base must be a number greater than 1, got {base!r}")
    r = torch.as_tensor(distance, dtype=torch.float64)
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    s = torch.polar(torch.ones(()).double(), r[..., None] * theta).cumsum(-1)  # S_j
    return s.abs().mean(-1)

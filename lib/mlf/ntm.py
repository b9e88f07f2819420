"""Neural Turing Machine (Graves, Wayne & Danihelka 2014): memory, addressing, heads, copy task.

Notation follows the paper: memory M_t is (N, M) per example (N locations of width M); a
weighting w_t is a distribution over the N locations. Every function works on a batch B.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mlf.notebook import progress

EPS = 1e-8  # guards divisions and logs


def _check_batch(name: str, t: torch.Tensor, dims: int) -> None:
    if t.dim() != dims:
        raise ValueError(f"{name} must have {dims} dims, got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(t.shape)}); expected B >= 1")


def _check_weighting(name: str, w: torch.Tensor, memory_rows: int | None = None) -> None:
    _check_batch(name, w, 2)
    if memory_rows is not None and w.shape[1] != memory_rows:
        raise ValueError(f"{name} has {w.shape[1]} locations but memory has {memory_rows} rows")


def read(memory: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Eq. (2): r_t = sum_i w_t(i) M_t(i). memory (B, N, M), w (B, N) -> (B, M)."""
    _check_batch("memory", memory, 3)
    _check_weighting("w", w, memory.shape[1])
    return torch.einsum("bn,bnm->bm", w, memory)


def write(memory: torch.Tensor, w: torch.Tensor, e: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Eqs. (3)-(4): erase then add. memory (B, N, M), w (B, N), e and a (B, M) -> (B, N, M).

    M~_t(i) = M_{t-1}(i) [1 - w_t(i) e_t];  M_t(i) = M~_t(i) + w_t(i) a_t. ``e`` lies in [0, 1].
    """
    _check_batch("memory", memory, 3)
    _check_weighting("w", w, memory.shape[1])
    for name, v in (("e", e), ("a", a)):
        if v.shape != (memory.shape[0], memory.shape[2]):
            raise ValueError(f"{name} must have shape (B, M) = {(memory.shape[0], memory.shape[2])}, "
                             f"got {tuple(v.shape)}")
    w = w.unsqueeze(-1)  # (B, N, 1)
    erased = memory * (1 - w * e.unsqueeze(1))  # (B, N, M)
    return erased + w * a.unsqueeze(1)


def content_weights(memory: torch.Tensor, key: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Eqs. (5)-(6): w^c_t(i) = softmax_i(beta_t K[k_t, M_t(i)]), K the cosine similarity.

    memory (B, N, M), key (B, M), beta (B,) with beta >= 0 -> (B, N).
    """
    _check_batch("memory", memory, 3)
    if key.shape != (memory.shape[0], memory.shape[2]):
        raise ValueError(f"key must have shape (B, M) = {(memory.shape[0], memory.shape[2])}, "
                         f"got {tuple(key.shape)}")
    if beta.shape != (memory.shape[0],):
        raise ValueError(f"beta must have shape (B,) = ({memory.shape[0]},), got {tuple(beta.shape)}")
    if (beta < 0).any():
        raise ValueError("key strength beta must be >= 0 (the paper's beta_t is positive)")
    dot = torch.einsum("bnm,bm->bn", memory, key)  # (B, N)
    norms = memory.norm(dim=-1) * key.norm(dim=-1, keepdim=True)  # (B, N)
    K = dot / norms.clamp_min(EPS)  # cosine similarity in [-1, 1]
    return torch.softmax(beta.unsqueeze(-1) * K, dim=-1)


def interpolate(w_c: torch.Tensor, w_prev: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Eq. (7): w^g_t = g_t w^c_t + (1 - g_t) w_{t-1}. w_c, w_prev (B, N), g (B,) in [0, 1]."""
    _check_weighting("w_c", w_c)
    if w_prev.shape != w_c.shape:
        raise ValueError(f"w_prev {tuple(w_prev.shape)} and w_c {tuple(w_c.shape)} must have the same shape")
    if g.shape != (w_c.shape[0],):
        raise ValueError(f"g must have shape (B,) = ({w_c.shape[0]},), got {tuple(g.shape)}")
    if ((g < 0) | (g > 1)).any():
        raise ValueError("interpolation gate g must lie in [0, 1]")
    g = g.unsqueeze(-1)  # (B, 1)
    return g * w_c + (1 - g) * w_prev


def shift(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Eq. (8): circular convolution w~_t(i) = sum_j w^g_t(j) s_t(i - j), indices mod N.

    w (B, N); s (B, S) is a distribution over the S = 2k + 1 integer shifts -k..k (s[:, k] is
    "stay"). A one-hot s on shift +1 moves every location's weight one slot forward.
    """
    _check_weighting("w", w)
    if s.dim() != 2 or s.shape[0] != w.shape[0] or s.shape[1] % 2 == 0:
        raise ValueError(f"s must have shape (B, S) with B = {w.shape[0]} and S odd (shifts -k..k), "
                         f"got {tuple(s.shape)}")
    n, k = w.shape[1], s.shape[1] // 2
    if s.shape[1] > n:
        raise ValueError(f"{s.shape[1]} shifts do not fit a memory of {n} locations")
    offsets = torch.arange(-k, k + 1, device=w.device)  # (S,)
    idx = (torch.arange(n, device=w.device).unsqueeze(1) - offsets) % n  # (N, S): i - j, mod N
    return torch.einsum("bns,bs->bn", w[:, idx], s)  # subtle: gather, not a loop over shifts


def sharpen(w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Eq. (9): w_t(i) = w~_t(i)^gamma / sum_j w~_t(j)^gamma, with gamma_t >= 1. w (B, N), gamma (B,)."""
    _check_weighting("w", w)
    if gamma.shape != (w.shape[0],):
        raise ValueError(f"gamma must have shape (B,) = ({w.shape[0]},), got {tuple(gamma.shape)}")
    if (gamma < 1).any():
        raise ValueError("sharpening exponent gamma must be >= 1")
    # subtle: w ** gamma underflows to 0/0 for large gamma; the same ratio as a softmax of
    # gamma * log w does not
    return torch.softmax(gamma.unsqueeze(-1) * torch.log(w + EPS), dim=-1)


def address(memory, w_prev, key, beta, g, s, gamma) -> torch.Tensor:
    """The four steps of Fig. 2: content, interpolation, convolutional shift, sharpening."""
    w_c = content_weights(memory, key, beta)
    return sharpen(shift(interpolate(w_c, w_prev, g), s), gamma)


class Head(nn.Module):
    """Maps the controller output to one head's addressing parameters (and e, a for writing)."""

    def __init__(self, controller_size: int, width: int, shifts: int = 3, write: bool = False):
        super().__init__()
        if shifts < 1 or shifts % 2 == 0:
            raise ValueError(f"shifts must be a positive odd number (-k..k), got {shifts}")
        self.is_write = write
        self.sizes = [width, 1, 1, shifts, 1] + ([width, width] if write else [])  # k, β, g, s, γ, (e, a)
        self.proj = nn.Linear(controller_size, sum(self.sizes))

    def forward(self, h: torch.Tensor, memory: torch.Tensor, w_prev: torch.Tensor):
        """h (B, H) -> new weighting (B, N) and, for a write head, erase e and add a (B, M)."""
        parts = self.proj(h).split(self.sizes, dim=-1)
        key, beta, g, s, gamma = parts[:5]
        w = address(memory, w_prev, torch.tanh(key),
                    F.softplus(beta).squeeze(-1),           # β > 0
                    torch.sigmoid(g).squeeze(-1),           # g in (0, 1)
                    torch.softmax(s, dim=-1),               # s a distribution over shifts
                    1 + F.softplus(gamma).squeeze(-1))      # γ >= 1
        if not self.is_write:
            return w, None, None
        return w, torch.sigmoid(parts[5]), torch.tanh(parts[6])  # e in (0, 1), a in (-1, 1)


class NTM(nn.Module):
    """An NTM with an LSTM controller, one read head and one write head (the copy-task setup).

    At each step the controller sees the input and the previous read vector; the output layer
    sees the controller state and the new read vector. ``forward`` returns logits (B, T, out)
    and, if asked, the read and write weightings (B, T, N) for plotting.
    """

    def __init__(self, input_size: int, output_size: int, controller_size: int = 100,
                 memory_rows: int = 32, memory_width: int = 16, shifts: int = 3):
        super().__init__()
        for name, v in (("input_size", input_size), ("output_size", output_size),
                        ("controller_size", controller_size), ("memory_rows", memory_rows),
                        ("memory_width", memory_width)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.N, self.M = memory_rows, memory_width
        self.controller = nn.LSTMCell(input_size + memory_width, controller_size)
        self.read_head = Head(controller_size, memory_width, shifts)
        self.write_head = Head(controller_size, memory_width, shifts, write=True)
        self.out = nn.Linear(controller_size + memory_width, output_size)

    def initial_state(self, batch: int, device):
        memory = torch.full((batch, self.N, self.M), 1e-6, device=device)  # constant init
        w0 = torch.zeros(batch, self.N, device=device)
        w0[:, 0] = 1  # subtle: uniform weightings on a uniform memory could never focus
        h = torch.zeros(batch, self.controller.hidden_size, device=device)
        return memory, w0, w0.clone(), torch.zeros(batch, self.M, device=device), (h, h.clone())

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        _check_batch("x", x, 3)
        memory, w_r, w_w, r, hc = self.initial_state(x.shape[0], x.device)
        outputs, reads, writes = [], [], []
        for x_t in x.unbind(1):  # x_t (B, input)
            hc = self.controller(torch.cat([x_t, r], dim=-1), hc)
            h = hc[0]  # (B, H)
            w_w, e, a = self.write_head(h, memory, w_w)
            memory = write(memory, w_w, e, a)
            w_r, _, _ = self.read_head(h, memory, w_r)
            r = read(memory, w_r)  # (B, M)
            outputs.append(self.out(torch.cat([h, r], dim=-1)))
            reads.append(w_r)
            writes.append(w_w)
        logits = torch.stack(outputs, dim=1)  # (B, T, out)
        if return_weights:
            return logits, torch.stack(reads, 1), torch.stack(writes, 1)
        return logits


class LSTMBaseline(nn.Module):
    """The paper's baseline: a stacked LSTM with a linear output layer. x (B, T, in) -> (B, T, out)."""

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 128, layers: int = 1):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch("x", x, 3)
        return self.out(self.lstm(x)[0])


def copy_batch(batch: int, length: int, bits: int, generator: torch.Generator | None = None):
    """One batch of the copy task: inputs (B, 2L + 1, bits + 1), targets (B, L, bits).

    The input shows L random bit vectors, then a delimiter (the extra channel), then L blank
    steps during which the network must reproduce the vectors; targets cover those L steps.
    """
    for name, v in (("batch", batch), ("length", length), ("bits", bits)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    seq = torch.randint(0, 2, (batch, length, bits), generator=generator).float()
    x = torch.zeros(batch, 2 * length + 1, bits + 1)
    x[:, :length, :bits] = seq
    x[:, length, bits] = 1  # the delimiter flag
    return x, seq


def copy_cost_bits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's cost: binary cross-entropy summed over a sequence, in bits. -> (B,)."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
    nats = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return nats.flatten(1).sum(-1) / math.log(2)


def copy_outputs(model: nn.Module, x: torch.Tensor, length: int) -> torch.Tensor:
    """The model's logits on the answer phase (the last ``length`` steps). -> (B, L, bits)."""
    return model(x)[:, -length:]


def bit_errors(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Wrong bits per sequence after thresholding at 0.5. -> (B,)."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
    return ((logits > 0).float() != target).flatten(1).sum(-1).float()


def train_copy(model: nn.Module, steps: int, bits: int, max_len: int, batch: int = 16,
               lr: float = 1e-3, clip: float = 10.0, seed: int = 0, desc: str = "copy") -> list[float]:
    """Adam on the copy task, lengths uniform in 1..max_len; returns bits per sequence per step."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)  # data on the CPU: the same batches on any device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)  # orig: RMSProp, lr 1e-4, momentum 0.9
    model.train()
    costs = []
    bar = progress(range(steps), desc=desc)
    for step in bar:
        length = int(torch.randint(1, max_len + 1, (1,), generator=gen))
        x, y = copy_batch(batch, length, bits, gen)
        cost = copy_cost_bits(copy_outputs(model, x.to(device), length), y.to(device))
        optimizer.zero_grad()
        cost.mean().mul(math.log(2)).backward()  # nats: the same optimum, a friendlier scale
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        costs.append(cost.mean().item())
        if step % 50 == 0 or step == steps - 1:
            bar.set_postfix(bits=f"{costs[-1]:.2f}")
    model.eval()
    return costs

"""Neural Turing Machines (Graves, Wayne & Danihelka 2014): memory, heads, copy task.

Notation follows the paper: memory M_t is (N, M) per example (N locations of width M);
a weighting w_t is a distribution over the N locations. Every function works on a
batch B.

Three design choices differ from the implementations most readers will meet
(loudinthecloud/pytorch-ntm; Collier & Beel's TensorFlow NTM); the chapter measures
what they change:

* **write, then read** within a time step: the read at step t sees M_t, the memory
  after step t's write, as the paper's indices say (Eq. 2 reads M_t; Eqs. 3-4 make
  M_t from M_{t-1}). Both reference implementations read before they write.
* **constant initial memory**: every entry 1e-6 (Collier & Beel's best scheme), not a
  fixed random matrix (pytorch-ntm).
* **one-hot initial weightings** on row 0 for both heads, fixed; not a learned softmax
  (Collier & Beel) or all zeros (pytorch-ntm).

>>> w = torch.tensor([[0.0, 1.0, 0.0, 0.0]])    # all weight on row 1
>>> shift(w, torch.tensor([[0.0, 0.0, 1.0]]))   # shifts -1, 0, +1: one row on
tensor([[0., 0., 1., 0.]])
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mlf.notebook import progress

EPS = 1e-8  # guards divisions and logs
SUM_TOL = 1e-3  # how far a weighting's sum may stray from 1 (float32 rounding: ~1e-6)


# --- argument checks: say what was wrong and what is expected ---------------------


def _check_tensor(name: str, t, dims: int, shape: str) -> None:
    """``t`` is a floating tensor with ``dims`` dims, none of them empty."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {shape}, "
                        f"got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if t.dim() != dims:
        raise ValueError(f"{name} must have shape {shape} ({dims} dims), "
                         f"got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(t.shape)}); "
                         f"expected B >= 1")
    if 0 in t.shape:
        raise ValueError(f"{name} has an empty dimension (shape {tuple(t.shape)}); "
                         f"every size in {shape} must be >= 1")


def _check_same(name: str, t: torch.Tensor, expected: tuple, shape: str,
                ref: torch.Tensor) -> None:
    """``t`` has exactly the shape ``expected`` and the dtype of ``ref``."""
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {shape} = {tuple(expected)}, "
                         f"got {tuple(t.shape)}")
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {t.dtype} but the other arguments are "
                        f"{ref.dtype}; convert one of them")


def _check_range(name: str, t: torch.Tensor, low=None, high=None,
                 what: str = "") -> None:
    """Every entry of ``t`` lies in [low, high] (NaN fails too)."""
    lo = -math.inf if low is None else low
    hi = math.inf if high is None else high
    ok = (t >= lo) & (t <= hi)
    if not bool(ok.all()):
        bad = t[~ok].flatten()[0].item()
        raise ValueError(f"{name} must lie in [{lo}, {hi}]{what}; got {bad}")


def _check_weighting(name: str, w: torch.Tensor, sums_to_one: bool = True) -> None:
    """A batch of weightings: entries >= 0 and, if asked, each row summing to 1."""
    _check_range(name, w, low=0, what=" (a weighting over memory rows)")
    if sums_to_one:
        total = w.sum(-1)
        if not bool(((total - 1).abs() <= SUM_TOL).all()):
            worst = total[(total - 1).abs().argmax()].item()
            raise ValueError(f"{name} must sum to 1 over the memory rows "
                             f"(a weighting); one row sums to {worst:.4g}")


def _check_positive_int(name: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _check_memory_and_weighting(memory, w) -> None:
    _check_tensor("memory", memory, 3, "(B, N, M)")
    _check_tensor("w", w, 2, "(B, N)")
    _check_same("w", w, memory.shape[:2], "(B, N)", memory)
    _check_weighting("w", w)


def _check_write(memory, w, e, a) -> None:
    _check_memory_and_weighting(memory, w)
    b, _, m = memory.shape
    for name, v in (("e", e), ("a", a)):
        _check_tensor(name, v, 2, "(B, M)")
        _check_same(name, v, (b, m), "(B, M)", memory)
    _check_range("e", e, 0, 1, " (the erase vector)")


def _check_content(memory, key, beta) -> None:
    _check_tensor("memory", memory, 3, "(B, N, M)")
    b, _, m = memory.shape
    _check_tensor("key", key, 2, "(B, M)")
    _check_same("key", key, (b, m), "(B, M)", memory)
    _check_tensor("beta", beta, 1, "(B,)")
    _check_same("beta", beta, (b,), "(B,)", memory)
    _check_range("beta", beta, low=0, what=" (the key strength)")


def _check_interpolate(w_c, w_prev, g) -> None:
    _check_tensor("w_c", w_c, 2, "(B, N)")
    _check_tensor("w_prev", w_prev, 2, "(B, N)")
    _check_same("w_prev", w_prev, w_c.shape, "(B, N), the shape of w_c", w_c)
    _check_tensor("g", g, 1, "(B,)")
    _check_same("g", g, w_c.shape[:1], "(B,)", w_c)
    _check_weighting("w_c", w_c)
    _check_weighting("w_prev", w_prev)
    _check_range("g", g, 0, 1, " (the interpolation gate)")


def _check_shift(w, s) -> None:
    _check_tensor("w", w, 2, "(B, N)")
    _check_tensor("s", s, 2, "(B, S)")
    n, k = w.shape[1], s.shape[1] // 2
    if s.shape[0] != w.shape[0] or s.shape[1] % 2 == 0:
        raise ValueError(f"s must have shape (B, S) with B = {w.shape[0]} and S odd "
                         f"(shifts -k..k), got {tuple(s.shape)}")
    if s.shape[1] > n:
        raise ValueError(f"{s.shape[1]} shifts (-{k}..{k}) do not fit a memory of "
                         f"{n} locations; expected S <= N")
    _check_same("s", s, s.shape, "(B, S)", w)  # the dtype
    _check_weighting("w", w)
    _check_weighting("s", s)  # a distribution over the shifts


def _check_sharpen(w, gamma) -> None:
    _check_tensor("w", w, 2, "(B, N)")
    _check_tensor("gamma", gamma, 1, "(B,)")
    _check_same("gamma", gamma, w.shape[:1], "(B,)", w)
    _check_weighting("w", w, sums_to_one=False)
    _check_range("gamma", gamma, low=1, what=" (the sharpening exponent)")


# --- Eqs. (2) to (9) --------------------------------------------------------------


def read(memory: torch.Tensor, w: torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """Eq. (2): r_t = sum_i w_t(i) M_t(i). memory (B, N, M), w (B, N) -> (B, M)."""
    if check:
        _check_memory_and_weighting(memory, w)
    return torch.einsum("bn,bnm->bm", w, memory)


def write(memory: torch.Tensor, w: torch.Tensor, e: torch.Tensor, a: torch.Tensor,
          *, check: bool = True) -> torch.Tensor:
    """Eqs. (3)-(4): erase, then add. memory (B, N, M), w (B, N), e and a (B, M).

    M~_t(i) = M_{t-1}(i) [1 - w_t(i) e_t];  M_t(i) = M~_t(i) + w_t(i) a_t;  e in [0, 1].
    Returns M_t (B, N, M).
    """
    if check:
        _check_write(memory, w, e, a)
    w = w.unsqueeze(-1)  # (B, N, 1)
    erased = memory * (1 - w * e.unsqueeze(1))  # (B, N, M)
    return erased + w * a.unsqueeze(1)


def content_weights(memory: torch.Tensor, key: torch.Tensor, beta: torch.Tensor,
                    *, check: bool = True) -> torch.Tensor:
    """Eqs. (5)-(6): w^c_t(i) = softmax_i(beta_t K[k_t, M_t(i)]), K cosine similarity.

    memory (B, N, M), key (B, M), beta (B,) with beta >= 0 -> (B, N).
    """
    if check:
        _check_content(memory, key, beta)
    dot = torch.einsum("bnm,bm->bn", memory, key)  # (B, N)
    norms = memory.norm(dim=-1) * key.norm(dim=-1, keepdim=True)  # (B, N)
    K = dot / norms.clamp_min(EPS)  # cosine similarity in [-1, 1]
    return torch.softmax(beta.unsqueeze(-1) * K, dim=-1)


def interpolate(w_c: torch.Tensor, w_prev: torch.Tensor, g: torch.Tensor,
                *, check: bool = True) -> torch.Tensor:
    """Eq. (7): w^g_t = g_t w^c_t + (1 - g_t) w_{t-1}. w_c, w_prev (B, N); g (B,)."""
    if check:
        _check_interpolate(w_c, w_prev, g)
    g = g.unsqueeze(-1)  # (B, 1)
    return g * w_c + (1 - g) * w_prev


def shift(w: torch.Tensor, s: torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """Eq. (8): circular convolution w~_t(i) = sum_j w^g_t(j) s_t(i - j), indices mod N.

    w (B, N); s (B, S) is a distribution over the S = 2k + 1 integer shifts -k..k
    (s[:, k] is "stay"). A one-hot s on shift +1 moves all weight one slot forward.
    """
    if check:
        _check_shift(w, s)
    n, k = w.shape[1], s.shape[1] // 2
    offsets = torch.arange(-k, k + 1, device=w.device)  # (S,)
    idx = (torch.arange(n, device=w.device).unsqueeze(1) - offsets) % n  # (N, S)
    return torch.einsum("bns,bs->bn", w[:, idx], s)  # subtle: a gather, not a loop


def sharpen(w: torch.Tensor, gamma: torch.Tensor, *,
            check: bool = True) -> torch.Tensor:
    """Eq. (9): w_t(i) = w~_t(i)^gamma / sum_j w~_t(j)^gamma. w (B, N), gamma (B,) >= 1.

    Ratios are raised to the power gamma, w(i)/w(j) = (w~(i)/w~(j))^gamma: the largest
    entry keeps its place, and the others together keep at most (N - 1) rho^gamma, with
    rho the ratio of the runner-up to the largest entry.
    """
    if check:
        _check_sharpen(w, gamma)
    # subtle: w ** gamma underflows to 0/0 for large gamma; the same ratio computed
    # as a softmax of gamma * log w does not
    return torch.softmax(gamma.unsqueeze(-1) * torch.log(w + EPS), dim=-1)


def address(memory, w_prev, key, beta, g, s, gamma, *, check: bool = True):
    """The four steps of Fig. 2: content, interpolation, shift, sharpening -> (B, N)."""
    w_c = content_weights(memory, key, beta, check=check)
    w_g = interpolate(w_c, w_prev, g, check=check)
    return sharpen(shift(w_g, s, check=check), gamma, check=check)


# --- heads, the machine, the baseline ---------------------------------------------


class Head(nn.Module):
    """Maps the controller output to one head's addressing parameters (+ e, a)."""

    def __init__(self, controller_size: int, width: int, shifts: int = 3,
                 write: bool = False):
        super().__init__()
        _check_positive_int("controller_size", controller_size)
        _check_positive_int("width", width)
        if isinstance(shifts, bool) or not isinstance(shifts, int) or shifts < 1 \
                or shifts % 2 == 0:
            raise ValueError(f"shifts must be a positive odd number (shifts -k..k), "
                             f"got {shifts!r}")
        if not isinstance(write, bool):
            raise TypeError(f"write must be True or False, got {write!r}")
        self.is_write = write
        # k, β, g, s, γ, and for a write head e, a
        self.sizes = [width, 1, 1, shifts, 1] + ([width, width] if write else [])
        self.proj = nn.Linear(controller_size, sum(self.sizes))

    def params(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Controller output h (..., H) -> the head's parameters, each in its range."""
        if not isinstance(h, torch.Tensor) or h.dim() == 0 \
                or h.shape[-1] != self.proj.in_features:
            raise ValueError(f"h must be a tensor (..., H) with H = "
                             f"{self.proj.in_features} (the controller size), got "
                             f"{tuple(getattr(h, 'shape', ())) or type(h).__name__}")
        parts = self.proj(h).split(self.sizes, dim=-1)
        p = {"key": torch.tanh(parts[0]),
             "beta": F.softplus(parts[1]).squeeze(-1),       # β > 0
             "g": torch.sigmoid(parts[2]).squeeze(-1),       # g in (0, 1)
             "s": torch.softmax(parts[3], dim=-1),           # distribution over shifts
             "gamma": 1 + F.softplus(parts[4]).squeeze(-1)}  # γ >= 1
        if self.is_write:
            p["e"] = torch.sigmoid(parts[5])  # erase in (0, 1)
            p["a"] = torch.tanh(parts[6])     # add in (-1, 1)
        return p

    def forward(self, h: torch.Tensor, memory: torch.Tensor, w_prev: torch.Tensor,
                *, check: bool = True):
        """h (B, H) -> weighting (B, N) and, for a write head, e and a (B, M)."""
        if check:
            _check_tensor("h", h, 2, "(B, H)")
            if h.shape[1] != self.proj.in_features:
                raise ValueError(f"h must have shape (B, H) with H = "
                                 f"{self.proj.in_features} (the controller size), "
                                 f"got {tuple(h.shape)}")
            _check_tensor("memory", memory, 3, "(B, N, M)")
            if memory.shape[2] != self.sizes[0] or memory.shape[0] != h.shape[0]:
                raise ValueError(f"memory must have shape (B, N, M) with "
                                 f"B = {h.shape[0]} and M = {self.sizes[0]} (the "
                                 f"head's width), got {tuple(memory.shape)}")
        p = self.params(h)
        # the parameters are in range by construction; check what the caller gave
        w = address(memory, w_prev, p["key"], p["beta"], p["g"], p["s"], p["gamma"],
                    check=check)
        return w, p.get("e"), p.get("a")


class NTM(nn.Module):
    """An NTM with an LSTM controller, one read and one write head (the copy setup).

    At each step the controller sees the input and the previous read vector; then the
    write head writes, then the read head reads the memory just written; the output
    layer sees the controller output and the new read vector. ``forward`` returns
    logits (B, T, out) and, if asked, the read and write weightings (B, T, N);
    ``trace`` returns every intermediate.
    """

    def __init__(self, input_size: int, output_size: int, controller_size: int = 100,
                 memory_rows: int = 32, memory_width: int = 16, shifts: int = 3):
        super().__init__()
        for name, v in (("input_size", input_size), ("output_size", output_size),
                        ("controller_size", controller_size),
                        ("memory_rows", memory_rows), ("memory_width", memory_width)):
            _check_positive_int(name, v)
        if isinstance(shifts, int) and not isinstance(shifts, bool) \
                and shifts > memory_rows:
            raise ValueError(f"shifts = {shifts} do not fit a memory of {memory_rows} "
                             f"rows; expected shifts <= memory_rows")
        self.input_size, self.output_size = input_size, output_size
        self.N, self.M = memory_rows, memory_width
        self.controller = nn.LSTMCell(input_size + memory_width, controller_size)
        self.read_head = Head(controller_size, memory_width, shifts)
        self.write_head = Head(controller_size, memory_width, shifts, write=True)
        self.out = nn.Linear(controller_size + memory_width, output_size)

    def initial_state(self, batch: int, device=None):
        """Memory, read and write weightings, read vector, controller state at t = 0."""
        _check_positive_int("batch", batch)
        like = {"device": device, "dtype": self.out.weight.dtype}
        memory = torch.full((batch, self.N, self.M), 1e-6, **like)  # constant
        w0 = torch.zeros(batch, self.N, **like)
        w0[:, 0] = 1  # subtle: uniform weightings on a uniform memory could never focus
        h = torch.zeros(batch, self.controller.hidden_size, **like)
        r0 = torch.zeros(batch, self.M, **like)
        return memory, w0, w0.clone(), r0, (h, h.clone())

    def _run(self, x: torch.Tensor):
        """Per step: h, write weighting, e, a, read weighting, read vector, logits."""
        _check_tensor("x", x, 3, "(B, T, input_size)")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x has {x.shape[2]} channels per step but the model "
                             f"expects input_size = {self.input_size}")
        if x.dtype != self.out.weight.dtype:
            raise TypeError(f"x is {x.dtype} but the model's parameters are "
                            f"{self.out.weight.dtype}; convert one of them")
        memory, w_r, w_w, r, hc = self.initial_state(x.shape[0], x.device)
        for x_t in x.unbind(1):  # x_t (B, input)
            hc = self.controller(torch.cat([x_t, r], dim=-1), hc)
            h = hc[0]  # (B, H)
            w_w, e, a = self.write_head(h, memory, w_w, check=False)
            memory = write(memory, w_w, e, a, check=False)  # first make M_t ...
            w_r, _, _ = self.read_head(h, memory, w_r, check=False)
            r = read(memory, w_r, check=False)  # ... then read it: r_t sees the write
            yield h, w_w, e, a, w_r, r, self.out(torch.cat([h, r], dim=-1))

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        """x (B, T, input_size) -> logits (B, T, out) [, reads, writes (B, T, N)]."""
        steps = list(self._run(x))
        logits = torch.stack([s[6] for s in steps], dim=1)  # (B, T, out)
        if return_weights:
            reads = torch.stack([s[4] for s in steps], dim=1)
            writes = torch.stack([s[1] for s in steps], dim=1)
            return logits, reads, writes
        return logits

    def trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate, stacked over time: ``h`` (B, T, H); ``w_write`` and
        ``w_read`` (B, T, N); ``erase``, ``add`` and ``read`` (B, T, M); ``logits``."""
        names = ("h", "w_write", "erase", "add", "w_read", "read", "logits")
        steps = list(self._run(x))
        return {name: torch.stack([s[i] for s in steps], dim=1)
                for i, name in enumerate(names)}


class LSTMBaseline(nn.Module):
    """The paper's baseline: LSTM layers and a linear output layer.

    x (B, T, input_size) -> logits (B, T, output_size).
    """

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 128,
                 layers: int = 1):
        super().__init__()
        for name, v in (("input_size", input_size), ("output_size", output_size),
                        ("hidden_size", hidden_size), ("layers", layers)):
            _check_positive_int(name, v)
        self.input_size, self.output_size = input_size, output_size
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=layers,
                            batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tensor("x", x, 3, "(B, T, input_size)")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x has {x.shape[2]} channels per step but the model "
                             f"expects input_size = {self.input_size}")
        if x.dtype != self.out.weight.dtype:
            raise TypeError(f"x is {x.dtype} but the model's parameters are "
                            f"{self.out.weight.dtype}; convert one of them")
        return self.out(self.lstm(x)[0])


# --- the copy task ----------------------------------------------------------------


def copy_batch(batch: int, length: int, bits: int,
               generator: torch.Generator | None = None):
    """One batch of the copy task: inputs (B, 2L + 1, bits + 1), targets (B, L, bits).

    The input shows L random bit vectors, then a delimiter (the extra channel), then L
    blank steps during which the network must reproduce the vectors; the targets
    cover those L steps.
    """
    for name, v in (("batch", batch), ("length", length), ("bits", bits)):
        _check_positive_int(name, v)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, "
                        f"got {type(generator).__name__}")
    seq = torch.randint(0, 2, (batch, length, bits), generator=generator).float()
    x = torch.zeros(batch, 2 * length + 1, bits + 1)
    x[:, :length, :bits] = seq
    x[:, length, bits] = 1  # the delimiter flag
    return x, seq


def _check_logits_and_target(logits, target) -> None:
    for name, t in (("logits", logits), ("target", target)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor "
                            f"(B, L, bits), got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target "
                         f"{tuple(target.shape)} differ; both must be (B, L, bits)")
    if logits.dim() < 2 or logits.shape[0] == 0:
        raise ValueError(f"logits must be a non-empty batch (B, L, bits), "
                         f"got {tuple(logits.shape)}")
    _check_range("target", target, 0, 1, " (bits, or probabilities of a 1)")


def copy_cost_bits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's cost: binary cross-entropy summed over a sequence, in bits. (B,)"""
    _check_logits_and_target(logits, target)
    nats = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return nats.flatten(1).sum(-1) / math.log(2)


def copy_outputs(model: nn.Module, x: torch.Tensor, length: int) -> torch.Tensor:
    """Logits on the answer phase, the last ``length`` steps of x: (B, L, bits)."""
    _check_positive_int("length", length)
    if isinstance(x, torch.Tensor) and x.dim() == 3 and 2 * length + 1 > x.shape[1]:
        raise ValueError(f"a copy input of length {length} has 2 * {length} + 1 = "
                         f"{2 * length + 1} steps, but x has {x.shape[1]}")
    return model(x)[:, -length:]


def bit_errors(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Wrong bits per sequence after thresholding at 0.5 -> (B,)."""
    _check_logits_and_target(logits, target)
    return ((logits > 0).float() != target).flatten(1).sum(-1).float()


def train_copy(model: nn.Module, steps: int, bits: int, max_len: int, batch: int = 16,
               lr: float = 1e-3, clip: float = 10.0, seed: int = 0, desc: str = "copy",
               return_lengths: bool = False):
    """Adam on the copy task, lengths uniform in 1..max_len.

    Returns the mean cost of each update in bits per sequence and, if asked, the
    sequence length of each update (the cost of guessing is bits * length).
    """
    for name, v in (("steps", steps), ("bits", bits), ("max_len", max_len),
                    ("batch", batch)):
        _check_positive_int(name, v)
    for name, v in (("lr", lr), ("clip", clip)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    params = list(model.parameters()) if isinstance(model, nn.Module) else []
    if not params:
        raise ValueError(f"model must be a torch.nn.Module with parameters to train, "
                         f"got {type(model).__name__}")
    width = getattr(model, "input_size", bits + 1)
    if width != bits + 1:
        raise ValueError(f"the copy task with {bits} bits has {bits} + 1 input "
                         f"channels (the last is the delimiter), but the model "
                         f"takes {width}")
    device = params[0].device
    gen = torch.Generator().manual_seed(seed)  # data on the CPU: same on any device
    optimizer = torch.optim.Adam(params, lr=lr)  # orig: RMSProp, lr 1e-4, momentum 0.9
    model.train()
    costs, lengths = [], []
    bar = progress(range(steps), desc=desc)
    for step in bar:
        length = int(torch.randint(1, max_len + 1, (1,), generator=gen))
        lengths.append(length)
        x, y = copy_batch(batch, length, bits, gen)
        cost = copy_cost_bits(copy_outputs(model, x.to(device), length), y.to(device))
        optimizer.zero_grad()
        cost.mean().mul(math.log(2)).backward()  # in nats: same optimum, nicer scale
        nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        costs.append(cost.mean().item())
        if step % 50 == 0 or step == steps - 1:
            bar.set_postfix(bits=f"{costs[-1]:.2f}")
    model.eval()
    return (costs, lengths) if return_lengths else costs



COPY_CONFIG_KEYS = ("bits", "controller_size", "memory_rows", "memory_width",
                    "lstm_hidden", "init_seed")


def build_copy_models(config: dict):
    """The NTM and the LSTM baseline of the copy task, each initialised from
    ``torch.manual_seed(config["init_seed"])``. Needs the keys in COPY_CONFIG_KEYS."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    missing = [k for k in COPY_CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"config lacks {missing}; expected the keys "
                         f"{COPY_CONFIG_KEYS}")
    bits = config["bits"]
    _check_positive_int("bits", bits)
    torch.manual_seed(config["init_seed"])
    ntm = NTM(bits + 1, bits, controller_size=config["controller_size"],
              memory_rows=config["memory_rows"], memory_width=config["memory_width"])
    torch.manual_seed(config["init_seed"])
    lstm = LSTMBaseline(bits + 1, bits, hidden_size=config["lstm_hidden"])
    return ntm, lstm


@torch.no_grad()
def evaluate_copy(models: dict, lengths, batch: int, bits: int,
                  generator: torch.Generator | None = None) -> dict:
    """Each model on ``batch`` fresh sequences of every length in ``lengths``, the
    models seeing the same sequences. Returns {name: {"cost", "median", "errors"}},
    each a list over the lengths: mean and median bits per sequence, mean wrong bits.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict {name: model}")
    lengths = list(lengths)
    if not lengths:
        raise ValueError("lengths must hold at least one sequence length")
    for length in lengths:
        _check_positive_int("every length", length)
    out = {name: {"cost": [], "median": [], "errors": []} for name in models}
    for length in lengths:
        x, y = copy_batch(batch, length, bits, generator)
        for name, model in models.items():
            device = next(model.parameters()).device
            logits = model(x.to(device))[:, -length:].cpu()
            cost = copy_cost_bits(logits, y)
            out[name]["cost"].append(cost.mean().item())
            out[name]["median"].append(cost.median().item())
            out[name]["errors"].append(bit_errors(logits, y).mean().item())
    return out

# --- reading the learned program -------------------------------------------------


def copy_program_rows(length: int, rows: int, direction: int = -1):
    """The rows the trained copy program visits, as the chapter measures it.

    Input phase, steps t = 0..L (the last is the delimiter): the write head is on row 0
    at t = 0 and t = 1, then one row further in ``direction`` per step.
    Output step k = 0..L-1 (time L + 1 + k): the read head is on row direction * k.
    Returns (write_rows (L + 1,), read_rows (L,)), rows taken mod ``rows``.
    """
    _check_positive_int("length", length)
    _check_positive_int("rows", rows)
    if direction not in (-1, 1):
        raise ValueError(f"direction must be -1 or +1, got {direction!r}")
    t = torch.arange(length + 1)
    write_rows = (direction * (t - 1).clamp_min(0)) % rows
    read_rows = (direction * torch.arange(length)) % rows
    return write_rows, read_rows


def linear_probe_accuracy(features: torch.Tensor, targets: torch.Tensor,
                          n_train: int) -> float:
    """How well a linear map (with a bias) decodes binary targets from features.

    features (B, T, D), targets (B, T, K) with entries 0 or 1. Least squares on the
    targets as -1/+1, fitted on the first ``n_train`` sequences and scored on the
    others: the fraction of held-out target bits whose sign it gets right.
    """
    _check_tensor("features", features, 3, "(B, T, D)")
    _check_tensor("targets", targets, 3, "(B, T, K)")
    if features.shape[:2] != targets.shape[:2]:
        raise ValueError(f"features {tuple(features.shape)} and targets "
                         f"{tuple(targets.shape)} must agree on (B, T)")
    if not bool(((targets == 0) | (targets == 1)).all()):
        raise ValueError("targets must be 0 or 1")
    _check_positive_int("n_train", n_train)
    if n_train >= features.shape[0]:
        raise ValueError(f"n_train = {n_train} leaves no held-out sequence out of "
                         f"{features.shape[0]}")
    x = torch.cat([features, torch.ones_like(features[..., :1])], -1).double()
    y = (2 * targets - 1).double()
    solution = torch.linalg.lstsq(x[:n_train].flatten(0, 1), y[:n_train].flatten(0, 1))
    predicted = x[n_train:] @ solution.solution > 0  # (B - n_train, T, K)
    return (predicted == (targets[n_train:] > 0.5)).double().mean().item()


def _mean(flags: torch.Tensor) -> float:
    return flags.double().mean().item()


@torch.no_grad()
def copy_program_stats(model: NTM, x: torch.Tensor, length: int,
                       direction: int = -1) -> dict:
    """Measure, on a batch of copy inputs of one length, how closely a trained NTM
    follows the program of ``copy_program_rows`` and what its heads write.

    Returns a dict (fractions and probe accuracies in [0, 1]):

    * ``write_follows``, ``read_follows``: sequences whose head is on the program's
      row at every input step (write) / every output step (read);
    * ``read_parked``: steps 0..L+1 on which the read head is on row 0;
    * ``write_focus_min``: the smallest largest write weight, input phase;
      ``read_focus_min``, ``read_focus_09``: output phase, the smallest largest read
      weight and the fraction of steps where it is above 0.9;
    * ``probe_add_same``, ``probe_add_next``, ``probe_add_later``, ``probe_h_same``:
      linear-probe accuracy for input x_t from the add vector of step t, t + 1, t + 2,
      and from the controller output h_t; ``probe_add_first``: x_0 from the add
      vector of step 0; ``probe_add_after``: the last input x_{L-1} from the add
      vector of step L + 1, the step after the delimiter;
    * ``erase_mean``: mean erase, input phase; ``erase_columns_below_005``: memory
      columns whose mean erase there is below 0.05;
    * ``cost``, ``cost_no_erase``: bits per sequence, the second with e forced to 0;
    * ``blank_under_write``: the largest |entry| of the row under the write head just
      before it writes, steps 2..L;
    * ``write_stays_after``: sequences whose write head is on the same row at steps
      L and L + 1; ``write_moves_after``: sequences whose write head moves one row in
      ``direction`` at every later step;
    * ``unread_write_mean``, ``unread_write_max``: write weight on rows still to be
      read, output steps 1..L-1;
    * ``write_waits``, ``read_waits``: sequences whose shift output prefers "stay" on
      the step after the cue (the first input; the delimiter) and "move" on every
      later step of the phase; ``write_move_prob``, ``read_move_prob``: the mean
      probability of "move" on steps 0-3 and on steps L to L+3.
    """
    if not isinstance(model, NTM):
        raise TypeError(f"model must be an mlf.ntm.NTM, got {type(model).__name__}")
    _check_positive_int("length", length)
    _check_tensor("x", x, 3, "(B, 2L + 1, bits + 1)")
    if x.shape[1] != 2 * length + 1:
        raise ValueError(f"x must be copy inputs of length {length}: (B, "
                         f"{2 * length + 1}, bits + 1), got {tuple(x.shape)}")
    if x.shape[0] < 4:
        raise ValueError(f"x needs at least 4 sequences (half fit the probes), "
                         f"got {x.shape[0]}")
    L, n = length, model.N
    tr = model.trace(x)
    y = x[:, :L, :-1]  # the input vectors (the last channel is the delimiter)
    write_rows, read_rows = (r.to(x.device)
                             for r in copy_program_rows(L, n, direction))
    w_rows, r_rows = tr["w_write"].argmax(-1), tr["w_read"].argmax(-1)  # (B, 2L + 1)
    w_top, r_top = tr["w_write"].max(-1).values, tr["w_read"].max(-1).values
    stats = {
        "write_follows": _mean((w_rows[:, :L + 1] == write_rows).all(1)),
        "read_follows": _mean((r_rows[:, L + 1:] == read_rows).all(1)),
        "read_parked": _mean(r_rows[:, :L + 2] == 0),
        "write_focus_min": w_top[:, :L + 1].min().item(),
        "read_focus_min": r_top[:, L + 1:].min().item(),
        "read_focus_09": _mean(r_top[:, L + 1:] > 0.9)}
    half = x.shape[0] // 2
    add, h = tr["add"], tr["h"]
    stats["probe_add_same"] = linear_probe_accuracy(add[:, :L], y, half)
    stats["probe_add_next"] = linear_probe_accuracy(add[:, 1:L + 1], y, half)
    stats["probe_add_later"] = (linear_probe_accuracy(add[:, 2:L + 1], y[:, :L - 1],
                                                      half) if L > 1 else math.nan)
    stats["probe_h_same"] = linear_probe_accuracy(h[:, :L], y, half)
    stats["probe_add_first"] = linear_probe_accuracy(add[:, :1], y[:, :1], half)
    stats["probe_add_after"] = linear_probe_accuracy(add[:, L + 1:L + 2],
                                                     y[:, L - 1:L], half)
    erase_columns = tr["erase"][:, :L + 1].mean((0, 1))  # (M,): one per memory column
    stats["erase_mean"] = erase_columns.mean().item()
    stats["erase_columns_below_005"] = int((erase_columns < 0.05).sum())
    stats["cost"] = copy_cost_bits(tr["logits"][:, -L:], y).mean().item()

    def no_erase(module, args, out):
        return out[0], torch.zeros_like(out[1]), out[2]

    handle = model.write_head.register_forward_hook(no_erase)
    try:
        logits = model(x)[:, -L:]
    finally:
        handle.remove()
    stats["cost_no_erase"] = copy_cost_bits(logits, y).mean().item()
    # replay the memory to see what lies under the write head before each write
    memory = model.initial_state(x.shape[0], x.device)[0]
    under, rows_b = [], torch.arange(x.shape[0], device=x.device)
    for t in range(L + 1):
        under.append(memory[rows_b, w_rows[:, t]].abs().amax(-1))
        memory = write(memory, tr["w_write"][:, t], tr["erase"][:, t], tr["add"][:, t],
                       check=False)
    stats["blank_under_write"] = (torch.stack(under[2:], 1).max().item() if L > 1
                                  else math.nan)
    stats["write_stays_after"] = _mean(w_rows[:, L + 1] == w_rows[:, L])
    steps = (w_rows[:, L + 2:] - w_rows[:, L + 1:-1]) % n  # moves in the output phase
    stats["write_moves_after"] = _mean((steps == direction % n).all(1))
    unread = []
    for k in range(1, L):  # output step k: the read of row direction * k comes after
        still = (direction * torch.arange(k, L, device=x.device)) % n
        unread.append(tr["w_write"][:, L + 1 + k][:, still].sum(-1))
    unread = torch.stack(unread, 1) if unread else torch.zeros(1, 1)
    stats["unread_write_mean"] = unread.mean().item()
    stats["unread_write_max"] = unread.max().item()
    k = model.write_head.sizes[3] // 2  # index of "stay"; k + direction is "move"
    sw, sr = model.write_head.params(h)["s"], model.read_head.params(h)["s"]
    move_w, move_r = sw[..., k + direction], sr[..., k + direction]
    stay_w, stay_r = sw[..., k], sr[..., k]
    stats["write_waits"] = _mean((move_w[:, 1] < stay_w[:, 1])
                                 & (move_w[:, 2:L + 1] > stay_w[:, 2:L + 1]).all(1))
    stats["read_waits"] = _mean((move_r[:, L + 1] < stay_r[:, L + 1])
                                & (move_r[:, L + 2:] > stay_r[:, L + 2:]).all(1))
    stats["write_move_prob"] = move_w[:, :4].mean(0).tolist()
    stats["read_move_prob"] = move_r[:, L:L + 4].mean(0).tolist()
    return stats

"""LoRA learns less and forgets less (Biderman et al. 2024), at the book's scale.

Continued pre-training of the book's Shakespeare model on a domain it has never seen,
Python's own documentation (``mlf.quant.domain_split``), by full fine-tuning or by LoRA
of rank r on every linear layer of every block. "Learning" is the held-out loss on the
new (target) domain; "forgetting" is the rise of the held-out loss on the old (source)
domain, the three Shakespeare plays the book's model never trained on.

* ``spectrum``, ``energy_curve``, ``rank_for_energy``: the paper's spectral analysis of
  a weight change ΔW: the smallest rank k whose top-k singular values hold a fraction
  of ΔW's energy ||ΔW||_F² = Σ σ_i²;
* ``weight_changes``: ΔW of every adapted layer between two models;
* ``source_windows``, ``target_windows``: the evaluation windows of both domains;
* ``finetune``: one run, full or LoRA, with the paper's α = 2r, evaluated on the way.

>>> import torch
>>> rank_for_energy(torch.diag(torch.tensor([3.0, 1.0, 0.0])), 0.9)  # 9 / 10 of energy
1
>>> rank_for_energy(torch.zeros(4, 3), 0.9)  # nothing to explain
0
"""
from __future__ import annotations

import math

import torch
from torch import nn

# The linear layers of a block of mlf.gpt.GPT: attention's four, the feed-forward two
TARGETS = ("w_q", "w_k", "w_v", "w_o", "w_1", "w_2")

# The experiment of scripts/learn_forget_sweep.py and of the chapter. Every method
# takes the same 40 AdamW updates of the same batches (seed s fixes the batches and
# LoRA's A), at a constant rate, no weight decay; LoRA with α = 2r (the paper's
# choice), on all six linear layers. lr is chosen per method from its grid, on seed 0,
# by the target loss on ``dev`` windows that are not the evaluation windows. "extra":
# rates run on every seed besides the chosen one: each method one grid step below its
# chosen rate, which traces its learning-forgetting curve towards little forgetting.
LEARN_FORGET_SETUP = {
    "seeds": [0, 1, 2, 3, 4], "steps": 40, "eval_every": 10, "batch": 8,
    "methods": {"full": 0, "lora r=1": 1, "lora r=4": 4, "lora r=16": 16,
                "lora r=64": 64},
    "lr_grid": {"full": [3e-4, 1e-3, 3e-3], "lora": [1e-3, 3e-3, 1e-2]},
    "alpha_per_rank": 2, "source_windows": 32, "dev_windows": 32,
    "extra": {"full": [3e-4], "lora r=1": [1e-3], "lora r=4": [1e-3],
              "lora r=16": [1e-3], "lora r=64": [1e-3]},
}


def _matrix(delta, name: str = "delta") -> torch.Tensor:
    """A 2-D floating tensor (a NumPy array is accepted), as float64, or an error."""
    if not isinstance(delta, torch.Tensor):
        try:
            import numpy as np
        except ImportError:  # pragma: no cover
            np = None
        if np is None or not isinstance(delta, np.ndarray):
            raise TypeError(f"{name} must be a torch.Tensor or numpy array, got "
                            f"{type(delta).__name__}")
        delta = torch.from_numpy(delta)
    if delta.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (d_out x d_in), got shape "
                         f"{tuple(delta.shape)}")
    if 0 in delta.shape:
        raise ValueError(f"{name} is empty: shape {tuple(delta.shape)}")
    if not (delta.is_floating_point() or delta.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must hold real numbers, got {delta.dtype}")
    delta = delta.detach().to("cpu", torch.float64)
    if not torch.isfinite(delta).all():
        raise ValueError(f"{name} has NaN or infinite entries")
    return delta


def spectrum(delta) -> torch.Tensor:
    """The singular values σ_1 >= σ_2 >= ... of a matrix, float64, min(d_out, d_in)."""
    return torch.linalg.svdvals(_matrix(delta))


def energy_curve(delta) -> torch.Tensor:
    """E_k = (σ_1² + ... + σ_k²) / Σ_i σ_i², k = 1..min(shape): the fraction of
    ||ΔW||_F² that the best rank-k approximation keeps (Eckart–Young). All zeros for
    the zero matrix (there is no energy to explain)."""
    s2 = spectrum(delta) ** 2
    total = s2.sum()
    if total == 0:
        return torch.zeros_like(s2)
    return torch.cumsum(s2, 0) / total


def rank_for_energy(delta, fraction: float = 0.9) -> int:
    """The smallest k with E_k >= fraction: the rank "needed to explain" that share of
    ΔW's energy (the paper's 90% of the variance). 0 for the zero matrix."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not math.isfinite(fraction) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    curve = energy_curve(delta)
    if curve[-1] == 0:
        return 0
    # subtle: rounding can leave the last E_k a hair below 1; fraction = 1 means all
    k = int(torch.searchsorted(curve, torch.tensor(fraction, dtype=curve.dtype)
                               - 1e-12 * (fraction == 1)).item())
    return min(k + 1, len(curve))


def weight_changes(before: nn.Module, after: nn.Module,
                   targets=TARGETS) -> dict[str, torch.Tensor]:
    """{qualified name: ΔW = W_after - W_before} for every linear layer named by a
    target suffix. ``after`` may hold LoRA adapters: W_after is then the merged
    W_0 + (α / r) B A.

    subtle: in float32, (W_0 + (α / r) B A) - W_0 is (α / r) B A plus the rounding
    of each entry of the sum (up to ~6e-8 of it), a noise of full rank: in float64,
    ``matrix_rank`` of the difference is min(d_out, d_in), not r; at float32's
    tolerance (``matrix_rank`` of the float32 tensor) it is r. The top r singular
    values are barely moved (by ~1e-9 of σ_1 on the book's model). The exact
    low-rank product is ``LoRALinear.delta_weight()``."""
    from mlf.lora import LoRALinear

    if not isinstance(before, nn.Module) or not isinstance(after, nn.Module):
        raise TypeError("before and after must be nn.Modules (the model before and "
                        "after fine-tuning)")
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    old = {n: m for n, m in before.named_modules()
           if n.rsplit(".", 1)[-1] in targets}
    out = {}
    for name, m in after.named_modules():
        if name.rsplit(".", 1)[-1] not in targets:  # a LoRALinear's .base: skipped
            continue
        if name not in old:
            raise ValueError(f"layer {name!r} of after has no twin in before")
        w = m.base.weight + m.delta_weight() if isinstance(m, LoRALinear) \
            else m.weight
        w0 = old[name].weight
        if w.shape != w0.shape:
            raise ValueError(f"layer {name!r}: shapes {tuple(w0.shape)} and "
                             f"{tuple(w.shape)} differ")
        out[name] = (w.detach() - w0.detach()).cpu()
    if not out:
        raise ValueError(f"no layer of after is named by the targets {targets}")
    return out


def source_windows(bpe, record: dict, span: int, n: int | None = None):
    """(n, span) windows of the held-out plays (the book model's source domain),
    spread evenly over their text rather than all from its start."""
    from mlf.corpora import shakespeare_text

    n = LEARN_FORGET_SETUP["source_windows"] if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    ids = torch.tensor(bpe.encode(shakespeare_text(record["held_out_plays"])))
    windows = ids[: len(ids) // span * span].view(-1, span)  # (N, span)
    if len(windows) < n:
        raise ValueError(f"the held-out plays give {len(windows)} windows, asked {n}")
    return windows[torch.linspace(0, len(windows) - 1, n).long()]


def target_windows(bpe, span: int):
    """(train stream, dev windows, test windows) of Python's docs: train and test are
    ``mlf.quant.domain_split``'s; dev are the next windows of the held-out tail, used
    only to choose learning rates."""
    from mlf.quant import QLORA_SETUP, domain_split

    train, test = domain_split(bpe, span)
    ids = torch.tensor(bpe.encode(_docs()))
    tail = ids[int(len(ids) * QLORA_SETUP["train_fraction"]):]
    windows = tail[: len(tail) // span * span].view(-1, span)
    n_test, n_dev = len(test), LEARN_FORGET_SETUP["dev_windows"]
    return train, windows[n_test: n_test + n_dev], test


def _docs() -> str:
    from mlf.quant import python_docs_text
    return python_docs_text()


def finetune(model: nn.Module, method: str, train: torch.Tensor, seed: int, lr: float,
             steps: int, evaluate=None, every: int = 10) -> list[float]:
    """Fine-tune ``model`` in place by ``method`` (a key of the setup's "methods":
    "full", or "lora r=R" with α = 2R on all six linear layers) for ``steps`` AdamW
    updates at a constant rate ``lr``; seed fixes the batches and LoRA's A.
    ``evaluate(step, model)`` runs every ``every`` updates. Returns the training
    losses."""
    from mlf.gpt import train_steps
    from mlf.lora import add_lora, lora_parameters

    methods = LEARN_FORGET_SETUP["methods"]
    if method not in methods:
        raise ValueError(f"method must be one of {tuple(methods)}, got {method!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    r = methods[method]
    if r:
        add_lora(model, TARGETS, r, LEARN_FORGET_SETUP["alpha_per_rank"] * r,
                 seed=seed)  # freezes W: only A and B train
        params = lora_parameters(model)
    else:
        params = list(model.parameters())  # all of them, embeddings too

    def callback(step, m):
        if evaluate is not None and step % every == 0:
            evaluate(step, m)

    return train_steps(model, train, steps, batch=LEARN_FORGET_SETUP["batch"], lr=lr,
                       weight_decay=0.0, floor=1.0, params=params,
                       generator=torch.Generator().manual_seed(seed),
                       callback=callback)

"""Magnitude pruning and lottery tickets (Frankle & Carbin 2019, ICLR).

A mask ``m`` has one 0/1 entry per weight of each ``nn.Linear`` layer (biases are not
pruned, as in the paper). ``prune_by_magnitude`` removes, in every layer, the fraction
``rate`` of the weights that are still alive and have the smallest magnitude; the
output layer goes at half the rate (the paper's section 2). A lottery ticket is the
mask applied to the weights at initialisation, ``m * theta_0``.

Convention of the reference, ``torch.nn.utils.prune.l1_unstructured``: it prunes
``round(rate * n)`` of the ``n`` live entries (Python's round, halves to even), the
ones ``torch.topk(|w|, k, largest=False)`` picks; a second call prunes a fraction of
what the first left alive. ``prune_by_magnitude`` follows all three, so its masks are
the reference's masks.

>>> w = torch.tensor([[0.5, -0.1], [0.05, -2.0]])
>>> prune_tensor(w, torch.ones(2, 2), 0.5)        # the two smallest |w| go
tensor([[1., 0.],
        [0., 1.]])
>>> prune_tensor(w, torch.tensor([[1., 0.], [0., 1.]]), 0.5)   # half of what is left
tensor([[0., 0.],
        [0., 1.]])
"""
from __future__ import annotations

import copy
import json
import math
from itertools import pairwise
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    """Fully connected ReLU network; ``MLP((64, 300, 100, 10))`` is the paper's
    LeNet-300-100 with an 8x8 input instead of 28x28.

    Weights are Gaussian Glorot, N(0, 2 / (fan_in + fan_out)), as in the paper's
    Figure 2; biases start at zero.
    """

    def __init__(self, sizes=(64, 300, 100, 10), generator=None):
        super().__init__()
        sizes = tuple(sizes)
        if len(sizes) < 2 or not all(isinstance(s, int) and not isinstance(s, bool)
                                     and s > 0 for s in sizes):
            raise ValueError("sizes must list at least two positive integers "
                             f"(input, ..., output), got {sizes!r}")
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        glorot_(self, generator)

    def forward(self, x):  # x: (B, sizes[0]) -> logits (B, sizes[-1])
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


def glorot_(model: nn.Module, generator=None) -> nn.Module:
    """Draw every ``nn.Linear`` weight from N(0, 2 / (fan_in + fan_out)), biases 0."""
    # orig: PyTorch's default is Kaiming-uniform with a = sqrt(5), std 1/sqrt(3 fan_in)
    with torch.no_grad():
        for weight in prunable(model).values():
            fan_out, fan_in = weight.shape
            std = math.sqrt(2.0 / (fan_in + fan_out))
            weight.copy_(torch.randn(weight.shape, generator=generator) * std)
        for module in model.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
    return model


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights that pruning acts on: ``{name: weight}`` of every ``nn.Linear``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    weights = {f"{name}.weight": m.weight for name, m in model.named_modules()
               if isinstance(m, nn.Linear)}
    if not weights:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer, so no "
                         "weights to prune")
    return weights


def full_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """All-ones masks, one per prunable weight: the dense network."""
    return {name: torch.ones_like(w) for name, w in prunable(model).items()}


def check_rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise TypeError(f"a pruning rate is a number in [0, 1), got {rate!r}")
    if not 0 <= rate < 1:
        raise ValueError(f"a pruning rate is the fraction of live weights to remove, "
                         f"in [0, 1); got {rate!r}")
    return float(rate)


def prune_tensor(weight, mask, rate: float) -> torch.Tensor:
    """New mask: of the entries where ``mask`` is 1, switch off the fraction ``rate``
    with the smallest ``|weight|``."""
    rate = check_rate(rate)
    if not (isinstance(weight, torch.Tensor) and isinstance(mask, torch.Tensor)):
        raise TypeError(f"weight and mask must be tensors, got "
                        f"{type(weight).__name__} and {type(mask).__name__}")
    if weight.shape != mask.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match weight shape "
                         f"{tuple(weight.shape)}")
    alive = mask.reshape(-1) == 1
    n_prune = round(rate * int(alive.sum()))  # subtle: Python's round, as torch's
    new = mask.detach().clone().reshape(-1)
    if n_prune:
        live_idx = alive.nonzero().squeeze(1)
        scores = weight.detach().reshape(-1)[live_idx].abs()
        smallest = torch.topk(scores, n_prune, largest=False).indices
        new[live_idx[smallest]] = 0
    return new.reshape(mask.shape)


def layer_rates(model: nn.Module, rate: float, output_factor: float = 0.5):
    """``{name: rate}``: every layer at ``rate``, the last at ``rate * output_factor``
    (the paper prunes "connections to outputs ... at half of the rate")."""
    rate = check_rate(rate)
    names = list(prunable(model))
    return {n: rate * (output_factor if n == names[-1] else 1.0) for n in names}


def prune_by_magnitude(model: nn.Module, masks, rates) -> dict[str, torch.Tensor]:
    """One round of layer-wise magnitude pruning of the model's current weights."""
    weights = prunable(model)
    if set(masks) != set(weights) or set(rates) != set(weights):
        raise ValueError(f"masks and rates need one entry per prunable weight "
                         f"{sorted(weights)}, got {sorted(masks)} and {sorted(rates)}")
    return {n: prune_tensor(w, masks[n], rates[n]) for n, w in weights.items()}


def apply_masks(model: nn.Module, masks) -> nn.Module:
    """Zero the pruned weights in place: ``w <- m * w``."""
    weights = prunable(model)
    if set(masks) != set(weights):
        raise ValueError(f"masks needs one entry per prunable weight {sorted(weights)},"
                         f" got {sorted(masks)}")
    with torch.no_grad():
        for name, w in weights.items():
            if masks[name].shape != w.shape:
                raise ValueError(f"mask for {name} has shape "
                                 f"{tuple(masks[name].shape)}, the weight "
                                 f"{tuple(w.shape)}")
            w.mul_(masks[name].to(w.device))
    return model


def remaining(masks) -> float:
    """P_m = ||m||_0 / |theta|: the fraction of prunable weights still alive."""
    alive = sum(int(m.sum()) for m in masks.values())
    return alive / sum(m.numel() for m in masks.values())


def reset(model: nn.Module, init_state, masks) -> nn.Module:
    """The ticket: every parameter back to ``init_state`` (theta_0), then ``m *``."""
    model.load_state_dict(init_state)
    return apply_masks(model, masks)


def digits(split_seed: int = 0, n_val: int = 180, n_test: int = 360, device=None):
    """scikit-learn's 8x8 digits (1,797 images, pixels scaled to [0, 1]) cut at random
    into ``{"train", "val", "test"}``, each ``(x (N, 64), y (N,))``."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.tensor(raw.data, dtype=torch.float32) / 16.0  # pixels 0..16 -> 0..1
    y = torch.tensor(raw.target, dtype=torch.long)
    if not (0 < n_val and 0 < n_test and n_val + n_test < len(x)):
        raise ValueError(f"n_val and n_test must be positive and leave training "
                         f"images out of {len(x)}, got {n_val} and {n_test}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val],
             "train": order[n_test + n_val:]}
    return {k: (x[i].to(device), y[i].to(device)) for k, i in parts.items()}


@torch.no_grad()
def evaluate(model, x, y) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``(x, y)``."""
    logits = model(x)
    return (F.cross_entropy(logits, y).item(),
            (logits.argmax(1) == y).float().mean().item())


def stacked_forward(weights, biases, x):
    """K networks at once: weights[l] (K, out, in), biases[l] (K, out), x (B, in)
    -> logits (K, B, classes)."""
    h = x.expand(weights[0].shape[0], *x.shape)  # (K, B, in): one input, K networks
    for layer, (w, b) in enumerate(zip(weights, biases)):
        h = torch.baddbmm(b[:, None, :], h, w.transpose(1, 2))  # h W^T + b
        if layer < len(weights) - 1:
            h = F.relu(h)
    return h


def train(models, masks, data, *, epochs: int = 40, lr: float = 1.2e-3,
          batch: int = 60, seed: int = 0) -> list[dict]:
    """Train ``MLP``s of one shape side by side, each under its masks: Adam on the
    cross-entropy, shuffled mini-batches (the same for all), pruned weights held at 0.

    Evaluates once per epoch. The early-stopping epoch is the one of least validation
    loss (the paper's measure of how fast a network learns); ``test_acc`` is the test
    accuracy there. The trained weights are written back into ``models``.
    """
    models, masks = list(models), list(masks)
    if not models or len(models) != len(masks):
        raise ValueError(f"need one dict of masks per model, got {len(models)} models"
                         f" and {len(masks)} mask dicts")
    if not all(isinstance(m, MLP) for m in models):
        raise TypeError("train expects a list of mlf.pruning.MLP models")
    for key, value in (("epochs", epochs), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    names = list(prunable(models[0]))
    for m, mk in zip(models, masks):
        apply_masks(m, mk)  # also checks names and shapes
    n_layers = len(models[0].layers)

    def stack(get):  # one (K, ...) leaf tensor per layer
        return [torch.stack([get(m, i).detach() for m in models]).requires_grad_()
                for i in range(n_layers)]

    weights = stack(lambda m, i: m.layers[i].weight)
    biases = stack(lambda m, i: m.layers[i].bias)
    keep = [torch.stack([mk[n] for mk in masks]) for n in names]  # (K, out, in)
    opt = torch.optim.Adam(weights + biases, lr=lr)
    x, y = data["train"]
    g = torch.Generator().manual_seed(seed)
    history = []  # per epoch: (val loss (K,), test accuracy (K,))
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch):
            masked_step(opt, weights, biases, keep, x[idx], y[idx])
        with torch.no_grad():
            history.append(tuple(_scores(weights, biases, *data[s]) for s in
                                 ("val", "test")))
    with torch.no_grad():
        for j, m in enumerate(models):
            for i, layer in enumerate(m.layers):
                layer.weight.copy_(weights[i][j])
                layer.bias.copy_(biases[i][j])
    return [_summary([(v[0][j], t[1][j]) for v, t in history])
            for j in range(len(models))]


def masked_step(opt, weights, biases, keep, x, y) -> float:
    """One Adam step for K stacked networks on the batch (x (B, in), y (B,)), with the
    gradient of every pruned weight (``keep`` = 0) set to zero."""
    logits = stacked_forward(weights, biases, x)  # (K, B, C)
    # the sum over networks of each one's mean loss: network k's gradient is the
    # gradient of its own loss, and Adam works entry by entry
    loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(logits)),
                           reduction="sum") / len(x)
    opt.zero_grad()
    loss.backward()
    for w, m in zip(weights, keep):  # a pruned weight gets no gradient, so Adam
        w.grad.mul_(m)               # never moves it off zero
    opt.step()
    return loss.item()


def _scores(weights, biases, x, y):
    logits = stacked_forward(weights, biases, x)  # (K, N, C)
    loss = F.cross_entropy(logits.transpose(1, 2), y.expand(len(logits), -1),
                           reduction="none").mean(1)
    return loss.tolist(), (logits.argmax(2) == y).float().mean(1).tolist()


def _summary(curve):  # curve: per epoch (validation loss, test accuracy)
    stop = min(range(len(curve)), key=lambda e: curve[e][0])
    return {"stop_epoch": stop + 1, "test_acc": curve[stop][1],
            "final_test_acc": curve[-1][1], "val_loss": [c[0] for c in curve],
            "test_accs": [c[1] for c in curve]}


def one_shot_rates(model: nn.Module, rate: float, rounds: int,
                   output_factor: float = 0.5) -> dict[str, float]:
    """Per-layer rates that prune in one step as much as ``rounds`` rounds at ``rate``
    would: a layer keeps (1 - r)^rounds of its weights."""
    if isinstance(rounds, bool) or not isinstance(rounds, int):
        raise TypeError(f"rounds must be an integer, got {rounds!r}")
    if rounds < 0:
        raise ValueError(f"rounds must be a non-negative integer, got {rounds!r}")
    return {n: 1 - (1 - r) ** rounds
            for n, r in layer_rates(model, rate, output_factor).items()}


def lottery(data, *, rounds: int, rate: float = 0.2, seed: int = 0,
            controls_at=None, sizes=(64, 300, 100, 10), device=None, bar=None,
            **train_kw) -> dict:
    """The paper's experiment on one initialisation: iterative magnitude pruning with
    rewinding to theta_0, and at the rounds in ``controls_at`` (default: all) two
    controls with the same number of weights per layer: the iterative mask on a fresh
    draw theta_0' (random re-initialisation) and a one-shot mask from the dense
    network's trained weights, rewound to theta_0.

    Returns ``{"rounds": [...], "theta_0", "theta_0_fresh", "dense"}``; each round
    holds P_m, the masks and ``train``'s summary for "ticket", "reinit", "one_shot".
    """
    gen = torch.Generator().manual_seed(seed)
    net = MLP(sizes, generator=gen).to(device)  # theta_0, drawn on the CPU
    fresh = MLP(sizes, generator=gen).to(device)  # theta_0', for the control
    theta_0, theta_0_fresh = copy.deepcopy(net.state_dict()), fresh.state_dict()
    dense, full = copy.deepcopy(net), full_masks(net)
    [result] = train([dense], [full], data, seed=seed, **train_kw)
    out = {"theta_0": theta_0, "theta_0_fresh": theta_0_fresh, "dense": dense,
           "rounds": [{"remaining": 1.0, "masks": full, "ticket": result}]}
    trained, masks = dense, full
    for r in range(1, rounds + 1):
        masks = prune_by_magnitude(trained, masks, layer_rates(trained, rate))
        once = prune_by_magnitude(dense, full, one_shot_rates(dense, rate, r))
        nets = [reset(copy.deepcopy(net), theta_0, masks),
                reset(copy.deepcopy(net), theta_0_fresh, masks),
                reset(copy.deepcopy(net), theta_0, once)]
        both = controls_at is None or r in controls_at
        if not both:  # the ticket alone
            nets = nets[:1]
        results = train(nets, [masks, masks, once][:len(nets)], data, seed=seed,
                        **train_kw)
        out["rounds"].append({"remaining": remaining(masks), "masks": masks,
                              "one_shot_masks": once,
                              **dict(zip(("ticket", "reinit", "one_shot"), results))})
        trained = nets[0]
        if bar is not None:
            bar.update(1)
    return out


DATA = Path(__file__).resolve().parents[2] / "data" / "lottery"


def load_sweep(path=None) -> dict:
    """The stored seed sweep of ``scripts/lottery_sweep.py`` (json)."""
    path = Path(path) if path is not None else DATA / "sweep.json"
    if not path.exists():
        raise ValueError(f"{path} is missing; run scripts/lottery_sweep.py to make it")
    return json.loads(path.read_text())

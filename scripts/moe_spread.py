"""The mixture-of-experts chapter's two small experiments, over 10 seeds.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/moe_spread.py

notebooks/25_moe.ipynb runs seed 0 of each live; this script measures the spread that
sets the margins of its asserts, and writes data/moe/spread.json.

* ``modes``: a regression task with 4 latent modes (``mlf.moe.modes_task``); a dense
  feed-forward block of width 16, an MoE of 4 experts of width 16 (top-1, no capacity
  limit, alpha = 0.1: the same parameters per token), and a dense block of width 64
  (the MoE's total parameters). Test MSE on 4,096 fresh examples.
* ``balance``: 8 modes, 8 experts of width 16, top-1, capacity factor 1.0 in training
  and test, with (alpha = 0.1) and without the balancing loss: the load of each expert
  on 16 test groups of 256 examples, its coefficient of variation, the fraction of
  tokens dropped, the test MSE. Also with Switch's alpha = 0.01 ("weak"), to show that
  what matters is alpha relative to the task loss.

Seeds fix the teacher, the batches and the initialisation; a rerun writes the same file.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from mlf import moe
from mlf.transformer import FeedForward
from torch.nn import functional as F

OUT = Path(__file__).resolve().parents[1] / "data" / "moe" / "spread.json"
CONFIG = {"seeds": list(range(10)), "d": 8, "width": 16, "steps": 400, "batch": 256,
          "lr": 3e-3, "test": 4096,
          "modes": {"n_modes": 4, "n_experts": 4, "alpha": 0.1},
          "balance": {"n_modes": 8, "n_experts": 8, "alpha": 0.1, "alpha_weak": 0.01,
                      "capacity_factor": 1.0}}


def task(seed: int, n_modes: int):
    """The teacher and the test set of ``seed``, and the generator for the batches."""
    g = torch.Generator().manual_seed(seed)
    _, _, _, teacher = moe.modes_task(1, CONFIG["d"], n_modes, generator=g)
    x, y, _, _ = moe.modes_task(CONFIG["test"], CONFIG["d"], n_modes, generator=g,
                                teacher=teacher)
    return teacher, x, y, g


def modes_run(seed: int, kind: str) -> float:
    c = CONFIG["modes"]
    teacher, x, y, g = task(seed, c["n_modes"])
    torch.manual_seed(seed)
    d, w = CONFIG["d"], CONFIG["width"]
    model = {"dense": lambda: FeedForward(d, w),
             "wide": lambda: FeedForward(d, w * c["n_experts"]),
             "moe": lambda: moe.MoE(d, w, c["n_experts"], 1, None)}[kind]()
    moe.fit_modes(model, teacher, CONFIG["steps"], CONFIG["batch"], CONFIG["lr"],
                  c["alpha"] if kind == "moe" else 0.0, g)
    with torch.no_grad():
        return F.mse_loss(model(x), y).item()


def balance_run(seed: int, alpha: float) -> dict:
    c = CONFIG["balance"]
    teacher, x, y, g = task(seed, c["n_modes"])
    torch.manual_seed(seed)
    d, b = CONFIG["d"], CONFIG["batch"]
    model = moe.MoE(d, CONFIG["width"], c["n_experts"], 1, c["capacity_factor"])
    moe.fit_modes(model, teacher, CONFIG["steps"], b, CONFIG["lr"], alpha, g)
    with torch.no_grad():
        mse = F.mse_loss(model(x.view(-1, b, d)), y.view(-1, b, d)).item()
    load = model.load.float()
    return {"load": model.load.tolist(), "cv": (load.std() / load.mean()).item(),
            "dropped": model.dropped, "mse": mse}


def main():
    torch.set_num_threads(1)
    out = {"config": CONFIG, "modes": {}, "balance": {}}
    for kind in ("dense", "moe", "wide"):
        out["modes"][kind] = {s: modes_run(s, kind) for s in CONFIG["seeds"]}
        print(kind, out["modes"][kind])
    c = CONFIG["balance"]
    for name, alpha in (("with", c["alpha"]), ("without", 0.0),
                        ("weak", c["alpha_weak"])):
        out["balance"][name] = {s: balance_run(s, alpha) for s in CONFIG["seeds"]}
        print(name, {s: (round(r["cv"], 2), round(r["dropped"], 3))
                     for s, r in out["balance"][name].items()})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

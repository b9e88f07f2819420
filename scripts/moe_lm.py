"""A small GPT on Shakespeare with its feed-forward blocks dense or mixtures of experts.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/moe_lm.py

notebooks/25_moe.ipynb plugs ``mlf.moe.MoE`` into the book's GPT through its
feed-forward seam (``mlf.moe.MoEGPT``). This script trains, from scratch and for each
of 5 seeds, a GPT smaller than the book's (so that 15 runs take minutes on a CPU):
dense; 4 experts, top-1, capacity factor 1.25, alpha = 0.01 (Switch's settings); the
same without the balancing loss (alpha = 0). The book's tokenizer and its split: the
held-out plays give 64 windows for the held-out loss. Writes data/moe/lm.json: the
held-out loss, each layer's expert load and dropped fraction on those windows (in
training mode's capacity), and the training curve every 10 updates.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from mlf import gpt, moe
from mlf.corpora import shakespeare_text, shakespeare_titles

OUT = Path(__file__).resolve().parents[1] / "data" / "moe" / "lm.json"
CONFIG = {"model": {"vocab_size": 2048, "context": 64, "d_model": 96, "n_heads": 4,
                    "n_layers": 2, "d_ff": 384},
          "n_experts": 4, "k": 1, "capacity_factor": 1.25, "seeds": [0, 1, 2, 3, 4],
          "variants": {"dense": None, "moe": 0.01, "moe_no_aux": 0.0},
          "steps": 300, "batch": 16, "lr": 2e-3, "warmup": 30, "floor": 0.1,
          "weight_decay": 0.1, "held_out_windows": 64}
DATA = {}


def data():
    if not DATA:
        _, bpe, record = gpt.load_book_lm()
        held_plays = record["held_out_plays"]
        train = [t for t in shakespeare_titles() if t not in held_plays]
        span = CONFIG["model"]["context"] + 1
        held = torch.tensor(bpe.encode(shakespeare_text(held_plays)))
        DATA["train"] = torch.tensor(bpe.encode(shakespeare_text(train)))
        DATA["held"] = held[: CONFIG["held_out_windows"] * span].view(-1, span)
    return DATA["train"], DATA["held"]


def build(variant: str, seed: int) -> gpt.GPT:
    torch.manual_seed(seed)
    cfg = gpt.GPTConfig(**CONFIG["model"])
    alpha = CONFIG["variants"][variant]
    if alpha is None:
        return gpt.GPT(cfg)
    return moe.MoEGPT(cfg, CONFIG["n_experts"], CONFIG["k"], CONFIG["capacity_factor"],
                      alpha)


def run(job):
    variant, seed = job
    torch.set_num_threads(1)
    train, held = data()
    model = build(variant, seed)
    curve = gpt.train_steps(model, train, CONFIG["steps"], batch=CONFIG["batch"],
                            lr=CONFIG["lr"], warmup=CONFIG["warmup"],
                            floor=CONFIG["floor"], weight_decay=CONFIG["weight_decay"],
                            generator=torch.Generator().manual_seed(seed))
    out = {"held_out": gpt.mean_loss(model, held), "curve": curve[9::10]}
    if isinstance(model, moe.MoEGPT):
        with torch.no_grad():
            model(held[:, :-1])
        out["load"] = [m.load.tolist() for m in model.moe_layers()]
        out["dropped"] = [m.dropped for m in model.moe_layers()]
    print(variant, seed, round(out["held_out"], 4), flush=True)
    return variant, seed, out


def main():
    # one run after another: each is seeded on its own, so the order does not matter
    jobs = [(v, s) for v in CONFIG["variants"] for s in CONFIG["seeds"]]
    results = [run(job) for job in jobs]
    runs = {v: {} for v in CONFIG["variants"]}
    for variant, seed, out in results:
        runs[variant][str(seed)] = out
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"config": CONFIG, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Subspace training on a sentiment task, where pre-training does NOT lower the
intrinsic dimension at convergence: the runs behind "What did not show it" in
notebooks/14_intrinsic_dimension.ipynb.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/intrinsic_sentiment.py \\
        --device cuda --workers 12 --out data/intrinsic/sentiment_gpu.jsonl

The stored file was made that way, on one GPU (an NVIDIA H200) with 12 worker
processes: 52 runs, about 4 minutes of wall time. On a CPU, one thread, a subspace
run of 1,000 updates takes about 5 minutes and a full fine-tuning run of 2,000 updates
about 4 (the whole plan: roughly 3 to 4 CPU-hours). GPU arithmetic is not the CPU's,
so a CPU rerun gives statistically, not bit for bit, the same accuracies.

The task: consecutive 16-token windows of the plays, labelled by VADER's compound score
(positive above 0.3, negative below -0.3, neutral windows dropped, classes balanced;
``mlf.subspace.sentiment_windows``): 6,000 training windows from every third training
play of the book's model, 2,000 test windows from its three held-out plays.

The runs (the plan ``jobs``): the book's model with a new linear head
(``mlf.subspace.SequenceClassifier``), pre-trained or freshly initialised, the model
seed = the run's seed; Adam, batches of 32, test accuracy every ``every`` updates.
* full fine-tuning: 2,000 updates at learning rate 1e-3 and 3e-3, seeds 0 and 1;
* subspace (Fastfood over all parameters, seed = projection seed): lr = c / sqrt(d),
  1,000 updates, d in {10, 100, 300, 1000, 3000, 10000, 100000}, c in {3, 10}, seed 0;
  d in {1000, 10000}, c = 3, seeds 1 and 2; and 300 updates with the rate decaying
  linearly to 0 (d in {1000, 10000}, c in {3, 10}).
Each line of the output is one run: its settings, the curve [update, mean training
loss since the last point, test accuracy], the final and best test accuracy, the
accuracy on every third training window, and its wall and CPU seconds.
"""
from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import time
from pathlib import Path

import torch
from torch import nn

G = {}  # per process: the model, the data and the device


def jobs(scale: float = 1.0) -> list[dict]:
    """The runs, in the order they are started; ``scale`` shortens them (tests)."""
    def s(n):
        return max(2, int(n * scale))

    out = []
    for seed in (0, 1):  # full fine-tuning convergence
        for init in ("random", "pretrained"):
            for lr in (1e-3, 3e-3):
                out.append({"init": init, "d": 0, "lr": lr, "steps": s(2000),
                            "seed": seed, "every": s(100)})
    for d in (1000, 10000, 100, 100000, 3000, 300, 10):  # constant lr c / sqrt(d)
        for c in (3, 10):
            for init in ("pretrained", "random"):
                out.append({"init": init, "d": d, "lr": c / d ** 0.5, "c": c,
                            "steps": s(1000), "seed": 0, "every": s(100)})
    for seed in (1, 2):  # projection seeds
        for init in ("pretrained", "random"):
            for d in (1000, 10000):
                out.append({"init": init, "d": d, "lr": 3 / d ** 0.5, "c": 3,
                            "steps": s(1000), "seed": seed, "every": s(100)})
    for init in ("pretrained", "random"):  # linear decay to 0, fixed budget
        for d in (1000, 10000):
            for c in (3, 10):
                out.append({"init": init, "d": d, "lr": c / d ** 0.5, "c": c,
                            "steps": s(300), "seed": 0, "every": s(300),
                            "decay": True})
    return out


def sentiment_data() -> dict:
    """The training and test windows with their VADER labels."""
    from mlf.corpora import shakespeare_titles
    from mlf.gpt import load_book_lm
    from mlf.subspace import sentiment_windows

    _, bpe, record = load_book_lm()
    held = record["held_out_plays"]
    train = [t for t in shakespeare_titles() if t not in held]
    return {"train": sentiment_windows(bpe, train[::3], 16, 0.3, 6000),
            "test": sentiment_windows(bpe, held, 16, 0.3, 2000)}


def setup(device: str, data: dict) -> None:
    from mlf.gpt import load_book_lm

    torch.set_num_threads(1)
    G["lm"] = load_book_lm()[0]
    G["train"] = [t.to(device) for t in data["train"]]
    G["test"] = [data["test"][0].to(device), data["test"][1]]  # labels on CPU
    G["train_y_cpu"] = data["train"][1]
    G["device"] = device


def run(job: dict) -> dict:
    from mlf.gpt import GPT
    from mlf.subspace import SequenceClassifier, Subspace, accuracy

    device = G["device"]
    (trx, tr_y), (tex, tey) = G["train"], G["test"]
    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(job["seed"])
    lm = G["lm"]
    body = copy.deepcopy(lm) if job["init"] == "pretrained" else GPT(lm.cfg)
    model = SequenceClassifier(body, 2).to(device)
    if job["d"]:
        model = Subspace(model, job["d"], "fastfood",
                         torch.Generator().manual_seed(job["seed"])).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=job["lr"])
    steps, every = job["steps"], job["every"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 1 - k / steps if job.get("decay") else 1.0)
    g = torch.Generator().manual_seed(job["seed"])
    curve, losses = [], []
    for step in range(1, steps + 1):
        pick = torch.randint(0, len(trx), (32,), generator=g).to(device)
        loss = nn.functional.cross_entropy(model(trx[pick]), tr_y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % every == 0 or step == steps:
            acc = accuracy(model, tex, tey)
            recent = losses[-every:]
            curve.append([step, round(sum(recent) / len(recent), 4), round(acc, 4)])
    train_acc = accuracy(model, trx[::3], G["train_y_cpu"][::3])
    return dict(job, curve=curve, acc=curve[-1][2], best=max(c[2] for c in curve),
                train_acc=round(train_acc, 4),
                wall_s=round(time.perf_counter() - t0, 1),
                cpu_s=round(time.process_time() - c0, 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    todo = jobs(a.scale)[: a.limit]
    data = sentiment_data()
    print(len(todo), "runs", flush=True)
    with open(a.out, "a") as f:  # one line per finished run (in finishing order)
        if a.workers == 1:
            setup(a.device, data)
            results = map(run, todo)
        else:
            pool = multiprocessing.get_context("spawn").Pool(
                a.workers, initializer=setup, initargs=(a.device, data))
            results = pool.imap_unordered(run, todo)
        for r in results:
            f.write(json.dumps(r) + "\n")
            f.flush()
            print(r["init"], r["d"], r.get("c"), r["lr"], r["steps"], r["seed"],
                  r.get("decay", False), r["acc"], r["best"], r["wall_s"], flush=True)


if __name__ == "__main__":
    main()

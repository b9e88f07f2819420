"""Convert the book's language model to grouped-query attention and uptrain it, 5 seeds.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/gqa_uptrain.py [--jobs 2]

The GQA chapter (notebooks/28_gqa.ipynb) converts the book's multi-head model
(data/lm/shakespeare.pt, 8 heads, 900 updates) into models with G = 1, 2, 4 and 8
key/value heads (``mlf.gqa.convert``) and uptrains each for 45 updates, 5% of the 900
pre-training updates, as Ainslie et al. do with alpha = 0.05. G = 8 is the unchanged
multi-head model, uptrained for the same 45 updates so that the comparison is fair.

* ``converted``: held-out loss right after conversion, for every G and method ("mean",
  "first", "random"; "random" once per seed, as its draw depends on it);
* ``runs``: for "mean" at every G, and "first" and "random" at G = 1 (the paper's
  Fig. 4 compares methods for multi-query attention), each of 5 seeds (the order of
  the uptraining batches and, for "random", the new heads): the held-out loss every 15
  updates and the training loss of every update.

Uptraining continues the pre-training recipe at its final learning rate (2e-4, the end
of scripts/train_lm.py's cosine), held constant: the paper uptrains "with the same
pre-training setup", and a T5 run's inverse square-root rate barely moves at its end.
A constant rate also makes the first k updates of a run the same as a run of k updates,
so the chapter can repeat the first 15 live. Batches of 8 windows, a quarter of
pre-training's 32, keep the sweep to about a quarter of an hour of CPU time: 5% of the updates,
1.25% of the tokens.

One thread per run and fixed seeds: a rerun writes the same file, and on a CPU the
chapter's live updates reproduce the first ones of seed 0 here.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import torch
from mlf.corpora import shakespeare_text, shakespeare_titles
from mlf.gpt import CHECKPOINT, load_book_lm, mean_loss, train_steps
from mlf.gqa import METHODS, convert

OUT = Path(__file__).resolve().parents[1] / "data" / "gqa" / "uptrain.json"
CONFIG = {"groups": [1, 2, 4, 8], "runs": {"mean": [1, 2, 4, 8], "first": [1],
                                            "random": [1]},
          "seeds": [0, 1, 2, 3, 4], "steps": 45, "batch": 8, "lr": 2e-4, "warmup": 0,
          "floor": 1.0, "weight_decay": 0.1, "eval_every": 15,
          "held_out_windows": 64, "pretraining_steps": 900}

DATA = {}  # the model, token streams and held-out windows, loaded once per process


def book_data(path: Path = CHECKPOINT):
    """The book model, its training stream and its held-out windows (as train_lm's)."""
    model, bpe, record = load_book_lm(path)
    held_plays = record["held_out_plays"]
    train = [t for t in shakespeare_titles() if t not in held_plays]
    train_ids = torch.tensor(bpe.encode(shakespeare_text(train)))
    held_ids = torch.tensor(bpe.encode(shakespeare_text(held_plays)))
    span = model.cfg.context + 1
    held = held_ids[: CONFIG["held_out_windows"] * span].view(-1, span)
    return model, train_ids, held


def load_data(checkpoint: Path) -> None:
    torch.set_num_threads(1)  # determinism, and a fair share of a small machine
    DATA["model"], DATA["train"], DATA["held"] = book_data(checkpoint)


def uptrain(model, train_ids, held, seed, steps, callback=None):
    """The chapter's recipe: ``steps`` AdamW updates at a constant rate."""
    cfg = CONFIG
    return train_steps(model, train_ids, steps, batch=cfg["batch"], lr=cfg["lr"],
                       warmup=cfg["warmup"], floor=cfg["floor"],
                       weight_decay=cfg["weight_decay"],
                       generator=torch.Generator().manual_seed(seed),
                       callback=callback)


def run_task(task):
    """Convert with ``method`` to ``groups`` key/value heads, uptrain from ``seed``."""
    method, groups, seed = task
    start = time.process_time()
    model = convert(DATA["model"], groups, method,
                    torch.Generator().manual_seed(seed))
    evals = [[0, mean_loss(model, DATA["held"])]]

    def evaluate(step, model):
        if step % CONFIG["eval_every"] == 0:
            evals.append([step, mean_loss(model, DATA["held"])])

    curve = uptrain(model, DATA["train"], DATA["held"], seed, CONFIG["steps"],
                    evaluate)
    print(f"{method} G={groups} seed {seed}: {evals[0][1]:.3f} -> {evals[-1][1]:.3f} "
          f"({time.process_time() - start:.0f} s CPU)", flush=True)
    return task, {"held_out": evals, "curve": [round(x, 6) for x in curve]}


def converted_loss(task):
    """Held-out loss right after converting with ``method`` to ``groups`` heads."""
    method, groups, seed = task
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return mean_loss(convert(DATA["model"], groups, method, generator), DATA["held"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    load_data(args.checkpoint)
    cfg = CONFIG
    tasks = [(m, g, s) for m, gs in cfg["runs"].items() for g in gs
             for s in cfg["seeds"]]
    # held-out loss right after conversion; "random" depends on the seed
    checks = [(m, g, None) for m in METHODS if m != "random" for g in cfg["groups"]]
    checks += [("random", g, s) for g in cfg["groups"] for s in cfg["seeds"]]
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(
                args.jobs, initializer=load_data, initargs=(args.checkpoint,)) as pool:
            results = pool.map(run_task, tasks, chunksize=1)
            losses = pool.map(converted_loss, checks, chunksize=1)
    else:
        results = [run_task(t) for t in tasks]
        losses = [converted_loss(c) for c in checks]
    converted = {}
    for (m, g, s), loss in zip(checks, losses):
        if s is None:
            converted.setdefault(m, {})[str(g)] = loss
        else:
            converted.setdefault(m, {}).setdefault(str(g), {})[str(s)] = loss
    runs = {}
    for (m, g, s), result in results:
        runs.setdefault(m, {}).setdefault(str(g), {})[str(s)] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # the book's model itself: converting with every head kept changes nothing
    out = {"config": cfg, "original": converted["mean"][str(max(cfg["groups"]))],
           "converted": converted, "runs": runs}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{args.out}: {len(tasks)} runs, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

"""Intrinsic dimension of a word-order task for the book's model, pre-trained and from
random init: test accuracy against the subspace dimension d, several projection seeds.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/intrinsic_sweep.py

About 30 to 50 CPU-minutes with the defaults (5 seeds, 5 values of d, one thread).
The chapter notebooks/14_intrinsic_dimension.ipynb reads the result,
data/intrinsic/sweep.json. It was written in parts, which give the same accuracies as
one run (every run is seeded on its own): first ``--dims 100 1000 10000``, then
``--inits pretrained --dims 300 3000`` and ``--inits random --dims 300 3000``, two
processes at once into files of their own, added to it by ``merged`` (as ``--merge``
does; it checks that each part's full fine-tuning, rerun, equals the stored one).

The task: windows of 16 tokens of the plays, half of them with their tokens shuffled;
the label says which (1 real, 0 shuffled). 6,000 training windows from every third
training play of the book's model, 2,000 test windows from its three held-out plays.
It needs what pre-training taught the model (which token orders are English):
fine-tuning all parameters from random init memorises the training windows but stays
at chance on the test windows (scripts/intrinsic_full.py).

The model: ``mlf.subspace.SequenceClassifier`` on the book's GPT, either its trained
weights ("pretrained") or a fresh GPT-2 initialisation of the same architecture
("random"); the linear head is new in both. Head and random body are drawn once (seed
0); the seeds vary the projection P and the order of the batches.

* ``full``: all D parameters trained, Adam, learning rate 1e-3, ``full_steps`` updates
  (one run per init);
* ``subspace``: θ = θ_0 + P θ_d with a Fastfood P over all D parameters (head
  included, as in the paper), Adam on θ_d at learning rate ``lr_c`` / sqrt(d),
  ``steps`` updates, for each d of ``dims`` and each seed.

One thread and fixed seeds: a rerun writes the same file.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from mlf.corpora import shakespeare_titles
from mlf.gpt import GPT, load_book_lm
from mlf.subspace import (
    SequenceClassifier,
    Subspace,
    accuracy,
    train_classifier,
    word_order_windows,
)

OUT = Path(__file__).resolve().parents[1] / "data" / "intrinsic" / "sweep.json"
CONFIG = {"dims": [100, 300, 1000, 3000, 10000], "seeds": [0, 1, 2, 3, 4], "steps": 200,
          "lr_c": 3.0, "full_steps": 300, "full_lr": 1e-3, "batch": 32,
          "length": 16, "train_windows": 6000, "test_windows": 2000,
          "train_plays_every": 3, "data_seed": 1234, "model_seed": 0}


def task_data(data_seed: int | None = None):
    """The book model, and the task's training and test windows with labels (drawn
    with ``data_seed``, by default the sweep's)."""
    lm, bpe, record = load_book_lm()
    held = record["held_out_plays"]
    train = [t for t in shakespeare_titles() if t not in held]
    cfg = CONFIG
    g = torch.Generator().manual_seed(cfg["data_seed"] if data_seed is None
                                      else data_seed)
    train_set = word_order_windows(bpe, train[::cfg["train_plays_every"]],
                                   cfg["train_windows"], cfg["length"], g)
    test_set = word_order_windows(bpe, held, cfg["test_windows"], cfg["length"], g)
    return lm, train_set, test_set


def model_for(lm, init: str, seed: int | None = None) -> SequenceClassifier:
    """The classifier on the pre-trained body, or on a fresh one: head and random body
    drawn with ``seed``, by default the sweep's ``model_seed``."""
    torch.manual_seed(CONFIG["model_seed"] if seed is None else seed)
    body = copy.deepcopy(lm) if init == "pretrained" else GPT(lm.cfg)
    return SequenceClassifier(body, 2)


def full_run(init, lm, train_set, test_set) -> float:
    """Test accuracy after training all parameters."""
    cfg = CONFIG
    model = model_for(lm, init)
    train_classifier(model, *train_set, cfg["full_steps"], cfg["full_lr"],
                     cfg["batch"], torch.Generator().manual_seed(cfg["model_seed"]))
    return accuracy(model, *test_set)


def subspace_run(init, d, seed, lm, train_set, test_set) -> float:
    """Test accuracy after training θ_d of dimension d (projection seed ``seed``)."""
    cfg = CONFIG
    model = Subspace(model_for(lm, init), d, "fastfood",
                     torch.Generator().manual_seed(seed))
    train_classifier(model, *train_set, cfg["steps"], cfg["lr_c"] / d ** 0.5,
                     cfg["batch"], torch.Generator().manual_seed(seed))
    return accuracy(model, *test_set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seeds", type=int, nargs="+", default=CONFIG["seeds"])
    parser.add_argument("--dims", type=int, nargs="+", default=CONFIG["dims"])
    parser.add_argument("--inits", nargs="+", default=["pretrained", "random"],
                        choices=["pretrained", "random"])
    parser.add_argument("--merge", action="store_true",
                        help="add these runs to the file at --out, not replace it")
    args = parser.parse_args()
    torch.set_num_threads(1)  # determinism, and a fair share of a small machine
    CONFIG.update(seeds=args.seeds)
    start = time.process_time()
    lm, train_set, test_set = task_data()
    out = {"config": dict(CONFIG, dims=args.dims), "full": {}, "subspace": {},
           "cpu_s": {}}
    for init in args.inits:
        t = time.process_time()
        out["full"][init] = full_run(init, lm, train_set, test_set)
        out["cpu_s"][f"{init} full"] = round(time.process_time() - t)
        print(f"{init} full: {out['full'][init]:.3f}", flush=True)
        for d in args.dims:
            for seed in args.seeds:
                t = time.process_time()
                acc = subspace_run(init, d, seed, lm, train_set, test_set)
                out["subspace"].setdefault(init, {}).setdefault(str(d), {})[
                    str(seed)] = acc
                out["cpu_s"][f"{init} d={d} seed {seed}"] = round(
                    time.process_time() - t)
                print(f"{init} d={d} seed {seed}: {acc:.3f} "
                      f"({time.process_time() - t:.0f} CPU s)", flush=True)
    out["cpu_minutes"] = round((time.process_time() - start) / 60, 1)
    if args.merge:
        out = merged(json.loads(args.out.read_text()), out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


def merged(old: dict, new: dict) -> dict:
    """``old`` with ``new``'s runs added; the full fine-tuning runs must agree."""
    for init, acc in new["full"].items():
        if old["full"].get(init, acc) != acc:
            raise SystemExit(f"{init} full fine-tuning gives {acc}, the file has "
                             f"{old['full'][init]}: not the same experiment")
        old["full"][init] = acc
    for init, by_d in new["subspace"].items():
        runs = old["subspace"].setdefault(init, {})
        for d, by_seed in by_d.items():
            runs.setdefault(d, {}).update(by_seed)
        old["subspace"][init] = dict(sorted(runs.items(), key=lambda kv: int(kv[0])))
    for key, seconds in new["cpu_s"].items():  # a rerun full run keeps both times
        old["cpu_s"][f"{key}, rerun" if key in old["cpu_s"] else key] = seconds
    old["cpu_minutes"] = round(old["cpu_minutes"] + new["cpu_minutes"], 1)
    dims = {int(d) for by_d in old["subspace"].values() for d in by_d}
    old["config"]["dims"] = sorted(dims)
    return old


if __name__ == "__main__":
    main()

"""The spread, over seeds, of the chapter's live subspace runs: the book's model,
pre-trained and from random init, trained in a random subspace of d = 1,000 dimensions
for a few Adam updates on the word-order task, test accuracy along the way.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/intrinsic_live_spread.py

About 8 CPU-minutes (one thread). The notebook notebooks/14_intrinsic_dimension.ipynb
runs the same code with its seeds; ``scripts/seeds.py`` reruns it with every seed moved
by 1 to 5. This script repeats the live runs with every seed moved by 0 to 5 (the data
seed, the seed of the new head and random body, the projection and batch seeds) and
writes data/intrinsic/live_spread.json, from which the notebook sets its margin.
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

OUT = Path(__file__).resolve().parents[1] / "data" / "intrinsic" / "live_spread.json"
# the sweep's task and learning rate (scripts/intrinsic_sweep.py), fewer updates
CONFIG = {"d": 1000, "steps": 100, "marks": [40, 60, 80, 100], "lr_c": 3.0,
          "batch": 32, "length": 16, "train_windows": 6000, "test_windows": 2000,
          "train_plays_every": 3, "data_seed": 1234, "seed": 0}


def live_runs(shift: int, lm, bpe, record) -> dict:
    """Test accuracy after each of ``marks`` updates, pre-trained and random init,
    with every seed moved by ``shift``."""
    cfg = CONFIG
    held = record["held_out_plays"]
    train = [t for t in shakespeare_titles() if t not in held]
    g = torch.Generator().manual_seed(cfg["data_seed"] + shift)
    train_set = word_order_windows(bpe, train[::cfg["train_plays_every"]],
                                   cfg["train_windows"], cfg["length"], g)
    test_set = word_order_windows(bpe, held, cfg["test_windows"], cfg["length"], g)
    seed, out = cfg["seed"] + shift, {}
    for init in ("pretrained", "random"):
        torch.manual_seed(seed)
        body = copy.deepcopy(lm) if init == "pretrained" else GPT(lm.cfg)
        model = Subspace(SequenceClassifier(body, 2), cfg["d"], "fastfood",
                         torch.Generator().manual_seed(seed))
        curve = {}

        def loop(steps, model=model, curve=curve):
            for k in steps:  # accuracy after k updates, before update k + 1
                if k in cfg["marks"]:
                    curve[str(k)] = accuracy(model, *test_set)
                yield k

        train_classifier(model, *train_set, cfg["steps"], cfg["lr_c"] / cfg["d"] ** 0.5,
                         cfg["batch"], torch.Generator().manual_seed(seed), loop)
        curve[str(cfg["steps"])] = accuracy(model, *test_set)
        out[init] = curve
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--shifts", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.process_time()
    lm, bpe, record = load_book_lm()
    out = {"config": CONFIG, "shifts": {}}
    for shift in args.shifts:
        out["shifts"][str(shift)] = live_runs(shift, lm, bpe, record)
        print(shift, out["shifts"][str(shift)], flush=True)
    out["cpu_minutes"] = round((time.process_time() - start) / 60, 1)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

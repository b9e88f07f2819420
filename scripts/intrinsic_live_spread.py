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
import json
import sys
import time
from pathlib import Path

import torch
from mlf.subspace import Subspace, accuracy, train_classifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import intrinsic_sweep as sweep  # the sweep's task and model

OUT = Path(__file__).resolve().parents[1] / "data" / "intrinsic" / "live_spread.json"
# the sweep's task and learning rate (scripts/intrinsic_sweep.py), fewer updates
CONFIG = {"d": 1000, "steps": 100, "marks": [40, 60, 80, 100],
          **{k: sweep.CONFIG[k] for k in ("lr_c", "batch", "length", "train_windows",
                                          "test_windows", "train_plays_every",
                                          "data_seed")},
          "seed": 0}


def live_runs(shift: int) -> dict:
    """Test accuracy after each of ``marks`` updates, pre-trained and random init,
    with every seed moved by ``shift``."""
    cfg = CONFIG
    lm, train_set, test_set = sweep.task_data(cfg["data_seed"] + shift)
    seed, out = cfg["seed"] + shift, {}
    for init in ("pretrained", "random"):
        model = Subspace(sweep.model_for(lm, init, seed), cfg["d"], "fastfood",
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
    out = {"config": CONFIG, "shifts": {}}
    for shift in args.shifts:
        out["shifts"][str(shift)] = live_runs(shift)
        print(shift, out["shifts"][str(shift)], flush=True)
    out["cpu_minutes"] = round((time.process_time() - start) / 60, 1)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

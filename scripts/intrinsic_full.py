"""Fine-tuning ALL parameters of the book's model on the word-order task, from its
pre-trained weights and from random init: held-out and training accuracy along the
way. It shows that random init does not learn the task at this data size (training
accuracy rises, held-out accuracy stays at chance), and it repeats the two full runs of
scripts/intrinsic_sweep.py bit for bit (seed 0, 300 updates).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/intrinsic_full.py

About 6 CPU-minutes (one thread). Writes data/intrinsic/full.json, which
notebooks/14_intrinsic_dimension.ipynb reads. The task, model and optimiser are the
sweep's (its ``task_data``, ``model_for`` and settings); the seed is the model seed
(new head, random body) and the batch seed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from mlf.subspace import accuracy, train_classifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import intrinsic_sweep as sweep  # the sweep's task and model

OUT = Path(__file__).resolve().parents[1] / "data" / "intrinsic" / "full.json"
PLAN = {"pretrained": {"seeds": [0], "steps": 300, "marks": [300]},
        "random": {"seeds": [0, 1, 2], "steps": 1000, "marks": [300, 1000]}}


def full_curve(init, seed, lm, train_set, test_set) -> dict:
    """{updates: [held-out accuracy, training accuracy]} at the plan's marks."""
    cfg, plan = sweep.CONFIG, PLAN[init]
    model = sweep.model_for(lm, init, seed)
    curve = {}

    def loop(steps):
        for k in steps:  # the accuracies after k updates, before update k + 1
            if k in plan["marks"]:
                curve[str(k)] = [accuracy(model, *test_set),
                                 accuracy(model, *train_set)]
            yield k

    train_classifier(model, *train_set, plan["steps"], cfg["full_lr"], cfg["batch"],
                     torch.Generator().manual_seed(seed), loop)
    curve[str(plan["steps"])] = [accuracy(model, *test_set),
                                 accuracy(model, *train_set)]
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.process_time()
    lm, train_set, test_set = sweep.task_data()
    out = {"plan": PLAN, "lr": sweep.CONFIG["full_lr"], "runs": {}}
    for init, plan in PLAN.items():
        for seed in plan["seeds"]:
            curve = full_curve(init, seed, lm, train_set, test_set)
            out["runs"][f"{init} seed {seed}"] = curve
            print(init, seed, curve, flush=True)
    out["cpu_minutes"] = round((time.process_time() - start) / 60, 1)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

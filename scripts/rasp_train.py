"""Train small encoders on the RASP chapter's tasks, at the RASP program's depth and one
layer fewer, over several seeds; store the accuracies in data/rasp/training.json.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/rasp_train.py   # about ten minutes, one core

Fixed seeds, one thread: the run repeats bit for bit on the same machine.
"""
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))
from mlf import rasp

OUT = ROOT / "data" / "rasp" / "training.json"
SEEDS = [0, 1, 2, 3, 4]
# task: (settings, the depths to train); the first depth is the RASP program's
RUNS = {
    "histogram": ({"steps": 1500, "n": 8, "vocab": 8}, [1, 0]),
    "sort": ({"steps": 600, "n": 8, "vocab": 8}, [2, 1]),
    "sort, vocabulary 32": ({"steps": 600, "n": 8, "vocab": 32}, [2, 1]),
}


def main():
    torch.set_num_threads(1)
    only = sys.argv[1:]  # optional: a subset of the tasks, to run in parallel
    out = json.loads(OUT.read_text()) if OUT.exists() else {"runs": {}}
    out["seeds"] = SEEDS
    out["config"] = {name: {**cfg, "depths": depths} for name, (cfg, depths)
                     in RUNS.items()}
    for name, (cfg, depths) in RUNS.items():
        if only and name not in only:
            continue
        task = name.split(",")[0]
        for layers in depths:
            for seed in SEEDS:
                _, result = rasp.train_task(task, layers, seed=seed, **cfg,
                                            desc=f"{name}, {layers} layers, {seed}")
                result["losses"] = [round(v, 6) for v in result["losses"]]
                out["runs"].setdefault(name, {}).setdefault(str(layers), {})[
                    str(seed)] = result
                print(name, layers, seed, result["token_accuracy"],
                      result["sequence_accuracy"], flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Train the needle chapter's retrieval models, five seeds, and measure their grids.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/needle_train.py [--jobs 2]

The long-context chapter (notebooks/26_long_context.ipynb) trains a small rotary GPT
(``mlf.gpt``, context 64) on the synthetic needle task of ``mlf.needle.KeyValueTask``
and runs the report's grid of context length x needle depth. Training takes a few
minutes a seed, so this script does it, for seeds 0-4, and writes

* ``data/needle/retrieval.pt``: the seed-0 model (float32 weights), its config and
  training curve, which the chapter loads (``torch.load(weights_only=True)``);
* ``data/needle/results.json``: for every seed, the training curve (mean of every 50
  updates), the recall grid at lengths 16-256 with positions as trained
  (extrapolation) and with position interpolation, and the grids after a short
  fine-tune at lengths up to 4x the trained one, with and without interpolation.

One thread and fixed seeds: a rerun writes the same numbers, and the chapter's live
updates from seed 0 repeat this script's first ones on a CPU.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import torch

from mlf.gpt import GPT, GPTConfig
from mlf.needle import KeyValueTask, length_grid, stretch, train_retrieval

OUT = Path(__file__).resolve().parents[1] / "data" / "needle"
CONFIG = {
    "task": {"n_filler": 32, "n_keys": 16},
    "model": {"context": 64, "d_model": 64, "n_heads": 4, "n_layers": 2,
              "d_ff": 256, "positions": "rotary"},
    # at most 6000 updates (the cosine schedule's length); stop once the last 100
    # average below 0.01 nats. The plateau before the induction head forms lasts
    # 500-2000 updates depending on the seed, so a shorter schedule decays the rate
    # before some seeds have learned the task.
    "train": {"steps": 6000, "batch": 32, "lr": 3e-3, "warmup": 50,
              "min_length": 8, "stop_below": 0.01},
    "grid": {"lengths": [16, 32, 48, 64, 96, 128, 192, 256],
             "depths": [i / 10 for i in range(11)], "trials": 20,
             "eval_seed": 10_000},
    # a short fine-tune at up to 4x the trained length (Chen et al. fine-tune too)
    "finetune": {"length": 256, "steps": 60, "batch": 32, "lr": 1e-3,
                 "warmup": 10, "min_length": 64,
                 "lengths": [64, 128, 192, 256]},
    "seeds": list(range(5)),
}


def fresh_model(seed: int) -> GPT:
    task = KeyValueTask(**CONFIG["task"])
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=task.vocab_size, **CONFIG["model"]))


def train(seed: int):
    model, cfg = fresh_model(seed), CONFIG["train"]
    curve = train_retrieval(model, KeyValueTask(**CONFIG["task"]), cfg["steps"],
                            min_length=cfg["min_length"], batch=cfg["batch"],
                            lr=cfg["lr"], warmup=cfg["warmup"],
                            stop_below=cfg["stop_below"],
                            generator=torch.Generator().manual_seed(seed))
    return model, curve


def grids(model: GPT, lengths, seed: int) -> dict:
    """Recall grids, positions as trained and interpolated, on the same prompts."""
    task, g = KeyValueTask(**CONFIG["task"]), CONFIG["grid"]
    return {name: length_grid(model, task, lengths, g["depths"], g["trials"],
                              g["eval_seed"] + 1000 * seed, interpolate).tolist()
            for name, interpolate in (("extrapolated", False),
                                      ("interpolated", True))}


def finetune(model: GPT, interpolate: bool, seed: int):
    """Fine-tune a copy at lengths up to ``finetune.length``; return it and its
    grids at ``finetune.lengths``, read at the fine-tuned scale."""
    f = CONFIG["finetune"]
    long = stretch(model, f["length"], interpolate)
    curve = train_retrieval(long, KeyValueTask(**CONFIG["task"]), f["steps"],
                            min_length=f["min_length"], batch=f["batch"], lr=f["lr"],
                            warmup=f["warmup"],
                            generator=torch.Generator().manual_seed(seed + 500))
    task, g = KeyValueTask(**CONFIG["task"]), CONFIG["grid"]
    rows = length_grid(long, task, f["lengths"], g["depths"], g["trials"],
                       g["eval_seed"] + 1000 * seed).tolist()
    return long, {"grid": rows, "curve": curve}


def run_seed(seed: int) -> dict:
    torch.set_num_threads(1)
    start = time.process_time()
    model, curve = train(seed)
    result = {"steps": len(curve),
              "curve_every_50": [sum(curve[i:i + 50]) / len(curve[i:i + 50])
                                 for i in range(0, len(curve), 50)],
              "grid": grids(model, CONFIG["grid"]["lengths"], seed),
              "finetune": {name: finetune(model, interpolate, seed)[1]
                           for name, interpolate in (("extrapolated", False),
                                                     ("interpolated", True))}}
    result["cpu_seconds"] = round(time.process_time() - start)
    if seed == 0:
        torch.save({"config": CONFIG, "curve": torch.tensor(curve),
                    "state": {k: v.detach().clone()
                              for k, v in model.state_dict().items()}},
                   OUT / "retrieval.pt")
    print(f"seed {seed}: {result['cpu_seconds']} s", flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="*", default=CONFIG["seeds"])
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(run_seed, args.seeds)
    (OUT / "results.json").write_text(json.dumps(
        {"config": CONFIG, "seeds": dict(zip(map(str, args.seeds), results))},
        indent=1))


if __name__ == "__main__":
    main()

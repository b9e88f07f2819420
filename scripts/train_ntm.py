"""Train the NTM and the LSTM baseline on the copy task and save small checkpoints.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_ntm.py      # writes data/ntm/

Single-threaded on the CPU with fixed seeds: the same machine reproduces the files
bit for bit; another CPU may differ in the last digits of a float (its vector units
sum in another order). The chapter notebooks/02_ntm.ipynb loads them with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mlf.ntm import build_copy_models, train_copy

# Saved in curves.pt; the chapter rebuilds the models from this copy, so it is the one
# place to edit.
CONFIG = {"bits": 6, "max_len": 10, "batch": 16, "steps": 12000, "controller_size": 100,
          "memory_rows": 32, "memory_width": 16, "lstm_hidden": 128,
          "ntm_lr": 3e-4, "lstm_lr": 1e-3, "clip": 10.0, "data_seed": 1, "init_seed": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/ntm"))
    parser.add_argument("--steps", type=int, default=CONFIG["steps"])
    args = parser.parse_args()
    torch.set_num_threads(1)  # determinism and a fair share of a small machine
    config = dict(CONFIG, steps=args.steps)
    ntm, lstm = build_copy_models(config)
    curves = {}
    runs = (("ntm", ntm, config["ntm_lr"]), ("lstm", lstm, config["lstm_lr"]))
    for name, model, lr in runs:
        start = time.perf_counter()
        costs = train_copy(model, config["steps"], config["bits"], config["max_len"],
                           batch=config["batch"], lr=lr, clip=config["clip"],
                           seed=config["data_seed"], desc=name)
        print(f"{name}: {time.perf_counter() - start:.0f} s, last 500 steps "
              f"{sum(costs[-500:]) / 500:.3f} bits per sequence")
        curves[name] = torch.tensor(costs)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(ntm.state_dict(), args.out / "ntm_copy.pt")
    torch.save(lstm.state_dict(), args.out / "lstm_copy.pt")
    torch.save({"config": config, **curves}, args.out / "curves.pt")


if __name__ == "__main__":
    main()

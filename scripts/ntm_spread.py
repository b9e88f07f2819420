"""How much the NTM chapter's measurements move when its seeds move.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/ntm_spread.py  # data/ntm/spread.json

The chapter (notebooks/02_ntm.ipynb) asserts its claims with margins. This script
measures what those margins must cover. For each shift s in 0..5 (s = 0 is the
chapter's own run) it repeats the chapter's measurements with every seed moved by s,
as ``make seeds`` does:

* the trained checkpoint on fresh test sequences (test seed 1234 + s): cost and
  wrong bits per length, as in the chapter's generalisation table;
* the learned program (``mlf.ntm.copy_program_stats``) on 200 sequences of length
  20 (seed 7 + s);
* the first 800 updates of training from init seed 0 + s and data seed 1 + s: the
  mean cost of the first and of the last 100 updates, in bits per sequence and per
  target bit (1 is the cost of guessing).

About 3 minutes on one quiet CPU core, almost all of it the short training runs.
The checkpoints themselves are not retrained.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mlf.ntm import (build_copy_models, copy_batch, copy_program_stats, evaluate_copy,
                     train_copy)

ROOT = Path(__file__).resolve().parent.parent
LIVE_STEPS, TEST_SEED, PROGRAM_SEED, LENGTHS = 800, 1234, 7, list(range(1, 31))


def load_checkpoints(data: Path):
    stored = torch.load(data / "curves.pt", weights_only=True)
    config = stored["config"]
    ntm, lstm = build_copy_models(config)
    ntm.load_state_dict(torch.load(data / "ntm_copy.pt", weights_only=True))
    lstm.load_state_dict(torch.load(data / "lstm_copy.pt", weights_only=True))
    return config, {"NTM": ntm.eval(), "LSTM": lstm.eval()}


def measure(shift: int, config: dict, models: dict, live: bool) -> dict:
    cfg = config
    result = {}
    table = evaluate_copy(models, LENGTHS, 100, cfg["bits"],
                          torch.Generator().manual_seed(TEST_SEED + shift))
    ntm, lstm = table["NTM"], table["LSTM"]
    i20, top = LENGTHS.index(20), cfg["max_len"]
    result["test"] = {
        "ntm_in_range": float(np.mean(ntm["cost"][:top])),
        "lstm_in_range": float(np.mean(lstm["cost"][:top])),
        "ntm_cost_20": ntm["cost"][i20], "ntm_errors_20": ntm["errors"][i20],
        "lstm_cost_20": lstm["cost"][i20], "lstm_errors_20": lstm["errors"][i20],
        "ntm_worst_21_30": max(ntm["cost"][i20 + 1:]),
        "lstm_best_21_30": min(lstm["cost"][i20 + 1:]),
        "ntm_worst_median": max(ntm["median"])}
    x, _ = copy_batch(200, 20, cfg["bits"],
                      torch.Generator().manual_seed(PROGRAM_SEED + shift))
    result["program"] = copy_program_stats(models["NTM"], x, 20)
    if live:
        shifted = dict(cfg, init_seed=cfg["init_seed"] + shift)
        result["live"] = {}
        for name, model, lr in zip(("ntm", "lstm"), build_copy_models(shifted),
                                   (cfg["ntm_lr"], cfg["lstm_lr"])):
            costs, lengths = train_copy(model, LIVE_STEPS, cfg["bits"], cfg["max_len"],
                                        batch=cfg["batch"], lr=lr, clip=cfg["clip"],
                                        seed=cfg["data_seed"] + shift,
                                        desc=f"{name} {shift}", return_lengths=True)
            per_bit = np.array(costs) / (cfg["bits"] * np.array(lengths))  # 1: guessing
            result["live"][name] = {"first_100": float(np.mean(costs[:100])),
                                    "last_100": float(np.mean(costs[-100:])),
                                    "first_100_per_bit": float(per_bit[:100].mean()),
                                    "last_100_per_bit": float(per_bit[-100:].mean())}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "ntm")
    parser.add_argument("--shifts", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--no-live", action="store_true", help="skip the training runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config, models = load_checkpoints(args.data)
    out = {"note": "written by scripts/ntm_spread.py", "live_steps": LIVE_STEPS,
           "shifts": {}}
    for shift in args.shifts:
        start = time.perf_counter()
        out["shifts"][str(shift)] = measure(shift, config, models, not args.no_live)
        print(f"shift {shift}: {time.perf_counter() - start:.0f} s", flush=True)
    path = args.data / "spread.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

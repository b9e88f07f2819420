"""Full fine-tuning against LoRA r = 1, 4, 16, 64 on the book's model: learning and
forgetting over 5 seeds, with a learning-rate sweep per method.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/learn_forget_sweep.py

The chapter notebooks/20_lora_learns_less.ipynb ("LoRA learns less and forgets less",
Biderman et al. 2024) in small. The base is the book's language model
(data/lm/shakespeare.pt); the target domain is Python's documentation
(``pydoc_data.topics``), split as in the QLoRA chapter; the source domain is the
held-out plays. Setup: ``mlf.learn_forget.LEARN_FORGET_SETUP``.

1. lr sweep, seed 0: every method at each rate of its grid; the rate with the lowest
   target loss on the dev windows after the last update is chosen (one rate per method,
   as the paper chooses one per method).
2. Seeds 1..4 at the chosen rate (seed 0 at that rate is the sweep's run), and at the
   setup's "extra" rates (each method one grid step below its chosen rate).

``--resume`` reuses the runs already stored in --out (same setup entries): every run is
deterministic, so the file is the one a run from scratch writes.

Stored in data/learn_forget/sweep.json: the setup, the losses before fine-tuning,
``runs[method][lr][seed]`` with the target and source loss every 10 updates, the
chosen rates, and, for the chosen rate of every method and seed, the singular values
of ΔW of each of the 24 linear layers, to 4 significant digits (for LoRA the top r:
the rest are rounding noise, as ΔW = (α/r)BA has rank at most r). One thread, one
process, fixed seeds: a rerun writes the same file (about 15 CPU-minutes).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from mlf.gpt import load_book_lm, mean_loss
from mlf.learn_forget import (
    LEARN_FORGET_SETUP,
    finetune,
    source_windows,
    spectrum,
    target_windows,
    weight_changes,
)
from mlf.notebook import progress

OUT = Path(__file__).resolve().parents[1] / "data" / "learn_forget" / "sweep.json"


def sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def run_one(method: str, lr: float, seed: int, data) -> dict:
    """One fine-tuning run: evaluations on the way, dev loss and ΔW spectra at the end."""
    train, dev, test, source = data
    model, _, _ = load_book_lm()
    base, _, _ = load_book_lm()
    evals = [[0, round(mean_loss(model, test), 5), round(mean_loss(model, source), 5)]]

    def evaluate(step, m):
        evals.append([step, round(mean_loss(m, test), 5),
                      round(mean_loss(m, source), 5)])

    curve = finetune(model, method, train, seed, lr, LEARN_FORGET_SETUP["steps"],
                     evaluate, LEARN_FORGET_SETUP["eval_every"])
    deltas = weight_changes(base, model)
    keep = LEARN_FORGET_SETUP["methods"][method] or None  # LoRA: the top r values
    return {"eval": evals, "dev": round(mean_loss(model, dev), 5),
            "curve": [round(x, 4) for x in curve],
            "spectra": {n: [sig(s) for s in spectrum(d).tolist()[:keep]]
                        for n, d in deltas.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start, cpu = time.time(), time.process_time()
    setup = LEARN_FORGET_SETUP
    model, bpe, record = load_book_lm()
    span = model.cfg.context + 1
    train, dev, test = target_windows(bpe, span)
    source = source_windows(bpe, record, span)
    data = (train, dev, test, source)
    grid = {m: setup["lr_grid"]["full" if r == 0 else "lora"]
            for m, r in setup["methods"].items()}
    runs = {m: {} for m in setup["methods"]}
    old = json.loads(args.out.read_text())["runs"] if args.resume else {}

    def get(m, lr, s):
        stored = old.get(m, {}).get(str(lr), {}).get(str(s))
        return stored if stored is not None else run_one(m, lr, s, data)

    tasks = [(m, lr) for m in setup["methods"] for lr in grid[m]]
    for m, lr in progress(tasks, desc="lr sweep (seed 0)"):
        runs[m][str(lr)] = {"0": get(m, lr, 0)}
    chosen = {m: min(grid[m], key=lambda lr, m=m: runs[m][str(lr)]["0"]["dev"])
              for m in setup["methods"]}
    tasks = [(m, lr, s) for s in setup["seeds"][1:] for m in setup["methods"]
             for lr in sorted({chosen[m], *setup["extra"].get(m, [])})]
    for m, lr, s in progress(tasks, desc="seeds at the chosen (and extra) rates"):
        runs[m][str(lr)][str(s)] = get(m, lr, s)
    for m, by_rate in runs.items():  # keep ΔW spectra only for the chosen rate
        for lr, by_seed in by_rate.items():
            if lr != str(chosen[m]):
                for run in by_seed.values():
                    run.pop("spectra", None)
    out = {"setup": setup, "chosen_lr": chosen, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} in {time.time() - start:.0f} s "
          f"({time.process_time() - cpu:.0f} s of CPU)")
    for m in setup["methods"]:
        for lr in grid[m]:
            r = runs[m][str(lr)]["0"]
            print(f"{m:10} lr {lr:g}: dev {r['dev']:.3f} target {r['eval'][-1][1]:.3f}"
                  f" source {r['eval'][-1][2]:.3f}" + ("  <-" if lr == chosen[m] else ""))
    for m in setup["methods"]:
        finals = [e["eval"][-1] for e in runs[m][str(chosen[m])].values()]
        print(f"{m:10} target " + " ".join(f"{f[1]:.3f}" for f in finals)
              + " | source " + " ".join(f"{f[2]:.3f}" for f in finals))


if __name__ == "__main__":
    main()

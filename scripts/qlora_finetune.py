"""LoRA on the book's model in full precision and on 4-bit bases, 5 seeds each.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/qlora_finetune.py [--jobs 2]

The QLoRA chapter (notebooks/19_qlora.ipynb) asks whether LoRA on a 4-bit NormalFloat
base reaches what LoRA on the full-precision base reaches. The base is the book's
language model (data/lm/shakespeare.pt, trained on Shakespeare); the new domain is
Python's own documentation (``pydoc_data.topics``, in the standard library), the first
90% of its tokens for training, 32 windows of the last 10% for evaluation.

Bases: "fp32" (the model as trained) and "nf4": every nn.Linear of the blocks
quantized in blocks of 64 (``mlf.quant.qlora_base``); the tied embedding stays in
float32. The data split, the bases and the fine-tuning live in ``mlf.quant`` (the
chapter repeats the first updates live with the same functions). Every base gets
the same adapters, LoRA r = 8, alpha = 16 on all six linear layers of every block (the
paper puts LoRA on every linear layer), A drawn with the run's seed; 30 AdamW updates of
8 windows at a constant learning rate 2e-3, no weight decay. A constant rate makes the
first k updates of a run equal a run of k updates, so the chapter repeats the first
ones live. Seed s fixes A and the batches, the same for every base: differences between
bases at one seed are paired.

Stored in data/qlora/finetune.json: the config; ``before``, the evaluation loss of each
base before any update; ``runs[base][seed]``: the evaluation loss every 10 updates and
the training loss of every update. One thread per run: a rerun writes the same file.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import torch
from mlf.gpt import mean_loss
from mlf.quant import QLORA_BASES as BASES
from mlf.quant import QLORA_SETUP as CONFIG
from mlf.quant import domain_split, finetune_lora, qlora_base

OUT = Path(__file__).resolve().parents[1] / "data" / "qlora" / "finetune.json"


def run_one(task):
    name, seed = task
    torch.set_num_threads(1)
    model, bpe = qlora_base(name)
    train, windows = domain_split(bpe, model.cfg.context + 1)
    evals = [(0, round(mean_loss(model, windows), 6))]

    def every(step, m):
        if step % CONFIG["eval_every"] == 0:
            evals.append((step, round(mean_loss(m, windows), 6)))

    curve = finetune_lora(model, train, seed, CONFIG["steps"], every)
    return task, {"eval": evals, "curve": [round(x, 6) for x in curve]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    start = time.time()
    tasks = [(b, s) for s in CONFIG["seeds"] for b in BASES]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = dict(pool.imap(run_one, tasks))
    runs = {b: {str(s): results[(b, s)] for s in CONFIG["seeds"]} for b in BASES}
    before = {b: runs[b]["0"]["eval"][0][1] for b in BASES}
    out = {"config": CONFIG, "before": before, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out} in {time.time() - start:.0f} s")
    for b in BASES:
        finals = [runs[b][str(s)]["eval"][-1][1] for s in CONFIG["seeds"]]
        print(f"{b:7} before {before[b]:.4f}  after {CONFIG['steps']} updates: "
              + " ".join(f"{x:.4f}" for x in finals))


if __name__ == "__main__":
    main()

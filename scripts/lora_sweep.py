"""The LoRA chapter's sweep (18_lora.ipynb): MiniLM on a word-order task.

The model is MiniLM's top two layers (the four below frozen, their output computed once)
with mean pooling and a linear head. The data: 2,000 training lines and a 500-line dev
split from the training plays (no line shared, shuffled or not), 1,000 test lines from
the three held-out plays.

1. ``tune``: the learning rate of each method, chosen once on seed 0's DEV accuracy, as
   the paper tunes the learning rate, keeps α fixed: LoRA r = 8 over LR_GRID["lora"],
   full fine-tuning over LR_GRID["full"] -> data/lora/lr_grid.json.
2. Seeds: with those rates fixed, for each seed the frozen encoder with a trained head
   (the "linear probe" baseline); then, each starting from that head, full
   fine-tuning of the top two layers, LoRA on their query and value projections at the
   ranks in SETUP with the released code's Kaiming-uniform A, and with the paper's
   Gaussian A (peft: sigma = 1/r) -> data/lora/sweep_seed<s>.json; for seeds 0 and 1 the
   trained A and B of the Kaiming runs at ranks 8 and 64 (float16) -> AB_seed<s>.pt, for
   the subspace similarity of the paper's section 7.2.
Deterministic on a CPU with one thread (the data are the same for every seed; the seed
draws the head, A, the batches and dropout). A run repeated with the same settings (the
chosen rate on seed 0) is taken from the tuning step, not trained again.

    # about 25 CPU-minutes in all (the tuning adds four runs to seed 0's):
    OMP_NUM_THREADS=1 .venv/bin/python scripts/lora_sweep.py tune 0 1 2 3 4
"""
import json
import sys
import time
from pathlib import Path

import torch
from mlf.corpora import shakespeare_titles
from mlf.lora import (
    HELD_OUT,
    TopClassifier,
    accuracy,
    add_lora,
    count_parameters,
    encode,
    features,
    finetune,
    fit_head,
    load_minilm,
    lora_modules,
    word_order_task,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "lora"
SETUP = {"n_top": 2, "n_train": 2000, "n_dev": 500, "n_test": 1000,
         "corrupt": "shuffle", "max_length": 16, "epochs": 4, "batch": 32,
         "targets": ["query", "value"], "alpha": 16, "head_steps": 300,
         "head_lr": 1e-2, "ranks": [1, 4, 8, 64], "gaussian_ranks": [1, 8],
         "data_seeds": {"train": 0, "test": 1, "dev": 2}}
LR_GRID = {"lora": [3e-3, 1e-2, 3e-2], "full": [1e-4, 3e-4, 1e-3],
           "tune_seed": 0, "tune_rank": 8}


def task(encoder, tokenizer):
    """The fixed train/dev/test data as the states entering the top n_top layers."""
    s, seeds = SETUP, SETUP["data_seeds"]
    titles = [t for t in shakespeare_titles() if t not in HELD_OUT]
    train = word_order_task(s["n_train"], titles, seeds["train"], corrupt=s["corrupt"])
    dev = word_order_task(s["n_dev"], titles, seeds["dev"], corrupt=s["corrupt"],
                          exclude=train[0])
    test = word_order_task(s["n_test"], HELD_OUT, seeds["test"], corrupt=s["corrupt"])
    return {k: features(encoder, encode(tokenizer, *d, max_length=s["max_length"]),
                        s["n_top"])
            for k, d in (("train", train), ("dev", dev), ("test", test))}


def make(encoder, kind, seed, r=None, init="kaiming", head=None):
    """A fresh classifier (head drawn with ``seed``, or copied from ``head``)."""
    torch.manual_seed(seed)
    model = TopClassifier(encoder, SETUP["n_top"])
    if head is not None:  # orig: the paper's head starts at random; ours from the probe
        model.head.load_state_dict(head)
    if kind == "frozen":
        for p in model.layers.parameters():
            p.requires_grad_(False)
    if kind == "lora":
        add_lora(model, SETUP["targets"], r, SETUP["alpha"], init=init, seed=seed,
                 trainable=("head",))
    return model


_DONE = {}  # (kind, seed, r, init, lr) -> (row, A and B)


def run(encoder, data, kind, seed, lr=None, r=None, init="kaiming", head=None):
    """Train one model; its row (accuracies, parameter counts, CPU s) and A, B."""
    key = (kind, seed, r, init, lr)
    if key in _DONE:
        return _DONE[key]
    model = make(encoder, kind, seed, r, init, head)
    start = time.process_time()
    if kind == "frozen":
        fit_head(model, data["train"], SETUP["head_steps"], SETUP["head_lr"])
    else:
        torch.manual_seed(seed)  # dropout
        finetune(model, data["train"], SETUP["epochs"], lr, SETUP["batch"], seed=seed)
    cpu = time.process_time() - start
    trainable, total = count_parameters(model)
    row = {"kind": kind, "r": r, "init": init, "lr": lr, "seed": seed,
           "trainable": trainable, "total": total,
           "test_acc": accuracy(model, data["test"]),
           "dev_acc": accuracy(model, data["dev"]), "cpu_s": round(cpu, 1)}
    if kind == "full" or r == LR_GRID["tune_rank"] and init == "kaiming":
        row["train_acc"] = accuracy(model, data["train"])
    print(json.dumps(row), flush=True)
    mats = {n: {"A": m.lora_A.detach().half().clone(),
                "B": m.lora_B.detach().half().clone()}
            for n, m in lora_modules(model).items()}
    _DONE[key] = row, mats, model.head.state_dict() if kind == "frozen" else None
    return _DONE[key]


def tune(encoder, data):
    """Each method's rate: the best seed-0 dev accuracy over its grid."""
    seed = LR_GRID["tune_seed"]
    head = run(encoder, data, "frozen", seed)[2]
    rows = [run(encoder, data, "lora", seed, lr, LR_GRID["tune_rank"], head=head)[0]
            for lr in LR_GRID["lora"]]
    rows += [run(encoder, data, "full", seed, lr, head=head)[0]
             for lr in LR_GRID["full"]]
    chosen = {kind: max((r for r in rows if r["kind"] == kind),
                        key=lambda r: r["dev_acc"])["lr"] for kind in ("lora", "full")}
    with open(OUT / "lr_grid.json", "w") as f:
        json.dump({"setup": SETUP, "grid": LR_GRID, "chosen": chosen, "runs": rows},
                  f, indent=1)
    return chosen


def sweep(encoder, data, seed, lrs):
    rows, mats = [], {}
    probe_row, _, head = run(encoder, data, "frozen", seed)
    rows.append(probe_row)  # every fine-tuning run starts from the probe's head
    rows.append(run(encoder, data, "full", seed, lrs["full"], head=head)[0])
    for r in SETUP["ranks"]:
        row, ab, _ = run(encoder, data, "lora", seed, lrs["lora"], r, head=head)
        rows.append(row)
        if r in (8, 64):
            mats[r] = ab
    for r in SETUP["gaussian_ranks"]:
        rows.append(run(encoder, data, "lora", seed, lrs["lora"], r, "gaussian",
                        head)[0])
    with open(OUT / f"sweep_seed{seed}.json", "w") as f:
        json.dump({"setup": SETUP, "lr": lrs, "seed": seed, "runs": rows}, f, indent=1)
    if seed in (0, 1):
        torch.save(mats, OUT / f"AB_seed{seed}.pt")


def main(args):
    torch.set_num_threads(1)
    encoder, tokenizer = load_minilm()
    data = task(encoder, tokenizer)
    OUT.mkdir(parents=True, exist_ok=True)
    if args and args[0] == "tune":
        lrs, args = tune(encoder, data), args[1:]
    else:
        lrs = json.loads((OUT / "lr_grid.json").read_text())["chosen"]
    for seed in [int(s) for s in args]:
        sweep(encoder, data, seed, lrs)


if __name__ == "__main__":
    main(sys.argv[1:])

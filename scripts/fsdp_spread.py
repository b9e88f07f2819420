"""How closely FSDP2 and ZeRO-1 on 2 and 4 CPU processes match one process, over seeds.

Usage: python scripts/fsdp_spread.py [--seeds 0 1 2 3 4] [--out data/fsdp/spread.json]
       python scripts/fsdp_spread.py --bytes 4 [--out data/fsdp/bytes_n4.json]

For each seed: the FSDP chapter's experiment (the book's model, 5 Adam steps at
lr 1e-4 on global batches of 8 random windows of 64 tokens from four training plays,
drawn with torch.Generator().manual_seed(seed)) runs in one process and on 2 and 4
processes (``mlf.fsdp_worker.run``). Stored per seed and world size, for each engine:
the largest gap of the first gradients relative to the largest gradient, of the losses,
and of the final parameters without and with the attention key biases (whose gradient
is zero up to rounding, see the chapter), and the largest key-bias gradient.
Deterministic: the same seeds give the same numbers on the same machine and build.

With ``--bytes N`` it launches seed 0's experiment once on N processes and stores the
bytes each rank held under FSDP2 and under ZeRO-1 (they depend on the shapes only, not
on the seed): the chapter launches 2 processes live and reads the 4-process split here.
"""
import argparse
import json
import time
from pathlib import Path

import torch

from mlf import fsdp_worker as fw
from mlf.corpora import shakespeare_text, shakespeare_titles
from mlf.gpt import load_book_lm

ROOT = Path(__file__).resolve().parent.parent
KEY_BIAS = ("attn.w_k.bias",)
CONFIG = {"steps": 5, "batch": 8, "length": 64, "lr": 1e-4, "plays": 4,
          "worlds": [2, 4]}


def measure(seed, lm, stream):
    g = torch.Generator().manual_seed(seed)
    setup = fw.make_setup(lm, stream, CONFIG["steps"], CONFIG["batch"],
                          CONFIG["length"], CONFIG["lr"], g)
    single, ref = fw.train_single(setup)
    one_step, _ = fw.train_single(setup, steps=1)
    final = {n: p.detach() for n, p in single.named_parameters()}
    final1 = {n: p.detach() for n, p in one_step.named_parameters()}
    g_max = max(g.abs().max().item() for g in ref["grads"].values())
    row = {"key_bias_grad": max(ref["grads"][n].abs().max().item()
                                for n in ref["grads"] if n.endswith(KEY_BIAS)),
           "grad_max": g_max}
    for world in CONFIG["worlds"]:
        ranks = fw.run(setup, world)
        for engine in ("zero3", "zero2", "zero1"):
            target = final1 if engine == "zero2" else final
            losses = ranks[0][engine]["losses"]
            row[f"{engine}_N{world}"] = {
                "grad_rel": fw.gap(ranks[0]["grads"][engine], ref["grads"]) / g_max,
                "loss": max(abs(a - b) for a, b in zip(losses, ref["losses"])),
                "params": fw.gap(ranks[0]["params"][engine], target, KEY_BIAS),
                "params_all": fw.gap(ranks[0]["params"][engine], target)}
    return row


def rank_bytes(world, lm, stream):
    g = torch.Generator().manual_seed(0)
    setup = fw.make_setup(lm, stream, CONFIG["steps"], CONFIG["batch"],
                          CONFIG["length"], CONFIG["lr"], g)
    ranks = fw.run(setup, world)
    return {"world": world, "single": fw.train_single(setup, steps=1)[1]["bytes"],
            "ranks": [{e: r[e]["bytes"] for e in ("zero3", "zero1")} for r in ranks]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--bytes", type=int, default=None, metavar="N")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    lm, bpe, record = load_book_lm()
    plays = [t for t in shakespeare_titles() if t not in record["held_out_plays"]]
    stream = torch.tensor(bpe.encode(shakespeare_text(plays[:CONFIG["plays"]])))
    if args.bytes:
        out = args.out or ROOT / f"data/fsdp/bytes_n{args.bytes}.json"
        result = rank_bytes(args.bytes, lm, stream)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result))
        return
    args.out = args.out or ROOT / "data/fsdp/spread.json"
    rows = {}
    for seed in args.seeds:
        start = time.perf_counter()
        rows[seed] = measure(seed, lm, stream)
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s",
              json.dumps(rows[seed]), flush=True)
    args.out.write_text(json.dumps({"config": CONFIG, "seeds": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Learned, sinusoidal and rotary positions in the book's language model, equal budget.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/rope_positions.py [--jobs 2]

The RoPE chapter (notebooks/27_rope.ipynb) trains a small version of the book's language
model (``mlf.gpt``, context 64) for 150 updates with each positional scheme, from one
seed, and compares held-out losses. One seed cannot tell a real difference from luck, so
this script repeats the runs for eight seeds and writes ``data/lm/positions.json``,
which the chapter loads:

* ``runs``: held-out loss and training curve of every scheme and seed (150 updates);
* ``long``: three schemes, three seeds, a three times longer budget (450 updates), with
  the held-out loss every 50 updates: does the order last?
* ``extrapolation``: the rotary, sinusoidal and position-free models of ``runs`` read
  128-token windows, twice their training length; the rotary ones also with positions
  scaled by 1/2 (position interpolation); loss at each position, averaged over windows.

The tokenizer and the train/held-out split are the book model's (data/lm/shakespeare.pt,
``make checkpoints``). One thread and fixed seeds: a rerun writes the same file, and the
chapter's live run of seed 0 reproduces this file's seed 0 on a CPU.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from pathlib import Path

import torch

from mlf.corpora import shakespeare_text, shakespeare_titles
from mlf.gpt import (CHECKPOINT, GPT, GPTConfig, load_book_lm, loss_by_position,
                     mean_loss, train_steps, with_context)

OUT = Path(__file__).resolve().parents[1] / "data" / "lm" / "positions.json"
# "sinusoidal": the Transformer's sinusoids at the size of GPT-2's token embeddings
# (rms 0.02); "sinusoidal, unscaled": as the Transformer paper defines them (rms 0.71)
SCHEMES = ["learned", "sinusoidal", "sinusoidal, unscaled", "rotary", "none"]
CONFIG = {"model": {"vocab_size": 2048, "context": 64, "d_model": 80, "n_heads": 4,
                    "n_layers": 2, "d_ff": 320},
          "steps": 150, "batch": 16, "lr": 2e-3, "warmup": 20, "held_out_windows": 128,
          "seeds": list(range(8)), "schemes": SCHEMES,
          "long": {"steps": 450, "seeds": [0, 1, 2], "eval_every": 50,
                   "schemes": ["learned", "sinusoidal", "rotary"]},
          "extrapolation": {"length": 128, "windows": 64,
                            "schemes": ["rotary", "sinusoidal", "none"]}}
EMBED_STD = 0.02  # GPT-2's initialisation of the token embeddings


def book_streams(path: Path = CHECKPOINT):
    """The book model's tokenizer and its training and held-out token streams."""
    _, bpe, record = load_book_lm(path)
    held = record["held_out_plays"]
    train = [t for t in shakespeare_titles() if t not in held]
    return (bpe, torch.tensor(bpe.encode(shakespeare_text(train))),
            torch.tensor(bpe.encode(shakespeare_text(held))))


def position_model(scheme: str, model_cfg: dict, seed: int) -> GPT:
    """A fresh model with positions ``scheme`` (one of SCHEMES), initialised from
    ``seed``."""
    positions = "sinusoidal" if scheme.startswith("sinusoidal") else scheme
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**model_cfg, positions=positions))
    if scheme == "sinusoidal":  # rms 1/sqrt(2) -> EMBED_STD, the token embeddings' size
        model.pos.pe.mul_(EMBED_STD * math.sqrt(2))
    return model


def train_one(scheme, cfg, seed, train_ids, steps=None, callback=None):
    """Train one model of the comparison: the settings of ``cfg``, data order from
    ``seed`` as well."""
    model = position_model(scheme, cfg["model"], seed)
    curve = train_steps(model, train_ids, steps or cfg["steps"], batch=cfg["batch"],
                        lr=cfg["lr"], warmup=cfg["warmup"],
                        generator=torch.Generator().manual_seed(seed),
                        callback=callback)
    return model, curve


def windows(stream: torch.Tensor, length: int, count: int) -> torch.Tensor:
    """The first ``count`` non-overlapping windows of ``length`` tokens."""
    return stream[: count * length].view(count, length)


DATA = {}  # the token streams and held-out windows, loaded once per process


def load_data(checkpoint: Path) -> None:
    torch.set_num_threads(1)  # determinism, and a fair share of a small machine
    cfg = CONFIG
    _, DATA["train"], held_ids = book_streams(checkpoint)
    DATA["held"] = windows(held_ids, cfg["model"]["context"] + 1,
                           cfg["held_out_windows"])
    ext = cfg["extrapolation"]
    DATA["long_held"] = windows(held_ids, ext["length"] + 1, ext["windows"])


def run_task(task):
    """One training run: ("runs", scheme, seed) or ("long", scheme, seed)."""
    kind, scheme, seed = task
    cfg, start = CONFIG, time.perf_counter()
    if kind == "long":
        lg, evals = cfg["long"], []

        def evaluate(step, model):
            if step % lg["eval_every"] == 0:
                evals.append([step, mean_loss(model, DATA["held"])])

        train_one(scheme, cfg, seed, DATA["train"], steps=lg["steps"],
                  callback=evaluate)
        payload = evals
    else:
        model, curve = train_one(scheme, cfg, seed, DATA["train"])
        payload = {"held_out": mean_loss(model, DATA["held"]),
                   "curve": [round(x, 6) for x in curve]}
        ext = cfg["extrapolation"]
        if scheme in ext["schemes"]:
            scales = [1.0, 0.5] if scheme == "rotary" else [None]  # rope_scale
            payload["extrapolation"] = {
                str(s or 1.0): [round(x, 5) for x in loss_by_position(
                    with_context(model, ext["length"], s), DATA["long_held"]).tolist()]
                for s in scales}
    print(f"{kind}: {scheme}, seed {seed}: {time.perf_counter() - start:.0f} s",
          flush=True)
    return task, payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs in parallel, one thread each (same results)")
    args = parser.parse_args()
    start, cfg = time.perf_counter(), CONFIG
    tasks = [("long", s, seed) for s in cfg["long"]["schemes"]
             for seed in cfg["long"]["seeds"]]  # the longest first
    tasks += [("runs", s, seed) for s in cfg["schemes"] for seed in cfg["seeds"]]
    if args.jobs > 1:
        pool = multiprocessing.get_context("fork").Pool(
            args.jobs, initializer=load_data, initargs=(args.checkpoint,))
        with pool:
            done = dict(pool.imap_unordered(run_task, tasks))
    else:
        load_data(args.checkpoint)
        done = dict(map(run_task, tasks))
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python scripts/rope_positions.py",
              "config": cfg, "torch": torch.__version__, "jobs": args.jobs, "runs": {},
              "long": {}, "extrapolation": {}}
    for kind, scheme, seed in tasks:  # in a fixed order, whatever finished first
        payload = done[kind, scheme, seed]
        if kind == "runs" and "extrapolation" in payload:
            result["extrapolation"].setdefault(scheme, {})[str(seed)] = \
                payload.pop("extrapolation")
        result[kind].setdefault(scheme, {})[str(seed)] = payload
    result["seconds"] = round(time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{args.out}: {args.out.stat().st_size / 1e3:.0f} kB, "
          f"{result['seconds']} s with {args.jobs} job(s)")


if __name__ == "__main__":
    main()

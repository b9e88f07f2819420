"""REALM pre-training at toy scale, 5 seeds x 6 index settings: data/realm/sweep.json.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/realm_pretrain.py

The REALM chapter (notebooks/17_realm.ipynb) pre-trains ``mlf.realm`` models on the
biographies of 200 ``mlf.facts`` people (the knowledge corpus Z) and the masked
statements of 4 of each person's 5 facts (X); the fifth fact of each person is held out
of pre-training and is what every metric is measured on. Everything starts from random
weights. For each seed (the world, the split, the initial weights and the batches all
follow it) and each setting of the MIPS index:

* refresh_every in 1, 10, 50, 200 and never (built once at step 0), top k = 8 by the
  stale index, p(z|x) recomputed with the current encoders (REALM);
* refresh_every = 10 with p(z|x) taken from the stale index's embeddings instead
  ("stale scores": no gradient reaches Embed_doc);

it stores recall@1 of the gold biography and masked-LM accuracy on the held-out
statements every 25 steps, the number of documents embedded to build the indexes, and at
every step the share of the stale index's top 8 that a fresh index would also return.
Plus, per seed, a model with no retrieval trained on the same statements for as long.

One thread and fixed seeds: a rerun writes the same file, and the chapter's live run of
seed 0 repeats the stored one.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from mlf import realm
from mlf.notebook import progress

OUT = Path(__file__).resolve().parents[1] / "data" / "realm" / "sweep.json"
CONFIG = {"people": 200, "steps": 400, "batch": 32, "lr": 0.01, "k": 8, "d": 32,
          "eval_every": 25, "seeds": [0, 1, 2, 3, 4]}
SETTINGS = {"R=1": (1, True), "R=10": (10, True), "R=50": (50, True),
            "R=200": (200, True), "never": (None, True),
            "R=10, stale scores": (10, False)}


def world_for(seed: int):
    world = realm.make_world(CONFIG["people"], seed=seed)
    return world, *realm.split_facts(world, seed)


def run(seed: int, setting: str) -> dict:
    world, train, held = world_for(seed)
    every, fresh = SETTINGS[setting]
    out = realm.train_realm(world, CONFIG["steps"], every, seed=seed, train_idx=train,
                            held_idx=held, batch=CONFIG["batch"], lr=CONFIG["lr"],
                            k=CONFIG["k"], d=CONFIG["d"], fresh=fresh,
                            eval_every=CONFIG["eval_every"])
    out.pop("model")
    return {key: [round(v, 5) for v in vals] for key, vals in out.items()}


def no_retrieval(seed: int) -> dict:
    world, train, held = world_for(seed)
    model = realm.train_no_retrieval(world, train, CONFIG["steps"], seed=seed,
                                     batch=CONFIG["batch"], lr=CONFIG["lr"])
    with torch.no_grad():
        acc = {name: (model(world.x[i]).argmax(1) == world.y[i]).float().mean().item()
               for name, i in (("train", train), ("held_out", held))}
    return {key: round(v, 5) for key, v in acc.items()}


def main() -> None:
    torch.set_num_threads(1)
    start = time.process_time()
    runs = {s: {} for s in SETTINGS}
    base = {}
    for seed in progress(CONFIG["seeds"], desc="seeds"):
        for setting in SETTINGS:
            runs[setting][str(seed)] = run(seed, setting)
        base[str(seed)] = no_retrieval(seed)
    OUT.write_text(json.dumps({"config": CONFIG, "runs": runs, "no_retrieval": base,
                               "cpu_seconds": round(time.process_time() - start)},
                              indent=1) + "\n")
    print(f"wrote {OUT} in {time.process_time() - start:.0f} CPU-s")


if __name__ == "__main__":
    main()

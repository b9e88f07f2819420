"""REALM with untied encoder word embeddings, 5 seeds: data/realm/untied.json.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/realm_untied.py

The REALM chapter (notebooks/17_realm.ipynb) shares one word-embedding table between
Embed_input and Embed_doc. This script trains the same models as
scripts/realm_pretrain.py's "R=10" setting, for the same seeds, with separate tables
(``tied=False``), and stores for each seed, on the statements trained on and on the
held-out ones: recall@1 of the gold biography, masked-LM accuracy, the share of
statements whose retrieved top 8 contains the gold biography, and the share whose top 8
contains the answer word in any biography. The chapter runs seed 0 live.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from mlf import realm
from mlf.notebook import progress

OUT = Path(__file__).resolve().parents[1] / "data" / "realm" / "untied.json"
SEEDS = [0, 1, 2, 3, 4]


@torch.no_grad()
def probe(model: realm.Realm, world: realm.World, idx: torch.Tensor) -> dict:
    """Where the retrieved top k of the statements idx come from."""
    ids = model.retrieve(world.x[idx])                                   # (M, k)
    z = world.docs[ids]                                                  # (M, k, L_z)
    gold = (ids == world.gold[idx, None]).any(1)
    answer = (z == world.y[idx, None, None]).flatten(1).any(1)
    return {"recall_at_1": realm.recall_at_1(model, world, idx),
            "mlm_accuracy": realm.mlm_accuracy(model, world, idx),
            "gold_retrieved": gold.float().mean().item(),
            "answer_retrieved": answer.float().mean().item()}


def main() -> None:
    torch.set_num_threads(1)
    out = {}
    for seed in progress(SEEDS, desc="seeds"):
        world = realm.make_world(200, seed=seed)
        train, held = realm.split_facts(world, seed)
        model = realm.train_realm(world, 400, 10, seed=seed, train_idx=train,
                                  held_idx=held, tied=False)["model"]
        out[str(seed)] = {
            name: {k: round(v, 5) for k, v in probe(model, world, i).items()}
            for name, i in (("train", train), ("held_out", held))}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

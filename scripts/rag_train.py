"""Train the RAG chapter's generators (16_rag.ipynb) and measure them over seeds.

The world: ``mlf.facts.make_people(N_TRAIN + N_HELD, seed=0)``; the generator is
trained on questions about the first N_TRAIN people (their biographies are the
knowledge base it retrieves from), and evaluated on the last N_HELD, whom it never saw,
with a knowledge base of their biographies only. Three generators per seed, identical
in shape: RAG-Token loss, RAG-Sequence loss, and closed-book (the question alone, an
empty document). The seed sets the generator's initialisation and the order of the
training batches; the world and the retrieval are the same for every seed.

Stores data/rag/generator_token.pt and generator_sequence.pt (seed 0, float16) and
data/rag/runs.json (the config, seed 0's loss curves, and every seed's accuracies).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/rag_train.py --seeds 0 1 2 3 4
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from mlf import facts, rag
from mlf.bert import from_pretrained_minilm

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "rag"
CONFIG = {"n_train": 600, "n_held": 200, "world_seed": 0, "train_pairs": 3000,
          "held_pairs": 200, "held_per_person": 1, "k": 5, "tau": 0.05,
          "steps": 700, "batch": 16,
          "lr": 2e-3, "d_model": 64, "n_heads": 4, "n_layers": 2, "d_ff": 256}


def world(cfg):
    people = facts.make_people(cfg["n_train"] + cfg["n_held"], seed=cfg["world_seed"])
    return people[:cfg["n_train"]], people[cfg["n_train"]:]


def prepare(people, n_pairs, seed, encoder, tokenizer, vocab, cfg, desc,
            per_person=5):
    """Questions, their generator ids, the documents' ids and the top-k retrieval."""
    questions = rag.make_questions(people, n_pairs, seed=seed, per_person=per_person)
    docs = rag.documents(people)
    index = rag.build_index(rag.embed(docs, encoder, tokenizer, desc=f"{desc} docs"))
    q_vec = rag.embed([q["text"] for q in questions], encoder, tokenizer,
                      desc=f"{desc} questions")
    scores, ids = rag.retrieve(index, q_vec, cfg["k"])
    return {"questions": questions,
            "q_ids": [vocab.encode(q["text"]) for q in questions],
            "doc_ids": [vocab.encode(d) for d in docs], "retrieved": ids,
            "log_prior": rag.doc_prior(scores, cfg["tau"])}


def closed_book(data):
    """The same questions with one empty document each (p(z | x) = 1)."""
    n = len(data["questions"])
    return {**data, "doc_ids": [[]], "retrieved": np.zeros((n, 1), dtype=np.int64),
            "log_prior": torch.zeros(n, 1)}


def new_generator(vocab, cfg, seed):
    torch.manual_seed(seed)
    return rag.Generator(len(vocab), cfg["d_model"], cfg["n_heads"], cfg["n_layers"],
                         cfg["d_ff"])


def fit(vocab, data, cfg, seed, loss, desc):
    model = new_generator(vocab, cfg, seed)
    curve = rag.train(model, vocab, data["questions"], data["q_ids"], data["doc_ids"],
                      data["retrieved"], data["log_prior"], loss=loss,
                      steps=cfg["steps"], batch=cfg["batch"], lr=cfg["lr"], seed=seed,
                      desc=desc)
    return model, curve


def accuracy(model, vocab, data, decoding):
    """Exact match on single and on pair questions."""
    hits = {"single": [], "pair": []}
    for s in range(0, len(data["questions"]), 100):
        part = slice(s, s + 100)
        src = rag.sources(vocab, data["q_ids"][part], data["doc_ids"],
                          data["retrieved"][part])
        prior = data["log_prior"][part]
        if decoding == "token":
            out = rag.decode_token(model, src, prior)
        else:
            out, _ = rag.decode_sequence(model, src, prior)
        for q, ids in zip(data["questions"][part], out):
            kind = "single" if len(q["answer"]) == 1 else "pair"
            hits[kind].append(vocab.words(ids) == q["answer"])
    return {kind: float(np.mean(h)) for kind, h in hits.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=CONFIG["steps"])
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    cfg = {**CONFIG, "steps": args.steps}
    torch.set_num_threads(1)
    start = time.process_time()
    encoder, tokenizer = from_pretrained_minilm(dropout=0.0)
    vocab = rag.GenVocab()
    train_people, held_people = world(cfg)
    train = prepare(train_people, cfg["train_pairs"], 0, encoder, tokenizer, vocab,
                    cfg, "train")
    held = prepare(held_people, cfg["held_pairs"], 1, encoder, tokenizer, vocab, cfg,
                   "held-out", cfg["held_per_person"])
    recall = {}
    for name, data in (("train", train), ("held_out", held)):
        found = [set(r) for r in data["retrieved"].tolist()]
        for kind, n in (("single", 1), ("pair", 2)):
            hit = [set(q["about"]) <= f for q, f in zip(data["questions"], found)
                   if len(q["about"]) == n]
            recall[f"{name}_{kind}"] = float(np.mean(hit))
    print("answer documents all in the top k:", recall)
    print(f"embedding and retrieval: {time.process_time() - start:.0f} CPU-s")
    runs = {}
    for seed in args.seeds:
        result = {}
        for loss in ("token", "sequence", "closed"):
            data = (closed_book(train) if loss == "closed" else train)
            model, curve = fit(vocab, data, cfg, seed,
                               "token" if loss == "closed" else loss,
                               f"seed {seed} {loss}")
            test = closed_book(held) if loss == "closed" else held
            result[loss] = {"final_loss": float(np.mean(curve[-50:])),
                            "token_decoding": accuracy(model, vocab, test, "token")}
            if loss != "closed":  # with one (empty) document both decodings agree
                result[loss]["sequence_decoding"] = accuracy(model, vocab, test,
                                                             "sequence")
            if seed == args.seeds[0]:
                result[loss]["curve"] = [round(x, 6) for x in curve]
                if loss != "closed" and not args.no_save:
                    OUT.mkdir(parents=True, exist_ok=True)
                    torch.save({k: v.half() for k, v in model.state_dict().items()},
                               OUT / f"generator_{loss}.pt")
            print(seed, loss, {k: v for k, v in result[loss].items() if k != "curve"},
                  f"{time.process_time() - start:.0f} CPU-s", flush=True)
        runs[str(seed)] = result
        if not args.no_save:  # after every seed, so that a partial sweep is kept
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / "runs.json").write_text(json.dumps(
                {"config": cfg, "seeds": list(runs), "runs": runs, "recall": recall,
                 "cpu_seconds": round(time.process_time() - start)}, indent=1))


if __name__ == "__main__":
    main()

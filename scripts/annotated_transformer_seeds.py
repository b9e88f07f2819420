"""Ten-seed runs behind the Annotated Transformer chapter
(notebooks/10_annotated_transformer.ipynb).

Usage: python scripts/annotated_transformer_seeds.py [--jobs N] [--only GROUP ...]
                                                     [--seeds 0 1 ...]

The chapter trains each model once, from seed 0. This script repeats its two experiments
from seeds 0 to 9 and stores what it scores, so that what the chapter says about the
spread across seeds rests on a committed run. Seed ``k`` here is the chapter run with
every explicit seed moved by ``k``, as ``scripts/seeds.py`` moves them (the data split,
the batch order, the initial weights and the copy task's sequences all change with it):
seeds 0 to 5 are the chapter itself and its five ``make seeds`` shifts, and seed 0
reproduces the chapter's printed numbers. Groups:

* ``copy``: the copy task (10 symbols, sequences of 3 to 8, one layer, d_model = 32,
  four heads, no dropout, no label smoothing, warm-up of 50 updates), with learned
  positions (the chapter's model) and with sinusoids; exact copies of 500 test sequences
  after 100, 200, ..., 600 updates of 64 sequences.
* ``translation``: English->German number words, 3,000 training and 300 test sentences
  of three to five numbers. The Transformer (d_model = 32, 2 + 2 layers, four heads,
  d_ff = 64, learned positions, warm-up of 100 updates) and RNNsearch (hidden size 64,
  embeddings 32, constant rate 1e-2), both without dropout or label smoothing; and the
  Transformer again with the blog's dropout 0.1 and label smoothing 0.1. Exact match of
  greedy translations after 100, 200, ... updates of 64 sentences, and the CPU seconds
  of the first 300 updates (training only, scoring excluded).

Writes data/annotated_transformer/seeds.json (a few kB). Each run uses one CPU thread;
the whole script takes about 25 CPU minutes, which ``--jobs`` spreads over processes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "annotated_transformer" / "seeds.json"
SEEDS = tuple(range(10))
COPY = dict(symbols=10, shortest=3, longest=8, n_test=500, test_seed=1234, d_model=32,
            n_heads=4, d_ff=64, n_layers=1, warmup=50, batch_size=64, max_len=12)
TRANSLATION = dict(n_train=3000, n_test=300, numbers=[3, 5], d_model=32, n_heads=4,
                   d_ff=64, n_layers=2, warmup=100, hidden_size=64, emb_size=32,
                   rnn_lr=1e-2, batch_size=64, max_len=40, timed_steps=300)
EVERY_100 = tuple(range(100, 601, 100))


def groups() -> dict:
    """Every configuration: {group: {name: config}}."""
    return {
        "copy": {
            "learned positions": dict(positions="learned", eval_at=EVERY_100),
            "sinusoids": dict(positions="sinusoidal", eval_at=EVERY_100),
        },
        "translation": {
            "Transformer": dict(model="transformer", eval_at=EVERY_100),
            "RNNsearch": dict(model="rnnsearch", eval_at=EVERY_100),
            "Transformer, dropout 0.1 and label smoothing 0.1": dict(
                model="transformer", dropout=0.1, label_smoothing=0.1,
                eval_at=(100, 200, 300)),
        },
    }


def _random_sequences(rng, count, symbols, shortest, longest):
    return [[rng.choice(symbols) for _ in range(rng.randint(shortest, longest))]
            for _ in range(count)]


def run_copy(seed: int, config: dict) -> dict:
    """The chapter's copy-task cell, from seed ``seed``."""
    import random

    import torch

    from mlf import transformer as tf
    from mlf.env import seed_everything
    from mlf.seq2seq import Vocab, greedy_decode, make_batch, train

    torch.set_num_threads(1)
    c = COPY
    symbols = [str(k) for k in range(1, c["symbols"] + 1)]
    vocab = Vocab(symbols)
    test = _random_sequences(random.Random(c["test_seed"] + seed), c["n_test"], symbols,
                             c["shortest"], c["longest"])
    test_batch = make_batch(test, test, vocab, vocab)
    seed_everything(seed)
    positions = {"learned": tf.LearnedPositions,
                 "sinusoidal": tf.SinusoidalPositions}[config["positions"]]
    model = tf.Translator(len(vocab), len(vocab), d_model=c["d_model"],
                          n_heads=c["n_heads"], d_ff=c["d_ff"], n_layers=c["n_layers"],
                          dropout=0.0, pos_encoding=positions)
    rng = random.Random(seed)
    scores = {}

    def exact_copies():
        hyps, _ = greedy_decode(model, test_batch.src, test_batch.src_len, vocab.bos,
                                vocab.eos, max_len=c["max_len"])
        hits = sum(vocab.decode(h) == s for h, s in zip(hyps, test))
        return round(hits / len(test), 4)

    def next_batch(step):
        if step in config["eval_at"]:  # `step` updates are done: score, then go on
            scores[str(step)] = exact_copies()
            model.train()
        seqs = _random_sequences(rng, c["batch_size"], symbols, c["shortest"],
                                 c["longest"])
        return make_batch(seqs, seqs, vocab, vocab)

    steps = max(config["eval_at"])
    train(model, next_batch, steps, lr=1.0,
          schedule=lambda s: tf.noam_rate(s, c["d_model"], c["warmup"]), desc="")
    scores[str(steps)] = exact_copies()
    return {"exact": scores}


def run_translation(seed: int, config: dict) -> dict:
    """The chapter's comparison cell for one model, from seed ``seed``."""
    import torch

    from mlf import transformer as tf
    from mlf.env import seed_everything
    from mlf.number_translation import make_splits
    from mlf.seq2seq import (RNNSearch, Vocab, greedy_decode, length_sorted_batches,
                             make_batch, train)

    torch.set_num_threads(1)
    t = TRANSLATION
    train_set, test_set = make_splits(t["n_train"], t["n_test"], *t["numbers"],
                                      seed=seed)
    src_vocab = Vocab(w for ex in train_set + test_set for w in ex.source)
    tgt_vocab = Vocab(w for ex in train_set + test_set for w in ex.target)
    test_batch = make_batch([ex.source for ex in test_set],
                            [ex.target for ex in test_set], src_vocab, tgt_vocab)
    seed_everything(seed)
    if config["model"] == "transformer":
        model = tf.Translator(len(src_vocab), len(tgt_vocab), d_model=t["d_model"],
                              n_heads=t["n_heads"], d_ff=t["d_ff"],
                              n_layers=t["n_layers"],
                              dropout=config.get("dropout", 0.0),
                              pos_encoding=tf.LearnedPositions)
        recipe = dict(lr=1.0, schedule=lambda s: tf.noam_rate(s, t["d_model"],
                                                              t["warmup"]))
    else:
        model = RNNSearch(len(src_vocab), len(tgt_vocab), emb_size=t["emb_size"],
                          hidden_size=t["hidden_size"], attn_size=t["hidden_size"],
                          maxout_size=t["hidden_size"])
        recipe = dict(lr=t["rnn_lr"])
    batches = length_sorted_batches([len(ex.source) for ex in train_set],
                                    t["batch_size"], seed=seed)
    scores, clock = {}, {"scoring": 0.0}

    def exact_match():
        hyps, _ = greedy_decode(model, test_batch.src, test_batch.src_len,
                                tgt_vocab.bos, tgt_vocab.eos, max_len=t["max_len"])
        hits = sum(tgt_vocab.decode(h) == list(ex.target)
                   for h, ex in zip(hyps, test_set))
        return round(hits / len(test_set), 4)

    def next_batch(step):
        if step == t["timed_steps"]:
            clock["timed"] = time.process_time() - clock["start"] - clock["scoring"]
        if step in config["eval_at"]:
            start = time.process_time()
            scores[str(step)] = exact_match()
            model.train()
            clock["scoring"] += time.process_time() - start
        idx = next(batches)
        return make_batch([train_set[i].source for i in idx],
                          [train_set[i].target for i in idx], src_vocab, tgt_vocab)

    steps = max(config["eval_at"])
    clock["start"] = time.process_time()
    train(model, next_batch, steps, desc="",
          label_smoothing=config.get("label_smoothing", 0.0), **recipe)
    if steps == t["timed_steps"]:
        clock["timed"] = time.process_time() - clock["start"] - clock["scoring"]
    scores[str(steps)] = exact_match()
    return {"exact": scores, "cpu_s": round(clock["timed"], 2)}


def _job(args):
    group, name, config, seed = args
    run = run_copy if group == "copy" else run_translation
    start = time.process_time()
    out = run(seed, config)
    return group, name, seed, out, time.process_time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=list(groups()), default=None)
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("TQDM_DISABLE", "1")
    chosen = args.only or list(groups())
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    todo = [(g, name, cfg, seed) for g in chosen for name, cfg in groups()[g].items()
            for seed in args.seeds]
    cpu = 0.0
    with ProcessPoolExecutor(args.jobs) as pool:
        for group, name, seed, out, seconds in pool.map(_job, todo):
            cpu += seconds
            print(f"{group:11} {name:50} seed {seed}: {json.dumps(out)} "
                  f"({seconds:.0f} CPU s)", flush=True)
            runs = results.setdefault(group, {}).setdefault(name, {})
            runs[str(seed)] = out
    import torch

    for group in results:
        if group in ("copy", "translation"):
            for name in results[group]:  # seeds in order, whatever order they ran in
                runs = results[group][name]
                results[group][name] = {k: runs[k] for k in sorted(runs, key=int)}
    results["settings"] = {"copy": COPY, "translation": TRANSLATION}
    results["command"] = "python scripts/annotated_transformer_seeds.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    results["environment"] = (f"python {platform.python_version()}, "
                              f"torch {torch.__version__}, one CPU thread per run")
    results["cpu_minutes_last_run"] = round(cpu / 60, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({cpu / 60:.1f} CPU minutes)")


if __name__ == "__main__":
    main()

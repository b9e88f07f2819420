"""Multi-seed runs behind the Transformer chapter (notebooks/09_transformer.ipynb).

Usage: python scripts/transformer_ablations.py [--jobs N] [--only GROUP ...]
                                               [--seeds SEED ...]

The chapter trains each configuration live from one seed; this script trains them from
several seeds and stores the exact-match accuracies (and, for the warm-up runs, the
training loss), so that what the chapter says about the spread across seeds rests on a
committed run. The data, model and training are the chapter's: English->German number
words (3,000 training and 300 test sentences of one or two numbers), d_model = 32,
2 + 2 layers, 4 heads, d_ff = 64, dropout 0.1, label smoothing 0.1, batches of 64, Adam
through ``mlf.seq2seq.train``. Groups:

* ``table3``: rows of the paper's Table 3 with the reference embedding initialisation,
  scored after 200 and after 300 updates of one run: the base model (sinusoids), (E)
  learned positions, learned positions started at the sinusoids' scale (std 1/sqrt(2),
  the same random draw scaled), (C) d_model = 16.
* ``pytorch_init``: the embeddings redrawn from PyTorch's N(0, 1) after the model is
  built: sinusoids, learned positions, and sinusoids multiplied by sqrt(d_model).
* ``warmup``: post-norm layers with the warm-up of eq. (3) and without it (the same
  schedule, at its peak from the first step) at two peak learning rates, and pre-norm
  layers with and without warm-up at the higher one; no gradient clipping (the paper
  clips none); six layers per stack, as in the paper, 200 updates; the training loss is
  stored as its mean over each block of 10 updates.

Writes data/transformer/ablations.json (about 10 kB), one group at a time: a run with
``--only`` replaces those groups and keeps the others. The stored file was made by

    python scripts/transformer_ablations.py --jobs 4 --only table3
    python scripts/transformer_ablations.py --jobs 4 --only pytorch_init warmup \\
        --seeds 0 1 2 3 4

(ten seeds, then five), about 9 + 17 CPU minutes, one thread per job.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "transformer" / "ablations.json"
SEEDS = tuple(range(10))
SETTINGS = dict(n_train=3000, n_test=300, numbers=[1, 2], split_seed=0, d_model=32,
                n_heads=4, d_ff=64, n_layers=2, dropout=0.1, label_smoothing=0.1,
                batch_size=64, warmup=100, max_len=30)
WARMUP_LAYERS, WARMUP_STEPS, WARMUP_PEAKS = 6, 200, (0.003, 0.01)


def _data():
    from mlf.number_translation import make_splits
    from mlf.seq2seq import Vocab, make_batch

    s = SETTINGS
    train_set, test_set = make_splits(s["n_train"], s["n_test"], *s["numbers"],
                                      seed=s["split_seed"])
    src_vocab = Vocab(t for ex in train_set + test_set for t in ex.source)
    tgt_vocab = Vocab(t for ex in train_set + test_set for t in ex.target)
    test_batch = make_batch([ex.source for ex in test_set],
                            [ex.target for ex in test_set], src_vocab, tgt_vocab)
    return train_set, test_set, src_vocab, tgt_vocab, test_batch


def run(seed: int, config: dict) -> dict:
    """Train one configuration from one seed, as the chapter's ``run`` does.

    ``config`` keys: ``positions`` (sinusoidal, learned, learned_small,
    sinusoidal_x_sqrt_d), ``d_model``, ``n_heads``, ``pytorch_init``, ``steps``,
    ``eval_at`` (updates after which to score), ``norm_first``, ``n_layers``, ``warm``
    and ``peak`` (the warm-up experiment's schedule), ``clip``.
    """
    import torch
    from torch import nn

    from mlf import transformer as tf
    from mlf.env import seed_everything
    from mlf.seq2seq import greedy_decode, length_sorted_batches, make_batch, train

    torch.set_num_threads(1)
    train_set, test_set, src_vocab, tgt_vocab, test_batch = _data()
    s = SETTINGS
    d_model = config.get("d_model", s["d_model"])
    positions = {
        "sinusoidal": tf.SinusoidalPositions,
        "learned": tf.LearnedPositions,
        # the same N(0, 1) draw, scaled to the sinusoids' rms 1/sqrt(2)
        "learned_small": lambda d: tf.LearnedPositions(d, std=2 ** -0.5),
        "sinusoidal_x_sqrt_d": _scaled_sinusoids,
    }[config.get("positions", "sinusoidal")]
    seed_everything(seed)
    model = tf.Translator(len(src_vocab), len(tgt_vocab), d_model=d_model,
                          n_heads=config.get("n_heads", s["n_heads"]), d_ff=s["d_ff"],
                          n_layers=config.get("n_layers", s["n_layers"]),
                          dropout=s["dropout"], pos_encoding=positions,
                          norm_first=config.get("norm_first", False))
    if config.get("pytorch_init"):  # orig: nn.Embedding's N(0, 1)
        for e in (model.net.src_embed, model.net.tgt_embed):
            nn.init.normal_(e.weight)
    lengths = [len(ex.source) for ex in train_set]
    batches = length_sorted_batches(lengths, s["batch_size"], seed=seed)
    eval_at = config.get("eval_at", ())
    scores = {}

    def exact_match():
        b = test_batch
        hyps, _ = greedy_decode(model, b.src, b.src_len, tgt_vocab.bos, tgt_vocab.eos,
                                max_len=s["max_len"])
        hits = sum(tgt_vocab.decode(h) == list(ex.target)
                   for h, ex in zip(hyps, test_set))
        return round(hits / len(test_set), 4)

    def next_batch(step):
        if step in eval_at:  # `step` updates are done: score, then go on training
            scores[str(step)] = exact_match()
            model.train()
        idx = next(batches)
        return make_batch([train_set[i].source for i in idx],
                          [train_set[i].target for i in idx], src_vocab, tgt_vocab)

    if "peak" in config:  # the warm-up experiment: lr = peak * shape(step)
        w = s["warmup"]
        if config["warm"]:
            shape = lambda step: min(step / w, math.sqrt(w / step))  # eq. (3), peak 1
        else:
            shape = lambda step: min(1.0, math.sqrt(w / step))  # the peak from step 1
        lr = config["peak"]
    else:
        lr, shape = 1.0, lambda step: tf.noam_rate(step, d_model, s["warmup"])
    losses = train(model, next_batch, config["steps"], lr=lr, schedule=shape,
                   clip=config.get("clip", 1.0), label_smoothing=s["label_smoothing"],
                   desc="")
    scores[str(config["steps"])] = exact_match()
    out = {"seed": seed, "exact": scores}
    if config.get("curve"):  # mean training loss over each block of 10 updates
        out["loss"] = [round(statistics.mean(losses[i:i + 10]), 4)
                       for i in range(0, len(losses), 10)]
    return out


def _scaled_sinusoids(d_model):
    """Fixed sinusoids multiplied by sqrt(d_model): the size of N(0, 1) embeddings."""
    from mlf.transformer import SinusoidalPositions

    pos = SinusoidalPositions(d_model)
    pos.pe.mul_(math.sqrt(d_model))
    return pos


def groups() -> dict:
    """Every configuration: {group: {name: config}}."""
    table3 = dict(steps=300, eval_at=(200,))
    warm = dict(steps=WARMUP_STEPS, n_layers=WARMUP_LAYERS, clip=float("inf"),
                curve=True)
    return {
        "table3": {
            "base (sinusoids)": table3,
            "(E) learned positions": table3 | dict(positions="learned"),
            "(E) learned, started at the sinusoids' scale": table3 | dict(
                positions="learned_small"),
            "(C) d_model = 16": table3 | dict(d_model=16),
        },
        "pytorch_init": {
            "sinusoids": table3 | dict(pytorch_init=True),
            "learned positions": table3 | dict(pytorch_init=True, positions="learned"),
            "sinusoids x sqrt(d_model)": table3 | dict(pytorch_init=True,
                                                       positions="sinusoidal_x_sqrt_d"),
        },
        "warmup": {
            f"{norm}, {'warm-up' if w else 'no warm-up'}, peak {peak:g}": warm | dict(
                norm_first=norm == "pre-norm", warm=w, peak=peak)
            for peak in WARMUP_PEAKS for norm in ("post-norm", "pre-norm")
            for w in (True, False) if norm == "post-norm" or peak == max(WARMUP_PEAKS)
        },
    }


def _job(args):
    group, name, config, seed = args
    start = time.process_time()
    out = run(seed, config)
    return group, name, out, time.process_time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=list(groups()), default=None)
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # one line per run instead of bars
    chosen = args.only or list(groups())
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    todo = [(g, name, cfg, seed) for g in chosen for name, cfg in groups()[g].items()
            for seed in args.seeds]
    runs = {(g, name): {} for g, name, _, _ in todo}
    cpu = 0.0
    with ProcessPoolExecutor(args.jobs) as pool:
        for k, (group, name, out, seconds) in enumerate(pool.map(_job, todo), 1):
            runs[group, name][out["seed"]] = out
            cpu += seconds
            print(f"[{k}/{len(todo)}] {group} | {name} | seed {out['seed']}: "
                  f"{out['exact']} ({seconds:.0f} s)", flush=True)
    for g in chosen:
        results[g] = {}
        for name, config in groups()[g].items():
            outs = [runs[g, name][seed] for seed in args.seeds]
            entry = {"config": _jsonable(config), "seeds": args.seeds,
                     "exact": {n: [o["exact"][n] for o in outs]
                               for n in outs[0]["exact"]}}
            if "loss" in outs[0]:  # mean training loss per block of 10 updates
                entry["loss_per_10_updates"] = [o["loss"] for o in outs]
            results[g][name] = entry
    results["settings"] = SETTINGS | {"warmup_layers": WARMUP_LAYERS,
                                      "warmup_steps": WARMUP_STEPS}
    command = "python scripts/transformer_ablations.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    results["commands"] = results.get("commands", {}) | {g: command for g in chosen}
    text = json.dumps(results, indent=1, ensure_ascii=False)
    # one line per list of numbers, so the file reads as a table
    text = re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]",
                  lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.1f} kB); "
          f"{cpu / 60:.0f} CPU minutes")


def _jsonable(config):
    return {k: (list(v) if isinstance(v, tuple) else
                "inf" if v == float("inf") else v) for k, v in config.items()}


if __name__ == "__main__":
    main()

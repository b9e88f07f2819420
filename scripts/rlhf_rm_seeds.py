"""The reward model's quality over many label seeds: the spread behind the live assert.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/rlhf_rm_seeds.py --seeds $(seq 0 19)

The chapter notebooks/23_rlhf.ipynb fits the linear Bradley–Terry reward model live on
labels drawn with seed 0 (``scripts/seeds.py`` moves it), and asserts its Spearman
correlation with VADER and its pairwise accuracy on the eval pool. The 5-seed sweep
(scripts/rlhf_sweep.py) is too few to set that bound: this script refits the reward
model alone (no policy training) on the stored pool (data/rlhf/pool.pt) for more label
seeds and writes the three numbers of ``mlf.rlhf.rm_quality`` per seed.
-> data/rlhf/rm_seeds.json. One thread; a rerun writes the same file.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from mlf import rlhf
from mlf.gpt import load_book_lm

OUT = Path(__file__).resolve().parents[1] / "data" / "rlhf"
POOL = OUT / "pool.pt"  # the input, whatever --out says: made by scripts/rlhf_sweep.py
S = rlhf.RLHF_SETUP


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cpu0 = time.process_time()
    pool = torch.load(POOL, weights_only=True)
    vocab, start = load_book_lm()[0].cfg.vocab_size, S["prompt_tokens"]
    keep = rlhf.frequent_tokens(pool, start, vocab, S["min_count"])
    result = {"setup": S, "seeds": {}}
    for seed in args.seeds:
        pairs = rlhf.preference_pairs(pool, S["tau"], seed, start)
        w = rlhf.reward_model(pairs, keep, vocab, S["l2"])
        q = rlhf.rm_quality(pool, rlhf.rm_scorer(keep, w, start, vocab))
        result["seeds"][str(seed)] = {k: round(v, 6) for k, v in q.items()}
        print(f"seed {seed}: {result['seeds'][str(seed)]}", flush=True)
    result["cpu_seconds"] = round(time.process_time() - cpu0)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rm_seeds.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"done in {result['cpu_seconds']} CPU-s")


if __name__ == "__main__":
    main()

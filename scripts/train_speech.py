"""Train content-based and location-aware digit recognizers; save small checkpoints.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_speech.py  # data/speech/*.pt

Three seeds per model, single-threaded on the CPU, so the files are what this script
produces. The chapter notebooks/03_speech_attention.ipynb loads them with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mlf.seq2seq import Vocab
from mlf.speech import DATA, load_digits
from mlf.speech_attention import train_recognizer

# Saved in curves.pt; the chapter rebuilds the models from this copy: the one place to
# edit. Location features: k = 10 filters of r = 101 frames of 20 ms, ±1 s around each
# frame (the authors' TIMIT filters span 201 frames of 10 ms: attention-lvcsr's
# lvsr/configs/timit_bothgru_conv.yaml, conv_n: 100).
CONFIG = {"model": {"hidden_size": 64, "attn_size": 64, "emb_size": 16,
                    "maxout_size": 64, "layers": 2},
          "content": {"n_filters": 0}, "location": {"n_filters": 10, "width": 101},
          "steps": 500, "batch": 32, "lr": 3e-3, "seeds": [0, 1, 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA.parent)
    args = parser.parse_args()
    torch.set_num_threads(1)  # determinism and a fair share of a small machine
    train_set = load_digits("train")
    vocab = Vocab({p for u in train_set for p in u.phonemes})
    curves = {"config": CONFIG, "phonemes": vocab.itos}
    for seed in CONFIG["seeds"]:
        for kind in ("content", "location"):
            start = time.perf_counter()
            model, losses = train_recognizer(CONFIG, kind, seed, vocab, train_set)
            print(f"{kind} seed {seed}: {time.perf_counter() - start:.0f} s, "
                  f"last 50 steps {sum(losses[-50:]) / 50:.3f}")
            args.out.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), args.out / f"{kind}_{seed}.pt")
            curves[f"{kind}_{seed}"] = torch.tensor(losses)
    torch.save(curves, args.out / "curves.pt")


if __name__ == "__main__":
    main()

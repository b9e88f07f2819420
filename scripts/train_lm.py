"""Train the book's language model on Shakespeare and save it to data/lm/shakespeare.pt.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_lm.py        # about 15 minutes

1. A byte-level BPE tokenizer (``mlf.bytelevel``, GPT-2's pre-tokenizer pattern) is trained
   on the training plays: 256 bytes + 1,792 merges = 2,048 tokens.
2. ``mlf.gpt.GPT`` (GPT-2's layout, 1.6 million parameters) is trained on random
   windows of 129 tokens of the training plays with AdamW, warm-up and cosine decay.
3. Three plays never seen in training are the held-out text; its loss is logged as it goes.

One thread, fixed seeds and a fixed order of work, so re-running the script reproduces the
file bit for bit. The weights are stored in float16 (2 bytes a parameter); the record also
holds the tokenizer, the learning curves and the held-out loss of the float16 weights, which
is what every chapter loads (``mlf.gpt.load_book_lm``, ``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mlf.bytelevel import GPT2_PATTERN, ByteLevelBPE
from mlf.corpora import shakespeare_text, shakespeare_titles
from mlf.gpt import (CHECKPOINT, GPT, GPTConfig, load_book_lm, mean_loss, save_checkpoint,
                     train_steps)

HELD_OUT = ["hamlet", "the-tempest", "twelfth-night"]
CONFIG = {"model": {"vocab_size": 2048, "context": 128, "d_model": 160, "n_heads": 8,
                    "n_layers": 4, "d_ff": 640},
          "steps": 900, "batch": 32, "lr": 2e-3, "warmup": 50, "min_lr_ratio": 0.1,
          "weight_decay": 0.1, "seed": 0, "eval_every": 50, "eval_windows": 64}


def token_streams(vocab_size: int):
    """The tokenizer, trained on the training plays, and both token streams (1-d tensors)."""
    train_titles = [t for t in shakespeare_titles() if t not in HELD_OUT]
    train_text, held_text = shakespeare_text(train_titles), shakespeare_text(HELD_OUT)
    bpe = ByteLevelBPE.train(train_text, vocab_size, GPT2_PATTERN)
    return (bpe, torch.tensor(bpe.encode(train_text)), torch.tensor(bpe.encode(held_text)))


def windows(stream: torch.Tensor, length: int, count: int) -> torch.Tensor:
    """``count`` non-overlapping windows of ``length`` tokens from the start, (count, length)."""
    count = min(count, len(stream) // length)
    return stream[: count * length].view(count, length)


def train(cfg: dict):
    bpe, train_ids, held_ids = token_streams(cfg["model"]["vocab_size"])
    held = windows(held_ids, cfg["model"]["context"] + 1, cfg["eval_windows"])
    torch.manual_seed(cfg["seed"])
    model = GPT(GPTConfig(**cfg["model"]))
    evals = []

    def evaluate(step: int, model: GPT) -> None:  # held-out loss now and then
        if step % cfg["eval_every"] == 0 or step == 1:
            evals.append((step, mean_loss(model, held)))

    curve = train_steps(model, train_ids, cfg["steps"], batch=cfg["batch"], lr=cfg["lr"],
                        warmup=cfg["warmup"], weight_decay=cfg["weight_decay"],
                        floor=cfg["min_lr_ratio"], desc="book LM", callback=evaluate,
                        generator=torch.Generator().manual_seed(cfg["seed"]))
    return model, bpe, held, torch.tensor(curve), torch.tensor(evals), len(train_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT)
    parser.add_argument("--steps", type=int, default=CONFIG["steps"])
    args = parser.parse_args()
    torch.set_num_threads(1)  # determinism, and a fair share of a small machine
    cfg = dict(CONFIG, steps=args.steps)
    start = time.perf_counter()
    model, bpe, held, curve, evals, n_train = train(cfg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"train_config": repr(cfg), "held_out_plays": HELD_OUT, "curve": curve,
              "held_out_curve": evals, "train_tokens": n_train}
    save_checkpoint(args.out, model, bpe, record)
    # the number the chapters quote: held-out loss of the float16 weights as stored
    stored, _, _ = load_book_lm(args.out)
    record["held_out_loss"] = mean_loss(stored, held)
    save_checkpoint(args.out, model, bpe, record)
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.2f} MB, held-out loss "
          f"{record['held_out_loss']:.4f} nats/token, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

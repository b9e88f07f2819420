"""Table 1 of Holtzman et al. (2020) at the book's scale, over several seeds.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/nucleus_table.py [--jobs 3]

The nucleus-sampling chapter (notebooks/15_nucleus_sampling.ipynb) decodes the book's
language model (data/lm/shakespeare.pt) with each method of the paper's Table 1 and
compares the continuations with what the held-out plays really say next. One seed of
32 prompts is noisy, so this script repeats it for five seeds and writes
``data/nucleus/table.json``, which the chapter loads:

* for each seed, 32 prompts of 32 tokens drawn from the held-out plays (hamlet,
  the-tempest, twelfth-night), each continued by 96 tokens (the model's context is
  128); "human" is the text that really follows;
* for each method and seed: the perplexity of the continuations under the model
  itself, the share that end in a repetition loop, and mean distinct-1..4;
* the methods are the paper's (greedy, beam search of width 4, pure sampling,
  temperature 0.9, top-k 40 and 640, top-k 40 at temperature 0.7, nucleus 0.95) and
  sweeps over p and k.

Every sampled method draws from its own generator, seeded by the seed and the
method's name, so a method's samples do not depend on which others run. One thread
and fixed seeds: a rerun writes the same file, and the chapter's live run of seed 0
repeats this file's seed 0 on a CPU.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import time
import zlib
from pathlib import Path

import torch
from mlf.corpora import shakespeare_text
from mlf.decoding import continuation_logprobs, distinct_n, ends_in_repetition
from mlf.gpt import generate, load_book_lm

OUT = Path(__file__).resolve().parents[1] / "data" / "nucleus" / "table.json"
CONFIG = {"prompts": 32, "prompt_tokens": 32, "new_tokens": 96,
          "seeds": list(range(5)), "distinct_n": [1, 2, 3, 4]}
# name -> generate() options; "human" is the held-out text itself
# orig: beam width 16; width 4 here, since a beam of b costs b samples' time
TABLE = {"greedy": {}, "beam 4": {"beams": 4},
         "pure sampling": {"temperature": 1.0}, "t=0.9": {"temperature": 0.9},
         "top-k 40": {"top_k": 40}, "top-k 640": {"top_k": 640},
         "top-k 40, t=0.7": {"top_k": 40, "temperature": 0.7},
         "nucleus 0.95": {"top_p": 0.95}}
# the sweeps' other points, p = 0.95 and k = 40 and 640, are in TABLE
SWEEPS = {"p": [0.3, 0.6, 0.8, 0.9, 0.99], "k": [3, 10, 100, 200]}
KEYS = {"p": "top_p", "k": "top_k"}


def methods() -> dict:
    out = dict(TABLE)
    for sweep, values in SWEEPS.items():
        for v in values:
            out[f"{sweep}={v}"] = {KEYS[sweep]: v}
    return out


def method_seed(seed: int, name: str) -> int:
    """A generator seed for one method and seed, independent of the method order."""
    return 1000 * seed + zlib.crc32(name.encode()) % 1000


def prompts(held_ids: torch.Tensor, seed: int) -> torch.Tensor:
    """(prompts, prompt_tokens + new_tokens) windows of the held-out stream."""
    span = CONFIG["prompt_tokens"] + CONFIG["new_tokens"]
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(held_ids) - span, (CONFIG["prompts"],), generator=g)
    return torch.stack([held_ids[s:s + span] for s in starts.tolist()])


def measure(model, ids: torch.Tensor) -> dict:
    """Perplexity, loop share and distinct-n of the continuations in ``ids``."""
    start = CONFIG["prompt_tokens"]
    logp = continuation_logprobs(model, ids, start)
    tails = [row[start:] for row in ids]
    out = {"perplexity": logp.mean().neg().exp().item(),
           "loops": sum(ends_in_repetition(t) for t in tails) / len(tails)}
    for n in CONFIG["distinct_n"]:
        out[f"distinct_{n}"] = sum(distinct_n(t, n) for t in tails) / len(tails)
    return out


def decode(model, windows, seed, name, options) -> torch.Tensor:
    prompt = windows[:, :CONFIG["prompt_tokens"]]
    g = torch.Generator().manual_seed(method_seed(seed, name))
    return generate(model, prompt, CONFIG["new_tokens"], generator=g, **options)


def run_seed(seed: int) -> tuple[int, dict]:
    torch.set_num_threads(1)
    model, bpe, record = load_book_lm()
    held = torch.tensor(bpe.encode(shakespeare_text(record["held_out_plays"])))
    windows = prompts(held, seed)
    result = {"human": measure(model, windows)}
    for name, options in methods().items():
        result[name] = measure(model, decode(model, windows, seed, name, options))
    print(f"seed {seed} done", flush=True)
    return seed, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    begin = time.time()
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        runs = dict(pool.map(run_seed, CONFIG["seeds"]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    config = CONFIG | {"table": TABLE, "sweeps": SWEEPS}
    OUT.write_text(json.dumps({"config": config,
                               "runs": {str(s): runs[s] for s in CONFIG["seeds"]}},
                              indent=1) + "\n")
    print(f"wrote {OUT} in {time.time() - begin:.0f} s")


if __name__ == "__main__":
    main()

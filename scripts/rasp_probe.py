"""How the trained 2-layer sorters use their second layer, over seeds 0-5: the share of
output positions whose strongest layer-2 attention falls on a key that holds the right
output token. Stores data/rasp/probe.json; sets the margin of the chapter's assert.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/rasp_probe.py
"""
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))
from mlf import rasp

SEEDS = [0, 1, 2, 3, 4, 5]
CONFIG = {"steps": 600, "n": 8, "vocab": 8}


def copy_share(model, seed):
    """Share of queries whose argmax key in the last layer holds their target token."""
    x, y = rasp.make_task_batch("sort", 1000, CONFIG["n"], CONFIG["vocab"],
                                torch.Generator().manual_seed(seed + 20_000))
    with torch.no_grad():
        model(x)
    top = model.attention()[-1][:, 0, 1:].argmax(-1)  # (B, n): a key per output
    return (x.gather(1, top) == y).float().mean().item()


def main():
    torch.set_num_threads(1)
    out = {"config": CONFIG, "seeds": SEEDS, "copy_share": {}}
    for seed in SEEDS:
        model, _ = rasp.train_task("sort", 2, seed=seed, **CONFIG)
        out["copy_share"][str(seed)] = copy_share(model, seed)
        print(seed, out["copy_share"][str(seed)], flush=True)
    (ROOT / "data" / "rasp" / "probe.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

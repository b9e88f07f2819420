"""The spread, over seeds, of every number the efficient-attention chapter asserts.

Usage: OMP_NUM_THREADS=1 .venv/bin/python scripts/efficient_spread.py  (about 5 minutes)
       add --favor-only to recompute the "favor" entry alone (about a minute)

Writes data/efficient/spread.json:
* "task": the copy task (mlf.efficient.CopyTask) for 6 seeds, 4 kinds of attention, a
  short and a long distance: test accuracy of each model;
* "favor": for 10 seeds, the z-scores of FAVOR+'s kernel estimates, the errors of the
  attention output against the feature count, iid and orthogonal, and the z-scores of
  a biased estimator (orthogonal rows of fixed length sqrt(d)) the test must catch;
* "timing": the log-log slopes of CPU time against length, measured 5 times in a row
  (the machine's load is whatever it is: the point is how much they move).
The notebook prints these ranges and sets its margins from them.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
from mlf import efficient as ef

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "efficient" / "spread.json"
SEEDS_TASK = range(6)
SEEDS_FAVOR = range(10)
DISTANCES = (2, 16)  # within the window of 4, and beyond it
MS = [4, 16, 64, 256, 1024]
LENGTHS = [512, 1024, 2048, 4096, 8192]


def favor_inputs(seed):
    """The notebook's FAVOR+ inputs for ``seed``: 4 pairs (x_i, y_i) of |x| about 1,
    and queries, keys, values of one head (T = 64, d = 16)."""
    g = torch.Generator().manual_seed(seed)
    d = 16
    x, y = (torch.randn(4, d, generator=g, dtype=torch.float64) / d**0.5
            for _ in range(2))
    q, k, v = (torch.randn(1, 64, d, generator=g, dtype=torch.float64)
               for _ in range(3))
    return (x, y), (q, k, v), g


def favor_stats(seed):
    (x, y), (q, k, v), g = favor_inputs(seed)
    exact = (x * y).sum(-1).exp()
    out = {}
    for name, orthogonal in (("iid", False), ("orthogonal", True)):
        est = ef.kernel_estimates(x, y, 16, orthogonal, 4000, g)  # (4000, 4)
        z = (est.mean(0) - exact) / (est.std(0) / len(est) ** 0.5)
        mse = ((est - exact) ** 2).mean(0) / exact**2  # relative MSE per pair
        # the ratio of estimators: bias of the attention output at m = 4
        w = torch.stack([ef.gaussian_features(4, 16, orthogonal, g)
                         for _ in range(4000)]).double()
        draws = ef.favor_attention(q * 0.5, k * 0.5, v, w)  # (4000, 64, 16)
        exact_out, _ = ef.tf.scaled_dot_product_attention(q * 0.5, k * 0.5, v)
        z_out = (draws.mean(0) - exact_out[0]) / (draws.std(0) / 4000**0.5)
        out[name] = {"z": z.tolist(), "relative_mse": mse.tolist(),
                     "output_z_max": z_out.abs().max().item(),
                     "errors": {str(scale): ef.favor_errors(q * scale, k * scale, v, MS,
                                                            orthogonal, 10, g)
                                for scale in (0.5, 1.0)}}
    # the same test on a wrong estimator: orthogonal rows all of length sqrt(d) (the
    # Performer code's scaling=1) instead of chi_d lengths; drawn last, so the
    # numbers above do not depend on it
    w = torch.stack([ef.gaussian_features(16, 16, True, g)
                     for _ in range(4000)]).double()
    w = w / w.norm(dim=-1, keepdim=True) * 16**0.5
    est = (ef.positive_features(x, w) * ef.positive_features(y, w)).sum(-1)
    z = (est.mean(0) - exact) / (est.std(0) / len(est) ** 0.5)
    out["fixed_length_z"] = z.tolist()
    return out


def timing(d=64, heads=2, repeats=3):
    g = torch.Generator().manual_seed(0)
    w = ef.gaussian_features(64, d, generator=g)
    slopes = {}
    for kind in ef.KINDS:
        lengths = [t for t in LENGTHS if kind != "full" or t <= 4096]
        seconds = []
        for t in lengths:
            q, k, v = (torch.randn(1, heads, t, d, generator=g) for _ in range(3))
            call = ef.attention_call(kind, q, k, v, window=32, k_proj=64, w=w,
                                     generator=g)
            seconds.append(ef.cpu_seconds(call, repeats))
        slopes[kind] = ef.loglog_slope(lengths, seconds)
    return slopes


def main():
    torch.set_num_threads(1)
    start = time.time()
    if sys.argv[1:] == ["--favor-only"]:  # recompute "favor" only, keep the rest
        result = json.loads(OUT.read_text())
        result["favor"] = {str(seed): favor_stats(seed) for seed in SEEDS_FAVOR}
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        print(f"updated favor in {OUT.relative_to(ROOT)} in {time.time() - start:.0f} s")
        return
    task = ef.CopyTask()
    result = {"task_config": repr(task), "ms": MS, "lengths": LENGTHS,
              "task": {}, "favor": {}, "timing": []}
    for distance in DISTANCES:
        for kind in ef.KINDS:
            accs = [task.train(kind, distance, seed)["accuracy"] for seed in SEEDS_TASK]
            result["task"][f"{kind}@{distance}"] = accs
            shown = " ".join(f"{a:.3f}" for a in accs)
            print(f"distance {distance:2} {kind:10} {shown}", flush=True)
    for seed in SEEDS_FAVOR:
        result["favor"][str(seed)] = favor_stats(seed)
        print("favor seed", seed, flush=True)
    for _ in range(5):
        result["timing"].append(timing())
        print("timing", result["timing"][-1], flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()

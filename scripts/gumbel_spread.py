"""Seed spread for the Gumbel-Softmax chapter (29_gumbel_softmax.ipynb).

For each seed, train the categorical VAE on the binarised 8x8 digits with each of the
four estimators for the chapter's budget (1,000 updates), evaluate the test bounds with
1,000 discrete samples per image, and measure each estimator's gradient variance on the
encoder at two points: the initialisation and the Gumbel-Softmax model after training.
A few seeds also run three times longer. Also stores the bound of a model with no
latent (independent pixels) on the same split. Writes data/gumbel/spread.json.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/gumbel_spread.py   # about 6 minutes
"""
import json
import time
from pathlib import Path

import torch

from mlf import gumbel as gb

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "gumbel" / "spread.json"
SEEDS = list(range(8))
LONG_SEEDS = [0, 1, 2]
SETUP = {"steps": 1000, "long_steps": 3000, "lr": 1e-3, "batch": 100, "rate": 1e-3,
         "every": 100, "eval_samples": 1000, "variance_repeats": 200,
         "variance_batch": 100, "variance_taus": [0.1, 0.5, 1.0, 2.0]}


def gradient_variances(model, x, seed):
    """Total variance (sum over the encoder's parameters) of each estimator's gradient
    at the model's parameters, on the batch x."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # the baseline: E[f] at these parameters, from 20 draws
        f = [gb.surrogate_loss(model, x, "score-function", generator=g)[1].mean()
             for _ in range(20)]
    b = torch.stack(f).mean().item()
    runs = [("gumbel-softmax", tau, 0.0) for tau in SETUP["variance_taus"]]
    runs += [("st-gumbel-softmax", 0.5, 0.0), ("score-function", 1.0, 0.0),
             ("score-function+baseline", 1.0, b)]
    out = {}
    for est, tau, base in runs:
        grads = gb.encoder_gradients(model, x, est, SETUP["variance_repeats"], tau,
                                     base, g)
        out[f"{est}@{tau}"] = grads.var(0).sum().item()
    return out


def run(seed, steps, with_variance):
    train, test = gb.binarised_digits()
    result = {"bounds": {}, "history": {}}
    for est in gb.ESTIMATORS:
        model, hist = gb.train_vae(est, train, test, steps, seed=seed, lr=SETUP["lr"],
                                   batch=SETUP["batch"], rate=SETUP["rate"],
                                   every=SETUP["every"], bar=False)
        g = torch.Generator().manual_seed(seed)
        neg_elbo, neg_iw = gb.evaluate(model, test, SETUP["eval_samples"], g)
        with torch.no_grad():
            kl = model.kl(model.encode(test)).mean().item()
        result["bounds"][est] = {"neg_elbo": neg_elbo, "neg_iw_bound": neg_iw,
                                 "kl": kl}
        result["history"][est] = hist["test_neg_elbo"]
        if with_variance and est == "gumbel-softmax":
            x = train[: SETUP["variance_batch"]]
            result["variance_trained"] = gradient_variances(model, x, seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                init = gb.CategoricalVAE()
            result["variance_init"] = gradient_variances(init, x, seed)
    return result


def main():
    torch.set_num_threads(1)
    start = time.process_time()
    # the bound of a model with no latent, on the same split: where a VAE whose
    # q(z|x) learned nothing ends
    no_latent = gb.independent_pixels(*gb.binarised_digits())
    stored = {"setup": SETUP, "independent_pixels": no_latent, "seeds": {}, "long": {}}
    for seed in SEEDS:
        stored["seeds"][str(seed)] = run(seed, SETUP["steps"], True)
        print(f"seed {seed}: {stored['seeds'][str(seed)]['bounds']}", flush=True)
    for seed in LONG_SEEDS:
        stored["long"][str(seed)] = run(seed, SETUP["long_steps"], False)
        print(f"long seed {seed}: {stored['long'][str(seed)]['bounds']}", flush=True)
    stored["cpu_seconds"] = round(time.process_time() - start)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({stored['cpu_seconds']} s CPU)")


if __name__ == "__main__":
    main()

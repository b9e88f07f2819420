"""Pre-training helps: fine-tune all-MiniLM-L6-v2 and the same architecture from random
initialisation on a small sentiment task, 5 seeds each (22_bert.ipynb).

Task: Shakespeare lines labelled positive or negative by VADER (mlf.bert.sentiment_lines),
600 of each from the 35 training plays, 100 of each from the three held-out plays
(hamlet, the-tempest, twelfth-night) for testing; lines cut to 24 WordPiece tokens.
Recipe (the paper's section 4.1 and Appendix A.3): AdamW, weight decay 0.01, batch 16,
10% linear warm-up then linear decay, dropout 0.1, every parameter trained, 40 steps
(640 lines, about half an epoch). Learning rates: 1e-4 for the pre-trained encoder (the
paper uses 2e-5 to 5e-5 over several epochs; our run is far shorter) and 3e-4 for the
random-init encoder (training from scratch usually wants more). Seed s fixes the new
classifier layer, dropout, batch order and (random init) the encoder. Held-out accuracy
is measured after 20 and 40 steps (one schedule of 40 steps), and every training loss
is kept; the result goes to data/bert/finetune.json.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bert_finetune.py   # ~4 CPU minutes

Seeds can also run one at a time and be merged; the result is the same:
    ... bert_finetune.py --seeds 0 --out /tmp/ft0.json   (and so on for 1..4)
    ... bert_finetune.py --merge /tmp/ft0.json ... /tmp/ft4.json

A fair try for random initialisation (``--budget``): seed 0 of the random-init encoder
at learning rates 3e-5, 1e-4 and 3e-4, each for 40 steps and for 200 steps (5 times
the budget, about 2.7 epochs, within the paper's 2 to 4), held-out accuracy after
every 20 steps; then seeds 1 to 4 at 200 steps and the grid's best rate (3e-4). The
result goes to data/bert/finetune_budget.json (~14 CPU minutes; ``--budget-seeds``
runs the second part alone, adding to the file the first part wrote).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bert_finetune.py --budget
"""
import json
import sys
import time

import torch
from bert_common import DATA, cli, write_json
from mlf import bert
from mlf.corpora import shakespeare_titles

HELD_OUT = ("hamlet", "the-tempest", "twelfth-night")
CONFIG = {"n_train_per_class": 600, "n_test_per_class": 100, "data_seed": 0,
          "steps": 40, "batch": 16, "max_len": 24, "checkpoints": [20, 40],
          "runs": {"pretrained": [1e-4], "random": [3e-4]}, "seeds": [0, 1, 2, 3, 4]}
BUDGET = {"lrs": [3e-5, 1e-4, 3e-4], "steps": [40, 200], "every": 20, "seed": 0,
          "more_seeds": [1, 2, 3, 4], "best_lr": 3e-4}


def data():
    train_titles = [t for t in shakespeare_titles() if t not in HELD_OUT]
    train = bert.sentiment_lines(train_titles, CONFIG["n_train_per_class"],
                                 CONFIG["data_seed"])
    test = bert.sentiment_lines(list(HELD_OUT), CONFIG["n_test_per_class"],
                                CONFIG["data_seed"])
    return train, test


class Checkpoints:
    """Passed to fine_tune as its progress bar: measures held-out accuracy after the
    steps in CONFIG["checkpoints"] (fine_tune calls update(1) after every step)."""

    def __init__(self, clf, tok, test, at=None):
        self.clf, self.tok, self.test, self.step, self.curve = clf, tok, test, 0, []
        self.at = CONFIG["checkpoints"] if at is None else at

    def update(self, n):
        self.step += n
        if self.step in self.at:
            acc = bert.accuracy(self.clf, self.tok, self.test, CONFIG["max_len"])
            self.curve.append([self.step, acc])
            self.clf.train()  # accuracy() switched to eval mode


def run(pretrained, lr, seed, train, test, steps=None, at=None):
    torch.manual_seed(seed)
    encoder, tok = bert.from_pretrained_minilm(pretrained=pretrained)
    clf = bert.BertClassifier(encoder, 2)
    points = Checkpoints(clf, tok, test, at)
    losses = bert.fine_tune(clf, tok, train, steps or CONFIG["steps"], lr,
                            CONFIG["batch"], CONFIG["max_len"], seed=seed, bar=points)
    return {"curve": points.curve, "final": points.curve[-1][1], "losses": losses}


def main(seeds, out):
    torch.set_num_threads(1)
    train, test = data()
    results = {"config": CONFIG, "runs": {}}
    for kind, lrs in CONFIG["runs"].items():
        for lr in lrs:
            for seed in seeds:
                t = time.process_time()
                r = run(kind == "pretrained", lr, seed, train, test)
                r["cpu_s"] = round(time.process_time() - t, 1)
                by_seed = results["runs"].setdefault(kind, {}).setdefault(str(lr), {})
                by_seed[str(seed)] = r
                print(kind, lr, seed, r["curve"], r["cpu_s"], file=sys.stderr,
                      flush=True)
    write_json(results, out)


def budget():
    """Random init, seed 0: every learning rate of BUDGET at every step budget."""
    torch.set_num_threads(1)
    train, test = data()
    results = {"config": CONFIG, "budget": BUDGET, "random": {}}
    for lr in BUDGET["lrs"]:
        for steps in BUDGET["steps"]:
            t = time.process_time()
            at = list(range(BUDGET["every"], steps + 1, BUDGET["every"]))
            r = run(False, lr, BUDGET["seed"], train, test, steps, at)
            r["cpu_s"] = round(time.process_time() - t, 1)
            results["random"].setdefault(str(lr), {})[str(steps)] = r
            print("random", lr, steps, r["curve"], r["cpu_s"], file=sys.stderr,
                  flush=True)
    write_json(results, DATA / "finetune_budget.json")
    budget_seeds(train, test)


def budget_seeds(train=None, test=None):
    """Random init at BUDGET["best_lr"] for 200 steps, seeds BUDGET["more_seeds"]."""
    torch.set_num_threads(1)
    if train is None:
        train, test = data()
    path = DATA / "finetune_budget.json"
    results = json.loads(path.read_text())
    steps = max(BUDGET["steps"])
    at = list(range(BUDGET["every"], steps + 1, BUDGET["every"]))
    for seed in BUDGET["more_seeds"]:
        t = time.process_time()
        r = run(False, BUDGET["best_lr"], seed, train, test, steps, at)
        r["cpu_s"] = round(time.process_time() - t, 1)
        results.setdefault("seeds", {})[str(seed)] = r
        print("random", seed, r["curve"], r["cpu_s"], file=sys.stderr, flush=True)
        write_json(results, path)  # after every seed


if __name__ == "__main__":
    if sys.argv[1:] in (["--budget"], ["--budget-seeds"]):
        budget() if sys.argv[1] == "--budget" else budget_seeds()
        sys.exit()
    cli(main, CONFIG["seeds"], DATA / "finetune.json")

"""Seed spread for the lottery-ticket chapter (11_lottery_ticket.ipynb).

For each seed, run ``mlf.pruning.lottery`` on the 8x8 digits: 18 rounds of iterative
magnitude pruning at 20% per round (10% for the output layer) with rewinding to
theta_0, and at six of the rounds the random re-initialisation and one-shot controls,
at the chapter's budget (20 epochs, Adam 3e-3, batches of 60). For every seed it
also measures how far each weight of the dense network moved in training, split by
whether it is in the winning ticket (the paper's Appendix F.5).
Seeds go to five processes, each on one thread, so the result does not depend on how
many run at once. Writes data/lottery/sweep.json (numbers rounded to 5 digits).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/lottery_sweep.py   # 1 min, 5 quiet cores
"""
import json
import multiprocessing
import time
from pathlib import Path

import torch
from mlf import pruning as pr

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "lottery" / "sweep.json"
SEEDS = list(range(5))
SETUP = {"rounds": 18, "rate": 0.2, "epochs": 20, "lr": 3e-3,
         "controls_at": [3, 7, 10, 14, 16, 18],
         "batch": 60, "split_seed": 0, "movement_rounds": [10, 18]}
KEYS = ("ticket", "reinit", "one_shot")


def r5(x):
    return round(float(x), 5)


def summarise(out):
    rows = []
    for row in out["rounds"]:
        rows.append({"remaining": r5(row["remaining"]), **{
            k: {"test_acc": r5(row[k]["test_acc"]), "stop_epoch": row[k]["stop_epoch"],
                "final_test_acc": r5(row[k]["final_test_acc"]),
                "test_accs": [r5(a) for a in row[k]["test_accs"]]}
            for k in KEYS if k in row}})
    return rows


def movement(out, rounds):
    """Per layer: median |theta_j - theta_0| of the weights in the round's ticket and
    of the others, and the fraction of each that moved away from zero."""
    theta_0, dense = out["theta_0"], out["dense"]
    result = {}
    for r in rounds:
        masks = out["rounds"][r]["masks"]
        result[str(r)] = {}
        for name, w in pr.prunable(dense).items():
            w0, wj, m = theta_0[name], w.detach(), masks[name].bool()
            moved, away = (wj - w0).abs(), wj.abs() > w0.abs()
            result[str(r)][name] = {
                "ticket_median": r5(moved[m].median()),
                "other_median": r5(moved[~m].median()),
                "ticket_away": r5(away[m].float().mean()),
                "other_away": r5(away[~m].float().mean())}
    return result


def job(seed):
    torch.set_num_threads(1)
    start = time.process_time()
    data = pr.digits(SETUP["split_seed"])
    out = pr.lottery(data, rounds=SETUP["rounds"], rate=SETUP["rate"], seed=seed,
                     controls_at=SETUP["controls_at"], epochs=SETUP["epochs"],
                     lr=SETUP["lr"], batch=SETUP["batch"])
    result = {"rounds": summarise(out),
              "movement": movement(out, SETUP["movement_rounds"])}
    last = result["rounds"][-1]
    print(f"seed {seed}: at {last['remaining']:.4f}",
          {k: last[k]["test_acc"] for k in KEYS}, flush=True)
    return seed, result, time.process_time() - start


def main():
    with multiprocessing.Pool(len(SEEDS)) as pool:
        done = pool.map(job, SEEDS, chunksize=1)
    stored = {"setup": SETUP, "seeds": {str(seed): result for seed, result, _ in done}}
    stored["cpu_seconds"] = round(sum(d[2] for d in done))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(stored, separators=(",", ":")) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1e3:.0f} kB) in "
          f"{stored['cpu_seconds']} s of CPU time")


if __name__ == "__main__":
    main()

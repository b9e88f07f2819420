"""RLHF (a Bradley–Terry reward model + PPO) against DPO on the book's model, 5 seeds.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/rlhf_sweep.py --seeds 0 1 2 3 4

The chapter notebooks/23_rlhf.ipynb in small: the DPO paper's controlled-sentiment
task, with the book's language model (data/lm/shakespeare.pt), π_ref, prompts from the
three held-out plays, and VADER's compound score of the completion as the true reward.
Setup: ``mlf.rlhf.RLHF_SETUP``.

1. The pool (seed ``pool_seed``, shared by all seeds): 2 completions of π_ref for each
   of 4,096 train prompts, their VADER scores and π_ref's sequence log-probs; the same
   for 512 eval prompts (the reward model's test set). -> data/rlhf/pool.pt
2. Per seed: Bradley–Terry labels drawn with the seed; the linear reward model; its
   Spearman correlation with VADER and its pairwise accuracy on the eval pool; DPO and
   PPO (against the reward model), each evaluated at 4 checkpoints on the first 256
   eval prompts (mean VADER, exact sequence KL to π_ref); the Spearman of DPO's
   implicit reward; 3 sample completions of each final policy.
   -> data/rlhf/sweep.json

One thread, one process, fixed seeds: a rerun writes the same files.
The learning rates in RLHF_SETUP were picked in a short, unstored trial on seed 0;
no number in the chapter comes from it.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from mlf import rlhf
from mlf.corpora import shakespeare_lines
from mlf.gpt import load_book_lm
from scipy.stats import spearmanr

OUT = Path(__file__).resolve().parents[1] / "data" / "rlhf"
S = rlhf.RLHF_SETUP


def prompts_of(bpe, record):
    lines = [x for t in record["held_out_plays"] for x in shakespeare_lines(t)]
    return rlhf.held_out_prompts(bpe, lines, S["prompt_tokens"], S["n_eval_prompts"])


@torch.no_grad()
def two_completions(model, bpe, prompts, generator, chunk=256):
    """(N, P) -> ids (N, 2, T) int64, VADER (N, 2), π_ref sequence log-probs (N, 2)."""
    ids, rew, logp = [], [], []
    start = prompts.shape[1]
    for i in range(0, prompts.shape[0], chunk):
        x = prompts[i:i + chunk].repeat_interleave(2, 0)  # (2c, P): y1, y2 per prompt
        y = rlhf.sample_completions(model, x, S["completion_tokens"], generator)
        ids.append(y.view(-1, 2, y.shape[1]))
        rew.append(rlhf.vader_reward(bpe, y, start).view(-1, 2))
        logp.append(rlhf.sequence_logprobs(model, y, start).sum(-1).view(-1, 2))
    return torch.cat(ids), torch.cat(rew), torch.cat(logp)


def make_pool(model, bpe, record):
    train, test = prompts_of(bpe, record)
    g = torch.Generator().manual_seed(S["pool_seed"])
    ids, rew, logp = two_completions(model, bpe, train[:S["n_train_prompts"]], g)
    eids, erew, _ = two_completions(model, bpe, test, g)
    return {"ids": ids.to(torch.int16), "reward": rew, "ref_logp": logp,
            "eval_ids": eids.to(torch.int16), "eval_reward": erew}


def evaluator(ref, bpe, prompts):
    def evaluate(policy):
        return rlhf.evaluate_policy(policy, ref, prompts, bpe,
                                    S["completion_tokens"], S["eval_seed"])
    return evaluate


def run_dpo(ref, pairs, evaluate, seed, steps=None):
    c = S["dpo"]
    policy = copy.deepcopy(ref).requires_grad_(True)
    log = rlhf.dpo_train(policy, pairs, steps=steps or c["steps"], batch=c["batch"],
                         beta=S["beta"], lr=c["lr"],
                         generator=torch.Generator().manual_seed(seed),
                         checkpoints=c["checkpoints"], evaluate=evaluate,
                         clip=S["grad_clip"])
    return policy, log


def run_ppo(ref, score, prompts, evaluate, seed, iters=None):
    c = S["ppo"]
    policy = copy.deepcopy(ref).requires_grad_(True)
    log = rlhf.ppo_train(policy, ref, score, prompts, iters=iters or c["iters"],
                         batch=c["batch"], beta=S["beta"], lr=c["lr"],
                         length=S["completion_tokens"], epochs=c["epochs"],
                         eps=c["eps"], generator=torch.Generator().manual_seed(seed),
                         checkpoints=c["checkpoints"], evaluate=evaluate,
                         clip=S["grad_clip"])
    return policy, log


@torch.no_grad()
def implicit_spearman(policy, pool):
    """Spearman(β log π/π_ref, r*) on the eval pool: DPO's implicit reward."""
    ids = pool["eval_ids"].long().flatten(0, 1)
    start = S["prompt_tokens"]
    ref_lp = rlhf.sequence_logprobs(REF, ids, start).sum(-1)
    lp = rlhf.sequence_logprobs(policy, ids, start).sum(-1)
    return float(spearmanr(S["beta"] * (lp - ref_lp),
                           pool["eval_reward"].flatten()).statistic)


def samples(policy, bpe, prompts, n=3):
    out = rlhf.evaluate_policy(policy, REF, prompts[:n], bpe, S["completion_tokens"],
                               S["eval_seed"], keep_ids=True)["ids"]
    return [bpe.decode(row) for row in out.tolist()]


def clean(log):
    return [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
            for row in log]


REF = None


def main():
    global REF
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cpu0 = time.process_time()
    REF, bpe, record = load_book_lm()
    REF.requires_grad_(False)
    vocab = REF.cfg.vocab_size
    pool = make_pool(REF, bpe, record)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(pool, args.out / "pool.pt")
    print(f"pool: {time.process_time() - cpu0:.0f} CPU-s", flush=True)
    train, test = prompts_of(bpe, record)
    eval_prompts = test[:S["eval_prompts"]]
    evaluate = evaluator(REF, bpe, eval_prompts)
    keep = rlhf.frequent_tokens(pool, S["prompt_tokens"], vocab, S["min_count"])
    result = {"setup": S, "n_prompts": [train.shape[0], test.shape[0]],
              "reference": clean([evaluate(REF)])[0], "seeds": {}}
    for seed in args.seeds:
        pairs = rlhf.preference_pairs(pool, S["tau"], seed, S["prompt_tokens"])
        w = rlhf.reward_model(pairs, keep, vocab, S["l2"])
        score = rlhf.rm_scorer(keep, w, S["prompt_tokens"], vocab)
        row = {"rm": rlhf.rm_quality(pool, score)}
        dpo, row["dpo"] = run_dpo(REF, pairs, evaluate, seed)
        row["dpo_implicit_spearman"] = implicit_spearman(dpo, pool)
        row["dpo_samples"] = samples(dpo, bpe, eval_prompts)
        ppo, row["ppo"] = run_ppo(REF, score, train, evaluate, seed)
        row["ppo_samples"] = samples(ppo, bpe, eval_prompts)
        row["dpo"], row["ppo"] = clean(row["dpo"]), clean(row["ppo"])
        result["seeds"][str(seed)] = row
        print(f"seed {seed}: rm {row['rm']}, dpo {row['dpo'][-1]}, "
              f"ppo {row['ppo'][-1]}, {time.process_time() - cpu0:.0f} CPU-s",
              flush=True)
    result["cpu_seconds"] = round(time.process_time() - cpu0)
    (args.out / "sweep.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"done in {result['cpu_seconds']} CPU-s")


if __name__ == "__main__":
    main()

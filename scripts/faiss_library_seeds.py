"""Spread over seeds of the Faiss-library chapter's claims (21_faiss_library.ipynb).

For each seed: a random 15,000 of the 20,000 MiniLM vectors of data/faiss/ in a random
order (the order HNSW inserts them), a random 500 of the 1,000 held-out queries, and
faiss's k-means seeded with the seed; the same on synthetic clustered vectors
(mlf.ann.clustered_vectors, 15,000 + 500, d = 32). Recall@10 (10-recall@10 against
float64 exact search) of Flat, IVF128,Flat, IVF128,SQ8 and IVF128,PQ16 along nprobe,
and HNSW32 along efSearch, single-threaded. On MiniLM also the ratio of PQ16's relative
squared error after and before an OPQ16 rotation (10 alternations, trained on the
first 10,000 vectors of the sample), as in the chapter. Writes
data/faiss_library/seeds.json (about 3 minutes of CPU).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/faiss_library_seeds.py
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import faiss
import numpy as np
from mlf import ann
from mlf import vector_index as vi

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "faiss_library" / "seeds.json"
NPROBES = [1, 2, 4, 8, 16, 32, 64, 128]
EFS = [16, 32, 64, 128, 256]
K = 10


def sample(seed: int, name: str):
    rng = np.random.default_rng(seed)
    if name == "minilm":
        m = ann.load_minilm()
        base, queries = m["base"], m["queries"]
    else:
        x = ann.clustered_vectors(21_000, 32, seed=seed)
        base, queries = x[:20_000], x[20_000:]
    order = rng.permutation(len(base))[:15_000]  # the sample, in insertion order
    picked = np.sort(rng.choice(len(queries), 500, replace=False))
    return base[order], queries[picked]


def sweep(base, queries, seed: int) -> dict:
    truth = vi.exact_knn(queries, base, K)
    d = base.shape[1]
    out = {}
    flat = faiss.IndexFlatL2(d)
    flat.add(base)
    out["flat"] = vi.recall_at_k(flat.search(queries, K)[1], truth, K)
    for key in ("IVF128,Flat", "IVF128,SQ8", "IVF128,PQ16"):
        index = faiss.index_factory(d, key)
        ivf = index  # no transform in front: the IVF index itself
        ivf.cp.seed = seed
        if key.endswith("PQ16"):
            ivf.pq.cp.seed = seed
            # subtle: the factory turns on polysemous training, which only permutes
            # the centroids (same distances, same results) and costs 10x the k-means
            ivf.do_polysemous_training = False
        index.train(base[:10_000])
        index.add(base)
        curve = []
        for nprobe in NPROBES:
            ivf.nprobe = nprobe
            curve.append(vi.recall_at_k(index.search(queries, K)[1], truth, K))
        out[key] = curve
    hnsw = faiss.IndexHNSWFlat(d, 32)
    hnsw.add(base)
    curve = []
    for ef in EFS:
        hnsw.hnsw.efSearch = ef
        curve.append(vi.recall_at_k(hnsw.search(queries, K)[1], truth, K))
    out["HNSW32"] = curve
    return out


def opq_over_pq(base) -> float:
    """PQ16's relative squared error after an OPQ16 rotation, over the error without."""
    d = base.shape[1]

    def pq_error(vectors):
        pq = faiss.ProductQuantizer(d, 16, 8)
        pq.train(vectors[:10_000])
        back = pq.decode(pq.compute_codes(vectors))
        return float(((vectors - back) ** 2).sum() / (vectors**2).sum())

    opq = faiss.OPQMatrix(d, 16)
    opq.niter = 10  # as in the chapter (faiss's default is 50)
    opq.train(base[:10_000])
    return pq_error(opq.apply(base)) / pq_error(base)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    result = {"setup": {"nprobes": NPROBES, "efSearch": EFS, "k": K, "n_base": 15_000,
                        "n_queries": 500, "nlist": 128, "hnsw_M": 32},
              "runs": {}}
    for seed in args.seeds:
        for name in ("minilm", "synthetic"):
            base, queries = sample(seed, name)
            run = sweep(base, queries, seed)
            if name == "minilm":
                run["opq_over_pq"] = round(opq_over_pq(base), 6)
            result["runs"].setdefault(name, {})[str(seed)] = run
            print(seed, name, json.dumps(result["runs"][name][str(seed)]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

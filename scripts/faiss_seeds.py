"""Seed spread for the Faiss chapter's claims (06_faiss.ipynb): data/faiss/seeds/*.json.

For seeds 0-4 (or those given on the command line), on the chapter's synthetic vectors (mlf.ann.clustered_vectors, d = 32,
50,000 database vectors and 1,000 queries drawn with the seed) and on the stored MiniLM
vectors (faiss's training seeded), with faiss.IndexIVFPQ (nlist 256, M 8, 8 bits; for
MiniLM's d = 64, nlist 128 and M 16) and
mlf.ann.IVFPQ given faiss's trained centroids:

* where the coarse lists differ (float32 ties in faiss), whether the PQ codes are
  identical given faiss's lists; R@10 of both at nprobe 1, 2, ..., 128;
* PQ on residuals vs PQ on the raw vectors (faiss, by_residual True/False): mean
  squared reconstruction error and R@10 at nprobe 16;
* the sqrt(N) rule: for N = 12,500 and 50,000 and nlist 32 ... 1024 (faiss k-means),
  the least nprobe whose lists hold the true nearest neighbour of 90% of the queries,
  and the work per query there (coarse: nlist * d multiply-adds; scan: M look-ups per
  code visited).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/faiss_seeds.py [SEED ...]  # ~2 CPU min a seed
"""
import json
import math
import sys
from pathlib import Path

import faiss
import numpy as np
from mlf import ann

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "faiss" / "seeds"  # one json per seed
SEEDS = range(5)
D, NLIST, M, K = 32, 256, 8, 10
NPROBES = [1, 2, 4, 8, 16, 32, 64, 128]
NLISTS = [32, 64, 128, 256, 512, 1024]
TARGET = 0.9


def faiss_ivfpq(train, nlist, seed, by_residual=True, m=M):
    index = faiss.IndexIVFPQ(faiss.IndexFlatL2(train.shape[1]), train.shape[1], nlist,
                             m, 8)
    index.by_residual = by_residual
    index.cp.seed = index.pq.cp.seed = seed
    index.cp.min_points_per_centroid = 1  # no warning for the smaller N below
    index.train(train)
    return index


def recalls(index, queries, truth):
    out = []
    for nprobe in NPROBES:
        index.nprobe = nprobe
        out.append(ann.recall_at(index.search(queries, K)[1], truth, K))
    return out


def cross_check(base, queries, seed, nlist=NLIST, m=M):
    _, truth = ann.exact_search(queries, base, K)
    index = faiss_ivfpq(base[:20000], nlist, seed, m=m)
    index.add(base)
    ours = ann.IVFPQ(base.shape[1], nlist, m).set_centroids(
        index.quantizer.reconstruct_n(0, nlist), faiss.vector_to_array(index.pq.centroids))
    lists, codes = ours.encode(base)
    sa = index.sa_encode(base)
    coarse_bytes = sa.shape[1] - m
    theirs = sa[:, 0].astype(np.int64)  # nlist <= 256: one byte
    differ = np.flatnonzero(lists != theirs)
    # relative gap between the two centroids' exact distances, where the lists differ
    c64, b64 = ours.coarse.astype(np.float64), base[differ].astype(np.float64)
    d_ours = ((b64 - c64[lists[differ]]) ** 2).sum(1)
    d_theirs = ((b64 - c64[theirs[differ]]) ** 2).sum(1)
    gaps = (d_theirs - d_ours) / d_ours
    _, given = ours.encode(base, lists=theirs)  # PQ codes, given faiss's lists
    same = {"list_mismatches": len(differ),
            "largest_relative_gap_at_mismatch": float(gaps.max()) if len(gaps) else 0.0,
            "pq_codes_identical_given_lists": bool((sa[:, coarse_bytes:] == given).all()),
            "codes_identical": bool(len(differ) == 0 and (sa[:, coarse_bytes:] ==
                                                         codes).all())}
    ours.add(base)
    lib = [ann.recall_at(ours.search(queries, K, p)[1], truth, K) for p in NPROBES]
    return {**same, "faiss": recalls(index, queries, truth), "lib": lib}


def residual_vs_raw(base, queries, seed):
    _, truth = ann.exact_search(queries, base, K)
    out = {}
    for name, by_residual in (("residual", True), ("raw", False)):
        index = faiss_ivfpq(base[:20000], NLIST, seed, by_residual)
        index.add(base)
        index.make_direct_map()
        rec = index.reconstruct_n(0, len(base))
        index.nprobe = 16
        out[name] = {"mse": float(((base - rec) ** 2).sum(1).mean()),
                     "recall_nprobe16": ann.recall_at(index.search(queries, K)[1],
                                                      truth, K)}
    return out


def sqrt_n(x, n, seed):
    """Per nlist: the least nprobe whose lists hold the true nearest neighbour for
    TARGET of the queries (the coarse quantizer's recall, which bounds IVFADC's), and
    the work per query there. Exact counts, no timing."""
    base, queries = x[:n], x[-1000:]
    _, truth = ann.exact_search(queries, base, 1)
    rows = {}
    for nlist in NLISTS:
        km = faiss.Kmeans(D, nlist, niter=10, seed=seed, min_points_per_centroid=1)
        km.train(base)
        lists = ann.assign(base, km.centroids)
        sizes = np.bincount(lists, minlength=nlist)
        _, order = ann.topk_smallest(ann.squared_distances(queries, km.centroids), nlist)
        rank = (order == lists[truth[:, 0]][:, None]).argmax(1)  # where the NN's list is
        nprobe = int(np.sort(rank + 1)[math.ceil(TARGET * len(queries)) - 1])
        scanned = float(sizes[order[:, :nprobe]].sum(1).mean())
        rows[str(nlist)] = {"nprobe": nprobe, "codes_scanned": scanned,
                            "coarse_ops": nlist * D, "scan_ops": scanned * M}
    return rows


def main(seeds):
    faiss.omp_set_num_threads(1)
    z = np.load(ROOT / "data" / "faiss" / "minilm_pca64.npz")
    mini_base, mini_q = z["base"].astype(np.float32), z["queries"].astype(np.float32)
    setup = {"d": D, "nlist": NLIST, "M": M, "k": K, "nprobes": NPROBES,
             "nlists": NLISTS, "target_recall": TARGET, "faiss": faiss.__version__}
    OUT.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        x = ann.clustered_vectors(51_000, D, seed=seed)
        base, queries = x[:50_000], x[50_000:]
        run = {"setup": setup, "seed": seed,
               "synthetic": cross_check(base, queries, seed),
               "minilm": cross_check(mini_base, mini_q, seed, nlist=128, m=16),
               "residual_vs_raw": residual_vs_raw(base, queries, seed),
               "sqrt_n": {str(n): sqrt_n(x, n, seed) for n in (12_500, 50_000)}}
        (OUT / f"seed{seed}.json").write_text(json.dumps(run, indent=1) + "\n")
        print(seed, json.dumps(run["synthetic"]), flush=True)


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or list(SEEDS))

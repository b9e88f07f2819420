"""Using faiss well: code sizes, an 8-bit scalar quantizer, Pareto fronts, safe search.

Douze et al. (2024), *The Faiss library*, describe vector search as a trade-off between
speed, memory and accuracy, and faiss as a toolkit of indexes named by ``index_factory``
strings ("IVF128,PQ16", "HNSW32", "OPQ16,IVF128,PQ16"). This module holds the few
pieces the chapter builds itself and checks against faiss:

* ``code_bytes(key, d)``: the bytes of one vector's standalone code
  (faiss's ``sa_code_size()``) for a factory string, from the arithmetic alone;
* ``sq8_train / sq8_encode / sq8_decode``: faiss's ``QT_8bit`` scalar quantizer with
  its default min/max range, code for code (faiss truncates, and decodes to the middle
  of the cell: x = vmin + (c + 0.5) / 255 * vdiff);
* ``pareto_front``: the operating points no other point beats on both speed and
  recall (faiss's ``OperatingPoints`` keeps the same set, see its tie rules below);
* ``checked_search`` and ``recall_at_k``: search with clear errors for the mistakes
  faiss answers with an assertion or with ids of -1; ``build_index``: the exact
  maximum-inner-product index the retrieval chapters (RAG, REALM) search.

>>> code_bytes("IVF1024,PQ16", 64)      # 2 bytes for the list number, 16 for the code
18
>>> pareto_front([10.0, 5.0, 8.0], [0.5, 0.9, 0.4]).tolist()   # point 2 is beaten
[0, 1]
"""
from __future__ import annotations

import math
import re

import numpy as np

# the input checks of the Faiss 2017 chapter's module, shared rather than copied
from mlf.ann import _as_matrix as _matrix
from mlf.ann import _positive_int


# ---------------------------------------------------------------- code sizes
def coarse_code_bytes(nlist: int) -> int:
    """Bytes that hold a list number 0 .. nlist - 1 (faiss: one byte per 8 bits)."""
    nlist = _positive_int(nlist, "nlist")
    return math.ceil((nlist - 1).bit_length() / 8)


_ENCODINGS = {  # bytes of one vector of dimension d
    "Flat": lambda d: 4 * d,
    "SQfp16": lambda d: 2 * d,
    "SQ8": lambda d: d,
    "SQ6": lambda d: math.ceil(6 * d / 8),
    "SQ4": lambda d: math.ceil(d / 2),
}


def _encoding_bytes(part: str, d: int, key: str) -> int:
    if part in _ENCODINGS:
        return _ENCODINGS[part](d)
    pq = re.fullmatch(r"PQ(\d+)(?:x(\d+))?", part)
    if not pq:
        raise ValueError(f"{key!r}: unknown encoding {part!r}; expected Flat, SQfp16, "
                         "SQ8, SQ6, SQ4 or PQ<M>[x<nbits>]")
    M, nbits = int(pq.group(1)), int(pq.group(2) or 8)
    if M < 1 or d % M:
        raise ValueError(f"{key!r}: PQ{M} needs M to divide d = {d}")
    return math.ceil(M * nbits / 8)  # M codes of nbits each, packed


def code_bytes(key: str, d: int) -> int:
    """Bytes of one standalone code (``sa_code_size()``) for an index_factory string.

    Understands ``[OPQ<M>[_<d'>],|PCA<d'>,][IVF<nlist>,]<encoding>``: transforms change
    d (and cost no bytes), an IVF prefix adds the list number, the encoding costs
    Flat 4d, SQfp16 2d, SQ8 d, SQ6 6d/8, SQ4 d/2, PQ<M>x<b> M*b/8 bytes (rounded up).
    """
    if not isinstance(key, str):
        raise TypeError("key must be an index_factory string, "
                        f"got {type(key).__name__}")
    d = _positive_int(d, "d")
    parts = key.split(",")
    total = 0
    for part in parts[:-1]:
        opq = re.fullmatch(r"OPQ(\d+)(?:_(\d+))?", part)
        pca = re.fullmatch(r"PCAR?(\d+)", part)
        ivf = re.fullmatch(r"IVF(\d+)", part)
        if opq:
            d = int(opq.group(2) or d)  # OPQ<M>_<d'> rotates and projects to d'
        elif pca:
            d = int(pca.group(1))
        elif ivf:
            total += coarse_code_bytes(int(ivf.group(1)))
        else:
            raise ValueError(f"{key!r}: unknown prefix {part!r}; expected OPQ<M>[_<d>],"
                             " PCA<d> or IVF<nlist>")
    return total + _encoding_bytes(parts[-1], d, key)


# ------------------------------------------------------ 8-bit scalar quantizer
def sq8_train(x):
    """(vmin, vdiff), each (d,): faiss's QT_8bit range, each column's min and max."""
    x = _matrix(x, "x")
    if len(x) == 0:
        raise ValueError("x is empty: the quantizer needs at least one training vector")
    vmin, vmax = x.min(0), x.max(0)
    return vmin, vmax - vmin  # faiss's RS_minmax with rangestat_arg = 0


def sq8_encode(x, vmin, vdiff) -> np.ndarray:
    """(n, d) uint8: c = floor(255 * clip((x - vmin) / vdiff, 0, 1)), as faiss does."""
    vmin, vdiff = _matrix([vmin], "vmin")[0], _matrix([vdiff], "vdiff")[0]
    x = _matrix(x, "x", len(vmin))
    if len(vdiff) != len(vmin):
        raise ValueError(f"vmin has d = {len(vmin)} but vdiff has d = {len(vdiff)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (x - vmin) / vdiff  # in float32, as faiss computes it
    # subtle: a constant column has vdiff = 0; faiss gets NaN or inf there and its int
    # conversion of 255 * NaN is undefined; we send its training value to code 0,
    # values above it to 255 and values below it to 0
    u = np.nan_to_num(u, nan=0.0, posinf=1.0, neginf=0.0)
    u = np.clip(u, np.float32(0), np.float32(1))
    return (u * np.float32(255)).astype(np.uint8)  # truncation, not rounding


def sq8_decode(codes, vmin, vdiff) -> np.ndarray:
    """(n, d) float32: the middle of each cell, vmin + (c + 0.5) / 255 * vdiff."""
    vmin, vdiff = _matrix([vmin], "vmin")[0], _matrix([vdiff], "vdiff")[0]
    codes = np.asarray(codes)
    if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != len(vmin):
        raise ValueError(f"codes must be uint8 of shape (n, {len(vmin)}), got "
                         f"{codes.dtype} {codes.shape}")
    return vmin + (codes.astype(np.float32) + np.float32(0.5)) / np.float32(255) * vdiff


# --------------------------------------------------------------- Pareto fronts
def pareto_front(speed, recall) -> np.ndarray:
    """Indices of the operating points that no other point beats, by increasing recall.

    A point is beaten (dominated) when another is at least as fast and at least as
    accurate, and better in one. Among exact duplicates the first is kept.
    # subtle: faiss's ``OperatingPoints`` keeps the same points when all values
    # differ; on ties it keeps a later, strictly faster point of equal recall, and may
    # keep two points of equal speed.
    """
    speed = np.asarray(speed, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if speed.ndim != 1 or speed.shape != recall.shape:
        raise ValueError(f"speed and recall must be 1-d of one length, got "
                         f"{speed.shape} and {recall.shape}")
    if not (np.isfinite(speed).all() and np.isfinite(recall).all()):
        raise ValueError("speed and recall must be finite")
    # best recall first; among equal recall, fastest first; then by position
    order = np.lexsort((np.arange(len(speed)), -speed, -recall))
    front, fastest = [], -np.inf
    for i in order:  # a point survives only if faster than every more accurate one
        if speed[i] > fastest:
            front.append(i)
            fastest = speed[i]
    return np.array(front[::-1], dtype=np.int64)


# ---------------------------------------------------------------- safe search
def build_index(doc_vectors):
    """A faiss IndexFlatIP (exact maximum inner product search) over (N, d) vectors."""
    import faiss

    x = np.ascontiguousarray(doc_vectors, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"doc_vectors must be a non-empty (N, d) array, got shape "
                         f"{x.shape}")
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index


def checked_search(index, queries, k: int):
    """(D, I) = index.search(queries, k), after the checks faiss leaves to the caller.

    faiss's Python wrapper answers a wrong dimension with a bare AssertionError, and
    k > ntotal or an empty index with result ids of -1; here each is a ValueError.
    """
    for attr in ("d", "ntotal", "is_trained", "search"):
        if not hasattr(index, attr):
            raise TypeError(f"index must be a faiss index, got {type(index).__name__}")
    x = _matrix(queries, "queries")
    if x.shape[1] != index.d:
        raise ValueError(f"queries have d = {x.shape[1]} but the index has "
                         f"d = {index.d}")
    k = _positive_int(k, "k")
    if not index.is_trained:
        raise ValueError("the index is not trained: call index.train(vectors) first")
    if index.ntotal == 0:
        raise ValueError("the index is empty: add vectors before searching")
    if k > index.ntotal:
        raise ValueError(f"k = {k} exceeds the {index.ntotal} vectors in the index")
    return index.search(x, k)


def recall_at_k(found, truth, k: int) -> float:
    """k-recall@k: the share of the k true nearest neighbours among the first k results.

    ``truth`` holds at least k true neighbours per query, nearest first; ``found`` the
    ids an index returned (-1 for a missing result, which never counts).
    """
    found, truth = np.asarray(found), np.asarray(truth)
    if found.ndim != 2 or truth.ndim != 2 or len(found) != len(truth):
        raise ValueError(f"found and truth must be (nq, .) arrays with the same nq, "
                         f"got {found.shape} and {truth.shape}")
    k = _positive_int(k, "k")
    if k > found.shape[1] or k > truth.shape[1]:
        raise ValueError(f"k = {k} exceeds the columns of found {found.shape} or "
                         f"truth {truth.shape}")
    f, t = found[:, :k], truth[:, :k]
    hits = (f[:, :, None] == t[:, None, :]) & (f[:, :, None] >= 0)  # (nq, k, k)
    return float(hits.any(1).sum() / t.size)  # each true neighbour found or not


def exact_knn(queries, base, k: int, chunk: int = 256) -> np.ndarray:
    """(nq, k) ids of the k nearest base vectors by L2, computed in float64.

    The ground truth for recall: ||x||^2 - 2<x, y> + ||y||^2 in float64, far below the
    float32 rounding of the indexes it judges; ties by the lower id.
    """
    x, y = _matrix(queries, "queries"), _matrix(base, "base")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"queries have d = {x.shape[1]} but base has d = {y.shape[1]}")
    k, chunk = _positive_int(k, "k"), _positive_int(chunk, "chunk")
    if k > len(y):
        raise ValueError(f"k = {k} exceeds the {len(y)} base vectors")
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    y_sq = (y64 * y64).sum(1)
    out = []
    for s in range(0, len(x), chunk):
        xs = x64[s:s + chunk]
        dist = (xs * xs).sum(1)[:, None] - 2 * xs @ y64.T + y_sq[None]  # (c, N)
        out.append(np.argsort(dist, axis=1, kind="stable")[:, :k])
    return np.concatenate(out)

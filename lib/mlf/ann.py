"""Approximate nearest neighbours by compression: k-means, product quantization (PQ),
the inverted file with residual PQ (IVFADC), and k-selection.

Jégou, Douze and Schmid (2011) compress a vector y of dimension d into M bytes: cut it
into M sub-vectors of d/M coordinates, and store for each the index of its nearest
centroid in a codebook of 256 learned by k-means on that sub-space. A query x is
compared with the codes without decoding them (asymmetric distance computation, ADC):
one table of |x_m - c_mj|^2 per query, then M look-ups and additions per stored vector.
IVFADC adds a coarse quantizer q1 (k-means with nlist centroids) in front: y is stored
in the list of its nearest coarse centroid, and PQ (q2) encodes the residual
y - q1(y), so that q(y) = q1(y) + q2(y - q1(y)). A query visits only its nprobe
nearest lists.

Conventions follow faiss's ``IndexIVFPQ`` (by_residual=True, L2, 8-bit codes), so that
with faiss's trained centroids copied in, the codes are identical:

* sub-vector m is coordinates m*dsub .. (m+1)*dsub - 1, ``dsub = d / M``;
* the PQ centroids are stored as (M, 256, dsub), faiss's ``pq.centroids`` reshaped;
* a search distance is Johnson et al.'s (2017) decomposition,
  ||x - q1(y)||^2 + (||q2||^2 + 2<q1(y), q2>) - 2<x, q2>: term 1 comes from the coarse
  search, term 2 is a per-list table made once after training, term 3 one table per
  query (faiss's ``use_precomputed_table``).

>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((2000, 8)).astype(np.float32)
>>> pq = ProductQuantizer(8, M=2, nbits=4).train(x, seed=0)
>>> pq.encode(x[:3]).shape, pq.encode(x[:3]).dtype      # M bytes per vector
((3, 2), dtype('uint8'))
>>> values, order = topk_smallest(np.array([[3.0, 1.0, 2.0, 1.0]]), 3)
>>> order.tolist()                                   # ties: the lower index first
[[1, 3, 2]]
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "data" / "faiss"


def _as_matrix(x, name: str, d: int | None = None) -> np.ndarray:
    """x as a C-contiguous float32 (n, d) array, or an error saying what is wrong."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a 2-d array of numbers, "
                        f"got {type(x).__name__}")
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n, d), got shape {x.shape}")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} has d = {x.shape[1]} columns, expected d = {d}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def squared_distances(x, c) -> np.ndarray:
    """(n, k) float32: ||x_i - c_j||^2 = ||x_i||^2 - 2<x_i, c_j> + ||c_j||^2 (one GEMM).

    # subtle: the expansion loses precision when ||x - c|| << ||x||, and can even give
    # tiny negative numbers; it is what faiss uses for many queries, and fine for
    # ranking; ``assign`` recomputes in float64 where exact ties matter.
    """
    x, c = _as_matrix(x, "x"), _as_matrix(c, "c")
    if x.shape[1] != c.shape[1]:
        raise ValueError(f"x has d = {x.shape[1]} but c has d = {c.shape[1]}")
    return (x * x).sum(1)[:, None] - 2 * (x @ c.T) + (c * c).sum(1)[None, :]


def assign(x, centroids, chunk: int = 4096) -> np.ndarray:
    """(n,) int64: the index of each row's nearest centroid (ties: lowest index).

    Distances are computed in float64, so that the argmin is the exact one up to
    ties. faiss computes in float32, so the two can pick different centroids when
    their distances agree to about 1e-7 (relative): 06_faiss.ipynb meets one such
    vector in 250,000.
    """
    x, centroids = _as_matrix(x, "x"), _as_matrix(centroids, "centroids")
    if x.shape[1] != centroids.shape[1]:
        raise ValueError(f"x has d = {x.shape[1]} but the centroids have "
                         f"d = {centroids.shape[1]}")
    c = centroids.astype(np.float64)
    c_norms = (c * c).sum(1)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), chunk):  # (chunk, k) at a time: bounded memory
        xs = x[start:start + chunk].astype(np.float64)
        d = c_norms[None, :] - 2 * (xs @ c.T)  # ||x||^2 is the same for every centroid
        out[start:start + chunk] = d.argmin(1)  # argmin takes the first minimum
    return out


def kmeans(x, k: int, niter: int = 20, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means: (k, d) float32 centroids of the rows of x.

    Starts from k distinct rows drawn at random; each iteration assigns every row to its
    nearest centroid and moves each centroid to the mean of its rows. An empty cluster
    takes half of the largest one: a copy of its centroid, the two nudged apart.
    orig: faiss splits a cluster drawn at random with probability about proportional
    to its size; the largest is a deterministic stand-in.
    """
    x = _as_matrix(x, "x")
    k, niter = _positive_int(k, "k"), _positive_int(niter, "niter")
    if len(x) < k:
        raise ValueError(f"k-means needs at least k = {k} points, got {len(x)}")
    rng = np.random.default_rng(seed)
    centroids = x[np.sort(rng.choice(len(x), k, replace=False))].copy()
    for _ in range(niter):
        # float32 suffices here (a near-tie moves one point); ||x||^2 does not matter
        labels = ((centroids * centroids).sum(1) - 2 * (x @ centroids.T)).argmin(1)
        counts = np.bincount(labels, minlength=k)
        sums = np.stack([np.bincount(labels, weights=col, minlength=k)
                         for col in x.T], axis=1)  # (k, d): per-cluster sums
        full = counts > 0
        centroids[full] = (sums[full] / counts[full, None]).astype(np.float32)
        for j in np.flatnonzero(~full):  # subtle: an empty cluster would stay dead
            big = counts.argmax()
            nudge = 1 + 1e-4 * rng.choice([-1.0, 1.0], size=x.shape[1])
            centroids[j] = centroids[big] * nudge
            centroids[big] = centroids[big] / nudge
            counts[j] = counts[big] // 2
            counts[big] -= counts[j]
    return centroids


def topk_smallest(values, k: int):
    """The k smallest entries of each row, ascending: (values, indices), both (n, k).

    Ties are broken by the lower index, so the result is that of a stable sort cut at k
    (``torch.sort(stable=True)``); ``torch.topk`` returns the same values, but among
    equal values its choice of index is unspecified. O(n) per row: a partition finds the
    k-th smallest value v; every entry < v is kept, and of those == v the first ones.
    """
    values = np.asarray(values)
    if values.ndim != 2 or values.dtype.kind not in "fiu":
        raise ValueError(f"values must be a 2-d array of numbers, got shape "
                         f"{values.shape} and dtype {values.dtype}")
    if np.isnan(values).any() if values.dtype.kind == "f" else False:
        raise ValueError("values contain NaN: NaN has no place in an order")
    n, length = values.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
            or not 0 <= k <= length:
        raise ValueError(f"k must be an integer in [0, {length}], got {k!r}")
    if k == 0 or n == 0:
        return values[:, :0].copy(), np.zeros((n, 0), dtype=np.int64)
    if k == 1:  # argmin returns the first of equal minima: the stable answer
        idx = values.argmin(1)[:, None]
        return np.take_along_axis(values, idx, axis=1), idx
    idx = np.argpartition(values, k - 1, axis=1)[:, :k]  # the k smallest, any order
    picked = np.take_along_axis(values, idx, axis=1)
    kth = picked[:, k - 1:k]  # (n, 1): the k-th smallest value v
    # subtle: the partition picks any of the entries equal to v; redo the rows where
    # some entry equal to v was left out, keeping the lowest indices
    short = (values == kth).sum(1) > (picked == kth).sum(1)
    for r in np.flatnonzero(short):
        below, equal = values[r] < kth[r], values[r] == kth[r]
        need = k - below.sum()
        idx[r] = np.flatnonzero(below | (equal & (np.cumsum(equal) <= need)))
    idx = np.sort(idx, axis=1)  # by index, so that the stable sort below keeps
    picked = np.take_along_axis(values, idx, axis=1)  # equal values by lower index
    idx = np.take_along_axis(idx, np.argsort(picked, axis=1, kind="stable"), axis=1)
    return np.take_along_axis(values, idx, axis=1), idx


def warp_select(values, k: int, lanes: int = 32, queue: int = 2):
    """A CPU model of WarpSelect (Johnson et al. 2017, section 4.2) on one 1-d array.

    Lane j of a warp of ``lanes`` reads entries j, j + lanes, j + 2 lanes, ... The warp
    queue holds the k smallest values merged so far, sorted; its largest is the
    threshold. An entry below the threshold goes into its lane's thread queue (length
    ``queue``, registers on a GPU); entries at or above it are dropped after one
    comparison, which is the common case. When any thread queue is full the warp merges
    all thread queues into the warp queue (a sort on the GPU) and the threshold falls.

    Returns (values, indices, stats): the k smallest ascending, ties by lower index as
    ``topk_smallest``, and stats = {"inserted": entries that passed the threshold,
    "merges": warp-wide merges}.
    """
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype.kind not in "fiu":
        raise ValueError(f"values must be a 1-d array of numbers, got shape "
                         f"{values.shape} and dtype {values.dtype}")
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise ValueError("values contain NaN: NaN has no place in an order")
    length = len(values)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
            or not 1 <= k <= length:
        raise ValueError(f"k must be an integer in [1, {length}], got {k!r}")
    lanes, queue = _positive_int(lanes, "lanes"), _positive_int(queue, "queue")
    values = values.astype(np.float64)  # +inf is the empty slot, for any input dtype
    warp_v, warp_i = np.full(k, np.inf), np.full(k, length, dtype=np.int64)
    tq_v, tq_i = np.full((lanes, queue), np.inf), np.zeros((lanes, queue), np.int64)
    fill = np.zeros(lanes, dtype=np.int64)  # entries in each thread queue
    stats = {"inserted": 0, "merges": 0}

    def merge():
        nonlocal warp_v, warp_i
        used = np.arange(queue)[None, :] < fill[:, None]  # (lanes, queue)
        cand_v = np.concatenate([warp_v, tq_v[used]])
        cand_i = np.concatenate([warp_i, tq_i[used]])
        order = np.lexsort((cand_i, cand_v))[:k]  # by value, then by index
        warp_v, warp_i = cand_v[order], cand_i[order]
        fill[:] = 0
        stats["merges"] += 1

    for start in range(0, length, lanes):
        chunk = values[start:start + lanes]  # one entry per lane
        lane = np.flatnonzero(chunk < warp_v[-1])  # one comparison per entry
        if len(lane):
            tq_v[lane, fill[lane]] = chunk[lane]
            tq_i[lane, fill[lane]] = start + lane
            fill[lane] += 1
            stats["inserted"] += len(lane)
            if (fill == queue).any():  # a warp vote: some lane's queue is full
                merge()
    if fill.any():
        merge()
    return warp_v, warp_i, stats


class ProductQuantizer:
    """PQ: M sub-quantizers of 2**nbits centroids each (Jégou et al. 2011, sec. II).

    ``centroids``: (M, ksub, dsub) float32; sub-vector m of y is y[m*dsub:(m+1)*dsub].
    A code is M integers < ksub, stored as uint8 (nbits <= 8): M bytes per vector.
    """

    def __init__(self, d: int, M: int, nbits: int = 8):
        d, M = _positive_int(d, "d"), _positive_int(M, "M")
        if d % M:
            raise ValueError(f"M = {M} must divide d = {d}: each sub-vector has d/M "
                             "coordinates")
        if isinstance(nbits, bool) or not isinstance(nbits, int) or not 1 <= nbits <= 8:
            raise ValueError(f"nbits must be an integer in [1, 8] (one byte per "
                             f"sub-vector), got {nbits!r}")
        self.d, self.M, self.nbits = d, M, nbits
        self.dsub, self.ksub = d // M, 2**nbits
        self.centroids = None

    def _check_trained(self):
        if self.centroids is None:
            raise ValueError("the product quantizer is not trained: call train() or "
                             "set_centroids() first")

    def _split(self, x):  # (n, d) -> (M, n, dsub)
        return x.reshape(len(x), self.M, self.dsub).transpose(1, 0, 2)

    def train(self, x, niter: int = 25, seed: int = 0) -> ProductQuantizer:
        """k-means with ksub centroids in each of the M sub-spaces."""
        x = _as_matrix(x, "training vectors", self.d)
        self.centroids = np.stack([kmeans(sub, self.ksub, niter, seed + m)
                                   for m, sub in enumerate(self._split(x))])
        return self

    def set_centroids(self, centroids) -> ProductQuantizer:
        """Use given centroids, (M, ksub, dsub) or flat (faiss's ``pq.centroids``)."""
        c = np.asarray(centroids, dtype=np.float32)
        if c.size != self.M * self.ksub * self.dsub:
            raise ValueError(f"expected M * ksub * dsub = "
                             f"{self.M * self.ksub * self.dsub} centroid values, "
                             f"got {c.size}")
        self.centroids = np.ascontiguousarray(c.reshape(self.M, self.ksub, self.dsub))
        return self

    def encode(self, x) -> np.ndarray:
        """(n, M) uint8: in each sub-space, the index of the nearest centroid."""
        self._check_trained()
        x = _as_matrix(x, "vectors", self.d)
        codes = np.empty((len(x), self.M), dtype=np.uint8)
        for m, sub in enumerate(self._split(x)):
            codes[:, m] = assign(sub, self.centroids[m])
        return codes

    def decode(self, codes) -> np.ndarray:
        """(n, d) float32: the concatenated centroids, the reconstruction q(y)."""
        self._check_trained()
        codes = self._check_codes(codes)
        parts = [self.centroids[m][codes[:, m]] for m in range(self.M)]
        return np.concatenate(parts, axis=1)

    def _check_codes(self, codes) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.M or codes.dtype != np.uint8:
            raise ValueError(f"codes must be a (n, M = {self.M}) uint8 array, got "
                             f"shape {codes.shape} and dtype {codes.dtype}")
        if self.ksub < 256 and (codes >= self.ksub).any():
            raise ValueError(f"codes must be < ksub = {self.ksub}")
        return codes

    def distance_tables(self, x) -> np.ndarray:
        """(n, M, ksub): ||x_m - c_mj||^2, the ADC look-up tables of each query."""
        self._check_trained()
        x = _as_matrix(x, "queries", self.d)
        return np.stack([squared_distances(sub, c)
                         for sub, c in zip(self._split(x), self.centroids)], axis=1)

    def inner_tables(self, x) -> np.ndarray:
        """(n, M, ksub): <x_m, c_mj>, term 3 of IVFADC's decomposition (times -2)."""
        self._check_trained()
        x = _as_matrix(x, "queries", self.d)
        out = np.empty((len(x), self.M, self.ksub), dtype=np.float32)
        # (M, n, dsub) @ (M, dsub, ksub) -> (M, n, ksub), written in (n, M, ksub) order
        np.matmul(self._split(x), self.centroids.transpose(0, 2, 1),
                  out=out.transpose(1, 0, 2))
        return out

    def adc(self, tables, codes) -> np.ndarray:
        """(nq, n): sum over m of tables[q, m, codes[i, m]], the asymmetric distance."""
        codes = self._check_codes(codes)
        tables = np.asarray(tables, dtype=np.float32)
        if tables.ndim != 3 or tables.shape[1:] != (self.M, self.ksub):
            raise ValueError(f"tables must be (nq, M, ksub) = (nq, {self.M}, "
                             f"{self.ksub}), got {tables.shape}")
        flat = codes + self.ksub * np.arange(self.M)  # (n, M): column in (M * ksub)
        rows = tables.reshape(len(tables), -1)
        return rows[:, flat.ravel()].reshape(len(tables), len(codes), self.M).sum(2)


class IVFPQ:
    """IVFADC: a coarse k-means quantizer q1 with ``nlist`` inverted lists, and a
    product quantizer q2 of the residuals y - q1(y) (Jégou et al. 2011, sec. IV),
    searched with Johnson et al.'s (2017) three-term decomposition. Conventions as
    faiss's ``IndexIVFPQ`` (L2, by_residual, precomputed term-2 tables).

    The lists are stored one after the other: ``codes`` (N, M) uint8 and ``ids`` (N,)
    int64 sorted by list, list l at rows ``offsets[l]:offsets[l + 1]``.
    """

    def __init__(self, d: int, nlist: int, M: int, nbits: int = 8):
        self.d, self.nlist = _positive_int(d, "d"), _positive_int(nlist, "nlist")
        self.pq = ProductQuantizer(d, M, nbits)
        self.M, self.ksub = self.pq.M, self.pq.ksub
        self.columns = self.ksub * np.arange(self.M)[:, None]  # block m of a table row
        self.coarse = None
        self.codes = np.zeros((0, self.M), dtype=np.uint8)
        self.ids = np.zeros(0, dtype=np.int64)
        self.offsets = np.zeros(nlist + 1, dtype=np.int64)

    def train(self, x, niter: int = 20, seed: int = 0) -> IVFPQ:
        """q1: k-means on x; q2: PQ trained on the residuals x - q1(x)."""
        x = _as_matrix(x, "training vectors", self.d)
        coarse = kmeans(x, self.nlist, niter, seed)
        self.pq.train(x - coarse[assign(x, coarse)], seed=seed + 1)
        return self.set_centroids(coarse, self.pq.centroids)

    def set_centroids(self, coarse, pq_centroids) -> IVFPQ:
        """Use trained centroids (e.g. faiss's), and make the term-2 tables."""
        coarse = _as_matrix(coarse, "coarse centroids", self.d)
        if len(coarse) != self.nlist:
            raise ValueError(f"expected nlist = {self.nlist} coarse centroids, "
                             f"got {len(coarse)}")
        self.coarse = coarse
        self.pq.set_centroids(pq_centroids)
        c = self.pq.centroids  # (M, ksub, dsub)
        # term 2 = ||q2||^2 + 2 <q1(y), q2>, per list l, sub-space m, centroid j
        split = coarse.reshape(self.nlist, self.M, self.pq.dsub)
        self.term2 = ((c * c).sum(2)[None]
                      + 2 * np.einsum("lmd,mkd->lmk", split, c)).astype(np.float32)
        return self

    def _check_trained(self):
        if self.coarse is None:
            raise ValueError("the index is not trained: call train() or "
                             "set_centroids() first")

    def encode(self, x, lists=None):
        """(lists (n,) int64, codes (n, M) uint8): q1(y)'s index and q2(y - q1(y)).

        ``lists`` overrides q1's choice (e.g. another library's, to compare codes).
        """
        self._check_trained()
        x = _as_matrix(x, "vectors", self.d)
        if lists is None:
            lists = assign(x, self.coarse)
        lists = np.asarray(lists)
        if lists.shape != (len(x),) or lists.dtype.kind not in "iu" or (
                len(lists) and not 0 <= lists.min() <= lists.max() < self.nlist):
            raise ValueError(f"lists must hold {len(x)} integers in [0, {self.nlist})")
        return lists.astype(np.int64), self.pq.encode(x - self.coarse[lists])

    def add(self, x, ids=None) -> IVFPQ:
        """Encode x and append it to its lists; ids default to 0, 1, 2, ... in order."""
        lists, codes = self.encode(x)
        if ids is None:
            ids = np.arange(len(self.ids), len(self.ids) + len(codes))
        ids = np.asarray(ids)
        if ids.shape != (len(codes),) or ids.dtype.kind not in "iu":
            raise ValueError(f"ids must be {len(codes)} integers, one per vector")
        old = np.repeat(np.arange(self.nlist), np.diff(self.offsets))
        every = np.concatenate([old, lists])
        order = np.argsort(every, kind="stable")  # by list, then in order of addition
        self.codes = np.concatenate([self.codes, codes])[order]
        self.ids = np.concatenate([self.ids, ids.astype(np.int64)])[order]
        self.offsets = np.searchsorted(every[order], np.arange(self.nlist + 1))
        return self

    @property
    def ntotal(self) -> int:
        return len(self.ids)

    def list_sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def scan_list(self, lst: int, term1, term3) -> np.ndarray:
        """(q_l, n_l) ADC distances from q_l queries to every vector of list ``lst``:
        term 1 (q_l,) + term 2 (per vector) + term 3 (from the queries' tables)."""
        a, b = self.offsets[lst], self.offsets[lst + 1]
        cols = self.codes[a:b].T + self.columns  # (M, n_l): table columns
        # term 2 = sum_m (||q2_m||^2 + 2 <q1_m, q2_m>): the same for every query
        term2 = self.term2[lst].ravel()  # (M * ksub,): a table, like term 3
        if len(term3) <= 4:  # few queries: add it to theirs, as faiss does
            return (term3 + term2).take(cols, axis=1).sum(1) + term1[:, None]
        # many queries: look term 2 up once per vector, not once per query
        # term 3: every query's M look-ups for every vector, (q_l, M, n_l), summed
        # over m in one NumPy call
        return term3.take(cols, axis=1).sum(1) + (term1[:, None] + term2[cols].sum(0))

    def search(self, queries, k: int, nprobe: int):
        """(D, I), each (nq, k): the k smallest ADC distances among the vectors of the
        nprobe lists nearest each query, ascending; -1 and +inf where fewer than k."""
        self._check_trained()
        x = _as_matrix(queries, "queries", self.d)
        k, nprobe = _positive_int(k, "k"), _positive_int(nprobe, "nprobe")
        if nprobe > self.nlist:
            raise ValueError(f"nprobe = {nprobe} exceeds nlist = {self.nlist}")
        if len(x) == 0:  # no queries: empty (0, k) results, as faiss returns
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        # term 1: ||x - q1(y)||^2 for the nprobe nearest lists, (nq, nprobe)
        term1, probe = topk_smallest(squared_distances(x, self.coarse), nprobe)
        term3 = self.pq.inner_tables(x).reshape(len(x), -1)  # (nq, M * ksub)
        term3 *= -2  # in place: no second (nq, M * ksub) array
        # row p = q * nprobe + slot: the k best of query q in its slot-th nearest list
        best_d = np.full((len(x) * nprobe, k), np.inf, dtype=np.float32)
        best_i = np.full((len(x) * nprobe, k), -1, dtype=np.int64)
        # visit the lists one by one, each with all the queries that probe it
        pairs = np.argsort(probe.ravel(), kind="stable")  # rows p, grouped by list
        starts = np.searchsorted(probe.ravel()[pairs], np.arange(self.nlist + 1))
        term1, queries_of = term1.ravel()[pairs], pairs // nprobe  # in that order
        for lst in np.flatnonzero(np.diff(starts) * self.list_sizes()).tolist():
            s, e = starts[lst], starts[lst + 1]  # the pairs that probe list lst
            dist = self.scan_list(lst, term1[s:e], term3[queries_of[s:e]])
            kept = min(k, dist.shape[1])
            part = dist.argpartition(kept - 1, axis=1)[:, :kept]  # (q_l, kept)
            best_d[pairs[s:e], :kept] = dist[np.arange(e - s)[:, None], part]
            best_i[pairs[s:e], :kept] = self.ids[self.offsets[lst] + part]
        # k smallest of the nprobe * k kept per query: ties by lower (slot, rank)
        D, pos = topk_smallest(best_d.reshape(len(x), -1), k)
        I = np.take_along_axis(best_i.reshape(len(x), -1), pos, axis=1)
        I[~np.isfinite(D)] = -1
        return D, I


def recall_at(found, truth, r: int) -> float:
    """The paper's R@r: the share of queries whose true nearest neighbour truth[:, 0] is
    among the first r results."""
    found, truth = np.asarray(found), np.asarray(truth)
    if found.ndim != 2 or truth.ndim != 2 or len(found) != len(truth):
        raise ValueError(f"found and truth must be (nq, .) arrays with the same nq, "
                         f"got {found.shape} and {truth.shape}")
    r = _positive_int(r, "r")
    if r > found.shape[1]:
        raise ValueError(f"r = {r} exceeds the {found.shape[1]} results per query")
    return float((found[:, :r] == truth[:, :1]).any(1).mean())


def exact_search(queries, base, k: int, chunk: int = 256):
    """(D, I): the k exact nearest neighbours by L2 (brute force), ties by lower id."""
    x, y = _as_matrix(queries, "queries"), _as_matrix(base, "base")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"queries have d = {x.shape[1]} but base has d = {y.shape[1]}")
    out = [topk_smallest(squared_distances(x[s:s + chunk], y), k)
           for s in range(0, len(x), chunk)]
    return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])


def clustered_vectors(n: int, d: int, n_clusters: int = 1000, seed: int = 0):
    """(n, d) float32 synthetic vectors that cluster, and overlap, as embeddings do.

    Each of ``n_clusters`` clusters has a centre drawn from N(0, 0.25 I) and its own
    low-rank shape: a point is centre + A_c z + 0.1 noise, z ~ N(0, I) of dimension
    d/4. Draw the database and the queries in one call and split them, so that both
    come from the same clusters.
    """
    n, d = _positive_int(n, "n"), _positive_int(d, "d")
    n_clusters = _positive_int(n_clusters, "n_clusters")
    rng = np.random.default_rng(seed)
    rank = max(1, d // 4)
    centres = rng.standard_normal((n_clusters, d)) * 0.5
    shapes = rng.standard_normal((n_clusters, d, rank)) / np.sqrt(rank)
    label = rng.integers(0, n_clusters, n)
    z = rng.standard_normal((n, rank))
    x = centres[label] + 0.1 * rng.standard_normal((n, d))
    for c in range(n_clusters):  # each cluster's own shape A_c
        x[label == c] += z[label == c] @ shapes[c].T
    return x.astype(np.float32)


def load_minilm(path: Path | None = None) -> dict:
    """The stored MiniLM vectors of Shakespeare lines (``scripts/faiss_embed.py``).

    Returns base (20000, 64) and queries (1000, 64) as float32, their lines of text
    (``base_text``, ``query_text``) and the script's record (PCA, seeds, plays).
    """
    from mlf.corpora import shakespeare_lines

    path = Path(path) if path is not None else DATA / "minilm_pca64.npz"
    if not path.exists():
        raise ValueError(f"{path} is missing: run scripts/faiss_embed.py")
    z = np.load(path)
    plays = [str(p) for p in z["plays"]]
    out = {"record": json.loads(path.with_suffix(".json").read_text())}
    for part in ("base", "query"):
        key = "base" if part == "base" else "queries"
        out[key] = z[key].astype(np.float32)
        where = zip(z[f"{part}_play"].tolist(), z[f"{part}_line"].tolist())
        out[f"{part}_text"] = [shakespeare_lines(plays[p])[i] for p, i in where]
    return out

"""mlf.ann: k-means, PQ, IVFADC and k-selection, against faiss and torch."""
import faiss
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from mlf import ann


@pytest.fixture(scope="module")
def data():
    x = ann.clustered_vectors(6_200, 16, n_clusters=100, seed=3)
    return x[:6_000], x[6_000:]


@pytest.fixture(scope="module")
def pair(data):
    """faiss.IndexIVFPQ and mlf.ann.IVFPQ with faiss's centroids, both filled."""
    base, _ = data
    faiss.omp_set_num_threads(1)
    index = faiss.IndexIVFPQ(faiss.IndexFlatL2(16), 16, 32, 4, 8)
    index.cp.min_points_per_centroid = index.pq.cp.min_points_per_centroid = 1
    index.train(base)
    index.add(base)
    ours = ann.IVFPQ(16, 32, 4).set_centroids(
        index.quantizer.reconstruct_n(0, 32), faiss.vector_to_array(index.pq.centroids))
    ours.add(base)
    return index, ours


def test_codes_identical_to_faiss(data, pair):
    base, queries = data
    index, ours = pair
    lists, codes = ours.encode(base)
    theirs = index.sa_encode(base)
    assert (theirs[:, 0] == lists).all() and (theirs[:, 1:] == codes).all()
    # and on vectors far outside the training data
    far = queries * 100
    lists, codes = ours.encode(far)
    assert (index.sa_encode(far)[:, 1:] == codes).all()


@pytest.mark.parametrize("nprobe", [1, 3, 32])
def test_search_matches_faiss(data, pair, nprobe):
    _, queries = data
    index, ours = pair
    index.nprobe = nprobe
    D_ref, I_ref = index.search(queries, 10)
    D, I = ours.search(queries, 10, nprobe)
    scale = np.abs(D_ref).mean()
    assert np.allclose(D, D_ref, rtol=1e-5, atol=1e-5 * scale)
    assert (I == I_ref).mean() > 0.99


def test_search_pads_when_lists_are_short(pair, data):
    _, queries = data
    _, ours = pair
    D, I = ours.search(queries[:3], ours.list_sizes().max() + 5, 1)
    assert (I[:, -1] == -1).all() and np.isinf(D[:, -1]).all()
    for row in D:
        assert (np.diff(row[np.isfinite(row)]) >= 0).all()  # ascending


def test_no_queries_gives_empty_results(pair, data):
    index, ours = pair
    none = np.zeros((0, 16), dtype=np.float32)
    D, I = ours.search(none, 5, 2)
    D_ref, I_ref = index.search(none, 5)
    assert D.shape == I.shape == D_ref.shape == I_ref.shape == (0, 5)


def test_adding_in_batches_equals_adding_at_once(pair, data):
    base, _ = data
    _, ours = pair

    def empty():
        return ann.IVFPQ(16, 32, 4).set_centroids(ours.coarse, ours.pq.centroids)

    twice = empty().add(base[:2_500]).add(base[2_500:])
    assert (twice.ids == ours.ids).all() and (twice.codes == ours.codes).all()
    assert (twice.offsets == ours.offsets).all()


def test_empty_index_returns_nothing(pair, data):
    _, queries = data
    index, _ = pair
    empty = ann.IVFPQ(16, 32, 4).set_centroids(
        index.quantizer.reconstruct_n(0, 32), faiss.vector_to_array(index.pq.centroids))
    D, I = empty.search(queries[:2], 5, 4)
    assert (I == -1).all() and np.isinf(D).all()


def test_adc_equals_distance_to_decoded(data):
    base, queries = data
    pq = ann.ProductQuantizer(16, 4, nbits=6).train(base, niter=5)
    codes = pq.encode(base[:500])
    assert codes.max() < 64
    direct = ((queries[:4, None] - pq.decode(codes)[None]) ** 2).sum(-1)
    assert np.allclose(pq.adc(pq.distance_tables(queries[:4]), codes), direct,
                       rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("nq", [1, 3, 4, 5, 12])  # term 2 in the tables up to 4
def test_three_terms_equal_the_distance(pair, data, nq):
    _, queries = data
    _, ours = pair
    lst = 5
    a, b = ours.offsets[lst], ours.offsets[lst + 1]
    x = queries[:nq]
    q_y = ours.coarse[lst] + ours.pq.decode(ours.codes[a:b])
    term1 = ((x - ours.coarse[lst]) ** 2).sum(1)
    term3 = -2 * ours.pq.inner_tables(x).reshape(nq, -1)
    direct = ((x[:, None] - q_y[None]) ** 2).sum(-1)
    assert np.allclose(ours.scan_list(lst, term1, term3), direct, rtol=1e-4, atol=1e-3)


def test_memory_is_m_bytes_per_vector(pair):
    _, ours = pair
    assert ours.codes.dtype == np.uint8 and ours.codes.nbytes == ours.ntotal * ours.M


def test_kmeans_objective_close_to_faiss(data):
    base, _ = data
    ours = ann.kmeans(base, 32, niter=20, seed=0)
    km = faiss.Kmeans(16, 32, niter=20, seed=0)
    km.train(base)

    def objective(c):
        return ann.squared_distances(base, c).min(1).mean()

    assert objective(ours) < 1.05 * objective(km.centroids)


def test_kmeans_revives_empty_clusters():
    x = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)  # 3 distinct points
    y = np.vstack([x, x + 1e-3])  # 6 distinct points, each repeated: dead starts
    c = ann.kmeans(y, 6, niter=5)
    assert np.isfinite(c).all() and len(np.unique(c, axis=0)) == 6
    assert (np.bincount(ann.assign(y, c), minlength=6) > 0).all()  # none left empty


@given(hnp.arrays(np.int8, st.tuples(st.integers(1, 6), st.integers(1, 60)),
                  elements=st.integers(-3, 3)), st.data())
@settings(max_examples=60, deadline=None)
def test_topk_smallest_is_a_stable_sort_cut_at_k(values, draw):
    k = draw.draw(st.integers(0, values.shape[1]))
    v, i = ann.topk_smallest(values, k)
    stable = torch.sort(torch.from_numpy(values.astype(np.float32)), dim=1, stable=True)
    assert (i == stable.indices[:, :k].numpy()).all()
    top = torch.topk(torch.from_numpy(values.astype(np.float32)), k, dim=1,
                     largest=False)
    assert (v.astype(np.float32) == top.values.numpy()).all()


@given(hnp.arrays(np.float32, st.integers(1, 300),
                  elements=st.sampled_from([0.0, 1.0, 2.5, -1.0, 7.0])),
       st.integers(1, 40), st.integers(1, 8), st.integers(1, 4))
@settings(max_examples=60, deadline=None)
def test_warp_select_equals_topk(values, k, lanes, queue):
    k = min(k, len(values))
    v, i, stats = ann.warp_select(values, k, lanes=lanes, queue=queue)
    ref_v, ref_i = ann.topk_smallest(values[None], k)
    assert (v == ref_v[0]).all() and (i == ref_i[0]).all()
    assert stats["inserted"] <= len(values)


def test_recall_at():
    found = np.array([[3, 1, 2], [5, 6, 7]])
    truth = np.array([[1, 9], [4, 0]])
    assert ann.recall_at(found, truth, 2) == 0.5
    assert ann.recall_at(found, truth, 1) == 0.0


def test_exact_search_matches_faiss_flat(data):
    base, queries = data
    flat = faiss.IndexFlatL2(16)
    flat.add(base)
    D_ref, I_ref = flat.search(queries, 5)
    D, I = ann.exact_search(queries, base, 5)
    assert np.allclose(D, D_ref, rtol=1e-4, atol=1e-3)
    assert (I == I_ref).mean() > 0.99


@pytest.mark.parametrize("call, message", [
    (lambda: ann.ProductQuantizer(10, 3), "must divide"),
    (lambda: ann.ProductQuantizer(8, 2, nbits=9), "nbits"),
    (lambda: ann.ProductQuantizer(8, 2).encode(np.zeros((2, 8))), "not trained"),
    (lambda: ann.IVFPQ(8, 4, 2).search(np.zeros((1, 8)), 1, 1), "not trained"),
    (lambda: ann.kmeans(np.zeros((3, 2)), 5), "at least k"),
    (lambda: ann.kmeans(np.zeros((3, 2)), 0), "positive integer"),
    (lambda: ann.topk_smallest(np.zeros(5), 1), "2-d"),
    (lambda: ann.topk_smallest(np.zeros((2, 5)), 6), r"\[0, 5\]"),
    (lambda: ann.topk_smallest(np.array([[np.nan, 1.0]]), 1), "NaN"),
    (lambda: ann.warp_select(np.zeros((2, 2)), 1), "1-d"),
    (lambda: ann.squared_distances(np.zeros((2, 3)), np.zeros((2, 4))), "d = 3"),
    (lambda: ann.assign(np.full((2, 3), np.inf), np.zeros((2, 3))), "NaN or inf"),
    (lambda: ann.recall_at(np.zeros((2, 3)), np.zeros((2, 1)), 4), "exceeds"),
    (lambda: ann.clustered_vectors(0, 4), "positive integer"),
])
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_wrong_types_are_rejected():
    with pytest.raises(TypeError):
        ann.squared_distances("abc", np.zeros((1, 3)))
    with pytest.raises(ValueError, match="codes must be"):
        ann.ProductQuantizer(4, 2, nbits=2).set_centroids(np.zeros(16)).decode(
            np.zeros((2, 2), dtype=np.int64))


def test_search_rejects_too_many_probes(pair, data):
    _, ours = pair
    with pytest.raises(ValueError, match="exceeds nlist"):
        ours.search(data[1][:1], 1, 33)

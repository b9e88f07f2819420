"""mlf.vector_index: code sizes, SQ8, Pareto fronts and truth against faiss; errors."""
import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import vector_index as vi

faiss.omp_set_num_threads(1)

KEYS = ["Flat", "SQ8", "SQ4", "SQ6", "SQfp16", "PQ16", "PQ8x4", "PQ8x10", "PQ4x12",
        "IVF1,Flat", "IVF256,SQ8", "IVF257,PQ8", "IVF65536,PQ16", "IVF65537,PQ16",
        "OPQ16,IVF128,PQ16", "OPQ16_32,IVF128,PQ16", "PCA16,SQ8", "PCAR16,IVF100,SQ4",
        "IVF4096,SQfp16"]


@pytest.mark.parametrize("d", [32, 64, 96])
@pytest.mark.parametrize("key", KEYS)
def test_code_bytes_equals_faiss_sa_code_size(key, d):
    assert vi.code_bytes(key, d) == faiss.index_factory(d, key).sa_code_size()


def test_coarse_code_bytes_edges():
    assert [vi.coarse_code_bytes(n) for n in (1, 2, 256, 257, 65536, 65537)] == \
        [0, 1, 1, 2, 2, 3]


@pytest.mark.parametrize("key, d, match", [
    ("HNSW32", 64, "unknown encoding"), ("LSH", 64, "unknown encoding"),
    ("PQ7", 64, "divide"), ("IMI2x8,PQ8", 64, "unknown prefix")])
def test_code_bytes_rejects_what_it_cannot_size(key, d, match):
    with pytest.raises(ValueError, match=match):
        vi.code_bytes(key, d)


def test_code_bytes_bad_arguments():
    with pytest.raises(TypeError):
        vi.code_bytes(None, 64)
    with pytest.raises(ValueError, match="positive integer"):
        vi.code_bytes("Flat", 0)


def faiss_sq8(train):
    index = faiss.IndexScalarQuantizer(train.shape[1], faiss.ScalarQuantizer.QT_8bit)
    index.train(train)
    return index


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sq8_codes_identical_to_faiss(seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.01, 100, 24)
    train = (rng.standard_normal((3000, 24)) * scale).astype(np.float32)
    index = faiss_sq8(train)
    vmin, vdiff = vi.sq8_train(train)
    trained = faiss.vector_to_array(index.sq.trained)
    assert np.array_equal(trained, np.concatenate([vmin, vdiff]))
    # the training set, vectors outside its range (clipped) and its corners
    probe = np.concatenate([train, 3 * train[:500], vmin[None], (vmin + vdiff)[None]])
    codes = vi.sq8_encode(probe, vmin, vdiff)
    assert np.array_equal(codes, index.sa_encode(probe))
    assert np.allclose(vi.sq8_decode(codes, vmin, vdiff), index.sa_decode(codes),
                       rtol=1e-6, atol=1e-6 * scale.max())


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_sq8_round_trip_error_is_half_a_cell(seed, d):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((50, d)).astype(np.float32)
    vmin, vdiff = vi.sq8_train(x)
    back = vi.sq8_decode(vi.sq8_encode(x, vmin, vdiff), vmin, vdiff)
    # a value lies in its cell of width vdiff / 255; the middle is at most half away
    assert (np.abs(back - x) <= vdiff / 255 * 0.5 + 1e-5 * (1 + np.abs(x))).all()


def test_sq8_constant_column_and_errors():
    x = np.ones((10, 3), np.float32)
    vmin, vdiff = vi.sq8_train(x)
    assert (vi.sq8_encode(x, vmin, vdiff) == 0).all()
    outside = np.array([[2.0, 0.0, 1.0]], np.float32)  # above, below, on the value
    assert vi.sq8_encode(outside, vmin, vdiff).tolist() == [[255, 0, 0]]
    with pytest.raises(ValueError, match="empty"):
        vi.sq8_train(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="d = 2"):
        vi.sq8_encode(np.ones((4, 2)), vmin, vdiff)
    with pytest.raises(ValueError, match="uint8"):
        vi.sq8_decode(np.ones((4, 3), np.int32), vmin, vdiff)
    with pytest.raises(ValueError, match="NaN"):
        vi.sq8_encode(np.full((1, 3), np.nan), vmin, vdiff)


def faiss_front(speed, recall):
    points = faiss.OperatingPoints()
    for i, (s, r) in enumerate(zip(speed, recall)):
        points.add(float(r), float(1 / s), str(i))  # faiss: perf up, time down
    opt = points.optimal_pts
    return [int(opt.at(j).key) for j in range(1, opt.size())]  # 0: "do nothing"


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60))
def test_pareto_front_equals_faiss_operating_points(seed, n):
    rng = np.random.default_rng(seed)
    speed, recall = rng.uniform(1, 1000, n), rng.uniform(0.01, 1, n)  # no ties
    front = vi.pareto_front(speed, recall)
    assert front.tolist() == faiss_front(speed, recall)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1,
                max_size=30))
def test_pareto_front_laws_with_ties(points):
    speed, recall = (np.array(v, dtype=float) for v in zip(*points))
    front = set(vi.pareto_front(speed, recall).tolist())

    def beats(j, i):
        return (speed[j] >= speed[i] and recall[j] >= recall[i]
                and (speed[j] > speed[i] or recall[j] > recall[i]))

    for i in range(len(speed)):
        dominated = any(beats(j, i) for j in range(len(speed)))
        duplicate_before = any(speed[j] == speed[i] and recall[j] == recall[i]
                               for j in range(i))
        assert (i in front) == (not dominated and not duplicate_before)


def test_pareto_front_order_and_errors():
    assert vi.pareto_front([3.0, 1.0, 2.0], [0.1, 0.9, 0.5]).tolist() == [0, 2, 1]
    assert vi.pareto_front([], []).tolist() == []
    with pytest.raises(ValueError, match="one length"):
        vi.pareto_front([1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match="finite"):
        vi.pareto_front([np.inf], [0.5])


@pytest.fixture(scope="module")
def flat():
    x = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    index = faiss.IndexFlatL2(8)
    index.add(x)
    return index, x


def test_checked_search_equals_faiss(flat):
    index, x = flat
    D, I = vi.checked_search(index, x[:3], 20)  # k = ntotal is allowed
    D_ref, I_ref = index.search(x[:3], 20)
    assert np.array_equal(I, I_ref) and np.array_equal(D, D_ref)
    assert I[:, 0].tolist() == [0, 1, 2]


def test_checked_search_errors(flat):
    index, x = flat
    with pytest.raises(ValueError, match="d = 4 but the index has d = 8"):
        vi.checked_search(index, x[:, :4], 1)
    with pytest.raises(ValueError, match="k = 21 exceeds the 20 vectors"):
        vi.checked_search(index, x, 21)
    with pytest.raises(ValueError, match="empty"):
        vi.checked_search(faiss.IndexFlatL2(8), x, 1)
    with pytest.raises(ValueError, match="not trained"):
        vi.checked_search(faiss.index_factory(8, "IVF4,Flat"), x, 1)
    with pytest.raises(ValueError, match="positive integer"):
        vi.checked_search(index, x, 0)
    with pytest.raises(TypeError, match="faiss index"):
        vi.checked_search(x, x, 1)
    with pytest.raises(TypeError):
        vi.checked_search(index, "queries", 1)
    with pytest.raises(ValueError, match="2-d"):
        vi.checked_search(index, x[0], 1)


def test_recall_at_k():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    assert vi.recall_at_k(truth, truth, 3) == 1.0
    found = np.array([[3, 9, 1], [-1, -1, 6]])
    assert vi.recall_at_k(found, truth, 3) == 3 / 6
    assert vi.recall_at_k(found, truth, 1) == 0.0
    with pytest.raises(ValueError, match="exceeds"):
        vi.recall_at_k(found, truth, 4)
    with pytest.raises(ValueError, match="same nq"):
        vi.recall_at_k(found[:1], truth, 1)


def test_exact_knn_equals_faiss_flat_and_errors():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 6)).astype(np.float32)
    queries = rng.standard_normal((40, 6)).astype(np.float32)
    index = faiss.IndexFlatL2(6)
    index.add(base)
    assert np.array_equal(vi.exact_knn(queries, base, 5), index.search(queries, 5)[1])
    dup = np.concatenate([base[:1], base[:1]])  # a tie: the lower id first
    assert vi.exact_knn(base[:1], dup, 2).tolist() == [[0, 1]]
    with pytest.raises(ValueError, match="exceeds"):
        vi.exact_knn(queries, base[:3], 4)
    with pytest.raises(ValueError, match="d = 6 but base has d = 5"):
        vi.exact_knn(queries, base[:, :5], 1)
    with pytest.raises(ValueError, match="chunk"):
        vi.exact_knn(queries, base, 1, chunk=0)
    # chunks that do not divide the number of queries change nothing
    assert np.array_equal(vi.exact_knn(queries, base, 5, chunk=7),
                          vi.exact_knn(queries, base, 5))



@pytest.mark.parametrize("key", ["PQ4", "IVF8,PQ4"])
def test_polysemous_training_changes_no_result(key):
    # the chapter turns off the factory's polysemous training to save time: it only
    # permutes each sub-quantizer's centroids, so distances and ids stay the same
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3000, 16)).astype(np.float32)
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    results, centroids = [], []
    for polysemous in (True, False):
        index = faiss.index_factory(16, key)
        assert index.do_polysemous_training  # the factory's default
        index.do_polysemous_training = polysemous
        annealing = faiss.PolysemousTraining()
        annealing.n_iter, annealing.n_redo = 2000, 1  # faiss: 500,000 and 2; slow
        index.polysemous_training = annealing  # IndexIVFPQ holds only a pointer
        index.train(base)
        index.add(base)
        if "IVF" in key:
            index.nprobe = 8
        results.append(index.search(queries, 5))
        centroids.append(faiss.vector_to_array(index.pq.centroids))
    (D1, I1), (D2, I2) = results
    assert not np.array_equal(*centroids)  # the annealing did permute centroids
    assert np.array_equal(I1, I2) and np.array_equal(D1, D2)

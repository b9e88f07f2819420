"""Speech features, edit distance, the spoken-digits file, and location-aware attention."""
import editdistance
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mlf.seq2seq import AdditiveAttention, Vocab, greedy_decode, train
from mlf.speech import (DATA, Utterance, concatenate, dequantize, edit_distance, error_rate,
                        feature_stats, hz_to_mel, load_digits, log_mel, mel_filterbank,
                        pad_features, quantize)
from mlf.speech_attention import (LocationAwareAttention, SpeechRecognizer, max_phonemes,
                                  median_frame, recognize, speech_batch, to_espnet)


def test_mel_filters_are_triangles_on_the_mel_scale():
    bank = mel_filterbank(16000, 512, 20, f_max=8000)  # (M, K)
    assert bank.shape == (20, 257) and bank.min() >= 0 and bank.max() <= 1
    peaks = bank.argmax(axis=1) * 16000 / 512  # Hz of each filter's largest bin
    assert np.all(np.diff(peaks) > 0)
    # centres are evenly spaced in mels, so their mel gaps are about equal (within a bin's width)
    gaps = np.diff(hz_to_mel(peaks))
    assert gaps.max() - gaps.min() < hz_to_mel(2 * 16000 / 512)
    assert np.all(bank.sum(axis=1) > 0)


def test_log_mel_puts_a_tone_in_the_right_band():
    rate, f = 16000, 1000.0
    wave = np.sin(2 * np.pi * f * np.arange(rate) / rate)
    feats = log_mel(wave, rate, n_mels=24, n_fft=512, hop=160)
    assert feats.shape == (1 + (rate - 512) // 160, 24)
    bank = mel_filterbank(rate, 512, 24, f_max=8000)
    expected = bank[:, round(f * 512 / rate)].argmax()
    assert np.all(feats.argmax(axis=1) == expected)


@pytest.mark.parametrize("call, message", [
    (lambda: mel_filterbank(16000, 512, 10, f_min=5000, f_max=4000), "f_min < f_max"),
    (lambda: mel_filterbank(16000, 512, 0), "n_mels >= 1"),
    (lambda: log_mel(np.zeros(100), 16000), "at least n_fft"),
    (lambda: error_rate([["a"]], []), "one each"),
    (lambda: error_rate([[]], [["a"]]), "non-empty reference"),
    (lambda: pad_features([]), "empty batch"),
    (lambda: pad_features([np.zeros((0, 3))]), "no frames"),
    (lambda: concatenate([]), "at least one"),
    (lambda: load_digits("dev"), "'train' or 'test'"),
])
def test_bad_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_missing_data_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make speech-data"):
        load_digits("train", tmp_path / "none.npz")


def test_edit_distance_known_cases():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a", "b"]) == 2 and edit_distance(["a"], []) == 1
    assert error_rate([["a", "b"], ["c"]], [["a"], ["c", "d"]]) == 2 / 3


@given(st.lists(st.sampled_from("abcd"), max_size=12), st.lists(st.sampled_from("abcd"), max_size=12))
def test_edit_distance_equals_the_editdistance_package(a, b):
    assert edit_distance(a, b) == editdistance.eval(a, b) == edit_distance(b, a)


def test_quantization_error_is_at_most_half_a_step():
    x = np.random.default_rng(0).uniform(-70, 50, size=(100, 24))
    step = 120 / 255
    assert np.abs(dequantize(quantize(x, -70, 50), -70, 50) - x).max() <= step / 2 + 1e-4


def test_the_committed_data_set():
    train_set, test_set = load_digits("train"), load_digits("test")
    assert len(train_set) == 2400 and len(test_set) == 600
    assert all(u.features.shape[1] == 24 and u.features.dtype == np.float32 for u in train_set[:50])
    assert all(len(u.phonemes) >= 4 and 2 <= len(u.digits) <= 5 for u in train_set)
    # test speakers say five utterances each, with one voice
    by_speaker = {}
    for u in test_set:
        by_speaker.setdefault(u.speaker, set()).add(u.voice)
    assert len(by_speaker) == 120 and all(len(v) == 1 for v in by_speaker.values())
    with np.load(DATA) as z:
        assert str(z["espeak_version"]).startswith("eSpeak NG")


def test_concatenate_and_stats():
    a = Utterance(np.zeros((3, 2), np.float32), ["x"], "1", "v", 0)
    b = Utterance(np.ones((5, 2), np.float32), ["y", "z"], "2", "v", 0)
    long = concatenate([a, b])
    assert long.features.shape == (8, 2) and long.phonemes == ["x", "y", "z"] and long.digits == "12"
    mean, std = feature_stats([a, b])
    torch.testing.assert_close(mean, torch.full((2,), 5 / 8))


def explicit_location_features(weight: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """f_{i,j,k} = Σ_l F_{k,l} α_{i-1, j+l-r/2}, frames outside the utterance counting as 0."""
    k_filters, _, width = weight.shape
    B, L = alpha.shape
    out = torch.zeros(B, L, k_filters, dtype=alpha.dtype)
    for b in range(B):
        for j in range(L):
            for k in range(k_filters):
                for offset in range(width):
                    src = j + offset - width // 2
                    if 0 <= src < L:
                        out[b, j, k] += weight[k, 0, offset] * alpha[b, src]
    return out


def test_location_features_equal_an_explicit_loop():
    torch.manual_seed(0)
    attn = LocationAwareAttention(6, 8, 5, n_filters=3, width=7)
    alpha = torch.softmax(torch.randn(2, 11), dim=-1)
    torch.testing.assert_close(attn.location_features(alpha),
                               explicit_location_features(attn.F.weight.detach(), alpha))


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_equals_espnet_attloc(beta):
    torch.manual_seed(0)
    attn = LocationAwareAttention(6, 8, 5, n_filters=3, width=7, beta=beta)
    ref = to_espnet(attn)
    s, h = torch.randn(3, 6), torch.randn(3, 11, 8)
    lengths = [11, 6, 9]
    mask = torch.arange(11) < torch.tensor(lengths).unsqueeze(1)
    alpha_prev = torch.softmax(torch.randn(3, 11).masked_fill(~mask, -1e9), dim=-1)
    with torch.no_grad():
        g, alpha = attn(s, h, mask, alpha_prev=alpha_prev)
        ref.reset()
        g_ref, alpha_ref = ref(h, torch.tensor(lengths), s, alpha_prev, scaling=beta)
    torch.testing.assert_close(alpha, alpha_ref)
    torch.testing.assert_close(g, g_ref)


def test_without_filters_it_is_bahdanaus_attention():
    torch.manual_seed(0)
    ours, theirs = LocationAwareAttention(6, 8, 5, n_filters=0), AdditiveAttention(6, 8, 5)
    theirs.load_state_dict(ours.state_dict())
    s, h = torch.randn(3, 6), torch.randn(3, 9, 8)
    mask = torch.arange(9) < torch.tensor([9, 4, 7]).unsqueeze(1)
    for a, b in zip(ours(s, h, mask), theirs(s, h, mask)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("options", [{}, {"smooth": True}, {"beta": 2.0}, {"window": 2}])
def test_weights_sum_to_one_on_real_frames_only(options):
    torch.manual_seed(0)
    attn = LocationAwareAttention(6, 8, 5, n_filters=2, width=5, **options)
    s, h = torch.randn(3, 6), torch.randn(3, 9, 8)
    mask = torch.arange(9) < torch.tensor([9, 4, 7]).unsqueeze(1)
    alpha_prev = torch.softmax(torch.randn(3, 9).masked_fill(~mask, -1e9), dim=-1)
    with torch.no_grad():
        g, alpha = attn(s, h, mask, alpha_prev=alpha_prev)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3))
    assert float(alpha[~mask].abs().sum()) == 0 and g.shape == (3, 8)
    if "window" in options:
        frames = torch.arange(9)
        outside = (frames - median_frame(alpha_prev).unsqueeze(1)).abs() > 2
        assert float(alpha[outside].sum()) == 0


def test_median_frame():
    alpha = torch.tensor([[0.1, 0.3, 0.2, 0.4], [1.0, 0, 0, 0], [0, 0, 0, 1.0]])
    assert median_frame(alpha).tolist() == [2, 0, 3]


def test_location_attention_gradients():
    torch.manual_seed(0)
    attn = LocationAwareAttention(4, 6, 3, n_filters=2, width=3).double()
    s, h = torch.randn(2, 4, dtype=torch.double, requires_grad=True), torch.randn(2, 5, 6, dtype=torch.double)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    alpha_prev = torch.softmax(torch.randn(2, 5, dtype=torch.double), -1).requires_grad_()
    assert torch.autograd.gradcheck(lambda s, a: attn(s, h, mask, alpha_prev=a)[0], (s, alpha_prev))


@pytest.mark.parametrize("make, message", [
    (lambda: LocationAwareAttention(4, 6, 3, width=4), "odd filter width"),
    (lambda: LocationAwareAttention(4, 6, 3, beta=0), "beta > 0"),
    (lambda: LocationAwareAttention(4, 6, 3)(torch.zeros(1, 4), torch.zeros(1, 5, 6),
                                              torch.ones(1, 5, dtype=torch.bool)), "need alpha_prev"),
    (lambda: LocationAwareAttention(4, 6, 3, n_filters=0)(
        torch.zeros(2, 4), torch.zeros(2, 5, 6), torch.tensor([[True] * 5, [False] * 5])), "at least one True"),
    (lambda: to_espnet(LocationAwareAttention(4, 6, 3, n_filters=0)), "n_filters > 0"),
])
def test_bad_attention_input(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def toy_utterances(n=16, seed=0):
    """Frames whose band k lights up while phoneme k is spoken: a task a tiny model learns fast."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        phonemes = [str(x) for x in rng.integers(0, 4, size=rng.integers(2, 5))]
        frames = np.concatenate([np.eye(4, dtype=np.float32)[[int(p)] * 3] for p in phonemes])
        out.append(Utterance(frames + 0.1 * rng.standard_normal(frames.shape).astype(np.float32),
                             phonemes, "".join(phonemes), "toy", 0))
    return out


@pytest.mark.parametrize("n_filters", [0, 3])
def test_recognizer_trains_and_decodes(n_filters):
    torch.manual_seed(0)
    data = toy_utterances()
    vocab = Vocab({p for u in data for p in u.phonemes})
    model = SpeechRecognizer(4, len(vocab), hidden_size=16, attn_size=16, emb_size=8,
                             maxout_size=8, layers=1, n_filters=n_filters, width=5)
    batch = speech_batch(data, vocab)
    logits, alphas = model(batch.src, batch.src_len, batch.tgt_in)
    assert logits.shape == (16, batch.tgt_in.shape[1], len(vocab))
    assert alphas.shape == (16, batch.tgt_in.shape[1], batch.src.shape[1])
    losses = train(model, lambda step: batch, 60, lr=1e-2, desc="toy")
    assert losses[-1] < 0.5 * losses[0]
    hyps, alignments = recognize(model, data, vocab, batch_size=5)
    assert len(hyps) == 16 and alignments[0].shape[1] == len(data[0].features)
    ids, _ = greedy_decode(model, batch.src, batch.src_len, vocab.bos, vocab.eos, max_len=3)
    assert all(len(i) <= 3 for i in ids)


def test_options_reach_the_attention_and_each_output_keeps_its_own_cap():
    model = SpeechRecognizer(4, 7, hidden_size=8, attn_size=8, emb_size=4, maxout_size=4, layers=1,
                             n_filters=2, width=5, smooth=True, beta=2.0)
    assert model.attn.smooth and model.attn.beta == 2.0 and model.attn.n_filters == 2
    vocab = Vocab(list("abcd"))
    short = Utterance(np.zeros((6, 4), np.float32), ["a"], "1", "v", 0)
    long = Utterance(np.zeros((60, 4), np.float32), ["a"], "1", "v", 0)
    with torch.no_grad():
        model.W_o.bias[vocab.stoi["a"]] = 1e4  # it says "a" forever and never </s>
    hyps, alignments = recognize(model, [short, long], vocab)
    assert hyps == [["a"] * max_phonemes(6), ["a"] * max_phonemes(60)]
    assert alignments[0].shape == (7, 6) and alignments[1].shape == (25, 60)

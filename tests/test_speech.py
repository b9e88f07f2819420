"""Speech features, edit distance, the spoken-digits file, location-aware attention."""
import editdistance
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mlf.seq2seq import AdditiveAttention, Vocab, greedy_decode, train
from mlf.speech import (DATA, Utterance, concatenate, dequantize, edit_distance,
                        error_rate, feature_stats, hz_to_mel, load_digits, log_mel,
                        mel_filterbank, mel_to_hz, pad_features, quantize)
from mlf.speech_attention import (FeatureEncoder, LocationAwareAttention,
                                  SpeechRecognizer, max_phonemes, median_frame,
                                  recognize, speech_batch, to_espnet, train_recognizer)


def test_mel_filters_are_triangles_on_the_mel_scale():
    bank = mel_filterbank(16000, 512, 20, f_max=8000)  # (M, K)
    assert bank.shape == (20, 257) and bank.min() >= 0 and bank.max() <= 1
    peaks = bank.argmax(axis=1) * 16000 / 512  # Hz of each filter's largest bin
    assert np.all(np.diff(peaks) > 0)
    # centres are evenly spaced in mels: their mel gaps are equal within a bin's width
    gaps = np.diff(hz_to_mel(peaks))
    assert gaps.max() - gaps.min() < hz_to_mel(2 * 16000 / 512)
    assert np.all(bank.sum(axis=1) > 0)


def test_mel_scale_round_trip():
    f = np.array([0.0, 100.0, 1000.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, atol=1e-9)
    assert abs(float(hz_to_mel(1000.0)) - 1000) < 0.1  # the anchor: 1 kHz ≈ 1000 mel


def test_log_mel_puts_a_tone_in_the_right_band():
    rate, f = 16000, 1000.0
    wave = np.sin(2 * np.pi * f * np.arange(rate) / rate)
    feats = log_mel(wave, rate, n_mels=24, n_fft=512, hop=160)
    assert feats.shape == (1 + (rate - 512) // 160, 24)
    bank = mel_filterbank(rate, 512, 24, f_max=8000)
    expected = bank[:, round(f * 512 / rate)].argmax()
    assert np.all(feats.argmax(axis=1) == expected)


def test_log_mel_accepts_integer_samples_and_lists():
    wave = (1000 * np.sin(np.arange(2048) / 5)).astype(np.int16)
    as_list = wave.astype(np.float64).tolist()
    np.testing.assert_allclose(log_mel(wave, 16000, n_mels=8),
                               log_mel(as_list, 16000, n_mels=8))


WAVE = np.zeros(2048)


@pytest.mark.parametrize("call, error, message", [
    # mel_filterbank
    (lambda: mel_filterbank(16000, 512, 10, f_min=5000, f_max=4000), ValueError,
     "f_min < f_max"),
    (lambda: mel_filterbank(16000, 512, 10, f_max=9000), ValueError, "sample_rate / 2"),
    (lambda: mel_filterbank(16000, 512, 0), ValueError, "n_mels must be at least 1"),
    (lambda: mel_filterbank(16000, 1, 4), ValueError, "n_fft must be at least 2"),
    (lambda: mel_filterbank(16000, 512.0, 4), TypeError, "n_fft must be an integer"),
    (lambda: mel_filterbank(0, 512, 4), ValueError, "sample_rate must be positive"),
    (lambda: mel_filterbank(16000.5, 512, 4), TypeError,
     "sample_rate must be an integer"),
    (lambda: mel_filterbank(16000, 512, 4, f_max=float("nan")), ValueError,
     "f_max must be finite"),
    (lambda: mel_filterbank(16000, 64, 80), ValueError, "cover no FFT bin"),
    # the mel scale
    (lambda: hz_to_mel(-1.0), ValueError, ">= 0"),
    (lambda: hz_to_mel([100.0, float("nan")]), ValueError, "NaN or infinite"),
    (lambda: mel_to_hz("1000"), TypeError, "real numbers"),
    # log_mel
    (lambda: log_mel(np.full(2048, np.nan), 16000), ValueError, "NaN or infinite"),
    (lambda: log_mel(np.r_[WAVE, np.inf], 16000), ValueError, "index \\(2048,\\)"),
    (lambda: log_mel(np.zeros(0), 16000), ValueError, "wave is empty"),
    (lambda: log_mel(np.zeros(100), 16000), ValueError, "at least n_fft"),
    (lambda: log_mel(np.zeros((2, 2048)), 16000), ValueError, "1-d wave"),
    (lambda: log_mel(WAVE.astype(complex), 16000), TypeError, "real numbers"),
    (lambda: log_mel(["a"] * 600, 16000), TypeError, "real numbers"),
    (lambda: log_mel(WAVE, 0), ValueError, "sample_rate must be positive"),
    (lambda: log_mel(WAVE, 16000.0), TypeError, "sample_rate must be an integer"),
    (lambda: log_mel(WAVE, 20, n_fft=16, f_max=None), ValueError, "20 ms hop"),
    (lambda: log_mel(WAVE, 8000), ValueError, "sample_rate / 2"),
    (lambda: log_mel(WAVE, 16000, n_fft=0), ValueError, "n_fft must be at least 2"),
    (lambda: log_mel(WAVE, 16000, hop=0), ValueError, "hop must be at least 1"),
    (lambda: log_mel(WAVE, 16000, hop=1.5), TypeError, "hop must be an integer"),
    (lambda: log_mel(WAVE, 16000, n_mels=-3), ValueError, "n_mels must be at least 1"),
    # edit distance and error rate
    (lambda: edit_distance(5, ["a"]), TypeError, "ref must be a sequence"),
    (lambda: error_rate([["a"]], []), ValueError, "one each"),
    (lambda: error_rate([[]], [["a"]]), ValueError, "non-empty reference"),
    (lambda: error_rate([["a"]], [3]), TypeError, "each hypothesis"),
    # 8-bit codes
    (lambda: quantize(np.array([0.0, np.nan]), -70, 50), ValueError, "NaN or infinite"),
    (lambda: quantize(np.zeros(3), 50, -70), ValueError, "low < high"),
    (lambda: quantize(np.zeros(3), -70, float("inf")), ValueError,
     "high must be finite"),
    (lambda: dequantize(np.zeros(3), -70, 50), TypeError, "uint8"),
    (lambda: dequantize(np.zeros(3, np.uint8), 0, 0), ValueError, "low < high"),
    # batches of utterances
    (lambda: pad_features([]), ValueError, "empty batch"),
    (lambda: pad_features([np.zeros((0, 3))]), ValueError, "no frames"),
    (lambda: pad_features([np.zeros(5)]), ValueError, "2-d frames"),
    (lambda: pad_features([np.zeros((4, 3)), np.zeros((4, 2))]), ValueError,
     "2 mel bands"),
    (lambda: pad_features([np.full((4, 3), np.nan)]), ValueError, "utterance 0 has 12"),
    (lambda: concatenate([]), ValueError, "at least one"),
    (lambda: concatenate([Utterance(np.zeros((3, 2)), [], "", "v", 0),
                          Utterance(np.zeros((3, 4)), [], "", "v", 0)]), ValueError,
     "same number"),
    (lambda: feature_stats([]), ValueError, "at least one"),
    (lambda: feature_stats([Utterance(np.full((3, 2), np.inf), [], "", "v", 0)]),
     ValueError, "NaN or infinite"),
    (lambda: load_digits("dev"), ValueError, "'train' or 'test'"),
])
def test_bad_input_is_rejected(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_missing_data_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make speech-data"):
        load_digits("train", tmp_path / "none.npz")


def test_edit_distance_known_cases():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a", "b"]) == 2 and edit_distance(["a"], []) == 1
    assert error_rate([["a", "b"], ["c"]], [["a"], ["c", "d"]]) == 2 / 3


@given(st.lists(st.sampled_from("abcd"), max_size=12),
       st.lists(st.sampled_from("abcd"), max_size=12))
def test_edit_distance_equals_the_editdistance_package(a, b):
    assert edit_distance(a, b) == editdistance.eval(a, b) == edit_distance(b, a)


def test_quantization_error_is_at_most_half_a_step():
    x = np.random.default_rng(0).uniform(-70, 50, size=(100, 24))
    step = 120 / 255
    back = dequantize(quantize(x, -70, 50), -70, 50)
    assert np.abs(back - x).max() <= step / 2 + 1e-4


def test_the_committed_data_set():
    train_set, test_set = load_digits("train"), load_digits("test")
    assert len(train_set) == 2400 and len(test_set) == 600
    assert all(u.features.shape[1] == 24 and u.features.dtype == np.float32
               for u in train_set[:50])
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
    assert long.features.shape == (8, 2) and long.phonemes == ["x", "y", "z"]
    assert long.digits == "12"
    mean, std = feature_stats([a, b])
    torch.testing.assert_close(mean, torch.full((2,), 5 / 8))


def explicit_location_features(weight: torch.Tensor, alpha: torch.Tensor):
    """f_{i,j,k} = Σ_l F_{k,l} α_{i-1, j+l-r/2}, frames outside the utterance counting
    as 0."""
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
    expected = explicit_location_features(attn.F.weight.detach(), alpha)
    torch.testing.assert_close(attn.location_features(alpha), expected)


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
    ours = LocationAwareAttention(6, 8, 5, n_filters=0)
    theirs = AdditiveAttention(6, 8, 5)
    theirs.load_state_dict(ours.state_dict())
    s, h = torch.randn(3, 6), torch.randn(3, 9, 8)
    mask = torch.arange(9) < torch.tensor([9, 4, 7]).unsqueeze(1)
    for a, b in zip(ours(s, h, mask), theirs(s, h, mask)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("options",
                         [{}, {"smooth": True}, {"beta": 2.0}, {"window": 2},
                          {"smooth": True, "window": 1}])
def test_weights_sum_to_one_on_real_frames_only(options):
    torch.manual_seed(0)
    attn = LocationAwareAttention(6, 8, 5, n_filters=2, width=5, **options)
    if options.get("smooth"):
        with torch.no_grad():
            attn.energy_bias.fill_(-200.0)  # σ underflows to 0; α must not be 0 / 0
    s, h = torch.randn(3, 6), torch.randn(3, 9, 8)
    mask = torch.arange(9) < torch.tensor([9, 4, 7]).unsqueeze(1)
    alpha_prev = torch.softmax(torch.randn(3, 9).masked_fill(~mask, -1e9), dim=-1)
    with torch.no_grad():
        g, alpha = attn(s, h, mask, alpha_prev=alpha_prev)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3))
    assert float(alpha[~mask].abs().sum()) == 0 and g.shape == (3, 8)
    if "window" in options:
        frames = torch.arange(9)
        distance = (frames - median_frame(alpha_prev).unsqueeze(1)).abs()
        outside = distance > options["window"]
        assert float(alpha[outside].sum()) == 0


# The logistic ("smooth") normaliser and its energy bias b_e.

def scores_and_mask():
    generator = torch.Generator().manual_seed(0)
    e = torch.randn(4, 12, generator=generator, dtype=torch.double)
    mask = torch.arange(12) < torch.tensor([12, 7, 9, 1]).unsqueeze(1)
    return e, mask


def test_only_the_smooth_normaliser_has_an_energy_bias():
    plain = LocationAwareAttention(6, 8, 5, n_filters=2, width=5)
    smooth = LocationAwareAttention(6, 8, 5, n_filters=2, width=5, smooth=True)
    assert "energy_bias" not in dict(plain.named_parameters())
    assert set(dict(smooth.named_parameters())) - set(dict(plain.named_parameters())) \
        == {"energy_bias"}
    assert float(smooth.energy_bias.detach()) == 0.0  # 0 at first, as the authors'


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_smooth_weights_are_normalised_sigmoids_of_the_biased_scores(beta):
    attn = LocationAwareAttention(6, 8, 5, smooth=True, beta=beta).double()
    e, mask = scores_and_mask()
    with torch.no_grad():
        attn.energy_bias.fill_(-0.7)
        alpha = attn.normalize(e, mask)
    weights = torch.sigmoid(beta * (e - 0.7)) * mask
    torch.testing.assert_close(alpha, weights / weights.sum(-1, keepdim=True))


def test_softmax_ignores_a_shift_of_the_scores_and_sigmoid_does_not():
    e, mask = scores_and_mask()
    sharp = LocationAwareAttention(6, 8, 5, n_filters=0).double()
    smooth = LocationAwareAttention(6, 8, 5, n_filters=0, smooth=True).double()
    torch.testing.assert_close(sharp.normalize(e + 3.0, mask), sharp.normalize(e, mask))
    with torch.no_grad():
        at_zero = smooth.normalize(e, mask)
        smooth.energy_bias.fill_(3.0)
        shifted = smooth.normalize(e, mask)
        # b_e → -∞: σ(x) ≈ exp(x), so the weights become the softmax's
        smooth.energy_bias.fill_(-40.0)
        softmax_like = smooth.normalize(e, mask)
        smooth.energy_bias.fill_(40.0)  # b_e → +∞: every σ saturates at 1
        uniform = smooth.normalize(e, mask)
    assert (shifted - at_zero).abs().max() > 0.01
    torch.testing.assert_close(softmax_like, sharp.normalize(e, mask))
    torch.testing.assert_close(uniform, mask / mask.sum(-1, keepdim=True).double())


def test_the_energy_bias_is_learned():
    torch.manual_seed(0)
    attn = LocationAwareAttention(6, 8, 5, n_filters=2, width=5, smooth=True)
    s, h = torch.randn(2, 6), torch.randn(2, 9, 8)
    mask = torch.ones(2, 9, dtype=torch.bool)
    alpha_prev = torch.softmax(torch.randn(2, 9), dim=-1)
    g, alpha = attn(s, h, mask, alpha_prev=alpha_prev)
    (alpha[:, 0].sum() + g.sum()).backward()
    assert attn.energy_bias.grad is not None and float(attn.energy_bias.grad.abs()) > 0


def test_the_stored_checkpoints_load_strictly():
    """The default (softmax) path keeps its parameters: the stored models still load."""
    stored = torch.load(DATA.parent / "curves.pt", weights_only=True)
    config = stored["config"]
    for kind in ("content", "location"):
        model = SpeechRecognizer(24, len(stored["phonemes"]), **config["model"],
                                 **config[kind])
        state = torch.load(DATA.parent / f"{kind}_0.pt", weights_only=True)
        model.load_state_dict(state, strict=True)
        assert set(state) == set(model.state_dict())


def test_median_frame():
    alpha = torch.tensor([[0.1, 0.3, 0.2, 0.4], [1.0, 0, 0, 0], [0, 0, 0, 1.0]])
    assert median_frame(alpha).tolist() == [2, 0, 3]


@pytest.mark.parametrize("smooth", [False, True])
def test_location_attention_gradients(smooth):
    torch.manual_seed(0)
    attn = LocationAwareAttention(4, 6, 3, n_filters=2, width=3, smooth=smooth).double()
    s = torch.randn(2, 4, dtype=torch.double, requires_grad=True)
    h = torch.randn(2, 5, 6, dtype=torch.double)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    alpha_prev = torch.softmax(torch.randn(2, 5, dtype=torch.double), -1)
    alpha_prev.requires_grad_()
    assert torch.autograd.gradcheck(lambda s, a: attn(s, h, mask, alpha_prev=a)[0],
                                    (s, alpha_prev))


def tiny_attention(**options):
    return LocationAwareAttention(4, 6, 3, **options)


S, H, MASK = torch.zeros(1, 4), torch.zeros(1, 5, 6), torch.ones(1, 5, dtype=torch.bool)


@pytest.mark.parametrize("make, error, message", [
    (lambda: tiny_attention(width=4), ValueError, "odd filter width"),
    (lambda: tiny_attention(width=0), ValueError, "width must be at least 1"),
    (lambda: tiny_attention(n_filters=-1), ValueError, "n_filters must be at least 0"),
    (lambda: tiny_attention(n_filters=2.0), TypeError, "n_filters must be an integer"),
    (lambda: tiny_attention(beta=0), ValueError, "beta > 0"),
    (lambda: tiny_attention(beta=float("inf")), ValueError, "beta > 0"),
    (lambda: tiny_attention(window=-1), ValueError, "window must be at least 0"),
    (lambda: tiny_attention(window=2.5), TypeError, "window must be an integer"),
    (lambda: tiny_attention(smooth="yes"), TypeError, "smooth must be True or False"),
    (lambda: tiny_attention()(S, H, MASK), ValueError, "need alpha_prev"),
    (lambda: tiny_attention()(S, H, MASK, alpha_prev=torch.ones(1, 4)), ValueError,
     "alpha_prev of shape \\(1, 5\\)"),
    (lambda: tiny_attention(n_filters=0)(
        torch.zeros(2, 4), torch.zeros(2, 5, 6),
        torch.tensor([[True] * 5, [False] * 5])), ValueError, "at least one True"),
    (lambda: to_espnet(tiny_attention(n_filters=0)), ValueError, "n_filters > 0"),
    (lambda: to_espnet(tiny_attention(smooth=True)), ValueError, "no smoothing"),
    (lambda: to_espnet(tiny_attention(window=3)), ValueError, "no smoothing"),
    (lambda: to_espnet(AdditiveAttention(4, 6, 3)), TypeError,
     "LocationAwareAttention"),
    (lambda: median_frame(torch.zeros(2, 0)), ValueError, "L >= 1"),
    (lambda: median_frame([0.5, 0.5]), ValueError, "expected alignments"),
    (lambda: max_phonemes(0), ValueError, "n_frames must be at least 1"),
    (lambda: max_phonemes(3.0), TypeError, "n_frames must be an integer"),
    (lambda: FeatureEncoder(0, 4), ValueError, "n_features must be at least 1"),
    (lambda: FeatureEncoder(3, 4, mean=torch.zeros(2)), ValueError, "one value per"),
    (lambda: FeatureEncoder(3, 4, std=torch.zeros(3)), ValueError,
     "std must be positive"),
    (lambda: FeatureEncoder(3, 4)(torch.zeros(2, 5, 4), torch.tensor([5, 5])),
     ValueError, "frames \\(B, L, 3\\)"),
    (lambda: FeatureEncoder(3, 4)(torch.zeros(2, 5, 3, dtype=torch.long),
                                  torch.tensor([5, 5])), TypeError, "floating-point"),
    (lambda: FeatureEncoder(3, 4)(torch.zeros(2, 5, 3), torch.tensor([5])), ValueError,
     "one length per utterance"),
    (lambda: FeatureEncoder(3, 4)(torch.zeros(2, 5, 3), torch.tensor([6, 5])),
     ValueError, "between 1 and L = 5"),
    (lambda: FeatureEncoder(3, 4)(torch.full((1, 5, 3), float("nan")),
                                  torch.tensor([5])), ValueError, "NaN or infinite"),
])
def test_bad_attention_input(make, error, message):
    with pytest.raises(error, match=message):
        make()


def toy_utterances(n=16, seed=0):
    """Frames whose band k lights up while phoneme k is spoken: a task a tiny model
    learns fast."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        phonemes = [str(x) for x in rng.integers(0, 4, size=rng.integers(2, 5))]
        frames = np.concatenate([np.eye(4, dtype=np.float32)[[int(p)] * 3]
                                 for p in phonemes])
        noise = 0.1 * rng.standard_normal(frames.shape).astype(np.float32)
        out.append(Utterance(frames + noise, phonemes, "".join(phonemes), "toy", 0))
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
    ids, _ = greedy_decode(model, batch.src, batch.src_len, vocab.bos, vocab.eos,
                           max_len=3)
    assert all(len(i) <= 3 for i in ids)


def test_smooth_recognizer_trains_and_moves_its_energy_bias():
    torch.manual_seed(0)
    data = toy_utterances()
    vocab = Vocab({p for u in data for p in u.phonemes})
    model = SpeechRecognizer(4, len(vocab), hidden_size=16, attn_size=16, emb_size=8,
                             maxout_size=8, layers=1, n_filters=3, width=5, smooth=True)
    batch = speech_batch(data, vocab)
    losses = train(model, lambda step: batch, 60, lr=1e-2, desc="toy, smooth")
    assert losses[-1] < 0.5 * losses[0]
    assert float(model.attn.energy_bias.detach()) != 0.0


def test_options_reach_the_attention_and_each_output_keeps_its_own_cap():
    model = SpeechRecognizer(4, 7, hidden_size=8, attn_size=8, emb_size=4,
                             maxout_size=4, layers=1, n_filters=2, width=5, smooth=True,
                             beta=2.0)
    assert model.attn.smooth and model.attn.beta == 2.0 and model.attn.n_filters == 2
    vocab = Vocab(list("abcd"))
    short = Utterance(np.zeros((6, 4), np.float32), ["a"], "1", "v", 0)
    long = Utterance(np.zeros((60, 4), np.float32), ["a"], "1", "v", 0)
    with torch.no_grad():
        model.W_o.bias[vocab.stoi["a"]] = 1e4  # it says "a" forever and never </s>
    hyps, alignments = recognize(model, [short, long], vocab)
    assert hyps == [["a"] * max_phonemes(6), ["a"] * max_phonemes(60)]
    assert alignments[0].shape == (7, 6) and alignments[1].shape == (25, 60)


@pytest.mark.parametrize("call, error, message", [
    (lambda m, v, d: recognize(m, d, v, batch_size=0), ValueError,
     "batch_size must be at least 1"),
    (lambda m, v, d: recognize(m.attn, d, v), TypeError, "needs a SpeechRecognizer"),
    (lambda m, v, d: speech_batch([], v), ValueError, "empty batch"),
    (lambda m, v, d: train_recognizer({"model": {}}, "location", 0, v, d), ValueError,
     "no entry 'location'"),
    (lambda m, v, d: train_recognizer({"x": {}}, "x", 0, v, d), ValueError,
     "needs model, steps, batch and lr"),
    (lambda m, v, d: train_recognizer(
        {"model": {}, "x": {}, "steps": 5, "batch": 4, "lr": 1e-3}, "x", 0, v, d,
        steps=0), ValueError, "steps must be at least 1"),
    (lambda m, v, d: train_recognizer(
        {"model": {}, "x": {}, "steps": 5, "batch": 4, "lr": 1e-3}, "x", 0, v, []),
     ValueError, "feature_stats needs at least one utterance"),
])
def test_bad_recognizer_input(call, error, message):
    data = toy_utterances(4)
    vocab = Vocab({p for u in data for p in u.phonemes})
    model = SpeechRecognizer(4, len(vocab), hidden_size=8, attn_size=8, emb_size=4,
                             maxout_size=4, layers=1, n_filters=2, width=5)
    with pytest.raises(error, match=message):
        call(model, vocab, data)

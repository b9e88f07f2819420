"""Speech features, the spoken-digits data set and phoneme error rate (Chorowski et al.
2015).

Shapes: N samples of audio, T frames, M mel bands, K = n_fft // 2 + 1 frequency bins.
The data set in ``data/speech/digits.npz`` is made by ``scripts/make_speech_data.py``
(espeak-ng speaks digit strings; we store log-mel features, 8 bits each, and espeak's
phonemes).

Every public function checks its input and raises ``TypeError`` or ``ValueError``
saying what was wrong and what it expects: a NaN in a wave is an error, not a NaN
feature.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[2] / "data" / "speech" / "digits.npz"


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_int(name: str, value, least: int) -> None:
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} "
                        f"{value!r}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value}")


def _check_sample_rate(sample_rate) -> None:
    if not _is_int(sample_rate):
        raise TypeError(f"sample_rate must be an integer number of samples per second "
                        f"(Hz), got {type(sample_rate).__name__} {sample_rate!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive (Hz), got {sample_rate}")


def _check_real(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} "
                        f"{value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _real_array(name: str, x) -> np.ndarray:
    """``x`` as a float64 array; a TypeError for strings, objects and complex."""
    arr = np.asarray(x)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers, got an array of {arr.dtype}")
    return arr.astype(np.float64)


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        first = np.unravel_index(np.argmax(bad), arr.shape)
        where = tuple(int(i) for i in first)
        raise ValueError(f"{name} has {int(bad.sum())} NaN or infinite values (the "
                         f"first at index {where}); expected finite numbers")


def _frequencies(name: str, f) -> np.ndarray:
    arr = _real_array(name, f)
    _check_finite(name, arr)
    if (arr < 0).any():
        raise ValueError(f"{name} must be >= 0, got a minimum of {arr.min()}")
    return arr


def hz_to_mel(f):
    """The HTK mel scale: 2595 log10(1 + f / 700), for frequencies f >= 0 in Hz."""
    return 2595.0 * np.log10(1.0 + _frequencies("frequencies (Hz)", f) / 700.0)


def mel_to_hz(m):
    """The inverse of ``hz_to_mel``, for mels m >= 0."""
    return 700.0 * (10.0 ** (_frequencies("mels", m) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0,
                   f_max: float | None = None) -> np.ndarray:
    """Triangular filters, evenly spaced on the mel scale, peak 1: (M, K).

    Filter m rises from centre m-1 to centre m and falls to centre m+1 (M + 2 edges in
    all). Every filter must cover at least one FFT bin.
    """
    _check_sample_rate(sample_rate)
    _check_int("n_fft", n_fft, 2)
    _check_int("n_mels", n_mels, 1)
    f_min = _check_real("f_min", f_min)
    f_max = sample_rate / 2 if f_max is None else _check_real("f_max", f_max)
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got "
                         f"f_min={f_min}, f_max={f_max}, sample_rate={sample_rate} "
                         f"(f_max=None means sample_rate / 2)")
    mels = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    edges = mel_to_hz(mels)  # (M + 2,)
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)  # each FFT bin's Hz: (K,)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1)
    rising = (bins - left) / (centre - left)
    falling = (right - bins) / (right - centre)
    bank = np.clip(np.minimum(rising, falling), 0.0, None)  # (M, K)
    empty = np.flatnonzero(bank.sum(axis=1) == 0)
    if len(empty):
        raise ValueError(f"{len(empty)} of the {n_mels} mel filters cover no FFT bin "
                         f"(the first is filter {empty[0]}): with n_fft={n_fft} the "
                         f"bins are {sample_rate / n_fft:.1f} Hz apart; use fewer mel "
                         f"bands or a larger n_fft")
    return bank


def log_mel(wave: np.ndarray, sample_rate: int, n_mels: int = 40, n_fft: int = 512,
            hop: int | None = None, f_max: float | None = 8000.0) -> np.ndarray:
    """Log mel energies in dB, (T, M): Hann-windowed frames every ``hop`` samples.

    ``wave`` is one channel of finite samples (the book scales audio to [-1, 1]);
    ``hop`` defaults to 20 ms. The dB are 10 log10 of each filter's energy (sum of
    |FFT|^2 of the windowed frame, weighted by the filter), so 0 dB is an energy of 1 in
    the wave's own units: a level relative to full scale, not a sound pressure level.
    """
    wave = _real_array("wave", wave)
    if wave.ndim != 1:
        raise ValueError(f"expected a 1-d wave (one channel of samples), got shape "
                         f"{wave.shape}")
    if len(wave) == 0:
        raise ValueError("the wave is empty; expected at least n_fft samples")
    _check_finite("wave", wave)
    _check_sample_rate(sample_rate)
    _check_int("n_fft", n_fft, 2)
    if len(wave) < n_fft:
        raise ValueError(f"expected a 1-d wave of at least n_fft={n_fft} samples, got "
                         f"shape {wave.shape}")
    if hop is None:
        hop = round(0.020 * sample_rate)
        if hop < 1:
            raise ValueError(f"sample_rate={sample_rate} is too low for a 20 ms hop; "
                             f"pass hop (in samples)")
    _check_int("hop", hop, 1)
    bank = mel_filterbank(sample_rate, n_fft, n_mels, f_max=f_max)  # (M, K)
    n_frames = 1 + (len(wave) - n_fft) // hop
    index = hop * np.arange(n_frames)[:, None] + np.arange(n_fft)  # (T, n_fft)
    frames = wave[index] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # (T, K)
    mel = power @ bank.T  # (T, M)
    return 10.0 * np.log10(mel + 1e-10)


def _as_list(name: str, seq) -> list:
    try:
        return list(seq)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of symbols (a list of phonemes, a "
                        f"string...), got {type(seq).__name__}") from None


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance: fewest substitutions, insertions and deletions turning ref
    into hyp."""
    ref, hyp = _as_list("ref", ref), _as_list("hyp", hyp)
    row = list(range(len(hyp) + 1))  # distances from ref[:0] to every prefix of hyp
    for i, r in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            # delete r, insert h, or substitute (free when they match)
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1,
                                           diagonal + (r != h))
    return row[-1]


def error_rate(refs, hyps) -> float:
    """Corpus error rate: total edit distance over total reference length (PER for
    phonemes)."""
    refs = [_as_list("each reference", r) for r in _as_list("refs", refs)]
    hyps = [_as_list("each hypothesis", h) for h in _as_list("hyps", hyps)]
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references and {len(hyps)} hypotheses; "
                         f"expected one each")
    total = sum(map(len, refs))
    if total == 0:
        raise ValueError("error_rate needs at least one non-empty reference")
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / total


@dataclass
class Utterance:
    features: np.ndarray  # (T, M) log-mel in dB, float32
    phonemes: list[str]  # espeak-ng's phonemes, stress marks removed
    digits: str  # what was spoken, e.g. "314"
    voice: str  # espeak-ng voice, e.g. "en-gb-scotland+f2"
    speaker: int  # utterances with the same speaker number share voice, speed and pitch


def _check_range(low, high) -> tuple[float, float]:
    low, high = _check_real("low", low), _check_real("high", high)
    if not low < high:
        raise ValueError(f"need low < high (dB), got low={low} and high={high}")
    return low, high


def quantize(features: np.ndarray, low: float, high: float) -> np.ndarray:
    """dB values to uint8 codes over [low, high] (values outside are clipped)."""
    low, high = _check_range(low, high)
    features = _real_array("features", features)
    _check_finite("features", features)
    scaled = np.clip((features - low) / (high - low), 0, 1)  # [low, high] -> [0, 1]
    return np.round(scaled * 255).astype(np.uint8)


def dequantize(codes: np.ndarray, low: float, high: float) -> np.ndarray:
    """uint8 codes back to dB values over [low, high], float32."""
    low, high = _check_range(low, high)
    codes = np.asarray(codes)
    if codes.dtype != np.uint8:
        raise TypeError(f"codes must be uint8 (from quantize), got {codes.dtype}")
    return (low + codes.astype(np.float32) / 255 * (high - low)).astype(np.float32)


def load_digits(split: str, path: Path | str = DATA) -> list[Utterance]:
    """The ``"train"`` or ``"test"`` utterances of the spoken-digits set, in stored
    order."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; `make speech-data` regenerates it "
                                f"(needs espeak-ng)")
    with np.load(path, allow_pickle=False) as z:
        low, high = float(z["db_range"][0]), float(z["db_range"][1])
        codes, bounds = z[f"{split}_codes"], z[f"{split}_bounds"]  # (ΣT, M), (n + 1,)
        phonemes, digits = z[f"{split}_phonemes"], z[f"{split}_digits"]
        voices, speakers = z[f"{split}_voices"], z[f"{split}_speakers"]
    return [Utterance(dequantize(codes[bounds[k]:bounds[k + 1]], low, high),
                      str(phonemes[k]).split(), str(digits[k]), str(voices[k]),
                      int(speakers[k]))
            for k in range(len(bounds) - 1)]


def _check_frames(features: list, what: str) -> None:
    """Each item a 2-d (T_b, M) array, all with the same M."""
    for b, f in enumerate(features):
        shape = np.shape(f)
        if len(shape) != 2:
            raise ValueError(f"{what} {b} has shape {shape}; expected 2-d frames "
                             f"(T, M)")
        if shape[1] != np.shape(features[0])[1]:
            raise ValueError(f"{what} {b} has {shape[1]} mel bands, {what} 0 has "
                             f"{np.shape(features[0])[1]}; expected the same number")


def concatenate(utterances: list[Utterance]) -> Utterance:
    """One long utterance: the frames and phonemes of several, one after another."""
    utterances = list(utterances)
    if not utterances:
        raise ValueError("concatenate needs at least one utterance")
    _check_frames([u.features for u in utterances], "utterance")
    return Utterance(np.concatenate([u.features for u in utterances]),
                     [p for u in utterances for p in u.phonemes],
                     "".join(u.digits for u in utterances), utterances[0].voice,
                     utterances[0].speaker)


def feature_stats(utterances: list[Utterance]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and standard deviation over all frames: (M,), (M,)."""
    utterances = list(utterances)
    if not utterances:
        raise ValueError("feature_stats needs at least one utterance")
    _check_frames([u.features for u in utterances], "utterance")
    frames = np.concatenate([u.features for u in utterances])
    if len(frames) == 0:
        raise ValueError("feature_stats got utterances with no frames at all")
    _check_finite("the frames", frames)
    return torch.from_numpy(frames.mean(0)), torch.from_numpy(frames.std(0) + 1e-5)


def pad_features(features: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad finite (T_b, M) arrays into a (B, T, M) float tensor, and their (B,)
    lengths."""
    features = list(features)
    if not features:
        raise ValueError("pad_features got an empty batch; expected at least one "
                         "utterance")
    _check_frames(features, "utterance")
    lengths = torch.tensor([len(f) for f in features])
    if int(lengths.min()) == 0:
        raise ValueError("pad_features got an utterance with no frames")
    out = torch.zeros(len(features), int(lengths.max()), np.shape(features[0])[1])
    for b, f in enumerate(features):
        f = _real_array(f"utterance {b}", f)
        _check_finite(f"utterance {b}", f)
        out[b, : len(f)] = torch.from_numpy(f.astype(np.float32))
    return out, lengths

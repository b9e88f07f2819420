"""Speech features, the spoken-digits data set and phoneme error rate (Chorowski et al. 2015).

Shapes: N samples of audio, T frames, M mel bands, K = n_fft // 2 + 1 frequency bins.
The data set in ``data/speech/digits.npz`` is made by ``scripts/make_speech_data.py`` (espeak-ng
speaks digit strings; we store log-mel features, 8 bits each, and espeak's phonemes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[2] / "data" / "speech" / "digits.npz"


def hz_to_mel(f):
    """The HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0,
                   f_max: float | None = None) -> np.ndarray:
    """Triangular filters, evenly spaced on the mel scale, peak 1: (M, K).

    Filter m rises from centre m-1 to centre m and falls to centre m+1 (M + 2 edges in all).
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, "
                         f"f_max={f_max}, sample_rate={sample_rate}")
    if n_mels < 1 or n_fft < 2:
        raise ValueError(f"need n_mels >= 1 and n_fft >= 2, got {n_mels} and {n_fft}")
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))  # (M + 2,)
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)  # centre frequency of each FFT bin: (K,)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # each (M, 1)
    rising = (bins - left) / (centre - left)
    falling = (right - bins) / (right - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None)  # (M, K)


def log_mel(wave: np.ndarray, sample_rate: int, n_mels: int = 40, n_fft: int = 512,
            hop: int | None = None, f_max: float | None = 8000.0) -> np.ndarray:
    """Log mel energies in dB, (T, M): Hann-windowed frames every ``hop`` samples (20 ms default)."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1 or len(wave) < n_fft:
        raise ValueError(f"expected a 1-d wave of at least n_fft={n_fft} samples, got shape {wave.shape}")
    hop = round(0.020 * sample_rate) if hop is None else hop
    n_frames = 1 + (len(wave) - n_fft) // hop
    index = hop * np.arange(n_frames)[:, None] + np.arange(n_fft)  # (T, n_fft)
    frames = wave[index] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # (T, K)
    mel = power @ mel_filterbank(sample_rate, n_fft, n_mels, f_max=f_max).T  # (T, M)
    return 10.0 * np.log10(mel + 1e-10)


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance: fewest substitutions, insertions and deletions turning ref into hyp."""
    ref, hyp = list(ref), list(hyp)
    row = list(range(len(hyp) + 1))  # distances from ref[:0] to every prefix of hyp
    for i, r in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            # delete r, insert h, or substitute (free when they match)
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def error_rate(refs, hyps) -> float:
    """Corpus error rate: total edit distance over total reference length (PER for phonemes)."""
    refs, hyps = [list(r) for r in refs], [list(h) for h in hyps]
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references and {len(hyps)} hypotheses; expected one each")
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


def quantize(features: np.ndarray, low: float, high: float) -> np.ndarray:
    """dB values to uint8 codes over [low, high] (values outside are clipped)."""
    return np.round(np.clip((features - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def dequantize(codes: np.ndarray, low: float, high: float) -> np.ndarray:
    return (low + codes.astype(np.float32) / 255 * (high - low)).astype(np.float32)


def load_digits(split: str, path: Path | str = DATA) -> list[Utterance]:
    """The ``"train"`` or ``"test"`` utterances of the spoken-digits set, in stored order."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; `make speech-data` regenerates it (needs espeak-ng)")
    with np.load(path, allow_pickle=False) as z:
        low, high = float(z["db_range"][0]), float(z["db_range"][1])
        codes, bounds = z[f"{split}_codes"], z[f"{split}_bounds"]  # (ΣT, M), (n + 1,)
        phonemes, digits = z[f"{split}_phonemes"], z[f"{split}_digits"]
        voices, speakers = z[f"{split}_voices"], z[f"{split}_speakers"]
    return [Utterance(dequantize(codes[bounds[k]:bounds[k + 1]], low, high),
                      str(phonemes[k]).split(), str(digits[k]), str(voices[k]), int(speakers[k]))
            for k in range(len(bounds) - 1)]


def concatenate(utterances: list[Utterance]) -> Utterance:
    """One long utterance: the frames and phonemes of several, one after another."""
    if not utterances:
        raise ValueError("concatenate needs at least one utterance")
    return Utterance(np.concatenate([u.features for u in utterances]),
                     [p for u in utterances for p in u.phonemes],
                     "".join(u.digits for u in utterances), utterances[0].voice, utterances[0].speaker)


def feature_stats(utterances: list[Utterance]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and standard deviation over all frames: (M,), (M,)."""
    frames = np.concatenate([u.features for u in utterances])
    return torch.from_numpy(frames.mean(0)), torch.from_numpy(frames.std(0) + 1e-5)


def pad_features(features: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (T_b, M) arrays into a (B, T, M) float tensor, and their (B,) lengths."""
    if not features:
        raise ValueError("pad_features got an empty batch; expected at least one utterance")
    lengths = torch.tensor([len(f) for f in features])
    if int(lengths.min()) == 0:
        raise ValueError("pad_features got an utterance with no frames")
    out = torch.zeros(len(features), int(lengths.max()), features[0].shape[1])
    for b, f in enumerate(features):
        out[b, : len(f)] = torch.from_numpy(np.asarray(f, dtype=np.float32))
    return out, lengths

"""Make data/speech/digits.npz: spoken digit strings as log-mel features with phoneme targets.

espeak-ng (Debian package ``espeak-ng``, GPL-3.0-or-later) speaks random digit strings ("three one
four") in 8 English accents x 12 voice variants, at random speed and pitch, and writes its own
phoneme transcription (``-x``). We add white noise (20-40 dB SNR), trim silence, compute 24
log-mel bands every 20 ms (``mlf.speech.log_mel``) and store them as 8-bit codes.

Train: single utterances of 2-5 digits, each from its own random speaker. Test: speakers that
say 5 utterances each, so the chapter can join them into one long utterance per speaker.

    make speech-data        # or: python scripts/make_speech_data.py [--out PATH]
"""
from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from mlf.speech import DATA, log_mel, quantize

WORDS = "zero one two three four five six seven eight nine".split()
ACCENTS = ["en-us", "en-us-nyc", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029"]
VARIANTS = [f"m{k}" for k in range(1, 8)] + [f"f{k}" for k in range(1, 6)]
DB_RANGE = (-70.0, 50.0)  # what the 8-bit codes cover, in dB (0.47 dB per step)
N_MELS = 24
SEED, N_TRAIN, N_TEST_SPEAKERS, PER_SPEAKER = 0, 2400, 120, 5


def speaker(rng) -> dict:
    """Voice, speed (words per minute) and pitch (0-99) of one synthetic speaker."""
    return {"voice": f"{rng.choice(ACCENTS)}+{rng.choice(VARIANTS)}",
            "speed": int(rng.integers(130, 211)), "pitch": int(rng.integers(25, 76))}


def espeak(text: str, voice: str, speed: int, pitch: int) -> tuple[np.ndarray, int, list[str]]:
    """Audio in [-1, 1], its sample rate and espeak's phonemes for ``text``."""
    args = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch)]
    audio = subprocess.run(args + ["--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(audio)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16) / 32768.0
    phonemes = subprocess.run(args + ["-q", "-x", "--sep=_", text], capture_output=True,
                              check=True, text=True).stdout
    # "T_r_'i: w_'V_n" -> T r i: w V n (stress marks ' and , are not phonemes)
    return samples, rate, [p for p in phonemes.replace("'", "").replace(",", "").replace("_", " ").split()]


def utterance(rng, who: dict) -> tuple[np.ndarray, str, list[str]]:
    digits = "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(2, 6))))
    samples, rate, phonemes = espeak(" ".join(WORDS[int(d)] for d in digits), **who)
    loud = np.flatnonzero(np.abs(samples) > 0.01 * np.abs(samples).max())
    margin = int(0.05 * rate)  # keep 50 ms of silence either side
    samples = samples[max(loud[0] - margin, 0): loud[-1] + margin]
    snr_db = rng.uniform(20, 40)
    noise = rng.standard_normal(len(samples)) * np.sqrt(np.mean(samples ** 2) / 10 ** (snr_db / 10))
    return log_mel(samples + noise, rate, n_mels=N_MELS), digits, phonemes


def make_split(rng, speakers: list[dict], per_speaker: int) -> dict:
    feats, digits, phonemes, voices, ids = [], [], [], [], []
    for k, who in enumerate(speakers):
        for _ in range(per_speaker):
            f, d, p = utterance(rng, who)
            feats.append(quantize(f, *DB_RANGE))
            digits.append(d)
            phonemes.append(" ".join(p))
            voices.append(who["voice"])
            ids.append(k)
    return {"codes": np.concatenate(feats), "bounds": np.cumsum([0] + [len(f) for f in feats]),
            "digits": np.array(digits), "phonemes": np.array(phonemes),
            "voices": np.array(voices), "speakers": np.array(ids)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATA)
    out = parser.parse_args().out
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    rng = np.random.default_rng(SEED)
    splits = {"train": make_split(rng, [speaker(rng) for _ in range(N_TRAIN)], 1),
              "test": make_split(rng, [speaker(rng) for _ in range(N_TEST_SPEAKERS)], PER_SPEAKER)}
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, db_range=np.array(DB_RANGE), espeak_version=np.array(version),
                        **{f"{s}_{k}": v for s, d in splits.items() for k, v in d.items()})
    frames = {s: int(d["bounds"][-1]) for s, d in splits.items()}
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): frames {frames}, {version}")


if __name__ == "__main__":
    main()

"""mlf.unigram against sentencepiece (C++), side by side in one run.

Training: a unigram model of 1,000 pieces on four Shakespeare plays (identity
normalization, spaces kept, all characters covered, one thread). Segmenting: every line
of a fifth play with sentencepiece's model, by mlf.unigram.Unigram.encode (loaded with
its pieces) and by sp.encode(out_type=str); the outputs are asserted identical.

A Unigram remembers the best path of each word type it has segmented, so the first pass
over a text costs more than the next ones: "fresh model" times a pass with a newly
loaded model (nothing remembered, as for a text seen once), "second pass" the same text
again.
"""

import time

import sentencepiece as spm

from mlf.corpora import shakespeare_lines
from mlf.timing import best_of
from mlf.unigram import Unigram, corpus_log_likelihood, train, train_sentencepiece

TRAIN = ["hamlet", "macbeth", "othello", "king-lear"]
HELD_OUT = "the-tempest"
VOCAB = 1000


def run():
    spm.set_min_log_level(2)
    lines = [line for t in TRAIN for line in shakespeare_lines(t)]
    held_out = list(shakespeare_lines(HELD_OUT))
    size_mb = len("\n".join(lines).encode()) / 1e6
    t_mlf, (ours, _) = best_of(lambda: train(lines, VOCAB))
    t_sp, sp = best_of(
        lambda: train_sentencepiece(lines, VOCAB + 3, hard_vocab_limit=True))
    theirs = Unigram.from_sentencepiece(sp)
    shared = len(set(ours.scores) & set(theirs.scores))
    # both trainers' digamma M-step leaves sum p(x) < 1: compare renormalized models
    ll = {name: corpus_log_likelihood(m.renormalized(), held_out)
          for name, m in [("ours", ours), ("sp", theirs)]}

    def fresh_pass():
        model = Unigram.from_sentencepiece(sp)  # loading is not timed, as for sp
        start = time.perf_counter()
        out = [model.encode(line) for line in held_out]
        return time.perf_counter() - start, out

    passes = [fresh_pass() for _ in range(3)]
    t_fresh, seg_mlf = min(t for t, _ in passes), passes[-1][1]
    t_again, seg_again = best_of(lambda: [theirs.encode(line) for line in held_out])
    t_seg_sp, seg_sp = best_of(
        lambda: [sp.encode(line, out_type=str) for line in held_out])
    assert seg_mlf == seg_sp == seg_again, "mlf.unigram and sentencepiece differ"

    rows = [
        ("unigram train: mlf.unigram", t_mlf, "1.00", f"{VOCAB} pieces"),
        ("unigram train: sentencepiece 0.2.3", t_sp, f"{t_sp / t_mlf:.3f}",
         f"{shared} of {VOCAB} pieces shared; held-out log-lik. (renormalized) "
         f"{ll['ours']:,.0f} (ours) vs {ll['sp']:,.0f}"),
        ("unigram segment: mlf.unigram, fresh model", t_fresh, "1.00",
         f"{len(held_out):,} held-out lines"),
        ("unigram segment: mlf.unigram, second pass", t_again,
         f"{t_again / t_fresh:.3f}", "word types remembered"),
        ("unigram segment: sentencepiece", t_seg_sp, f"{t_seg_sp / t_fresh:.3f}",
         "identical output (asserted)"),
    ]
    return f"Shakespeare, 4 plays, {size_mb:.1f} MB raw text, best of 3", rows

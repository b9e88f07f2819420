"""mlf.bpe against subword-nmt and Hugging Face tokenizers, side by side in one run.

Learning: 5,000 merges (minimum frequency 2) on the full Shakespeare text (38 plays),
word counting included for every learner. Segmenting: every line of the text with the
learned merges (mlf.bpe.BPE.encode vs subword-nmt's BPE.process_line), then again with
the vocabulary filter (the token counts of the encoded text, threshold 50: subword-nmt's
``--vocabulary`` and ``--vocabulary-threshold``).
"""
import contextlib
import io
import json

from subword_nmt.apply_bpe import BPE as SubwordNmtBPE
from subword_nmt.learn_bpe import learn_bpe
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from mlf.bpe import BPE, pretokenize, word_counts
from mlf.corpora import shakespeare_text
from mlf.timing import best_of

NUM_MERGES = 5000
THRESHOLD = 50


def learn_mlf(lines):
    return BPE.learn(word_counts(lines), NUM_MERGES, min_frequency=2).merges


def learn_subword_nmt(lines):
    out = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        learn_bpe(io.StringIO("\n".join(lines)), out, NUM_MERGES, min_frequency=2)
    return [tuple(row.split(" ")) for row in out.getvalue().splitlines()[1:]]


def learn_hf(lines):
    # only to size the vocabulary: HF counts words itself, timed below
    counts = word_counts(lines)
    # characters, inside a word and at its end
    initial = len(set("".join(counts))) + len({w[-1] for w in counts})
    tokenizer = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=initial + NUM_MERGES, min_frequency=2,
                                  end_of_word_suffix="</w>", show_progress=False)

    def train():
        tokenizer.train_from_iterator(lines, trainer)
        return [tuple(m) for m in json.loads(tokenizer.to_str())["model"]["merges"]]

    return train


def segment_mlf(merges, lines, vocab=None, threshold=None):
    bpe = BPE(merges, vocab=vocab, threshold=threshold)
    return [" ".join(bpe.encode(line)) for line in lines]


def segment_subword_nmt(codes, lines, vocab=None):
    reference = SubwordNmtBPE(io.StringIO(codes), vocab=vocab)
    return [reference.process_line(line) for line in lines]


def run():
    lines = [pretokenize(line) for line in shakespeare_text().splitlines()]
    size_mb = len("\n".join(lines).encode()) / 1e6
    t_mlf, merges_mlf = best_of(lambda: learn_mlf(lines))
    t_ref, merges_ref = best_of(lambda: learn_subword_nmt(lines))
    t_hf, merges_hf = best_of(learn_hf(lines))
    assert merges_mlf == merges_ref, "mlf.bpe and subword-nmt learned different merges"
    shared_hf = len(set(merges_hf) & set(merges_mlf))

    codes = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges_ref)
    # each timed call builds a fresh segmenter, so both start with an empty word cache
    t_seg_mlf, ours = best_of(lambda: segment_mlf(merges_mlf, lines))
    t_seg_ref, theirs = best_of(lambda: segment_subword_nmt(codes, lines))
    assert ours == theirs, "mlf.bpe and subword-nmt segmented differently"

    vocab = BPE(merges_mlf).token_counts(word_counts(lines))
    kept = {t for t, c in vocab.items() if c >= THRESHOLD}
    t_voc_mlf, ours = best_of(lambda: segment_mlf(merges_mlf, lines, vocab, THRESHOLD))
    t_voc_ref, theirs = best_of(lambda: segment_subword_nmt(codes, lines, kept))
    assert ours == theirs, "mlf.bpe and subword-nmt split pieces differently"

    rows = [
        ("BPE learn: mlf.bpe", t_mlf, "1.00", f"{NUM_MERGES} merges"),
        ("BPE learn: subword-nmt 0.3.8", t_ref, f"{t_ref / t_mlf:.2f}",
         "identical merges (asserted)"),
        ("BPE learn: HF tokenizers (Rust)", t_hf, f"{t_hf / t_mlf:.2f}",
         f"{shared_hf} of {NUM_MERGES} merges shared (other tie-breaking)"),
        ("BPE segment: mlf.bpe", t_seg_mlf, "1.00", f"{len(lines):,} lines"),
        ("BPE segment: subword-nmt", t_seg_ref, f"{t_seg_ref / t_seg_mlf:.2f}",
         "identical output (asserted)"),
        ("BPE segment, vocabulary filter: mlf.bpe", t_voc_mlf, "1.00",
         f"threshold {THRESHOLD}: {len(kept):,} of {len(vocab):,} tokens kept"),
        ("BPE segment, vocabulary filter: subword-nmt", t_voc_ref,
         f"{t_voc_ref / t_voc_mlf:.2f}", "identical output (asserted)"),
    ]
    return f"Shakespeare, {size_mb:.1f} MB pretokenized, best of 3", rows

"""mlf.bytelevel against tiktoken's educational trainer, Hugging Face tokenizers and
tiktoken.

Training: 1,000 merges (vocabulary 1,256) on 0.3 MB of Shakespeare, GPT-2
pre-tokenization for every learner. The educational trainer recounts all pairs before
each merge; it runs once (about a minute), the others best of 3. Encoding: the full
Shakespeare text with those ranks; each timed call builds a fresh ByteLevelBPE, so its
chunk cache starts empty.
"""
import json

import tiktoken
from tiktoken._educational import bpe_train
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from mlf.bytelevel import GPT2_PATTERN, ByteLevelBPE, train_ranks
from mlf.corpora import shakespeare_text
from mlf.timing import best_of

NUM_MERGES = 1000
TRAIN_BYTES = 300_000


def learn_hf(text):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                       use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=256 + NUM_MERGES, min_frequency=0,
                                  show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())

    def train():
        tokenizer.train_from_iterator([text], trainer)
        return json.loads(tokenizer.to_str())["model"]["merges"]

    return train


def run():
    full = shakespeare_text()
    text = full.encode()[:TRAIN_BYTES].decode("utf-8", errors="ignore")
    vocab_size = 256 + NUM_MERGES
    t_mlf, ours = best_of(lambda: train_ranks(text, vocab_size, GPT2_PATTERN))
    t_edu, theirs = best_of(
        lambda: bpe_train(text, vocab_size, GPT2_PATTERN, visualise=None), repeats=1)
    assert list(ours.items()) == list(theirs.items()), \
        "mlf.bytelevel and the educational trainer differ"
    t_hf, hf_merges = best_of(learn_hf(text))

    reference = tiktoken.Encoding(name="bench", pat_str=GPT2_PATTERN,
                                  mergeable_ranks=ours, special_tokens={})
    mb = len(full.encode()) / 1e6
    t_enc, ids = best_of(lambda: ByteLevelBPE(ours, GPT2_PATTERN).encode(full))
    t_tik, ref_ids = best_of(lambda: reference.encode_ordinary(full))
    assert ids == ref_ids, "mlf.bytelevel and tiktoken encoded differently"

    train_mb = len(text.encode()) / 1e6
    rows = [
        ("byte-level BPE train: mlf.bytelevel", t_mlf, "1.00",
         f"{NUM_MERGES} merges on {train_mb:.2f} MB"),
        ("byte-level BPE train: tiktoken._educational", t_edu, f"{t_edu / t_mlf:.0f}",
         "identical ranks (asserted); full recount per merge, 1 run"),
        ("byte-level BPE train: HF tokenizers ByteLevel (Rust)", t_hf,
         f"{t_hf / t_mlf:.2f}", f"{len(hf_merges)} merges, other tie-breaking"),
        ("byte-level BPE encode: mlf.bytelevel", t_enc, "1.00",
         f"{mb / t_enc:.1f} MB/s on {mb:.1f} MB"),
        ("byte-level BPE encode: tiktoken (Rust)", t_tik, f"{t_tik / t_enc:.3f}",
         f"{mb / t_tik:.1f} MB/s, identical ids (asserted)"),
    ]
    return "Shakespeare, byte-level BPE, best of 3", rows

"""mlf.gpt.generate with and without its key/value cache, and Hugging Face's generate.

The book's language model (data/lm/shakespeare.pt) continues a 16-token prompt by 100
tokens, greedily, for a batch of 1 and of 8 sequences, on one thread. Hugging Face's
``GPT2LMHeadModel.generate`` runs on the same weights (``mlf.gpt.to_gpt2``) with its own
cache; all three must produce the same tokens (asserted), so only speed differs.
"""
import logging

import torch

from mlf.gpt import generate, load_book_lm, to_gpt2
from mlf.timing import best_of

PROMPT, NEW = 16, 100


def run():
    torch.set_num_threads(1)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    model, bpe, _ = load_book_lm()
    hf = to_gpt2(model)
    ids = torch.tensor(bpe.encode("ROMEO: But soft, what light through yonder window "
                                  "breaks? It is the east, and Juliet is the sun."))
    rows = []
    for batch in (1, 8):
        prompt = torch.stack([ids[i:i + PROMPT] for i in range(batch)])  # (B, 16)
        t_cache, ours = best_of(lambda: generate(model, prompt, NEW))
        t_full, full = best_of(lambda: generate(model, prompt, NEW, use_cache=False))
        with torch.no_grad():
            t_hf, theirs = best_of(lambda: hf.generate(
                prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=NEW,
                min_new_tokens=NEW, do_sample=False, pad_token_id=0))
        assert torch.equal(ours, full) and torch.equal(ours, theirs), \
            "the three decoders produced different tokens"
        tokens = batch * NEW
        rows += [
            (f"generate, batch {batch}: mlf with cache", t_cache, "1.00",
             f"{tokens / t_cache:.0f} tokens/s"),
            (f"generate, batch {batch}: mlf without cache", t_full,
             f"{t_full / t_cache:.2f}", f"{tokens / t_full:.0f} tokens/s"),
            (f"generate, batch {batch}: transformers GPT-2", t_hf,
             f"{t_hf / t_cache:.2f}",
             f"{tokens / t_hf:.0f} tokens/s, identical tokens (asserted)"),
        ]
    return f"book LM, {PROMPT}-token prompt + {NEW} greedy tokens, 1 thread", rows

"""A tiny BERT pre-trained by masked LM on Shakespeare, 5 seeds (22_bert.ipynb).

Tokens: the book's byte-level BPE (2,048 tokens, mlf.gpt.load_book_lm) plus [PAD],
[CLS], [SEP], [MASK] as ids 2048..2051 (mlf.bert.BOOK_SPECIALS). Windows of 32 tokens:
[CLS] and 31 tokens of the 35 training plays (contiguous, 31 apart); evaluation on 200
such windows of the three held-out plays (mlf.bert.book_mlm_data). Model:
mlf.bert.Bert with L=2, H=64, A=4, 4H=256, dropout 0. Training:
mlf.bert.pretrain_mlm, 80/10/10 masking of 15% of the positions, batch 32, AdamW
lr 2e-3, 50 warm-up steps, then linear decay to 0 at step 2500. For each seed the
held-out fill-in accuracy (every picked position replaced by [MASK], the same blanks
for every seed) is stored with the unigram baseline (always guess the most frequent
training token) in data/bert/pretrain.json; seed 0's weights (float16) go to
data/bert/tiny_mlm.pt.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bert_pretrain.py   # ~8 CPU minutes

Seeds can also run one at a time and be merged; the result is the same:
    ... bert_pretrain.py --seeds 0 --out /tmp/pt0.json   (and so on for 1..4)
    ... bert_pretrain.py --merge /tmp/pt0.json ... /tmp/pt4.json
"""
import sys
import time

import torch
from bert_common import DATA, cli, write_json
from mlf import bert

CONFIG = {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 256, "window": 32,
          "batch": 32, "lr": 2e-3, "warmup": 50, "steps": 2500, "n_eval": 200,
          "seeds": [0, 1, 2, 3, 4]}


def tiny_config():
    return bert.BertConfig(vocab_size=2052, d_model=CONFIG["d_model"],
                           n_layers=CONFIG["n_layers"], n_heads=CONFIG["n_heads"],
                           d_ff=CONFIG["d_ff"], max_len=CONFIG["window"], dropout=0.0)


def main(seeds, out):
    torch.set_num_threads(1)
    _, train, held = bert.book_mlm_data(CONFIG["window"], CONFIG["n_eval"])
    top = int(torch.bincount(train[:, 1:].flatten(), minlength=2052).argmax())
    mask = bert.BOOK_SPECIALS["[MASK]"]
    results = {"config": CONFIG, "most_frequent_token": top, "seeds": {}}
    for seed in seeds:
        torch.manual_seed(seed)
        model = bert.Bert(tiny_config())
        head = bert.MLMHead(model)
        t = time.process_time()
        losses = bert.pretrain_mlm(model, head, train, CONFIG["steps"], CONFIG["lr"],
                                   mask_id=mask, batch=CONFIG["batch"], seed=seed,
                                   warmup=CONFIG["warmup"])
        acc, truth = bert.mlm_accuracy(model, head, held, mask_id=mask, seed=0)
        baseline = (truth == top).float().mean().item()
        results["seeds"][str(seed)] = {
            "accuracy": acc, "unigram_baseline": baseline,
            "loss_every_100": [sum(losses[i:i + 100]) / len(losses[i:i + 100])
                               for i in range(0, len(losses), 100)],
            "cpu_s": round(time.process_time() - t, 1)}
        print(seed, acc, baseline, results["seeds"][str(seed)]["cpu_s"],
              file=sys.stderr, flush=True)
        if seed == 0:
            state = model.state_dict() | {
                f"head.{k}": v for k, v in head.state_dict().items()
                if k != "embedding.weight"}  # tied: the token embedding
            torch.save({k: v.half() for k, v in state.items()}, DATA / "tiny_mlm.pt")
    write_json(results, out)


if __name__ == "__main__":
    cli(main, CONFIG["seeds"], DATA / "pretrain.json")

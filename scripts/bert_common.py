"""What the BERT chapter's two sweeps share: paths, the command line and the merging of
per-seed result files (scripts/bert_pretrain.py, scripts/bert_finetune.py)."""
import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model is read from disk

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "bert"


def write_json(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")


def merge_results(parts: list[dict]) -> dict:
    """Merge result dicts key by key; a dict whose keys are all seeds (digits) is
    sorted by seed, so the merge of per-seed files equals a single run's file."""
    def merge(a, b):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            return b
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if k in out else v
        if out and all(k.isdigit() for k in out):
            out = dict(sorted(out.items(), key=lambda kv: int(kv[0])))
        return out

    results = {}
    for part in parts:
        results = merge(results, part)
    return results


def cli(main, default_seeds: list[int], default_out: Path) -> None:
    """``--seeds S ... [--out FILE]`` runs ``main(seeds, out)``; ``--merge F ...``
    merges per-seed files into ``default_out``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=default_seeds)
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--merge", nargs="+", type=Path)
    args = parser.parse_args()
    if args.merge:
        write_json(merge_results([json.loads(p.read_text()) for p in args.merge]),
                   default_out)
    else:
        main(args.seeds, args.out)

"""mlf.quant's NF4 quantize / dequantize against bitsandbytes' on the CPU.

A 4096 x 4096 float32 weight (16.8 million numbers, blocks of 64), one thread. The
constants must be identical, and the codes too except where a number lies within 2e-7
of a midpoint between two levels (our computed NF4 table differs from bitsandbytes'
stored one by 1 to 2 ulps; a handful of the 16.8 million codes); with bitsandbytes'
table, every byte is identical (asserted). Dequantization is compared on
bitsandbytes' codes (so near-tie codes do not count), on this square shape, whose rows
are whole blocks (bitsandbytes' CPU kernel disagrees with its own quantizer on rows
that are not: see notebooks/19_qlora.ipynb).
"""
import logging

import torch
from mlf import quant
from mlf.timing import best_of

SHAPE = (4096, 4096)


def run():
    torch.set_num_threads(1)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import bitsandbytes.functional as bnb

    w = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)) * 0.02
    n = w.numel()
    t_q, (packed, absmax) = best_of(lambda: quant.quantize_4bit(w, "nf4", 64))
    t_bq, (ref_packed, state) = best_of(
        lambda: bnb.quantize_4bit(w, blocksize=64, quant_type="nf4"))
    assert torch.equal(absmax, state.absmax), "constants differ"
    ours_codes = quant.unpack_nibbles(packed)
    differ = (ours_codes != quant.unpack_nibbles(ref_packed)).nonzero().squeeze(1)
    levels = quant.nf4_codebook()
    scaled = (w.reshape(-1, 64) * (1 / absmax)[:, None]).reshape(-1)[differ]
    mids = (levels[1:] + levels[:-1]) / 2
    assert bool(((scaled[:, None] - mids).abs().amin(1) < 2e-7).all()), \
        "a code differs away from a tie"
    ref_table = bnb.get_4bit_type("nf4", device="cpu")
    same_table, _ = quant.quantize_blockwise(w, ref_table, 64)
    assert torch.equal(quant.pack_nibbles(same_table), ref_packed.reshape(-1))
    # both dequantize bitsandbytes' codes: ours differ from them at the near-ties above
    t_d, ours = best_of(
        lambda: quant.dequantize_4bit(ref_packed.reshape(-1), state.absmax, SHAPE))
    t_bd, theirs = best_of(lambda: bnb.dequantize_4bit(ref_packed, state))
    assert torch.allclose(ours, theirs, atol=1e-7), "dequantized values differ"
    rows = [
        ("quantize_4bit nf4: mlf.quant", t_q, "1.00", f"{n / t_q / 1e6:.0f} M/s"),
        ("quantize_4bit nf4: bitsandbytes", t_bq, f"{t_bq / t_q:.2f}",
         (f"{n / t_bq / 1e6:.0f} M/s; absmax identical, {len(differ)} codes differ,"
         f" all at near-ties (asserted)")),
        ("dequantize_4bit nf4: mlf.quant", t_d, "1.00", f"{n / t_d / 1e6:.0f} M/s"),
        ("dequantize_4bit nf4: bitsandbytes", t_bd, f"{t_bd / t_d:.2f}",
         f"{n / t_bd / 1e6:.0f} M/s, allclose (asserted)"),
    ]
    return f"NF4, {SHAPE[0]} x {SHAPE[1]} float32, blocks of 64, 1 thread", rows

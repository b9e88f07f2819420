"""mlf.quant: codebooks, blockwise 4-bit quantization, packing, double quantization,
checked against bitsandbytes on the CPU."""
import logging

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import quant

logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
bnb = pytest.importorskip("bitsandbytes.functional")


def test_nf4_codebook_shape_and_zero():
    levels = quant.nf4_codebook()
    assert levels.shape == (16,) and levels.dtype == torch.float32
    assert levels[0] == -1 and levels[-1] == 1 and (levels == 0).sum() == 1
    assert bool((levels[1:] > levels[:-1]).all())
    assert (levels < 0).sum() == 7 and (levels > 0).sum() == 8  # asymmetric halves


def test_nf4_codebook_equals_bitsandbytes_to_two_ulps():
    ours, ref = quant.nf4_codebook(), bnb.get_4bit_type("nf4", device="cpu")
    assert torch.allclose(ours, ref, rtol=0, atol=2e-7)
    assert torch.equal(ours[[0, 7, 15]], ref[[0, 7, 15]])  # -1, 0, 1 exactly


def test_other_codebooks():
    fp4, int4 = quant.fp4_codebook(), quant.int4_codebook()
    assert fp4.shape == (16,) and int4.shape == (15,)
    assert fp4.unique().numel() == 15  # +0 and -0
    ref = bnb.get_4bit_type("fp4", device="cpu")
    # bitsandbytes' fp4 shares every level but its smallest magnitude
    assert set(ref.abs().tolist()) - set(fp4.abs().tolist()) == {ref.abs()[1].item()}
    assert torch.equal(int4 * 7, torch.arange(-7, 8).float())


def test_dynamic_map_equals_bitsandbytes():
    assert torch.equal(quant.dynamic_map(), bnb.create_dynamic_map())


@pytest.mark.parametrize("shape", [(256, 128), (160, 640), (64, 64), (2, 4096)])
def test_codes_and_absmax_equal_bitsandbytes(shape):
    g = torch.Generator().manual_seed(sum(shape))
    w = torch.randn(shape, generator=g) * 0.02
    packed, absmax = quant.quantize_4bit(w, "nf4", 64)
    ref_packed, state = bnb.quantize_4bit(w, blocksize=64, quant_type="nf4")
    assert torch.equal(absmax, state.absmax)
    assert torch.equal(packed, ref_packed.reshape(-1))  # same nibble order too


def test_dequantize_equals_bitsandbytes_for_rows_of_whole_blocks():
    w = torch.randn(96, 192, generator=torch.Generator().manual_seed(0))
    packed, absmax = quant.quantize_4bit(w)
    ref_packed, state = bnb.quantize_4bit(w, blocksize=64, quant_type="nf4")
    ours = quant.dequantize_4bit(packed, absmax, w.shape)
    assert torch.allclose(ours, bnb.dequantize_4bit(ref_packed, state), atol=1e-6)


def test_ties_take_the_lower_code():
    levels = quant.nf4_codebook()
    mids = (levels[1:] + levels[:-1]) / 2
    x = torch.cat([mids, torch.ones(1)])  # 16 numbers, absmax 1
    codes, _ = quant.quantize_blockwise(x, levels, 16)
    assert codes.tolist() == list(range(15)) + [15]


def test_zero_block_dequantizes_to_zero():
    x = torch.cat([torch.zeros(64), torch.randn(64)])
    codes, absmax = quant.quantize_blockwise(x, quant.nf4_codebook(), 64)
    assert absmax[0] == 0 and (codes[:64] == 7).all()
    out = quant.dequantize_blockwise(codes, absmax, quant.nf4_codebook())
    assert torch.equal(out[:64], torch.zeros(64))


@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), max_size=32))
def test_pack_unpack_round_trip(pairs):
    codes = torch.tensor([c for pair in pairs for c in pair], dtype=torch.uint8)
    assert torch.equal(quant.unpack_nibbles(quant.pack_nibbles(codes)), codes)


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 8), st.sampled_from([16, 32, 64]), st.integers(0, 10_000),
       st.sampled_from(quant.QUANT_TYPES))
def test_error_bounded_by_half_the_largest_gap(blocks, blocksize, seed, quant_type):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(blocks * blocksize, generator=g)
    levels = quant.codebook(quant_type)
    codes, absmax = quant.quantize_blockwise(x, levels, blocksize)
    out = quant.dequantize_blockwise(codes, absmax, levels)
    gap = (levels[1:] - levels[:-1]).max() / 2  # the farthest a number is from a level
    bound = gap * absmax.repeat_interleave(blocksize) + 1e-6
    assert bool(((out - x).abs() <= bound).all())
    # requantizing the dequantized tensor gives it back (a fixed point); compare values,
    # not codes: fp4's +0 and -0 are two codes of one level
    codes2, absmax2 = quant.quantize_blockwise(out, levels, blocksize)
    again = quant.dequantize_blockwise(codes2, absmax2, levels)
    assert torch.equal(again, out)


@pytest.mark.parametrize("n", [400, 512, 100, 3])
def test_double_quantization_close_to_bitsandbytes(n):
    absmax = torch.rand(n, generator=torch.Generator().manual_seed(n)) * 0.1 + 0.01
    codes, c1, mean = quant.double_quantize(absmax)
    ref_codes, ref_state = bnb.quantize_blockwise(absmax - absmax.mean(), blocksize=256)
    assert torch.allclose(c1, ref_state.absmax) and len(c1) == -(-n // 256)
    # codes may differ where a number lies (almost) halfway between two 8-bit levels
    assert (codes != ref_codes).float().mean() < 0.02
    back = quant.double_dequantize(codes, c1, mean)
    ref = bnb.dequantize_blockwise(ref_codes, ref_state) + absmax.mean()
    assert torch.allclose(back, ref, atol=2e-3 * float(c1.max()))
    assert (back - absmax).abs().max() < 0.02 * float(c1.max())


def test_bits_per_parameter():
    assert quant.bits_per_parameter(64) == 4.5
    dq = quant.bits_per_parameter(64, double=True)
    assert dq == 4 + 8 / 64 + 32 / (64 * 256)
    assert round(4.5 - dq, 3) == 0.373


def test_nf4_linear_matches_dequantized_linear_and_trains_through():
    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(128, 64)
    q = quant.NF4Linear(lin)
    x = torch.randn(3, 5, 128, generator=g, requires_grad=True)
    w = quant.dequantize_4bit(*quant.quantize_4bit(lin.weight.detach()), (64, 128))
    assert torch.allclose(q(x), torch.nn.functional.linear(x, w, lin.bias), atol=1e-6)
    q(x).sum().backward()
    assert x.grad is not None and not any(p.requires_grad for p in q.parameters())
    assert q.storage_bits() == 64 * 128 * 4 + 64 * 128 // 64 * 32


def test_nf4_linear_double_quant_storage_and_error():
    lin = torch.nn.Linear(256, 256)
    plain, dq = quant.NF4Linear(lin), quant.NF4Linear(lin, double_quant=True)
    n = 256 * 256
    assert plain.storage_bits() / n == 4.5
    assert dq.storage_bits() == n * 4 + (n // 64) * 8 + (n // 64 // 256) * 32 + 32
    gap = (dq.dequantized_weight() - plain.dequantized_weight()).abs().max()
    assert gap < 0.01 * lin.weight.abs().max()


def test_quantize_linears_replaces_every_linear():
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 2 * 32))
    quant.quantize_linears(model, "int4", skip=("2",))
    assert isinstance(model[0], quant.NF4Linear) and isinstance(model[2],
                                                                torch.nn.Linear)
    with pytest.raises(ValueError, match="no nn.Linear"):
        quant.quantize_linears(torch.nn.ReLU())


def test_lora_wraps_an_nf4_base():
    lora = pytest.importorskip("mlf.lora")
    layer = lora.LoRALinear(quant.NF4Linear(torch.nn.Linear(64, 32)), r=4, alpha=8)
    x = torch.randn(2, 64)
    assert torch.equal(layer(x), layer.base(x))  # B = 0 at first
    layer(x).sum().backward()
    assert layer.lora_A.grad is not None or layer.lora_B.grad is not None


@pytest.mark.parametrize("bad, kwargs, error, match", [
    (torch.randn(100), {"blocksize": 64}, ValueError, "does not divide"),
    (torch.randn(64), {"blocksize": 0}, ValueError, "positive integer"),
    (torch.arange(64), {}, TypeError, "floating tensor"),
    (torch.randn(0), {}, ValueError, "empty"),
    ([0.1] * 64, {}, TypeError, "torch.Tensor"),
])
def test_quantize_rejects_bad_input(bad, kwargs, error, match):
    with pytest.raises(error, match=match):
        quant.quantize_blockwise(bad, quant.nf4_codebook(), **kwargs)


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="quant_type"):
        quant.codebook("nf3")
    with pytest.raises(ValueError, match="sorted"):
        quant.quantize_blockwise(torch.randn(4), quant.nf4_codebook().flip(0), 4)
    with pytest.raises(ValueError, match="offset"):
        quant.nf4_codebook(1.5)
    with pytest.raises(ValueError, match="even length"):
        quant.pack_nibbles(torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="0..15"):
        quant.pack_nibbles(torch.tensor([16, 0], dtype=torch.uint8))
    with pytest.raises(TypeError, match="uint8"):
        quant.unpack_nibbles(torch.zeros(2))
    with pytest.raises(ValueError, match="absmax"):
        quant.dequantize_blockwise(torch.zeros(64, dtype=torch.uint8),
                                   torch.ones(3), quant.nf4_codebook())
    with pytest.raises(TypeError, match="nn.Linear"):
        quant.NF4Linear(torch.nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="does not divide"):
        quant.NF4Linear(torch.nn.Linear(10, 10))
    with pytest.raises(ValueError, match="blocksize"):
        quant.bits_per_parameter(0)


def test_non_finite_and_empty_inputs_are_rejected():
    with pytest.raises(ValueError, match="inf or nan"):
        quant.quantize_blockwise(torch.tensor([1.0, float("inf")]),
                                 quant.nf4_codebook(), 2)
    with pytest.raises(ValueError, match="inf or nan"):
        quant.quantize_4bit(torch.full((64,), float("nan")))
    with pytest.raises(ValueError, match="empty"):
        quant.dequantize_blockwise(torch.zeros(0, dtype=torch.uint8), torch.ones(1),
                                   quant.nf4_codebook())
    with pytest.raises(TypeError, match="uint8"):
        quant.double_dequantize(torch.zeros(4), torch.ones(1), 0.0)


def test_experiment_helpers():
    text = quant.python_docs_text()
    assert len(text) > 100_000 and "lambda" in text  # the standard library's docs
    with pytest.raises(ValueError, match="base must be one of"):
        quant.qlora_base("int8")
    with pytest.raises(ValueError, match="span"):
        quant.domain_split(None, 1)
    assert set(quant.QLORA_BASES) == {"fp32", "nf4"}

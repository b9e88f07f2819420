"""4-bit blockwise quantization as QLoRA does it (Dettmers et al. 2023).

A weight tensor is cut into blocks of ``blocksize`` consecutive numbers (in row-major
order). Each block b keeps its absolute maximum c_b (the "quantization constant") and
each number x its 4-bit code: the index of the level q_i of a 16-level codebook nearest
to x / c_b. Dequantization is x ≈ c_b q_code.

* ``nf4_codebook``: 4-bit NormalFloat, quantiles of N(0, 1) with an exact zero;
  ``fp4_codebook`` (E2M1) and ``int4_codebook`` for contrast.
* ``quantize_blockwise`` / ``dequantize_blockwise``; ``pack_nibbles`` /
  ``unpack_nibbles``; ``quantize_4bit`` / ``dequantize_4bit`` (the packed form).
* ``dynamic_map``, ``double_quantize`` / ``double_dequantize``: the constants c_b
  themselves quantized to 8 bits in blocks of 256 ("double quantization").
* ``bits_per_parameter``: the memory arithmetic; ``NF4Linear``, ``quantize_linears``.
* ``qlora_base``, ``domain_split``, ``finetune_lora``: the chapter's experiment, LoRA
  on the book's model with a float32 or an NF4 base (``scripts/qlora_finetune.py``).

Conventions are bitsandbytes' (checked in tests/test_quant.py): a number exactly
halfway between two levels takes the lower code (``torch.bucketize`` on the midpoints);
two codes share a byte with the FIRST number in the HIGH nibble; a block of zeros has
c_b = 0 and dequantizes to zeros; double quantization subtracts the mean of the c_b
first and uses the signed "dynamic" 8-bit map.

>>> import torch
>>> x = torch.tensor([0.0, 0.5, -1.0, 2.0])
>>> codes, absmax = quantize_blockwise(x, nf4_codebook(), blocksize=4)
>>> codes.tolist(), absmax.tolist()  # 2.0 is the block's max: x / c = 0, .25, -.5, 1
([7, 10, 2, 15], [2.0])
>>> pack_nibbles(codes).tolist()  # 0x7A, 0x2F: the first code in the high nibble
[122, 47]
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

NF4_OFFSET = 0.9677083  # bitsandbytes' outermost quantile, see nf4_codebook
QUANT_TYPES = ("nf4", "fp4", "int4")


# --- codebooks ------------------------------------------------------------------------

def nf4_codebook(offset: float = NF4_OFFSET) -> torch.Tensor:
    """The 16 NF4 levels, sorted, in [-1, 1], with an exact 0 (float32).

    The paper's Eq. 4 takes q_i as the mean of two neighbouring quantiles of N(0, 1);
    to get an exact zero it builds the halves apart: 8 quantiles for the positive half
    and 7 for the negative one, both from the same outermost quantile ``offset`` (so
    Q(offset) is the edge the largest level sits on), then one shared 0, and divides
    by the largest magnitude so that the levels span [-1, 1].
    """
    if not isinstance(offset, float) or not 0.5 < offset < 1.0:
        raise ValueError(f"offset must be a float in (0.5, 1), got {offset!r}")
    dt = torch.float64  # subtle: quantiles in float64, rounded once at the end
    positive = torch.special.ndtri(torch.linspace(offset, 0.5, 9, dtype=dt)[:-1])
    negative = -torch.special.ndtri(torch.linspace(offset, 0.5, 8, dtype=dt)[:-1])
    levels = torch.cat([positive, torch.zeros(1, dtype=dt), negative])  # 8 + 1 + 7
    levels = levels / levels.abs().max()  # normalise to [-1, 1]
    return levels.sort().values.float()


def fp4_codebook() -> torch.Tensor:
    """FP4 with 1 sign, 2 exponent and 1 mantissa bit (E2M1), sorted, scaled to [-1, 1].

    Magnitudes 0, 0.5 (subnormal), 1, 1.5, 2, 3, 4, 6, divided by 6; +0 and -0 are two
    codes of one value, so 15 distinct levels. bitsandbytes' "fp4" differs in its
    smallest magnitude (1/192 instead of 1/12) and in the order of its codes.
    """
    mags = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]) / 6.0
    return torch.cat([-mags.flip(0), mags]).sort().values  # -0 sorts next to +0


def int4_codebook() -> torch.Tensor:
    """Symmetric 4-bit integers k / 7, k = -7..7 (15 levels: -8 is left unused)."""
    return torch.arange(-7, 8, dtype=torch.float32) / 7


def codebook(quant_type: str) -> torch.Tensor:
    """The sorted levels of ``quant_type`` ("nf4", "fp4" or "int4")."""
    makers = {"nf4": nf4_codebook, "fp4": fp4_codebook, "int4": int4_codebook}
    if quant_type not in makers:
        raise ValueError(f"quant_type must be one of {QUANT_TYPES}, got {quant_type!r}")
    return makers[quant_type]()


# --- blockwise absmax quantization ---------------------------------------------------

def _check_tensor(x, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor (float32, float16, "
                        f"bfloat16), got {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: there is nothing to quantize")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds inf or nan: absmax scaling needs finite "
                         "numbers")


def _check_blocksize(blocksize, n: int) -> None:
    if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize < 1:
        raise ValueError(f"blocksize must be a positive integer, got {blocksize!r}")
    if n % blocksize:
        raise ValueError(f"blocksize {blocksize} does not divide the {n} numbers of "
                         f"the tensor; choose a blocksize that divides {n}")


def _check_codebook(levels) -> None:
    if not isinstance(levels, torch.Tensor) or levels.ndim != 1 \
            or not 2 <= len(levels) <= 256 or not levels.is_floating_point():
        raise ValueError("codebook must be a 1-d floating tensor of 2 to 256 levels, "
                         f"got {getattr(levels, 'shape', type(levels).__name__)}")
    if bool((levels[1:] < levels[:-1]).any()):
        raise ValueError("codebook levels must be sorted in increasing order")


def quantize_blockwise(x: torch.Tensor, levels: torch.Tensor, blocksize: int = 64):
    """x (any shape, n numbers) -> (codes (n,) uint8, absmax (n / blocksize,) float32).

    Block b = numbers b·B .. (b+1)·B - 1 of x flattened; c_b = max |x| over the block;
    code = the index of the level nearest to x / c_b (ties: the lower index).
    """
    _check_tensor(x)
    _check_codebook(levels)
    _check_blocksize(blocksize, x.numel())
    blocks = x.detach().reshape(-1, blocksize).float()  # (n / B, B)
    absmax = blocks.abs().amax(dim=1)  # c_b: (n / B,)
    # subtle: an all-zero block has c_b = 0; a tiny c_b instead keeps 0 / c_b = 0, so
    # its codes are the zero level and it dequantizes to zeros. And x · (1 / c_b), not
    # x / c_b: bitsandbytes' rounding, which decides a code at a near-tie
    scaled = blocks * (1.0 / absmax.clamp(min=1e-38))[:, None]  # in [-1, 1]
    levels = levels.to(x.device, torch.float32)
    midpoints = (levels[1:] + levels[:-1]) / 2  # decision boundaries between levels
    # bucketize: index i with mid[i-1] < s <= mid[i], so a tie takes the lower level
    codes = torch.bucketize(scaled.reshape(-1).clamp(-1, 1), midpoints)
    return codes.to(torch.uint8), absmax


def dequantize_blockwise(codes: torch.Tensor, absmax: torch.Tensor,
                         levels: torch.Tensor, shape=None) -> torch.Tensor:
    """x̂ = c_b · q_code, float32, reshaped to ``shape`` (default: flat)."""
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint8 \
            or codes.ndim != 1:
        raise TypeError("codes must be a 1-d uint8 tensor, got "
                        f"{getattr(codes, 'dtype', type(codes).__name__)}")
    _check_codebook(levels)
    if not isinstance(absmax, torch.Tensor) or absmax.ndim != 1 or len(absmax) == 0 \
            or codes.numel() % len(absmax):
        raise ValueError(f"absmax must be 1-d with a length dividing the "
                         f"{codes.numel()} codes, got "
                         f"{tuple(getattr(absmax, 'shape', ()))}")
    if codes.numel() == 0:
        raise ValueError("codes is empty: there is nothing to dequantize")
    if int(codes.max()) >= len(levels):
        raise ValueError(f"a code is {int(codes.max())}, but the codebook has only "
                         f"{len(levels)} levels")
    q = levels.to(codes.device, torch.float32)[codes.long()]  # q_code: (n,)
    x = (q.view(len(absmax), -1) * absmax.float()[:, None]).reshape(-1)
    return x if shape is None else x.reshape(shape)


def pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes a byte, the first in the high nibble: (n,) -> (n / 2,)."""
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint8 \
            or codes.ndim != 1 or len(codes) % 2:
        raise ValueError("codes must be a 1-d uint8 tensor of even length, got "
                         f"{getattr(codes, 'dtype', None)} "
                         f"{tuple(getattr(codes, 'shape', ()))}")
    if len(codes) and int(codes.max()) > 15:
        raise ValueError(f"4-bit codes lie in 0..15, got {int(codes.max())}")
    return (codes[0::2] << 4) | codes[1::2]


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    """The inverse of ``pack_nibbles``: (m,) uint8 -> (2 m,) codes."""
    if not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8:
        raise TypeError("packed must be a uint8 tensor, got "
                        f"{getattr(packed, 'dtype', type(packed).__name__)}")
    packed = packed.reshape(-1)
    return torch.stack([packed >> 4, packed & 0xF], dim=1).reshape(-1)


def quantize_4bit(x: torch.Tensor, quant_type: str = "nf4", blocksize: int = 64):
    """x -> (packed codes (n / 2,) uint8, absmax (n / blocksize,) float32)."""
    codes, absmax = quantize_blockwise(x, codebook(quant_type), blocksize)
    if codes.numel() % 2:
        raise ValueError(f"x has {codes.numel()} numbers; packing two codes a byte "
                         "needs an even number")
    return pack_nibbles(codes), absmax


def dequantize_4bit(packed: torch.Tensor, absmax: torch.Tensor, shape,
                    quant_type: str = "nf4") -> torch.Tensor:
    """The packed codes and constants of ``quantize_4bit`` -> float32 of ``shape``."""
    return dequantize_blockwise(unpack_nibbles(packed), absmax, codebook(quant_type),
                                shape)


# --- double quantization --------------------------------------------------------------

def dynamic_map() -> torch.Tensor:
    """bitsandbytes' signed 8-bit "dynamic" map (256 sorted levels in [-1, 1]).

    Dynamic tree quantization (Dettmers 2016): the leading zeros of a code pick a
    decade 10^-6 .. 10^0 and the remaining bits split [0.1, 1] of that decade linearly;
    decade 10^(e-6), e = 0..6, gets 2^e levels (the midpoints of 2^e equal steps), for
    each sign, plus 0 and 1: 2 (1 + 2 + ... + 64) + 2 = 256 levels.
    """
    values = [0.0, 1.0]
    for e in range(7):
        edges = torch.linspace(0.1, 1, 2 ** e + 1, dtype=torch.float32)
        mids = ((edges[:-1] + edges[1:]) / 2 * 10 ** (e - 6)).tolist()
        values += mids + [-m for m in mids]
    return torch.tensor(sorted(values), dtype=torch.float32)


def _split(n: int, blocksize: int) -> list[tuple[int, int]]:
    """(start, size) of the blocks of n numbers: full ones, then a shorter last one."""
    full = n - n % blocksize
    return [(s, blocksize) for s in range(0, full, blocksize)] + \
        ([(full, n - full)] if n > full else [])


def double_quantize(absmax: torch.Tensor, blocksize: int = 256):
    """c_2 (the fp32 constants of a 4-bit tensor) -> (codes uint8, c_1 float32, mean).

    The paper's double quantization: subtract the mean of the c_2 (they are all
    positive, so centring uses the 8-bit range both ways), then quantize them blockwise,
    ``blocksize`` at a time, to the 8-bit dynamic map, keeping one fp32 c_1 per block.
    As in bitsandbytes, the last block may be shorter (a layer's count of constants is
    rarely a multiple of 256).
    """
    _check_tensor(absmax, "absmax")
    if absmax.ndim != 1:
        raise ValueError(f"absmax must be 1-d, got shape {tuple(absmax.shape)}")
    _check_blocksize(blocksize, blocksize)  # a positive integer (divides itself)
    mean = absmax.float().mean()
    centred, dmap = absmax.float() - mean, dynamic_map()
    parts = [quantize_blockwise(centred[s:s + b], dmap, b)
             for s, b in _split(len(absmax), blocksize)]
    return (torch.cat([c for c, _ in parts]), torch.cat([a for _, a in parts]),
            mean)


def double_dequantize(codes: torch.Tensor, c1: torch.Tensor, mean,
                      blocksize: int = 256) -> torch.Tensor:
    """The 8-bit constants of ``double_quantize`` -> the fp32 c_2, approximately."""
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint8 \
            or codes.ndim != 1:
        raise TypeError("codes must be a 1-d uint8 tensor, got "
                        f"{getattr(codes, 'dtype', type(codes).__name__)}")
    blocks = _split(codes.numel(), blocksize)
    if not isinstance(c1, torch.Tensor) or c1.shape != (len(blocks),):
        raise ValueError(f"{codes.numel()} codes in blocks of {blocksize} need "
                         f"{len(blocks)} constants c_1, got "
                         f"{tuple(getattr(c1, 'shape', ()))}")
    dmap = dynamic_map()
    parts = [dequantize_blockwise(codes[s:s + b], c1[i:i + 1], dmap)
             for i, (s, b) in enumerate(blocks)]
    return torch.cat(parts) + mean


def bits_per_parameter(blocksize: int = 64, double: bool = False,
                       blocksize2: int = 256, constant_bits: int = 32) -> float:
    """Memory of a 4-bit blockwise-quantized weight, in bits per parameter.

    4 bits a code, plus one ``constant_bits`` constant per ``blocksize`` numbers; with
    double quantization the constants take 8 bits each, plus one fp32 constant per
    ``blocksize2`` of them: 4 + 32/64 = 4.5 bits, or 4 + 8/64 + 32/(64·256) ≈ 4.127.
    """
    for name, v in (("blocksize", blocksize), ("blocksize2", blocksize2),
                    ("constant_bits", constant_bits)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not double:
        return 4 + constant_bits / blocksize
    return 4 + 8 / blocksize + constant_bits / (blocksize * blocksize2)


# --- a frozen 4-bit linear layer ------------------------------------------------------

class NF4Linear(nn.Module):
    """A frozen ``nn.Linear`` stored in 4 bits, dequantized on the fly in ``forward``.

    QLoRA's storage and compute data types: the weight W (out x in) is kept as packed
    4-bit codes and per-block constants (double-quantized if ``double_quant``) and
    turned back into float32 for every matrix product, Y = X dequant(W)^T + b. The
    bias stays in float32. No parameter here is trained: LoRA adapters go around it
    (``mlf.lora.LoRALinear``), and gradients flow through it to the input.
    quant_type: "nf4" (the paper), or "fp4" / "int4" for contrast.
    """

    def __init__(self, linear: nn.Linear, quant_type: str = "nf4",
                 blocksize: int = 64, double_quant: bool = False):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        levels = codebook(quant_type)
        w = linear.weight.detach()  # W: (out, in)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.quant_type, self.blocksize = quant_type, blocksize
        self.double_quant = double_quant
        codes, absmax = quantize_blockwise(w, levels, blocksize)
        self.register_buffer("packed", pack_nibbles(codes))  # (out · in / 2,) uint8
        self.register_buffer("levels", levels.to(w.device))
        if double_quant:
            codes2, c1, mean = double_quantize(absmax)
            self.register_buffer("absmax_codes", codes2)  # 8 bits per constant
            self.register_buffer("absmax_c1", c1)  # one fp32 per 256 constants
            self.register_buffer("absmax_mean", mean.reshape(1))
        else:
            self.register_buffer("absmax", absmax)  # fp32 c_2: one per block
        bias = linear.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(),
                                                           requires_grad=False)

    def constants(self) -> torch.Tensor:
        """The per-block constants c_2 (after double dequantization, if used)."""
        if self.double_quant:
            return double_dequantize(self.absmax_codes, self.absmax_c1,
                                     self.absmax_mean)
        return self.absmax

    def dequantized_weight(self) -> torch.Tensor:
        """dequant(W): (out, in) float32."""
        return dequantize_blockwise(unpack_nibbles(self.packed), self.constants(),
                                    self.levels, (self.out_features, self.in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.dequantized_weight().to(x.dtype)  # BF16 in the paper; float32 here
        return F.linear(x, w, self.bias)

    def storage_bits(self) -> int:
        """Bits the frozen weight takes: codes and constants (the bias not counted)."""
        return sum(b.numel() * b.element_size() * 8 for n, b in self.named_buffers()
                   if n != "levels")

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"quant_type={self.quant_type!r}, blocksize={self.blocksize}, "
                f"double_quant={self.double_quant}")


def quantize_linears(model: nn.Module, quant_type: str = "nf4", blocksize: int = 64,
                     double_quant: bool = False, skip=()) -> nn.Module:
    """Replace every ``nn.Linear`` of ``model`` (in place) by an ``NF4Linear``.

    skip: qualified names left in full precision. Returns the model.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    codebook(quant_type)  # check the type before changing anything
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and n not in set(skip)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear to quantize")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, NF4Linear(getattr(parent, child), quant_type,
                                         blocksize, double_quant))
    return model


# --- the chapter's experiment: LoRA on a 4-bit base of the book's model --------------

# LoRA r = 8, α = 16 on all six linear layers of every block; AdamW at a constant rate
# (floor = 1 in mlf.gpt.train_steps); seed s fixes A and the batches for every base
QLORA_SETUP = {"seeds": [0, 1, 2, 3, 4], "steps": 30, "eval_every": 10, "batch": 8,
               "lr": 2e-3, "r": 8, "alpha": 16, "blocksize": 64,
               "targets": ["w_q", "w_k", "w_v", "w_o", "w_1", "w_2"],
               "train_fraction": 0.9, "eval_windows": 32}
QLORA_BASES = {"fp32": None, "nf4": ("nf4", False)}  # name -> (quant_type, double)


def python_docs_text() -> str:
    """Python's documentation topics (``pydoc_data``, in the standard library), sorted
    by topic, as one text: a domain the Shakespeare model has never seen."""
    from pydoc_data.topics import topics
    return "\n\n".join(topics[k] for k in sorted(topics))


def domain_split(bpe, span: int):
    """(train stream (n,) ids, eval windows (32, span)) of the Python docs: the first
    90% of the tokens to train on, the first 32 windows of the rest to evaluate."""
    if isinstance(span, bool) or not isinstance(span, int) or span < 2:
        raise ValueError(f"span must be an integer >= 2, got {span!r}")
    ids = torch.tensor(bpe.encode(python_docs_text()))
    cut = int(len(ids) * QLORA_SETUP["train_fraction"])
    test = ids[cut:]
    windows = test[: len(test) // span * span].view(-1, span)  # (N, span)
    return ids[:cut], windows[: QLORA_SETUP["eval_windows"]]


def qlora_base(name: str):
    """(model, tokenizer): the book's model, its linear layers quantized as ``name``
    ("fp32": left as trained; "nf4": every nn.Linear in NF4, blocks of 64)."""
    if name not in QLORA_BASES:
        raise ValueError(f"base must be one of {tuple(QLORA_BASES)}, got {name!r}")
    from mlf.gpt import load_book_lm  # subtle: late, so mlf.quant stays light
    model, bpe, _ = load_book_lm()
    if QLORA_BASES[name] is not None:
        quant_type, double = QLORA_BASES[name]
        quantize_linears(model, quant_type, QLORA_SETUP["blocksize"], double)
    return model, bpe


def finetune_lora(model: nn.Module, train: torch.Tensor, seed: int, steps: int,
                  callback=None) -> list[float]:
    """LoRA (``QLORA_SETUP``) on ``model``, in place, for ``steps`` AdamW updates on
    random windows of ``train``; the training loss of every update."""
    from mlf.gpt import train_steps
    from mlf.lora import add_lora, lora_parameters
    s = QLORA_SETUP
    add_lora(model, s["targets"], s["r"], s["alpha"], seed=seed)  # A from the seed
    return train_steps(model, train, steps, batch=s["batch"], lr=s["lr"],
                       weight_decay=0.0, floor=1.0, params=lora_parameters(model),
                       generator=torch.Generator().manual_seed(seed),
                       callback=callback)

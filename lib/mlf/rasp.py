"""RASP, the Restricted Access Sequence Processing language (Weiss et al. 2021).

A RASP program maps an input sequence to an output sequence of the same length. It is
built from *s-ops* (sequence operators): the two inputs ``tokens`` and ``indices``,
elementwise maps of s-ops (``Map``, ``SequenceMap``: an MLP in a transformer), and two
operations over positions, made from a *selector* ``Select(keys, queries, comparison)``
(an attention pattern):

* ``Aggregate(selector, sop)``: each query position averages ``sop`` over the key
  positions its selector row chooses (one attention head). It is the only operation
  that moves values between positions.
* ``SelectorWidth(selector)``: how many positions each query chooses (one head and an
  MLP, with a beginning-of-sequence token to attend to).

Conventions, as in the paper and in DeepMind's ``tracr``:

* ``Select(keys, queries, "<")`` chooses key position k for query position q when
  ``keys[k] < queries[q]``: the comparison reads *key* then *query*.
* A **numerical** aggregate is the mean of the chosen values (``default`` where none is
  chosen); a **categorical** one must choose at most one value (several equal values
  are accepted), else a ``ValueError``. ``tracr`` compiles the same two kinds.

    >>> hist = make_histogram()
    >>> hist("abaca")
    [3, 1, 3, 1, 3]
    >>> make_sort(max_len=5)([3, 1, 2, 1])
    [1, 1, 2, 3]
    >>> layers_and_heads(make_sort(max_len=5))
    (2, 1)

Bad programs and inputs raise ``TypeError`` (a wrong kind of object) or ``ValueError``
(a wrong value) saying what was expected.
"""
from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Sequence
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "rasp"  # the chapter's results

COMPARISONS: dict[str, Callable] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
    "true": lambda key, query: True, "false": lambda key, query: False,
}


class SOp:
    """A sequence operator: a function from an input sequence to a sequence."""

    numerical = False

    def children(self) -> tuple:
        return ()

    def __call__(self, xs):
        return evaluate(self, xs)


class _Tokens(SOp):
    def __repr__(self):
        return "tokens"


class _Indices(SOp):
    def __repr__(self):
        return "indices"


tokens, indices = _Tokens(), _Indices()


class Map(SOp):
    """f applied at every position: ``Map(f, x)[i] = f(x[i])`` (an MLP)."""

    def __init__(self, f: Callable, sop: SOp, numerical: bool = False):
        _check_callable(f)
        _check_sop("Map's input", sop)
        self.f, self.sop, self.numerical = f, sop, bool(numerical)

    def children(self):
        return (self.sop,)


class SequenceMap(SOp):
    """f of two s-ops at every position: ``f(a[i], b[i])`` (an MLP)."""

    def __init__(self, f: Callable, a: SOp, b: SOp, numerical: bool = False):
        _check_callable(f)
        _check_sop("SequenceMap's first input", a)
        _check_sop("SequenceMap's second input", b)
        self.f, self.a, self.b, self.numerical = f, a, b, bool(numerical)

    def children(self):
        return (self.a, self.b)


class Select:
    """A selector: a boolean matrix, row q choosing the keys k with
    ``comparison(keys[k], queries[q])``. Not an s-op; only aggregates consume it."""

    def __init__(self, keys: SOp, queries: SOp, comparison: str):
        _check_sop("Select's keys", keys)
        _check_sop("Select's queries", queries)
        _check_comparison(comparison)
        self.keys, self.queries, self.comparison = keys, queries, comparison

    def children(self):
        return (self.keys, self.queries)


class Aggregate(SOp):
    """Average (numerical) or copy (categorical) ``sop`` over the selected keys."""

    def __init__(self, selector: Select, sop: SOp, numerical: bool = False,
                 default=None):
        _check_selector(selector)
        _check_sop("Aggregate's values", sop)
        if numerical and default is None:
            default = 0
        self.selector, self.sop = selector, sop
        self.numerical, self.default = bool(numerical), default

    def children(self):
        return (self.selector, self.sop)


class SelectorWidth(SOp):
    """The number of keys each query selects."""

    def __init__(self, selector: Select):
        _check_selector(selector)
        self.selector = selector

    def children(self):
        return (self.selector,)


# -- the operations on concrete sequences -------------------------------------------


def select(keys: Sequence, queries: Sequence, comparison: str) -> list[list[bool]]:
    """The selector matrix S, S[q][k] = comparison(keys[k], queries[q])."""
    _check_comparison(comparison)
    if len(keys) != len(queries):
        raise ValueError(f"keys and queries must have one length, got {len(keys)} "
                         f"and {len(queries)}: s-ops of one program share the input")
    pred = COMPARISONS[comparison]
    return [[bool(pred(k, q)) for k in keys] for q in queries]


def aggregate(matrix, values: Sequence, numerical: bool = False, default=None) -> list:
    """out[q] = the mean (numerical) or the one value (categorical) selected."""
    if not isinstance(values, (list, tuple, str)):
        raise TypeError(f"values must be a list, tuple or string, got "
                        f"{type(values).__name__}")
    _check_matrix(matrix, len(values))
    out = []
    for q, row in enumerate(matrix):
        chosen = [v for v, s in zip(values, row) if s]
        if not chosen:
            out.append(0 if numerical and default is None else default)
        elif numerical:
            if not all(isinstance(v, numbers.Number) for v in chosen):
                raise TypeError(f"a numerical aggregate averages numbers, got "
                                f"{chosen!r} at query {q}")
            out.append(sum(chosen) / len(chosen))
        elif any(v != chosen[0] for v in chosen):
            raise ValueError(f"a categorical aggregate must select one value, but "
                             f"query {q} selects {chosen!r}; average numbers with "
                             "numerical=True")
        else:
            out.append(chosen[0])
    return out


def selector_width(matrix) -> list[int]:
    """out[q] = the number of keys query q selects."""
    _check_matrix(matrix)
    return [sum(row) for row in matrix]


def evaluate(program: SOp, xs) -> list:
    """Run ``program`` on the input sequence ``xs`` (a list, tuple or string)."""
    _check_sop("program", program)
    if not isinstance(xs, (list, tuple, str)):
        raise TypeError(f"the input must be a list, tuple or string, got "
                        f"{type(xs).__name__}")
    xs, memo = list(xs), {}

    def run(node):  # each node once, however often it is shared
        if id(node) not in memo:
            memo[id(node)] = _step(node, run, xs)
        return memo[id(node)]

    return run(program)


def _step(node, run, xs):
    if node is tokens:
        return xs
    if node is indices:
        return list(range(len(xs)))
    if isinstance(node, Map):
        return [node.f(x) for x in run(node.sop)]
    if isinstance(node, SequenceMap):
        return [node.f(a, b) for a, b in zip(run(node.a), run(node.b))]
    if isinstance(node, Select):
        return select(run(node.keys), run(node.queries), node.comparison)
    if isinstance(node, Aggregate):
        return aggregate(run(node.selector), run(node.sop), node.numerical,
                         node.default)
    if isinstance(node, SelectorWidth):
        return selector_width(run(node.selector))
    raise TypeError(f"unknown RASP operation {type(node).__name__}")


# -- what a program needs of a transformer ------------------------------------------


def attention_layers(program: SOp) -> dict[int, list]:
    """The heads each attention layer needs: one per selector.

    An aggregate or selector width sits one layer above the deepest attention
    operation it reads (through its selector or its values); maps cost no layer, since
    an MLP follows every attention sublayer. Aggregates in one layer that share a
    selector share a head (the paper's count); each selector width has its own.
    """
    _check_sop("program", program)
    level, layers = {}, {}

    def depth(node) -> int:  # the attention layer that has computed `node`
        if id(node) not in level:
            below = max((depth(c) for c in node.children()), default=0)
            attends = isinstance(node, (Aggregate, SelectorWidth))
            level[id(node)] = below + 1 if attends else below
            if attends:
                heads = layers.setdefault(below + 1, [])
                shared = isinstance(node, Aggregate) and any(
                    isinstance(h, Aggregate) and h.selector is node.selector
                    for h in heads)
                if not shared:
                    heads.append(node)
        return level[id(node)]

    depth(program)
    return dict(sorted(layers.items()))


def layers_and_heads(program: SOp) -> tuple[int, int]:
    """(layers, most heads in one layer): the transformer size the program implies."""
    layers = attention_layers(program)
    return len(layers), max((len(ops) for ops in layers.values()), default=0)


# -- the paper's programs -----------------------------------------------------------


def make_length() -> SOp:
    """length[i] = n: the width of a selector that chooses every position."""
    return SelectorWidth(Select(tokens, tokens, "true"))


def make_reverse() -> SOp:
    """reverse[i] = tokens[n - 1 - i]: 2 layers, 1 head."""
    opp = SequenceMap(lambda n, i: n - 1 - i, make_length(), indices)
    return Aggregate(Select(indices, opp, "=="), tokens)


def make_histogram() -> SOp:
    """hist[i] = how often tokens[i] occurs: 1 layer, 1 head."""
    return SelectorWidth(Select(tokens, tokens, "=="))


def make_sort(max_len: int, keys: SOp | None = None, vals: SOp | None = None) -> SOp:
    """``vals`` sorted by ``keys`` (both default to the tokens): 2 layers, 1 head.

    Keys must be integers. Equal keys are made unique by adding i / (2 max_len) at
    position i (less than 1/2), so that equal keys keep their input order; the program
    refuses inputs longer than ``max_len``, where that offset could reach a larger key.
    """
    _check_max_len(max_len)
    keys = tokens if keys is None else keys
    vals = tokens if vals is None else vals
    # orig: the paper's selector is select(k, k, <) or (select(k, k, ==) and
    # select(i, i, <)); tracr compiles no selector algebra, so keys are made unique
    unique = SequenceMap(_tie_break(max_len), keys, indices)
    smaller = SelectorWidth(Select(unique, unique, "<"))  # target position of each
    return Aggregate(Select(smaller, indices, "=="), vals)


def _tie_break(max_len: int) -> Callable:
    def unique(k, i):  # k + i / (2 max_len): k's order kept, ties broken by i
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"sort keys must be integers, got {k!r}; map symbols to "
                            "integers first")
        if i >= max_len:
            raise ValueError(f"this sort was made for at most {max_len} tokens "
                             f"(make_sort(max_len={max_len})), got position {i}")
        return k + i / (2 * max_len)
    return unique


def make_most_frequent(max_len: int) -> SOp:
    """The tokens, most frequent first (ties in input order): 3 layers, 1 head."""
    _check_max_len(max_len)
    # orig: the paper's most_freq keeps one copy of each token (a second head in
    # layer 1 finds earlier copies, which become a filler sorted last); we sort all
    # tokens by -histogram, equal counts in input order
    minus_hist = Map(lambda h: -h, make_histogram())
    return make_sort(max_len, keys=minus_hist)


def make_dyck1() -> SOp:
    """Dyck-1 per prefix: "T" balanced, "P" still open, "F" failed: 2 layers, 1 head.

    The two fractions in layer 1 share one selector, so one head computes both (its
    value is two-dimensional); ``tracr`` gives each its own head.
    """
    prefix = Select(indices, indices, "<=")  # query i averages over keys 0..i

    def frac_prevs(symbol):  # the fraction of positions 0..i holding `symbol`
        is_symbol = Map(lambda t: 1 if t == symbol else 0, tokens, numerical=True)
        fraction = Aggregate(prefix, is_symbol, numerical=True)
        return Map(lambda f: f, fraction)  # numerical -> categorical, for the MLPs

    opens, closes = frac_prevs("("), frac_prevs(")")
    below = SequenceMap(lambda o, c: 1 if o < c else 0, opens, closes)
    below = Map(lambda b: b, below, numerical=True)  # categorical -> numerical
    failed = Map(lambda f: f > 0, Aggregate(prefix, below, numerical=True))
    closed = SequenceMap(lambda o, c: o == c, opens, closes)
    return SequenceMap(lambda f, c: "F" if f else ("T" if c else "P"), failed, closed)


def dyck1_reference(xs: str) -> list[str]:
    """The Dyck-1 labels by counting, for checking ``make_dyck1``."""
    out, depth, failed = [], 0, False
    for x in xs:
        depth += {"(": 1, ")": -1}.get(x, 0)
        failed = failed or depth < 0
        out.append("F" if failed else ("T" if depth == 0 else "P"))
    return out


# -- compiling with tracr -----------------------------------------------------------


def to_tracr(program: SOp):
    """The same program in ``tracr``'s RASP (its nodes shared as in ours)."""
    from tracr.rasp import rasp as tr

    _check_sop("program", program)
    comparison = {"==": tr.Comparison.EQ, "!=": tr.Comparison.NEQ,
                  "<": tr.Comparison.LT, "<=": tr.Comparison.LEQ,
                  ">": tr.Comparison.GT, ">=": tr.Comparison.GEQ,
                  "true": tr.Comparison.TRUE, "false": tr.Comparison.FALSE}
    memo = {id(tokens): tr.tokens, id(indices): tr.indices}

    def kind(node, expr):
        return tr.numerical(expr) if node.numerical else tr.categorical(expr)

    def go(node):
        if id(node) in memo:
            return memo[id(node)]
        if isinstance(node, Map):
            expr = kind(node, tr.Map(node.f, go(node.sop), simplify=False))
        elif isinstance(node, SequenceMap):
            expr = kind(node, tr.SequenceMap(node.f, go(node.a), go(node.b)))
        elif isinstance(node, Select):
            expr = tr.Select(go(node.keys), go(node.queries),
                             comparison[node.comparison])
        elif isinstance(node, Aggregate):
            expr = kind(node, tr.Aggregate(go(node.selector), go(node.sop),
                                           default=node.default))
        elif isinstance(node, SelectorWidth):
            expr = tr.categorical(tr.SelectorWidth(go(node.selector)))
        else:
            raise TypeError(f"unknown RASP operation {type(node).__name__}")
        memo[id(node)] = expr
        return expr

    return go(program)


def compile_tracr(program: SOp, vocab: set, max_len: int):
    """Compile ``program`` to transformer weights with ``tracr`` (BOS and PAD added)."""
    from tracr.compiler import compiling

    _check_max_len(max_len)
    if not isinstance(vocab, (set, frozenset)) or not vocab:
        raise ValueError(f"vocab must be a non-empty set of tokens, got {vocab!r}")
    return compiling.compile_rasp_to_model(to_tracr(program), vocab=set(vocab),
                                           max_seq_len=max_len, compiler_bos="BOS",
                                           compiler_pad="PAD")


def run_tracr(model, inputs: Sequence[Sequence]):
    """The compiled model on a batch: (outputs without BOS, attention logits).

    Inputs are padded to the model's length, so one jit-compiled shape serves all;
    PAD positions are masked out of attention. Logits: one (B, T, T, heads) per layer.
    """
    import jax
    import jax.numpy as jnp

    n = model.params["pos_embed"]["embeddings"].shape[0] - 1  # without BOS
    if not inputs or any(not 0 < len(x) <= n for x in inputs):
        raise ValueError(f"inputs must be 1 to {n} tokens long, got lengths "
                         f"{sorted({len(x) for x in inputs})}")
    if not hasattr(model, "jitted"):
        model.jitted = jax.jit(model.forward)
    bos, pad = model.input_encoder.bos_token, model.input_encoder.pad_token
    ids = jnp.array([model.input_encoder.encode([bos, *x] + [pad] * (n - len(x)))
                     for x in inputs])
    out = model.jitted(model.params, ids)
    rows = out.unembedded_output.tolist()  # (B, 1 + n) output class ids
    decoded = [model.output_encoder.decode(r)[1:1 + len(x)]
               for r, x in zip(rows, inputs)]
    return decoded, out.transformer_output.attn_logits


# -- checks -------------------------------------------------------------------------


def _check_sop(name, x):
    if not isinstance(x, SOp):
        hint = " (a selector is consumed by Aggregate or SelectorWidth)" \
            if isinstance(x, Select) else ""
        raise TypeError(f"{name} must be an s-op (tokens, indices, Map, SequenceMap, "
                        f"Aggregate, SelectorWidth), got {type(x).__name__}{hint}")


def _check_selector(x):
    if not isinstance(x, Select):
        raise TypeError(f"expected a selector made by Select(keys, queries, "
                        f"comparison), got {type(x).__name__}")


def _check_comparison(name):
    if not isinstance(name, str) or name not in COMPARISONS:
        raise ValueError(f"unknown comparison {name!r}; expected one of "
                         f"{', '.join(COMPARISONS)}")


def _check_callable(f):
    if not callable(f):
        raise TypeError(f"expected a function to map with, got {type(f).__name__}")


def _check_max_len(n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"max_len must be a positive integer, got {n!r}")


def _check_matrix(matrix, n=None):
    if not isinstance(matrix, (list, tuple)):
        raise TypeError(f"a selector must be a list of rows of booleans, got "
                        f"{type(matrix).__name__}")
    n = len(matrix) if n is None else n
    if len(matrix) != n \
            or any(not isinstance(r, (list, tuple)) or len(r) != n for r in matrix):
        raise ValueError(f"a selector over {n} positions must be {n} rows of {n} "
                         "booleans; s-ops of one program share the input length")
    if any(not isinstance(s, bool) for row in matrix for s in row):
        raise TypeError("a selector's entries must be booleans (True: attend), got "
                        f"{sorted({type(s).__name__ for r in matrix for s in r})}")


# -- learning the tasks from data ---------------------------------------------------
# (kept apart from the interpreter above: torch is imported only here)

TASKS = ("histogram", "sort")


def make_task_batch(task: str, batch: int, n: int, vocab: int, generator):
    """Random inputs and targets for a trained model: (B, 1 + n) ids, (B, n) labels.

    Position 0 holds BOS (id 0); tokens are ids 1..vocab. ``histogram``: how often each
    token occurs (1..n); ``sort``: the tokens in ascending order (ids 1..vocab).
    """
    import torch

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    for name, v in (("batch", batch), ("n", n), ("vocab", vocab)):
        _check_positive(name, v)
    x = torch.randint(1, vocab + 1, (batch, n), generator=generator)  # (B, n)
    if task == "histogram":
        y = (x[:, :, None] == x[:, None, :]).sum(-1)  # (B, n): counts, 1..n
    else:
        y = x.sort(dim=-1).values
    bos = torch.zeros(batch, 1, dtype=x.dtype)
    return torch.cat([bos, x], dim=1), y


def _check_positive(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")


def encoder_classifier(vocab: int, n_out: int, n_layers: int, n_heads: int,
                       d_model: int = 64, d_ff: int = 128, max_len: int = 16):
    """A pre-norm Transformer encoder (no causal mask) with one label per position,
    from ``mlf.transformer``'s layers: ids (B, T) -> logits (B, T, n_out).

    ``n_layers = 0`` leaves embeddings and one feed-forward block, no attention: a
    model that cannot look at other positions.
    """
    import torch
    from torch import nn

    from mlf import transformer as tf

    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 0:
        raise ValueError(f"n_layers must be a non-negative integer, got {n_layers!r}")
    for name, v in (("vocab", vocab), ("n_out", n_out), ("n_heads", n_heads)):
        _check_positive(name, v)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab + 1, d_model)  # + BOS, id 0
            self.pos = tf.LearnedPositions(d_model, max_len, std=0.1)
            self.layers = nn.ModuleList(
                tf.EncoderLayer(d_model, n_heads, tf.FeedForward(d_model, d_ff),
                                norm_first=True) for _ in range(n_layers))
            self.ffn = tf.FeedForward(d_model, d_ff) if n_layers == 0 else None
            self.norm, self.out = tf.LayerNorm(d_model), nn.Linear(d_model, n_out)

        def forward(self, ids):  # (B, T) -> (B, T, n_out)
            x = self.pos(self.embed(ids))
            for layer in self.layers:
                x = layer(x)
            if self.ffn is not None:
                x = x + self.ffn(x)
            return self.out(self.norm(x))

        def attention(self) -> list[torch.Tensor]:  # per layer (B, h, T, T), last call
            return [layer.attn.weights for layer in self.layers]

    return Encoder()


def train_task(task: str, n_layers: int, n_heads: int = 1, *, seed: int = 0,
               steps: int = 600, batch: int = 64, n: int = 8, vocab: int = 8,
               lr: float = 3e-3, test_size: int = 1000, device=None, desc=None):
    """Train ``encoder_classifier`` on ``task``; returns (model, result).

    ``result``: the losses, and the test accuracy per token and per whole sequence on
    ``test_size`` inputs drawn from a generator of its own (seed + 10_000).
    """
    import torch
    from torch.nn import functional as F

    from mlf.notebook import progress

    device = torch.device("cpu") if device is None else device
    n_out = (n if task == "histogram" else vocab) + 1
    torch.manual_seed(seed)
    model = encoder_classifier(vocab, n_out, n_layers, n_heads, max_len=n + 1)
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    draw = torch.Generator().manual_seed(seed)
    losses = []
    for step in progress(range(steps), desc=desc or f"{task}, {n_layers} layers"):
        x, y = make_task_batch(task, batch, n, vocab, draw)
        rate = lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step
                                                                      / steps))
        for group in opt.param_groups:
            group["lr"] = rate
        logits = model(x.to(device))[:, 1:]  # (B, n, n_out), BOS dropped
        loss = F.cross_entropy(logits.reshape(-1, n_out), y.to(device).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, {"losses": losses, **evaluate_task(model, task, n, vocab, seed,
                                                      test_size, device)}


def evaluate_task(model, task, n, vocab, seed, test_size=1000, device=None):
    """Test accuracy per token and per sequence on inputs from seed + 10_000."""
    import torch

    x, y = make_task_batch(task, test_size, n, vocab,
                           torch.Generator().manual_seed(seed + 10_000))
    with torch.no_grad():
        pred = model(x.to(device))[:, 1:].argmax(-1).cpu()  # (B, n)
    right = pred == y
    return {"token_accuracy": right.float().mean().item(),
            "sequence_accuracy": right.all(-1).float().mean().item()}

"""Needle in a haystack: does a model find one fact planted anywhere in a long input?

The test of the Gemini 1.5 report (Gemini Team 2024, section 5.2.1, Fig. 1), after Greg
Kamradt's: a *needle*, a short statement, is inserted into a *haystack* of unrelated
filler at a *depth* (0 = the start, 1 = just before the question), the question that
asks for it is appended, and the answer is right or wrong. A grid of context lengths x
depths, a few trials each, gives the report's heatmap.

The harness knows nothing of the model. ``needle_grid`` asks a ``task`` for filler
(``task.haystack(n, generator)``) and a needle (``task.needle(generator)`` -> needle
ids, query ids, answer), builds the prompts, and hands them to ``score_fn``: a function
from prompts (B, T) to scores (B, C) over C candidate answers. The answer counts as
recalled when it has the highest score: for a language model whose ``score_fn`` gives
the next-token logits over the whole vocabulary, that is greedy decoding of one token.

>>> task = KeyValueTask(n_filler=4, n_keys=2)     # ids: filler 0-3, keys 4-5, QUERY 6
>>> filler = torch.tensor([0, 1, 2, 3, 0, 1])
>>> build_prompt(filler, torch.tensor([5, 3]), torch.tensor([6, 5]), 0.5).tolist()
[0, 1, 2, 5, 3, 3, 0, 1, 6, 5]
>>> needle_grid(task.oracle_scores, task, [10, 20], [0.0, 1.0], trials=5,
...             generator=torch.Generator().manual_seed(0)).tolist()
[[1.0, 1.0], [1.0, 1.0]]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from mlf.gpt import GPT, cosine_rate, with_context
from mlf.notebook import progress


def _check_depth(depth) -> float:
    if isinstance(depth, bool) or not isinstance(depth, (int, float)) \
            or not 0.0 <= depth <= 1.0:
        raise ValueError(f"depth must be a number in [0, 1] (0: the start of the "
                         f"haystack, 1: just before the question), got {depth!r}")
    return float(depth)


def _check_ids(ids, name: str) -> None:
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or ids.dtype != torch.long:
        raise ValueError(f"{name} must be a 1-d tensor of token ids (torch.long), got "
                         f"{getattr(ids, 'dtype', type(ids).__name__)} "
                         f"{tuple(getattr(ids, 'shape', ()))}")


def needle_position(n_filler: int, depth: float) -> int:
    """Where the needle starts among ``n_filler`` filler tokens: round(depth * n),
    so depth 0 puts it first and depth 1 right after the last filler token."""
    depth = _check_depth(depth)
    if isinstance(n_filler, bool) or not isinstance(n_filler, int) or n_filler < 0:
        raise ValueError(f"n_filler must be a non-negative integer, got {n_filler!r}")
    return round(depth * n_filler)


def build_prompt(filler: torch.Tensor, needle: torch.Tensor, query: torch.Tensor,
                 depth: float) -> torch.Tensor:
    """filler[:p] + needle + filler[p:] + query, p = ``needle_position``: (T,) with
    T = len(filler) + len(needle) + len(query)."""
    for ids, name in ((filler, "filler"), (needle, "needle"), (query, "query")):
        _check_ids(ids, name)
    p = needle_position(len(filler), depth)
    return torch.cat([filler[:p], needle, filler[p:], query])


def _check_scores(scores, n_prompts: int, answers: torch.Tensor) -> None:
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2 \
            or scores.shape[0] != n_prompts or not scores.is_floating_point():
        raise ValueError(f"score_fn must return floating-point scores of shape "
                         f"(prompts, candidates) = ({n_prompts}, C), got "
                         f"{getattr(scores, 'dtype', type(scores).__name__)} "
                         f"{tuple(getattr(scores, 'shape', ()))}")
    if int(answers.max()) >= scores.shape[1]:
        raise ValueError(f"score_fn scores {scores.shape[1]} candidates, but an answer "
                         f"is candidate {int(answers.max())}")
    if not torch.isfinite(scores).all():
        raise ValueError("score_fn returned NaN or infinite scores")


def _check_grid_args(lengths, depths, trials, batch) -> None:
    if not isinstance(lengths, (list, tuple)) or not lengths or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in lengths):
        raise ValueError(f"lengths must be a non-empty list of positive integers "
                         f"(tokens per prompt), got {lengths!r}")
    if not isinstance(depths, (list, tuple)) or not depths:
        raise ValueError(f"depths must be a non-empty list of numbers in [0, 1], "
                         f"got {depths!r}")
    for depth in depths:
        _check_depth(depth)
    for name, value in (("trials", trials), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def needle_trials(task, length: int, depth: float, trials: int,
                  generator: torch.Generator | None = None):
    """``trials`` prompts of ``length`` tokens, each with a fresh needle at ``depth``
    in fresh filler -> prompts (trials, length), answers (trials,)."""
    prompts, answers = [], []
    for _ in range(trials):
        needle, query, answer = task.needle(generator)
        n_filler = length - len(needle) - len(query)
        if n_filler < 0:
            raise ValueError(f"a prompt of {length} tokens cannot hold the needle "
                             f"({len(needle)} tokens) and the question ({len(query)})")
        filler = task.haystack(n_filler, generator)
        prompts.append(build_prompt(filler, needle, query, depth))
        answers.append(answer)
    return torch.stack(prompts), torch.tensor(answers)


def needle_grid(score_fn, task, lengths, depths, trials: int,
                generator: torch.Generator | None = None, batch: int = 256,
                desc: str | None = None) -> torch.Tensor:
    """Recall at each context length x needle depth -> (len(lengths), len(depths)).

    ``score_fn(prompts)`` maps (B, T) token ids to scores (B, C) over candidate
    answers; a trial is recalled when its answer has the highest score (ties: the
    lowest candidate, as ``argmax``). ``task`` supplies filler and needles (see
    ``KeyValueTask``); ``generator`` makes the grid reproducible.
    """
    if not callable(score_fn):
        raise TypeError("score_fn must be a function: prompts (B, T) -> scores (B, C)")
    _check_grid_args(lengths, depths, trials, batch)
    recall = torch.zeros(len(lengths), len(depths))
    cells = [(i, j) for i in range(len(lengths)) for j in range(len(depths))]
    for i, j in progress(cells, desc=desc, disable=desc is None):
        prompts, answers = needle_trials(task, lengths[i], depths[j], trials,
                                         generator)
        hits = 0
        for start in range(0, trials, batch):
            chunk = prompts[start:start + batch]
            with torch.no_grad():
                scores = score_fn(chunk)
            _check_scores(scores, len(chunk), answers)
            picked = scores.argmax(-1).cpu()
            hits += int((picked == answers[start:start + batch]).sum())
        recall[i, j] = hits / trials
    return recall


@dataclass(frozen=True)
class KeyValueTask:
    """A synthetic needle test: filler is random tokens 0 .. n_filler - 1; the needle
    is a key token and a value, (k, v), with v a filler token too; the question is
    (QUERY, k); the answer is v, given as its token id, so that a language model's
    next-token logits over the whole vocabulary are the candidates' scores (greedy
    decoding).

    Token ids: filler 0 .. F-1 | keys F .. F+K-1 | QUERY = F + K.

    # subtle: the value is drawn from the filler's own alphabet, as the report's
    # "magic number" is an ordinary number: a reader cannot spot the value by what
    # it is, only by where it is (right after the key), so positions matter.
    """

    n_filler: int = 32
    n_keys: int = 16

    def __post_init__(self):
        for name in ("n_filler", "n_keys"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def query_id(self) -> int:
        return self.n_filler + self.n_keys

    @property
    def vocab_size(self) -> int:
        return self.query_id + 1

    def haystack(self, n: int, generator=None) -> torch.Tensor:
        """n filler tokens, uniform and independent: (n,)."""
        return torch.randint(0, self.n_filler, (n,), generator=generator)

    def needle(self, generator=None):
        """(needle (2,), query (2,), answer): key k and value v drawn uniformly."""
        k, v = torch.randint(0, 10**9, (2,), generator=generator).tolist()
        key, value = self.n_filler + k % self.n_keys, v % self.n_filler
        return (torch.tensor([key, value]), torch.tensor([self.query_id, key]), value)

    def oracle_scores(self, prompts: torch.Tensor) -> torch.Tensor:
        """A perfect reader, for tests: finds the asked key in the prompt and scores
        the token after it 1, every other token 0 -> (B, vocab_size)."""
        scores = torch.zeros(len(prompts), self.vocab_size)
        for b, ids in enumerate(prompts.tolist()):
            key = ids[-1]
            at = ids.index(key)  # the needle's key comes before the question's
            scores[b, ids[at + 1]] = 1.0
        return scores


def retrieval_batch(task: KeyValueTask, length: int, batch: int,
                    generator: torch.Generator | None = None):
    """Training prompts, all ``length`` tokens, the needle at a depth drawn uniformly
    (every start 0 .. n_filler equally likely) -> prompts (batch, length), answers
    (batch,). The same layout as ``needle_trials``, drawn all at once."""
    n = length - 4  # filler tokens: the needle and the question take 2 each
    if n < 0:
        raise ValueError(f"a prompt of {length} tokens cannot hold the needle and "
                         "the question (2 tokens each)")
    filler = torch.randint(0, task.n_filler, (batch, n), generator=generator)
    keys = task.n_filler + torch.randint(0, task.n_keys, (batch,),
                                         generator=generator)
    values = torch.randint(0, task.n_filler, (batch,), generator=generator)
    p = torch.randint(0, n + 1, (batch, 1), generator=generator)  # needle start
    j = torch.arange(n + 2)[None, :]  # output slots before the question
    # slot j holds filler j before the needle and filler j - 2 after it
    src = torch.where(j < p, j, j - 2).clamp(0, max(n - 1, 0))
    body = filler.gather(1, src) if n else torch.zeros(batch, 2, dtype=torch.long)
    body = torch.where(j == p, keys[:, None], body)
    body = torch.where(j == p + 1, values[:, None], body)
    query = torch.stack([torch.full_like(keys, task.query_id), keys], dim=1)
    return torch.cat([body, query], dim=1), values


def train_retrieval(model: GPT, task: KeyValueTask, steps: int, *, min_length: int,
                    max_length: int | None = None, batch: int = 32, lr: float = 3e-3,
                    warmup: int = 50, weight_decay: float = 0.1,
                    generator: torch.Generator | None = None,
                    stop_below: float | None = None,
                    desc: str | None = None) -> list[float]:
    """Train ``model`` for ``steps`` AdamW updates on fresh needle prompts; each batch
    has one length drawn uniformly from ``min_length`` .. ``max_length`` (default:
    the model's context). The loss is the cross-entropy of the answer at the last
    position only: filler is random and there is nothing to learn from it.
    With ``stop_below``, training stops once the mean loss of the last 100 updates
    is below it. Returns the loss of every update."""
    max_length = model.cfg.context if max_length is None else max_length
    for name, value in (("steps", steps), ("batch", batch),
                        ("min_length", min_length), ("max_length", max_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 4 <= min_length <= max_length <= model.cfg.context:
        raise ValueError(f"need 4 <= min_length <= max_length <= the model's context "
                         f"({model.cfg.context}), got {min_length}, {max_length}")
    params = list(model.parameters())
    opt = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.95))
    device, losses, was_training = params[0].device, [], model.training
    model.train()
    bar = progress(range(steps), desc=desc, disable=desc is None)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = cosine_rate(step, steps, lr, warmup)
        length = int(torch.randint(min_length, max_length + 1, (1,),
                                   generator=generator))
        prompts, answers = retrieval_batch(task, length, batch, generator)
        logits = model(prompts.to(device))[:, -1]  # (B, V): the answer's position
        loss = F.cross_entropy(logits, answers.to(device))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 10 == 9:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if stop_below is not None and len(losses) >= 100 \
                and sum(losses[-100:]) / 100 < stop_below:
            break
    # subtle: each attention layer keeps its last weights for plots; from a training
    # step they carry a graph, and copy.deepcopy (gpt.with_context) refuses them
    for block in model.blocks:
        block.attn.weights = None
    model.train(was_training)
    return losses


def last_logits(model: GPT):
    """The score function of a language model: prompts (B, T) -> next-token logits
    (B, V) at the last position, float32 on the CPU. Argmax over them is greedy
    decoding of the answer's first token."""
    device = next(model.parameters()).device

    def score(prompts: torch.Tensor) -> torch.Tensor:
        model.eval()
        return model(prompts.to(device))[:, -1].float().cpu()

    return score


def chance(task: KeyValueTask) -> float:
    """Recall of a reader that guesses among the possible values: 1 / n_filler."""
    return 1 / task.n_filler


def plot_needle_grid(recall, lengths, depths, ax=None, title=None):
    """The report's Fig. 1 as a heatmap: context length across, needle depth down
    (0 % at the top), green = recalled, red = missed."""
    import matplotlib.pyplot as plt

    recall = torch.as_tensor(recall, dtype=torch.float32)
    if recall.shape != (len(lengths), len(depths)):
        raise ValueError(f"recall must have shape (len(lengths), len(depths)) = "
                         f"({len(lengths)}, {len(depths)}), got {tuple(recall.shape)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * len(lengths) + 2.5, 3.2))
    image = ax.imshow(recall.T.numpy(), cmap="RdYlGn", vmin=0, vmax=1,
                      aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(lengths)), [str(n) for n in lengths])
    ax.set_yticks(range(len(depths)), [f"{math.floor(100 * d + 0.5)}%"
                                       for d in depths])
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("needle depth")
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax, image


def stretch(model: GPT, length: int, interpolate: bool) -> GPT:
    """``model`` made to read ``length`` tokens: as it is (a longer context, the
    rotary angles extrapolated) or, with ``interpolate``, with every position scaled
    by trained / length (position interpolation, Chen et al. 2023), so that the
    largest angle stays one seen in training. A copy; ``model`` is unchanged."""
    if model.rotate is None:
        raise ValueError("stretch needs a rotary model (positions='rotary')")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    trained = model.cfg.context
    if length <= trained:
        return with_context(model, trained)
    scale = model.rotate.scale * trained / length if interpolate else None
    return with_context(model, length, rope_scale=scale)


def length_grid(model: GPT, task, lengths, depths, trials: int, seed: int,
                interpolate: bool = False, desc: str | None = None) -> torch.Tensor:
    """``needle_grid`` of a rotary model at each of ``lengths``, read through
    ``stretch`` (as trained, or interpolated beyond its context) -> (len(lengths),
    len(depths)). Row ``length`` draws its prompts from a generator seeded
    ``seed + length``, so the two readings of a model see the same prompts."""
    _check_grid_args(lengths, depths, trials, 1)
    rows = []
    for length in progress(lengths, desc=desc, disable=desc is None):
        score = last_logits(stretch(model, length, interpolate))
        generator = torch.Generator().manual_seed(seed + length)
        rows.append(needle_grid(score, task, [length], depths, trials, generator)[0])
    return torch.stack(rows)

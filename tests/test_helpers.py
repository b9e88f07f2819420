"""The small shared helpers: seeding, device choice, versions, plotting, notebook display."""
import random

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from mlf.corpora import number_words, shakespeare_lines, shakespeare_text, shakespeare_titles
from mlf.env import pick_device, seed_everything, versions
from mlf.notebook import progress, show_source
from mlf.plotting import plot_segmentations, use_book_style


def test_seed_everything_repeats_random_streams():
    import torch

    seed_everything(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_rejects_bad_values(seed):
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(seed)


def test_pick_device_matches_cuda_availability():
    import torch

    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_versions_names_each_package():
    line = versions("numpy")
    assert line.startswith("python ") and "numpy " in line
    with pytest.raises(ValueError, match="not installed"):
        versions("no-such-package-xyz")


def test_show_source_renders_a_code_block():
    md = show_source(versions)
    assert md.data.startswith("```python\ndef versions(")
    with pytest.raises(ValueError, match="expects a function"):
        show_source(42)


def test_progress_is_plain_text():
    bar = progress(range(3), disable=True)
    assert list(bar) == [0, 1, 2]


def test_plot_segmentations_draws_one_box_per_piece():
    use_book_style()
    ax = plot_segmentations([["low", "est"], ["l", "o", "w", "e", "s", "t"]], labels=["a", "b"])
    assert len(ax.patches) == 8
    with pytest.raises(ValueError, match="non-empty"):
        plot_segmentations([["low", ""]])
    with pytest.raises(ValueError, match="labels"):
        plot_segmentations([["low"]], labels=["a", "b"])


def test_shakespeare_corpus_is_spoken_lines_only():
    titles = shakespeare_titles()
    assert len(titles) == 38 and "hamlet" in titles
    lines = shakespeare_lines("hamlet")
    assert lines[0] == "Who's there?"
    assert not any(l.startswith(("#", "**", "_")) or "  " in l for l in lines)
    assert shakespeare_text(["hamlet"]).count("\n") == len(lines) - 1
    with pytest.raises(ValueError, match="unknown play"):
        shakespeare_lines("hamlet-2")


def test_number_words():
    assert number_words([34, 1001], "de") == ["vierunddreißig", "eintausendeins"]
    assert number_words([34], "en") == ["thirty-four"]


def test_best_of_returns_minimum_time_and_result():
    from mlf.timing import best_of

    calls = []
    seconds, result = best_of(lambda: calls.append(1) or len(calls), repeats=4)
    assert result == 4 and len(calls) == 4 and seconds >= 0
    with pytest.raises(ValueError, match="positive integer"):
        best_of(lambda: None, repeats=0)


@pytest.mark.parametrize("numbers, lang", [([3.7], "de"), ([-1], "en"), ([True], "de"),
                                           ([1], "klingon")])
def test_number_words_rejects_bad_input(numbers, lang):
    with pytest.raises(ValueError):
        number_words(numbers, lang)


def test_best_of_each_takes_turns_and_keeps_each_minimum():
    from mlf.timing import best_of_each

    calls = []
    (t_a, a), (t_b, b) = best_of_each(lambda: calls.append("a") or "A",
                                      lambda: calls.append("b") or "B", repeats=3)
    assert calls == ["a", "b"] * 3 and (a, b) == ("A", "B") and min(t_a, t_b) >= 0
    with pytest.raises(ValueError, match="positive integer"):
        best_of_each(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="at least one"):
        best_of_each()
    with pytest.raises(TypeError, match="function"):
        best_of_each(lambda: None, 42)


def test_best_of_rejects_a_non_function():
    from mlf.timing import best_of

    with pytest.raises(TypeError, match="function"):
        best_of(42)

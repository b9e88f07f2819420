"""Magnitude pruning and lottery tickets: masks equal torch.nn.utils.prune's, pruned
weights stay at zero in training, side-by-side training equals training alone, and
bad input is refused."""
import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mlf import pruning as pr
from torch import nn
from torch.nn.utils import prune


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def small_mlp(seed=0, sizes=(6, 5, 4, 3)):
    return pr.MLP(sizes, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.lists(st.floats(0, 0.95), min_size=1,
                                                     max_size=4), st.integers(0, 99))
def test_masks_equal_l1_unstructured_round_after_round(rows, cols, rates, seed):
    weight = randn(rows, cols, seed=seed)
    layer = nn.Linear(cols, rows)
    with torch.no_grad():
        layer.weight.copy_(weight)
    mask = torch.ones(rows, cols)
    for rate in rates:  # a second call prunes a fraction of what is left alive
        mask = pr.prune_tensor(weight, mask, rate)
        prune.l1_unstructured(layer, "weight", amount=rate)
        assert torch.equal(mask, layer.weight_mask)
    assert int(mask.sum()) == int(layer.weight_mask.sum())


def test_round_half_to_even_as_torch():
    weight = torch.arange(1.0, 6.0)[None]  # 5 live weights, rate 0.5: round(2.5) = 2
    mask = pr.prune_tensor(weight, torch.ones(1, 5), 0.5)
    assert mask.tolist() == [[0, 0, 1, 1, 1]]
    assert pr.prune_tensor(weight, torch.ones(1, 5), 0.7).sum() == 1  # round(3.5) = 4


def test_rate_zero_keeps_everything_and_pruned_stay_pruned():
    w, m = randn(4, 4), (randn(4, 4, seed=1) > 0).float()
    assert torch.equal(pr.prune_tensor(w, m, 0.0), m)
    assert (pr.prune_tensor(w, m, 0.5) <= m).all()  # never revives a weight


def test_forward_equals_torch_prune_with_the_same_masks():
    model = small_mlp()
    masks = pr.prune_by_magnitude(model, pr.full_masks(model),
                                  pr.layer_rates(model, 0.6))
    reference = copy.deepcopy(model)
    for name, module in reference.named_modules():
        if isinstance(module, nn.Linear):
            prune.custom_from_mask(module, "weight", masks[f"{name}.weight"])
    pr.apply_masks(model, masks)
    x = randn(7, 6, seed=2)
    assert torch.equal(model(x), reference(x))


def test_output_layer_at_half_the_rate():
    rates = pr.layer_rates(small_mlp(), 0.2)
    assert list(rates.values()) == [0.2, 0.2, 0.1]


def test_one_shot_rates_match_the_rounds():
    model = small_mlp(sizes=(64, 300, 100, 10))
    rates = pr.one_shot_rates(model, 0.2, 5)
    assert rates["layers.0.weight"] == pytest.approx(1 - 0.8**5)
    assert rates["layers.2.weight"] == pytest.approx(1 - 0.9**5)
    masks = pr.prune_by_magnitude(model, pr.full_masks(model), rates)
    expect = (0.8**5 * (64 * 300 + 300 * 100) + 0.9**5 * 1000) / 50200
    assert pr.remaining(masks) == pytest.approx(expect, abs=1e-4)


def test_glorot_gaussian_init():
    model = pr.MLP((400, 600), generator=torch.Generator().manual_seed(0))
    w = model.layers[0].weight
    assert w.std().item() == pytest.approx((2 / 1000) ** 0.5, rel=0.02)
    assert model.layers[0].bias.abs().max() == 0


def tiny_data():
    x, y = randn(40, 6, seed=5), torch.arange(40) % 3
    return {"train": (x[:24], y[:24]), "val": (x[24:32], y[24:32]),
            "test": (x[32:], y[32:])}


def test_pruned_weights_stay_zero_in_training():
    model = small_mlp()
    masks = pr.prune_by_magnitude(model, pr.full_masks(model),
                                  pr.layer_rates(model, 0.5))
    before = copy.deepcopy(model)
    pr.train([model], [masks], tiny_data(), epochs=3, batch=8)
    for name, w in pr.prunable(model).items():
        assert (w[masks[name] == 0] == 0).all()
        alive = masks[name] == 1
        assert not torch.equal(w[alive], pr.prunable(before)[name][alive])


def test_side_by_side_equals_alone():
    models = [small_mlp(0), small_mlp(1)]
    masks = [pr.full_masks(models[0]),
             pr.prune_by_magnitude(models[1], pr.full_masks(models[1]),
                                   pr.layer_rates(models[1], 0.4))]
    alone = copy.deepcopy(models[1])
    [one] = pr.train([alone], [masks[1]], tiny_data(), epochs=2, batch=8, seed=3)
    both = pr.train(models, masks, tiny_data(), epochs=2, batch=8, seed=3)
    assert both[1]["val_loss"] == pytest.approx(one["val_loss"], abs=1e-6)
    for a, b in zip(pr.prunable(alone).values(), pr.prunable(models[1]).values()):
        assert torch.allclose(a, b, atol=1e-6)


def test_lottery_rewinds_to_theta_0():
    data = tiny_data()
    out = pr.lottery(data, rounds=2, rate=0.5, seed=0, sizes=(6, 5, 4, 3), epochs=1,
                     batch=8)
    net = small_mlp(0)  # theta_0 is the seed's first draw
    assert all(torch.equal(v, out["theta_0"][k]) for k, v in net.state_dict().items())
    assert [r["remaining"] for r in out["rounds"]] == sorted(
        [r["remaining"] for r in out["rounds"]], reverse=True)
    assert set(out["rounds"][1]) >= {"ticket", "reinit", "one_shot"}


def test_digits_split():
    data = pr.digits(0)
    sizes = {k: len(v[0]) for k, v in data.items()}
    assert sizes == {"test": 360, "val": 180, "train": 1257}
    assert data["train"][0].shape[1] == 64 and data["train"][0].max() <= 1


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_rate_outside_unit_interval_is_refused(rate):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        pr.prune_tensor(randn(2, 2), torch.ones(2, 2), rate)


@pytest.mark.parametrize("rate", [True, "0.2", None])
def test_rate_of_wrong_type_is_refused(rate):
    with pytest.raises(TypeError, match="number"):
        pr.layer_rates(small_mlp(), rate)


def test_mismatched_mask_shapes_are_refused():
    with pytest.raises(ValueError, match="does not match"):
        pr.prune_tensor(randn(2, 3), torch.ones(3, 2), 0.5)
    model = small_mlp()
    masks = pr.full_masks(model)
    masks["layers.0.weight"] = torch.ones(2, 2)
    with pytest.raises(ValueError, match="layers.0.weight"):
        pr.apply_masks(model, masks)
    with pytest.raises(ValueError, match="one entry per"):
        pr.apply_masks(model, {"layers.0.weight": torch.ones(5, 6)})


def test_module_without_weights_is_refused():
    with pytest.raises(ValueError, match="no nn.Linear"):
        pr.full_masks(nn.Sequential(nn.ReLU(), nn.Flatten()))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        pr.prunable(torch.ones(3))


def test_train_refuses_mismatched_lists():
    with pytest.raises(ValueError, match="one dict of masks per model"):
        pr.train([small_mlp()], [], tiny_data(), epochs=1)
    with pytest.raises(TypeError, match="MLP"):
        pr.train([nn.Linear(6, 3)], [{}], tiny_data(), epochs=1)
    for bad in ({"epochs": 0}, {"batch": 0}, {"epochs": 1.5}):
        with pytest.raises(ValueError, match="positive integer"):
            pr.train([small_mlp()], [pr.full_masks(small_mlp())], tiny_data(), **bad)


def test_bad_sizes_and_rounds_are_refused():
    with pytest.raises(ValueError, match="sizes"):
        pr.MLP((64,))
    with pytest.raises(ValueError, match="rounds"):
        pr.one_shot_rates(small_mlp(), 0.2, -1)
    with pytest.raises(TypeError, match="rounds"):
        pr.one_shot_rates(small_mlp(), 0.2, 2.0)
    with pytest.raises(TypeError, match="tensors"):
        pr.prune_tensor([[1.0, 2.0]], torch.ones(1, 2), 0.5)


def test_ties_broken_as_l1_unstructured():
    # equal magnitudes (and signs that differ) everywhere: which ones go is the
    # tie-break of torch.topk, and two rounds must agree with the reference's
    weight = torch.tensor([[1.0, -1.0, 0.5, -0.5], [0.5, 1.0, -1.0, 0.5]])
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(weight)
    mask = torch.ones(2, 4)
    for rate in (0.5, 0.5):
        mask = pr.prune_tensor(weight, mask, rate)
        prune.l1_unstructured(layer, "weight", amount=rate)
        assert torch.equal(mask, layer.weight_mask)

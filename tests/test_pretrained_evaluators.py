"""The ``deeponet`` and ``node`` evaluators of ``sciml.pretrained.evaluate`` against a direct
computation from the generators' arrays (a second implementation of the same metric)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.data.generators.deeponet_odes import generate_pendulum
from sciml.data.generators.lotka_volterra import generate_lotka_volterra
from sciml.models import NODE, DeepONet, DeepONetConfig, NODEConfig
from sciml.models.deeponet import MLPSpec
from sciml.pretrained.evaluate import EVALUATORS


def _rel_l2(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    n = pred.shape[0]
    diff = (pred - target).reshape(n, -1)
    return np.linalg.norm(diff, axis=1) / np.linalg.norm(target.reshape(n, -1), axis=1)


def test_deeponet_evaluator_matches_a_direct_computation():
    torch.manual_seed(0)
    spec = MLPSpec(hidden=(16,))
    model = DeepONet(
        DeepONetConfig(sensors=20, out_channels=2, basis=8, multi_output="split_both",
                       branch=spec, trunk=spec)
    ).eval()  # fmt: skip
    options = {"resolution": 20, "length_scale": 0.2, "k": 1.0, "refine": 10}
    card = {
        "name": "test-deeponet",
        "data": {"generator": "pendulum", "options": options},
        "evaluation": {"options": {"inputs": ["u"], "targets": ["s1", "s2"]}},
    }
    got = EVALUATORS["deeponet"](model, card, n=6, seed=5, device="cpu")

    data = generate_pendulum(6, 20, seed=5, length_scale=0.2, k=1.0, refine=10)
    f = data["static_fields"]
    target = np.stack([f["s1"], f["s2"]], -1).astype(np.float64)  # (6, 20, 2)
    x = torch.linspace(0, 1, 20).unsqueeze(-1)
    with torch.no_grad():
        pred = model(torch.from_numpy(f["u"]), x=x).double().numpy()
    rel = _rel_l2(pred, target)
    assert got["test_rel_l2"] == pytest.approx(rel.mean(), rel=1e-5)
    assert got["test_rel_l2_max"] == pytest.approx(rel.max(), rel=1e-5)
    assert got["test_mse"] == pytest.approx(np.mean((pred - target) ** 2), rel=1e-4)


def test_node_evaluator_matches_a_direct_computation_and_counts_nfe():
    torch.manual_seed(0)
    model = NODE(NODEConfig(hidden=(16,), center=(3.0, 1.5), scale=(1.0, 0.7))).eval()
    options = {"resolution": 11, "t_final": 2.0, "ic_low": 0.5, "ic_high": 1.5}
    card = {
        "name": "test-node",
        "data": {"generator": "lotka_volterra", "options": options},
        "evaluation": {"options": {"fields": ["prey", "predator"]}},
    }
    got = EVALUATORS["node"](model, card, n=7, seed=2, device="cpu")

    data = generate_lotka_volterra(7, 11, seed=2, t_final=2.0)
    target = np.stack([data["fields"]["prey"], data["fields"]["predator"]], -1)
    with torch.no_grad():
        pred = model(torch.from_numpy(target[:, 0]), t=torch.linspace(0, 2, 11)).numpy()
    rel = _rel_l2(pred.astype(np.float64), target.astype(np.float64))
    assert got["test_rel_l2"] == pytest.approx(rel.mean(), rel=1e-5)
    assert got["test_rel_l2_max"] == pytest.approx(rel.max(), rel=1e-5)
    assert got["nfe"] == model.nfe > 0


def test_evaluators_name_missing_options():
    model = NODE(NODEConfig(hidden=(4,)))
    card = {"name": "x", "data": {"generator": "lotka_volterra", "options": {"resolution": 5}},
            "evaluation": {}}  # fmt: skip
    with pytest.raises(ValueError, match="evaluation.options.fields"):
        EVALUATORS["node"](model, card, n=2, seed=0, device="cpu")
    with pytest.raises(ValueError, match="evaluation.options.inputs"):
        EVALUATORS["deeponet"](model, card, n=2, seed=0, device="cpu")

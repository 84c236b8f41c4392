"""Policy files: a saved policy gives exactly the numbers it gave when trained, refuses to load
when altered, warns when written by another code version, and lives beside stored runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from shop_data import small_shop

import deepstock
from deepstock.methods.train import train
from deepstock.results import policies
from deepstock.results.policies import cached_policy, load_policy, save_policy

CONFIGS = {
    "ds": {"epochs": 2, "patience": 2, "hidden_layers": [8, 8]},
    "ddpg": {
        "total_steps": 96,
        "eval_freq": 48,
        "learning_starts": 32,
        "batch_size": 16,
        "net_arch": [8, 8],
    },  # fmt: skip
    "ppo": {
        "total_steps": 128,
        "eval_freq": 64,
        "n_steps": 64,
        "batch_size": 32,
        "net_arch": [8, 8],
    },  # fmt: skip
}


@pytest.fixture(scope="module")
def shop():
    return small_shop()


@pytest.mark.parametrize(
    ("method", "reg"), [("ds", "base"), ("ds", "coeff"), ("ddpg", "both"), ("ppo", "none")]
)
def test_loaded_policy_gives_the_numbers_of_training(method, reg, shop, tmp_path) -> None:
    result = train(method, reg, shop, CONFIGS[method], seed=1, device="cpu")
    path = save_policy(result, tmp_path / "policy.safetensors", shop)
    policy = load_policy(path)
    assert (policy.method, policy.regularization) == (method, reg)
    assert policy.config == result.config
    for split, metrics in (
        ("train", result.train_metrics),
        ("val", result.val_metrics),
        ("test", result.test_metrics),
    ):
        assert policy.evaluate(shop, split) == metrics  # exact, every metric
        assert policy.metrics[split] == metrics
    # the same orders, day by day, as the policy in memory
    simulator = deepstock.InventorySimulator.from_dataset(shop.subset("test"), device="cpu")
    assert torch.equal(simulator.rollout(policy).orders, simulator.rollout(result.policy).orders)


def test_header_records_what_loading_needs(shop, tmp_path) -> None:
    result = train("ds", "both", shop, CONFIGS["ds"], seed=0, device="cpu")
    policy = load_policy(save_policy(result, tmp_path / "p.safetensors", shop))
    header = policy.header
    assert header["dataset"]["fingerprint"] == deepstock.results.store.dataset_fingerprint(shop)
    assert header["normalization"]["normalized_inputs"] is True
    assert header["normalization"]["coeff_features"] == [1]
    assert header["code_version"]["package"] == deepstock.__version__
    assert [layer["kind"] for layer in header["network"]["layers"]] == [
        "linear", "elu", "linear", "elu", "linear", "relu",
    ]  # fmt: skip
    assert policy.range_sku_id.tolist() == shop.sku_id.tolist()


def test_tampered_file_is_refused(shop, tmp_path) -> None:
    result = train("ds", "base", shop, CONFIGS["ds"], seed=0, device="cpu")
    path = save_policy(result, tmp_path / "p.safetensors", shop)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one bit of the last tensor
    tampered = tmp_path / "tampered.safetensors"
    tampered.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch, the file was altered"):
        load_policy(tampered)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a policy")
    with pytest.raises(ValueError, match="not a deepstock policy file"):
        load_policy(garbage)
    with pytest.raises(FileNotFoundError, match="no such policy file"):
        load_policy(tmp_path / "missing.safetensors")


def test_other_code_version_loads_with_a_warning(shop, tmp_path, monkeypatch) -> None:
    result = train("ds", "base", shop, CONFIGS["ds"], seed=0, device="cpu")
    current = policies.code_version()
    monkeypatch.setattr(
        policies, "code_version", lambda: {**current, "source_hash": "0123456789abcdef"}
    )
    path = save_policy(result, tmp_path / "old.safetensors", shop)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="written by another code version"):
        policy = load_policy(path)
    assert policy.evaluate(shop, "test") == result.test_metrics


def test_dataset_mismatch_is_named(shop, tmp_path) -> None:
    result = train("ds", "base", shop, CONFIGS["ds"], seed=0, device="cpu")
    policy = load_policy(save_policy(result, tmp_path / "p.safetensors", shop))
    shorter_leads = deepstock.InventoryDataset(
        **{**shop.__dict__, "lead_time": np.ones_like(shop.lead_time)}
    )
    with pytest.raises(ValueError, match="maximum lead time 1 days; the policy reads 4"):
        policy.evaluate(shorter_leads, "test")
    with pytest.raises(ValueError, match=r"unknown columns \['promo'\]"):
        policy.order([{"sku_id": 101, "on_hand": 1, "weekday": 0, "rate_7d": 3, "promo": 1}])
    with pytest.raises(ValueError, match=r"missing columns \['rate_7d'\]"):
        policy.order([{"sku_id": 101, "on_hand": 1, "weekday": 0}])


def test_a_policy_that_is_not_a_plain_network_is_refused(shop, tmp_path) -> None:
    result = train("ds", "base", shop, CONFIGS["ds"], seed=0, device="cpu")
    result.policy.network.append(torch.nn.Dropout(0.1))
    with pytest.raises(ValueError, match="layer '.*' is a Dropout"):
        save_policy(result, tmp_path / "p.safetensors", shop)
    assert not (tmp_path / "p.safetensors").exists()


def test_the_store_keeps_the_policy_of_a_stored_run(shop, store, monkeypatch) -> None:
    summary, policy = cached_policy(store, "ds", "base", shop, CONFIGS["ds"], seed=2)
    assert not summary["cached"]
    path = store.policy_path(summary["key"])
    assert path.is_file() and path.parent == store.path(summary["key"]).parent
    assert policy.evaluate(shop, "test") == summary["test"]

    # a second call reads both back without training
    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(policies, "train_run", no_training)
    again, loaded = cached_policy(store, "ds", "base", shop, CONFIGS["ds"], seed=2)
    assert again["cached"] and loaded.evaluate(shop, "val") == summary["val"]
    monkeypatch.undo()

    # a run stored without its policy file is retrained once to write it
    path.unlink()
    third, restored = cached_policy(store, "ds", "base", shop, CONFIGS["ds"], seed=2)
    assert third["cached"] and path.is_file()
    assert restored.evaluate(shop, "test") == summary["test"]


def test_policy_paths_do_not_count_as_records(shop, store) -> None:
    summary, _ = cached_policy(store, "ds", "none", shop, CONFIGS["ds"], seed=0)
    assert list(store.keys()) == [summary["key"]]
    assert Path(store.policy_path(summary["key"])).name.endswith(".policy.safetensors")

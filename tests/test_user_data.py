"""A user's own data: the single-file CSV format, `--data` on the commands, and the round trip
train --data -> --save -> evaluate -> order with the numbers of the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shop_data import small_shop

import deepstock
from deepstock.datasets.io import (
    load_csv_dataset,
    load_data,
    save_csv_dataset,
    save_dataset,
)
from deepstock.model.heuristics import CoverBaseStock, fit_cover_base_stock
from deepstock.model.optimal import benchmark_losses
from deepstock.model.simulator import simulate
from deepstock.results.store import dataset_fingerprint
from deepstock.tools.cli import main

DS_QUICK = ["--set", "epochs=3", "--set", "patience=2", "--set", "hidden_layers=[8, 8]"]


@pytest.fixture
def shop_csv(tmp_path: Path) -> Path:
    return save_csv_dataset(small_shop(), tmp_path / "shop.csv")


# ---------------------------------------------------------------------- the format
def test_csv_round_trip_is_exact(shop_csv: Path) -> None:
    dataset = small_shop()
    loaded = load_csv_dataset(shop_csv)
    assert loaded.equals(dataset)
    assert dataset_fingerprint(loaded) == dataset_fingerprint(dataset)
    assert loaded.lost_sales and loaded.coeff_features == (1,)
    assert load_data(shop_csv).equals(dataset)


def test_options_override_the_yaml_and_defaults_apply(tmp_path: Path) -> None:
    path = save_csv_dataset(small_shop(), tmp_path / "shop.csv")
    (tmp_path / "shop.yaml").write_text(
        "max_replenish: 50\nfeatures: [weekday, rate_7d]\ncoeff_features: [rate_7d]\n"
    )
    loaded = load_csv_dataset(path, backlog_cost=2.5)
    assert loaded.max_replenish == 50.0 and loaded.backlog_cost == 2.5
    assert loaded.holding_cost == 0.1 and not loaded.lost_sales  # the defaults
    assert loaded.name == "shop"


def test_missing_cap_and_bad_options_are_named(tmp_path: Path) -> None:
    path = save_csv_dataset(small_shop(), tmp_path / "shop.csv")
    (tmp_path / "shop.yaml").write_text("features: [weekday, rate_7d]\n")
    with pytest.raises(ValueError, match="max_replenish .* is not given"):
        load_csv_dataset(path)
    with pytest.raises(ValueError, match=r"option 'holding_cost' \(from the options\)"):
        load_csv_dataset(path, max_replenish=10, holding_cost=-1)
    (tmp_path / "shop.yaml").write_text("max_replenish: 10\nfeature: [x]\n")
    with pytest.raises(ValueError, match=r"shop.yaml: unknown keys \['feature'\]"):
        load_csv_dataset(path)


def _edit(path: Path, edit) -> Path:
    frame = pd.read_csv(path)
    edit(frame)
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda f: f.drop(columns="split", inplace=True), r"line 1, column 'split': missing"),
        (
            lambda f: f.insert(3, "promo", 0),
            r"line 1, column 'promo': unknown \(a feature column must be declared",
        ),
        (
            lambda f: f.__setitem__("demand", f["demand"].where(f.index != 40, -3.0)),
            r"line 42, column 'demand' \(sku_id 102\): must be >= 0, got -3.0",
        ),
        (
            lambda f: f.__setitem__("split", f["split"].where(f.index != 5, "holdout")),
            r"line 7, column 'split' \(sku_id 101\): must be one of \['train', 'val', 'test'\]",
        ),
        (
            lambda f: f.__setitem__("lead_time", f["lead_time"].where(f.index != 2, -1)),
            r"line 4, column 'lead_time' \(sku_id 101\): must be >= 0 days",
        ),
        (
            lambda f: f.__setitem__("demand", f["demand"].astype(object).where(f.index != 9, "x")),
            r"column 'demand' must hold numbers \(line 11 has 'x'\)",
        ),
    ],
    ids=["missing-split", "unknown-column", "negative-demand", "bad-split", "lead-time", "text"],
)
def test_bad_csv_gets_one_line_naming_file_line_and_column(shop_csv, edit, expected) -> None:
    _edit(shop_csv, edit)
    with pytest.raises(ValueError, match=expected) as error:
        load_csv_dataset(shop_csv)
    message = str(error.value)
    assert message.startswith(str(shop_csv)) and "\n" not in message


def test_bad_csv_through_the_command_line(shop_csv, capsys) -> None:
    _edit(shop_csv, lambda f: f.drop(columns="split", inplace=True))
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data", str(shop_csv), "--method", "ds", "--reg", "base"])
    assert exit_.value.code == 2
    assert "shop.csv: line 1, column 'split': missing" in capsys.readouterr().err


def test_folder_takes_no_csv_options(tmp_path: Path) -> None:
    folder = save_dataset(small_shop(), tmp_path / "shop")
    assert load_data(folder).equals(small_shop())
    with pytest.raises(ValueError, match="apply to a .csv file only"):
        load_data(folder, max_replenish=5)


# ---------------------------------------------------------------------- the reference heuristic
def test_cover_base_stock_is_fitted_on_validation_only() -> None:
    dataset = small_shop()
    parameters, table = fit_cover_base_stock(dataset)
    assert parameters["rate_feature"] == 1 and parameters["rate"] is None
    assert table.loc[table["chosen"], "factor"].item() == parameters["factor"]
    assert table["loss"].min() == table.loc[table["chosen"], "loss"].item()
    # the validation loss of the chosen factor is what the simulator gives on the val SKUs
    val = dataset.subset("val")
    rollout = simulate(val, CoverBaseStock.for_dataset(val, **parameters), device="cpu")
    assert float(rollout.loss) == pytest.approx(table["loss"].min(), rel=1e-12)
    # the test split does not influence the fit
    other = dataset.select(np.arange(9))  # no test SKUs
    assert fit_cover_base_stock(other)[0] == parameters
    row = benchmark_losses(dataset)[0]
    assert row["policy"] == "cover_base_stock" and row["factor"] == parameters["factor"]


def test_benchmark_command_on_user_data(shop_csv, capsys) -> None:
    assert main(["benchmark", "--data", str(shop_csv), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["policy"] == "cover_base_stock"
    assert row["test_loss"] == benchmark_losses(small_shop())[0]["test_loss"]


# ---------------------------------------------------------------------- the round trip
def test_train_save_evaluate_order_round_trip(shop_csv, tmp_path, capsys) -> None:
    policy_path = tmp_path / "shop_base.safetensors"
    argv = ["train", "--data", str(shop_csv), "--method", "ds", "--reg", "both", *DS_QUICK]
    code = main([*argv, "--seed", "3", "--device", "cpu", "--save", str(policy_path), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["benchmark"]["policy"] == "cover_base_stock"

    # the Python API trains the same policy (CPU, same seed)
    config = {"epochs": 3, "patience": 2, "hidden_layers": [8, 8]}
    result = deepstock.train("ds", "both", data=shop_csv, config=config, seed=3, device="cpu")
    assert result.test_metrics == summary["test"] and result.val_metrics == summary["val"]

    # evaluate gives the numbers of training, on the command line and in Python
    policy = deepstock.load_policy(policy_path)
    for split in ("train", "val", "test"):
        assert main(["evaluate", str(policy_path), "--data", str(shop_csv), "--split", split,
                     "--json"]) == 0  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        assert {key: report[key] for key in summary[split]} == summary[split]
        assert policy.evaluate(load_data(shop_csv), split) == summary[split]
        assert report["trained_on_this_dataset"]
    assert report["gap_pct"] == pytest.approx(
        100 * (summary["test"]["loss"] / summary["benchmark"]["test_loss"] - 1)
    )

    # order: the command prints what policy.order gives; Both shows its base-stock level
    state = pd.DataFrame(
        {
            "sku_id": [110, 111, 999],
            "on_hand": [5.0, 0.0, 12.0],
            "arriving_1": [3.0, 0.0, 0.0],
            "arriving_2": [0.0, 4.0, 1.0],
            "weekday": [2.0, 2.0, 2.0],
            "rate_7d": [6.0, 14.5, 9.0],
            "weekday_min": [0.0, 0.0, 0.0],
            "weekday_max": [6.0, 6.0, 6.0],
            "rate_7d_min": [np.nan, np.nan, 4.0],
            "rate_7d_max": [np.nan, np.nan, 15.0],
        }
    )
    # SKUs 110 and 111 are test SKUs of the training data: their ranges come from the file
    known = state.drop(columns=[c for c in state if c.endswith(("_min", "_max"))]).iloc[:2]
    state_path = tmp_path / "today.csv"
    known.to_csv(state_path, index=False)
    assert main(["order", str(policy_path), "--state", str(state_path), "--format", "json"]) == 0
    printed = pd.DataFrame(json.loads(capsys.readouterr().out))
    expected = policy.order(known)
    assert list(printed.columns) == ["sku_id", "order", "inventory_position", "base_stock_level"]
    np.testing.assert_allclose(printed["order"], expected["order"], rtol=1e-9)
    np.testing.assert_allclose(
        expected["order"],
        np.clip(expected["base_stock_level"] - expected["inventory_position"], 0, 200),
        rtol=1e-6,
    )
    assert main(["order", str(policy_path), "--state", str(state_path)]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert (
        csv_lines[0] == "sku_id,order,inventory_position,base_stock_level" and len(csv_lines) == 3
    )

    # a SKU the policy never saw needs its feature ranges
    with pytest.raises(ValueError, match="sku_id 999 is not in the policy's training data"):
        policy.order(state.drop(columns=["rate_7d_min", "rate_7d_max"]))
    mixed = policy.order(state)  # empty ranges of known SKUs: the ones in the file
    np.testing.assert_array_equal(mixed["order"].to_numpy()[:2], expected["order"].to_numpy())
    assert np.isfinite(mixed["order"]).all()


def test_tune_on_user_data(shop_csv, isolated_results, capsys) -> None:
    argv = ["tune", "--data", str(shop_csv), "--method", "ds", "--reg", "base"]
    argv += ["--profile", "smoke", "--storage", "memory", "--no-progress", "--json"]
    assert main(argv) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["benchmark"]["policy"] == "cover_base_stock"
    assert np.isfinite(output["summary"]["test_loss"])


def test_run_settings_compares_pairs_on_user_data(shop_csv, isolated_results) -> None:
    from deepstock.paper.experiments import ExperimentContext, data_comparison

    context = ExperimentContext(profile="smoke", storage="memory")
    tables = data_comparison(context, load_data(shop_csv), pairs=[("ds", "base")])
    row = tables["results"].iloc[0]
    reference = tables["reference"].iloc[0]
    assert row["reference"] == "cover_base_stock"
    assert row["test_gap_pct"] == pytest.approx(
        100 * (row["test_loss"] / reference["test_loss"] - 1)
    )
    with pytest.raises(SystemExit):
        main(["run", "figure2", "--data", str(shop_csv)])


# ---------------------------------------------------------------------- TensorBoard
def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def test_tensorboard_curves_ds(tmp_path) -> None:
    result = deepstock.train(
        "ds",
        "base",
        data=small_shop(),
        config={"epochs": 3, "patience": 5, "hidden_layers": [8]},
        device="cpu",
        tensorboard=tmp_path / "tb",
    )
    scalars = _scalars(tmp_path / "tb" / "ds_base_seed0")
    assert [step for step, _ in scalars["eval/val_loss"]] == [1, 2, 3]
    np.testing.assert_allclose(
        [value for _, value in scalars["eval/val_loss"]],
        [point.val_loss for point in result.curve],
        rtol=1e-6,  # event files hold float32
    )
    assert {"eval/best_val_loss", "train/loss", "train/learning_rate"} <= set(scalars)


@pytest.mark.parametrize("method", ["ddpg", "ppo"])
def test_tensorboard_curves_sb3(method, tmp_path) -> None:
    config = {"total_steps": 128, "eval_freq": 64, "net_arch": [8]}
    if method == "ddpg":
        config.update(learning_starts=32, batch_size=16)
    else:
        config.update(n_steps=64, batch_size=32)
    result = deepstock.train(
        method, "base", data=small_shop(), config=config, device="cpu",
        tensorboard=tmp_path / "tb",
    )  # fmt: skip
    scalars = _scalars(tmp_path / "tb" / f"{method}_base_seed0")
    assert [step for step, _ in scalars["eval/val_loss"]] == [p.step for p in result.curve]
    np.testing.assert_allclose(
        [value for _, value in scalars["eval/val_loss"]],
        [p.val_loss for p in result.curve],
        rtol=1e-6,
    )
    assert any(tag.startswith("train/") for tag in scalars)  # SB3's own tags


# ---------------------------------------------------------------------- Optuna's dashboard
def test_dashboard_without_the_extra_says_so(monkeypatch, capsys) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails
    assert main(["dashboard"]) == 1
    err = capsys.readouterr().err
    assert "optuna-dashboard is not installed" in err and "deepstock[dashboard]" in err
    assert len(err.strip().splitlines()) == 1


def test_dashboard_needs_a_storage_when_there_is_no_single_study_file(
    isolated_results, capsys
) -> None:
    pytest.importorskip("optuna_dashboard")
    with pytest.raises(SystemExit):
        main(["dashboard"])
    assert "give --storage URL" in capsys.readouterr().err

"""Bad input to the simulator, the dataset container and the generators: one clear
``ValueError`` naming the parameter, never a silent truncation or a NaN result."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from deepstock.datasets.synthetic import make_setting
from deepstock.model.simulator import InventorySimulator

DEMAND = np.ones((2, 10))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"holding_cost": float("nan")}, "holding_cost must be a finite number"),
        ({"backlog_cost": float("inf")}, "backlog_cost must be a finite number"),
        ({"holding_cost": -1.0}, "holding_cost must be a finite number >= 0"),
        ({"max_replenish": float("inf")}, "max_replenish must be a finite number"),
        ({"max_replenish": 0.0}, "max_replenish must be a finite number in \\(0.0"),
        ({"max_replenish": 1e39, "dtype": torch.float32}, "max_replenish .*3.40"),
        ({"review_period": 2.5}, "review_period must hold whole numbers of days, got 2.5"),
        ({"lead_time": np.full(2, 0.5)}, "lead_time must hold whole numbers"),
        ({"lost_sales": "yes"}, "lost_sales must be a bool"),
        ({"demand": np.ones((2, 0))}, "at least one trajectory and one day"),
        ({"demand": np.ones((0, 10))}, "at least one trajectory and one day"),
    ],
)
def test_simulator_refuses_bad_parameters(changes, message):
    arguments = {"demand": DEMAND, "review_period": 2, "lead_time": 1, **changes}
    demand = arguments.pop("demand")
    review_period, lead_time = arguments.pop("review_period"), arguments.pop("lead_time")
    with pytest.raises(ValueError, match=message):
        InventorySimulator(demand, review_period, lead_time, device="cpu", **arguments)


def test_whole_float_review_periods_are_accepted():
    simulator = InventorySimulator(DEMAND, np.array([2.0, 3.0]), 1.0, device="cpu")
    assert simulator.review_period.tolist() == [2, 3]


def test_nan_orders_are_an_error_naming_the_day():
    simulator = InventorySimulator(DEMAND, 2, 1, device="cpu")

    def policy(observation):
        order = torch.full_like(observation.inventory_position, 3.0)
        return order if observation.day < 4 else order * float("nan")

    with pytest.raises(ValueError, match="ordered nan on day 4 \\(trajectory 0\\)"):
        simulator.rollout(policy)


def test_empty_dataset_is_refused(setting1_dataset):
    ds = setting1_dataset
    rows = slice(0, 0)
    with pytest.raises(ValueError, match="has no trajectories"):
        dataclasses.replace(
            ds,
            demand=ds.demand[rows],
            features=ds.features[rows],
            review_period=ds.review_period[rows],
            lead_time=ds.lead_time[rows],
            initial_stock=ds.initial_stock[rows],
            sku_id=ds.sku_id[rows],
            split=ds.split[rows],
        )


def test_make_setting_refuses_unknown_keywords():
    with pytest.raises(ValueError, match="unknown argument\\(s\\) \\['bogus'\\].*accepts"):
        make_setting("setting1", bogus=3)


# ====================================================================== generate
def test_a_dataset_too_large_for_this_machine_is_refused_before_drawing():
    with pytest.raises(ValueError, match="needs about .* GiB \\(estimated\\)"):
        make_setting("setting4", n_skus=10_000, horizon_periods=10_000)
    with pytest.raises(ValueError, match="GiB"):
        make_setting("setting1", horizon=10**9)


def test_a_dataset_without_a_counted_day_is_refused_at_generation():
    with pytest.raises(ValueError, match="warm-up P \\+ L = 7 days is not shorter than .* T = 7"):
        make_setting("setting1", horizon=7, review_period=5, lead_time=2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["setting4", "--n", "10000", "--horizon", "10000"], "GiB"),
        (["setting1", "--days", "3", "--review-period", "2", "--lead-time", "1"], "warm-up"),
    ],
)
def test_cli_generate_refuses_in_one_line(tmp_path, capsys, argv, message):
    from deepstock.tools.cli import main

    with pytest.raises(SystemExit) as error:
        main(["generate", *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert error.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_generate_refuses_an_out_that_is_a_file_or_unwritable(tmp_path, capsys):
    from deepstock.tools.cli import main

    target = tmp_path / "a_file"
    target.write_text("keep me", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["generate", "setting1", "--out", str(target)])
    assert "is a file" in capsys.readouterr().err and target.read_text() == "keep me"

    # a folder nobody can create (even root): /proc accepts no new entries
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc on this system")
    with pytest.raises(SystemExit):
        main(["generate", "setting1", "--out", "/proc/deepstock-test/new"])
    assert "cannot write the dataset to /proc/deepstock-test/new" in capsys.readouterr().err


# ====================================================================== files
def test_a_csv_with_invalid_utf8_names_the_file_and_line(tmp_path, setting1_dataset):
    from deepstock.datasets.io import DATA_FILE, load_dataset, save_dataset

    folder = save_dataset(setting1_dataset, tmp_path / "ds")
    path = folder / DATA_FILE
    lines = path.read_bytes().split(b"\n")
    lines[4] += b"\xff"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=f"{DATA_FILE}: line 5 is not UTF-8 text \\(byte 0xff"):
        load_dataset(folder)


def test_a_config_file_with_a_yaml_syntax_error_is_one_line(tmp_path, capsys):
    from deepstock.tools.cli import main

    config = tmp_path / "config.yaml"
    config.write_text("epochs: [1, 2\npatience: : 3\n", encoding="utf-8")
    argv = ["train", "--setting", "setting1", "--method", "ds", "--reg", "base"]
    with pytest.raises(SystemExit) as error:
        main([*argv, "--config", str(config)])
    err = capsys.readouterr().err
    assert error.value.code == 2 and "YAML syntax error at line 2, column" in err
    assert "Traceback" not in err


def test_a_demand_beyond_the_training_dtype_names_the_sku(setting1_dataset):
    demand = setting1_dataset.demand.copy()
    demand[3, 7] = 1e300
    dataset = dataclasses.replace(setting1_dataset, demand=demand)
    message = f"demand 1e\\+300 of sku_id {dataset.sku_id[3]}, day 7 does not fit torch.float32"
    with pytest.raises(ValueError, match=message):
        InventorySimulator.from_dataset(dataset, device="cpu", dtype=torch.float32)
    InventorySimulator.from_dataset(dataset, device="cpu", dtype=torch.float64)  # fits


# ====================================================================== chapters and loaders
def test_load_setting_names_a_bad_stream_instead_of_a_mismatch():
    from deepstock.datasets.catalog import load_setting

    with pytest.raises(ValueError, match="stream must be one of \\('authors', 'fresh'\\)"):
        load_setting("setting1", stream="bogus")


def test_the_model_chapter_names_a_trajectory_out_of_range(tmp_path):
    from pathlib import Path

    from deepstock.tools.book import NotebookExecutionError, execute_chapter

    root = Path(__file__).resolve().parent.parent
    parameters = {"profile": "smoke", "device": "cpu", "trajectory": 500}
    with pytest.raises(
        NotebookExecutionError, match="trajectory must be an integer in \\[0, 99\\], got 500"
    ):
        execute_chapter(
            "inventory_model",
            root / "notebooks" / "inventory_model.md",
            tmp_path / "inventory_model.ipynb",
            parameters,
            cwd=root,
        )


def test_a_committed_dataset_edited_by_hand_is_refused(tmp_path):
    import shutil
    from pathlib import Path

    from deepstock.datasets.catalog import FINGERPRINTS_FILE, default_datasets_dir, load_setting
    from deepstock.datasets.io import save_dataset

    committed = default_datasets_dir()
    if committed is None:
        pytest.skip("not a checkout")
    # the manifest holds what the generator writes (the proxy: its committed file)
    for name in ("setting1", "setting2", "setting3"):
        fresh = save_dataset(make_setting(name), tmp_path / "fresh" / name)
        for path in fresh.iterdir():
            assert path.read_bytes() == (committed / name / path.name).read_bytes()
    root = tmp_path / "datasets"
    shutil.copytree(committed / "setting1", root / "setting1")
    shutil.copy(committed / FINGERPRINTS_FILE, root / FINGERPRINTS_FILE)
    assert load_setting("setting1", datasets_dir=root).equals(make_setting("setting1"))

    csv = root / "setting1" / "trajectories.csv"
    text = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = text[1].split(",")
    fields[3] = str(float(fields[3]) + 1)  # one demand changed by one unit
    text[1] = ",".join(fields)
    csv.write_text("".join(text), encoding="utf-8")
    with pytest.raises(ValueError, match=f"{Path('setting1', 'trajectories.csv')} differs from"):
        load_setting("setting1", datasets_dir=root)

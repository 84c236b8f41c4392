"""Tests of the datasets of settings 1-4 (deepstock.datasets.synthetic, the book's *The inventory model* and *Settings 1-3* chapters)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepstock.datasets.catalog import default_datasets_dir, load_setting
from deepstock.datasets.io import DATA_FILE, META_FILE, load_dataset, save_dataset
from deepstock.datasets.synthetic import (
    dataset_name,
    generate_ar1,
    generate_iid,
    generate_indep,
    iid_demand_days,
    make_setting,
)
from deepstock.model.dataset import CORE_COLUMNS, SPLITS, InventoryDataset

FIXTURES = Path(__file__).parent / "fixtures"
REPO_DATASETS = Path(__file__).resolve().parent.parent / "data" / "datasets"

# Fixture key (see tests/fixtures/README.md) -> the make_setting call that must reproduce it.
REFERENCE_CASES = {
    "setting1": ("setting1", {}),
    "setting2": ("setting2", {}),
    "setting3": ("setting3", {}),
    "setting4_n5_h2": ("setting4", {"n_skus": 5, "horizon_periods": 2}),
    "setting4_n10_h16": ("setting4", {"n_skus": 10, "horizon_periods": 16}),
}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "reference_datasets.npz") as arrays:
        return {key: arrays[key] for key in arrays.files}


def small_dataset(**overrides) -> InventoryDataset:
    """A hand-made 4-trajectory, 3-day dataset with two features."""
    n, horizon = 4, 3
    fields = {
        "name": "tiny",
        "demand": np.arange(n * horizon, dtype=np.float64).reshape(n, horizon) / 3,
        "features": np.arange(n * horizon * 2, dtype=np.float64).reshape(n, horizon, 2) - 5.5,
        "feature_names": ("level", "trend"),
        "review_period": np.array([1, 2, 3, 2]),
        "lead_time": np.array([[0, 0, 0], [1, 2, 1], [3, 3, 3], [0, 1, 0]]),
        "initial_stock": np.array([0.0, 5.0, -2.5, 1e-300]),
        "split": np.array(["train", "val", "test", "test"]),
        "sku_id": np.array([7, -3, 12, 4]),
        "params": {"note": "hand-made", "values": [1, 2.5]},
    }
    fields.update(overrides)
    return InventoryDataset(**fields)


# ---- the authors' stream reproduces their data ------------------------------------------------


@pytest.mark.parametrize("key", sorted(REFERENCE_CASES))
def test_authors_stream_reproduces_reference_data(reference, key):
    setting, kwargs = REFERENCE_CASES[key]
    dataset = make_setting(setting, stream="authors", seed=42, **kwargs)
    demand = reference[f"{key}/demand"]
    assert dataset.demand.shape == demand.shape
    assert dataset.horizon == int(reference[f"{key}/period_num"][0])
    # The authors wrote str(float), which round-trips, so the match is exact; the tolerance
    # check documents the brief's 1e-9 requirement and gives a readable diff if it ever fails.
    np.testing.assert_allclose(dataset.demand, demand, rtol=1e-9, atol=0)
    np.testing.assert_array_equal(dataset.demand, demand)
    np.testing.assert_array_equal(dataset.features[:, :, 0], reference[f"{key}/feature"])
    assert dataset.features.shape[2] == 1
    np.testing.assert_array_equal(dataset.sku_id, reference[f"{key}/sku_id"])
    np.testing.assert_array_equal(dataset.split, reference[f"{key}/split"])
    np.testing.assert_array_equal(dataset.lead_time, reference[f"{key}/lead_time"])
    np.testing.assert_array_equal(dataset.review_period, reference[f"{key}/review_period"])
    np.testing.assert_array_equal(dataset.initial_stock, reference[f"{key}/initial_stock"])
    assert dataset.coeff_features == ()
    assert not dataset.lost_sales
    assert (dataset.holding_cost, dataset.backlog_cost) == (0.1, 0.9)
    assert dataset.max_replenish == (500.0 if setting == "setting4" else 100.0)


def test_reference_features_are_the_documented_ones(reference):
    """The fixture's features are the paper's: floor(t/P), D_{t-1}, sigma."""
    days = np.arange(31)
    np.testing.assert_array_equal(reference["setting1/feature"][0], days // 2)
    ar = make_setting("setting2")
    np.testing.assert_array_equal(ar.features[:, 1:, 0], ar.demand[:, :-1])
    # Day 0 sees the last burn-in day, which is not part of the trajectory.
    assert ar.params["args"]["burn_in"] == 8
    iid = make_setting("setting4", n_skus=5, horizon_periods=2)
    sigma = np.asarray(iid.params["sku_parameters"]["std"])
    np.testing.assert_array_equal(iid.features[:5, :, 0], np.repeat(sigma[:, None], 7, axis=1))
    np.testing.assert_array_equal(iid.features[10:110, 0, 0], np.full(100, sigma[0]))


def test_ar1_settings_share_trajectories_and_split_sizes_only_relabel():
    setting2, setting3 = make_setting("setting2"), make_setting("setting3")
    np.testing.assert_array_equal(setting3.demand, setting2.demand[:110])
    assert setting3.split_sizes() == {"train": 5, "val": 5, "test": 100}
    # INDEP draws row by row too: other split sizes keep the first trajectories.
    smaller = make_setting("setting1", train_size=5, val_size=5)
    np.testing.assert_array_equal(smaller.demand, make_setting("setting1").demand[:110])


def test_generators_leave_global_numpy_state_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = make_setting("setting2")
    np.random.seed(999)  # the global state must not influence the datasets either
    second = make_setting("setting2")
    np.random.seed(123)
    assert np.array_equal(np.random.get_state()[1], before)
    assert first.equals(second)
    make_setting("setting1", stream="fresh", seed=1)
    make_setting("setting4", n_skus=2, horizon_periods=2)
    assert np.array_equal(np.random.get_state()[1], before)


# ---- the fresh stream ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "kwargs"),
    [("setting1", {}), ("setting2", {}), ("setting4", {"n_skus": 3, "horizon_periods": 4})],
)
def test_fresh_stream_is_deterministic_and_new(setting, kwargs):
    authors = make_setting(setting, **kwargs)
    fresh = make_setting(setting, stream="fresh", seed=42, **kwargs)
    again = make_setting(setting, stream="fresh", seed=42, **kwargs)
    other = make_setting(setting, stream="fresh", seed=43, **kwargs)
    assert fresh.equals(again)
    assert not np.array_equal(fresh.demand, authors.demand)
    assert not np.array_equal(fresh.demand, other.demand)
    assert fresh.demand.shape == authors.demand.shape
    np.testing.assert_array_equal(fresh.split, authors.split)
    assert fresh.name == dataset_name(setting, stream="fresh", seed=42, **kwargs)
    assert fresh.params["stream"] == "fresh" and fresh.params["seed"] == 42


def test_fresh_stream_accepts_a_generator():
    a = generate_ar1(stream="fresh", rng=np.random.default_rng(5))
    b = generate_ar1(stream="fresh", rng=np.random.default_rng(5))
    assert a.equals(b)
    assert a.params["seed"] is None
    with pytest.raises(ValueError, match="rng can only be given with stream='fresh'"):
        generate_ar1(rng=np.random.default_rng(5))


def test_fresh_indep_keeps_the_authors_distribution():
    authors = make_setting("setting1")
    fresh = make_setting("setting1", stream="fresh", seed=7, test_size=2000)
    lower = np.asarray(authors.params["lower_bounds"])
    assert fresh.params["lower_bounds"] == authors.params["lower_bounds"]
    offset = fresh.demand - lower
    assert offset.min() == 0 and offset.max() == 4
    assert np.array_equal(fresh.demand, np.round(fresh.demand))
    # Each of the 5 values has probability 1/5 on every day.
    frequencies = np.stack([(offset == k).mean(axis=0) for k in range(5)])
    assert np.abs(frequencies - 0.2).max() < 0.05
    np.testing.assert_array_equal(fresh.features[0, :, 0], np.arange(31) // 2)


def test_fresh_ar1_follows_its_recursion():
    # With mu >> sigma the clip at 0 never binds, so D_t - phi D_{t-1} - (1 - phi) mu is the
    # innovation itself, and divided by sigma it must be N(0, 1).
    dataset = generate_ar1(
        stream="fresh", seed=3, test_size=300, mean_range=(50, 60), std_range=(1, 3), name="ar"
    )
    sku = dataset.params["sku_parameters"]
    phi, mu, sigma = (np.asarray(sku[key])[:, None] for key in ("phi", "mean", "std"))
    assert phi.min() >= 0.3 and phi.max() <= 0.9
    assert mu.min() >= 50 and mu.max() <= 60
    assert sigma.min() >= 1 and sigma.max() <= 3
    previous = dataset.features[:, :, 0]
    np.testing.assert_array_equal(previous[:, 1:], dataset.demand[:, :-1])
    assert (dataset.demand > 0).all()
    innovation = (dataset.demand - phi * previous - (1 - phi) * mu) / sigma
    assert abs(innovation.mean()) < 0.05
    assert abs(innovation.std() - 1) < 0.05
    # Consecutive innovations are independent.
    assert abs(np.corrcoef(innovation[:, 1:].ravel(), innovation[:, :-1].ravel())[0, 1]) < 0.05
    # The default setting clips at 0 and stays non-negative.
    assert (make_setting("setting2", stream="fresh", seed=3).demand >= 0).all()


def test_fresh_iid_has_demand_on_order_arrival_days_only():
    dataset = generate_iid(
        n_skus=4, horizon_periods=3, review_period=3, lead_time=2, test_repeats=5, stream="fresh"
    )
    assert dataset.horizon == (3 + 2) + 3 * 3
    days = iid_demand_days(3, review_period=3, lead_time=2)
    np.testing.assert_array_equal(days, [5, 8, 11])
    other = np.setdiff1d(np.arange(dataset.horizon), days)
    assert (dataset.demand[:, other] == 0).all()
    assert (dataset.demand[:, days] > 0).all()
    assert dataset.split_sizes() == {"train": 4, "val": 4, "test": 20}
    sigma = np.asarray(dataset.params["sku_parameters"]["std"])
    np.testing.assert_array_equal(dataset.features[4:8, 0, 0], sigma)
    np.testing.assert_array_equal(dataset.features[8:, 0, 0], np.repeat(sigma, 5))
    assert dataset.params["demand_days"] == [5, 8, 11]


def test_overrides_reach_the_dataset():
    dataset = make_setting("setting1", review_period=3, lead_time=0, horizon=10, test_size=4)
    assert dataset.horizon == 10
    assert (dataset.review_period == 3).all() and (dataset.lead_time == 0).all()
    np.testing.assert_array_equal(dataset.features[0, :, 0], np.arange(10) // 3)
    assert dataset.name == "setting1-t10-l0-p3-test4"
    assert dataset.params["setting"] == "setting1"
    assert dataset.params["args"]["test_size"] == 4
    assert make_setting("setting2", burn_in=1).features[0, 0, 0] >= 0
    assert make_setting("setting1", name="mine").name == "mine"


def test_dataset_names():
    assert dataset_name("setting1") == "setting1"
    assert dataset_name("setting2", lead_time=1, review_period=2) == "setting2"
    assert dataset_name("setting3", stream="fresh", seed=0) == "setting3-fresh-seed0"
    assert dataset_name("setting1", seed=7) == "setting1-seed7"
    assert dataset_name("setting4", n_skus=20, horizon_periods=64) == "setting4-n20-h64"
    assert (
        dataset_name("setting4", n_skus=5, horizon_periods=8, test_repeats=3, std_range=(1, 2.5))
        == "setting4-n5-h8-stdrange1_2.5-rep3"
    )


# ---- parameter errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "kwargs", "message"),
    [
        (generate_indep, {"horizon": 0}, "horizon must be an integer >= 1"),
        (generate_indep, {"review_period": 0}, "review_period must be an integer >= 1"),
        (generate_indep, {"lead_time": -1}, "lead_time must be an integer >= 0"),
        (generate_indep, {"val_size": 0}, "val_size must be an integer >= 1"),
        (generate_indep, {"train_size": 2.5}, "train_size must be an integer"),
        (generate_indep, {"span": True}, "span must be an integer"),
        (generate_indep, {"lower_bounds": [1, 2]}, "lower_bounds must be 31"),
        (generate_indep, {"stream": "paper"}, "stream must be one of"),
        (generate_indep, {"seed": -1}, "seed must be an integer >= 0"),
        (generate_indep, {"max_replenish": 0}, "max_replenish must be > 0"),
        (generate_indep, {"holding_cost": -0.1}, r"holding_cost must be a finite number >= 0\.0"),
        (generate_ar1, {"phi_range": (0.5, 1.5)}, "phi_range must lie within"),
        (generate_ar1, {"std_range": (3, 2)}, "std_range must have low <= high"),
        (generate_ar1, {"mean_range": 5}, "mean_range must be a pair"),
        (generate_ar1, {"burn_in": 0}, "burn_in must be an integer >= 1"),
        (generate_iid, {"n_skus": 0}, "n_skus must be an integer >= 1"),
        (generate_iid, {"horizon_periods": 0}, "horizon_periods must be an integer >= 1"),
        (generate_iid, {"test_repeats": 0}, "test_repeats must be an integer >= 1"),
        (
            generate_iid,
            {"demand_mean": float("nan")},
            r"demand_mean must be a finite number >= 0\.0",
        ),
    ],
)
def test_generator_parameter_errors(function, kwargs, message):
    with pytest.raises(ValueError, match=message):
        function(**kwargs)


def test_make_setting_errors():
    with pytest.raises(ValueError, match="unknown setting 'setting5'"):
        make_setting("setting5")
    with pytest.raises(ValueError, match="setting4 needs horizon_periods"):
        make_setting("setting4", n_skus=5)
    with pytest.raises(ValueError, match="apply to setting4 only"):
        make_setting("setting1", n_skus=5)
    with pytest.raises(ValueError, match="unknown argument.*not_a_parameter"):
        make_setting("setting1", not_a_parameter=1)


# ---- construction checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"demand": np.zeros((3, 3))}, r"features must have shape \(n, T, F\)"),
        ({"demand": np.zeros(4)}, "demand must have 2 dimensions"),
        ({"demand": np.zeros((4, 0))}, "at least one day"),
        ({"demand": np.full((4, 3), -1.0)}, "demand must be >= 0 .sku_id 7, day 0"),
        ({"demand": np.full((4, 3), np.nan)}, "demand must be finite"),
        ({"demand": np.full((4, 3), "x")}, "demand must hold numbers"),
        ({"features": np.full((4, 3, 2), np.inf)}, "features must be finite"),
        ({"feature_names": ("level",)}, "feature_names has 1 names for 2 features"),
        ({"feature_names": ("level", "level")}, "feature_names must be unique"),
        ({"feature_names": ("level", "demand")}, "clashes with a core column"),
        ({"feature_names": ("level", "my trend")}, "must be a Python identifier"),
        ({"review_period": np.array([1, 0, 1, 1])}, "review_period must be >= 1 .sku_id -3"),
        ({"review_period": np.array([1.0, 2.0, 1.0, 1.0])}, "review_period must hold integers"),
        ({"review_period": np.array([1, 2, 3])}, r"review_period must have shape \(4,\)"),
        ({"lead_time": np.full((4, 3), -1)}, "lead_time must be >= 0"),
        ({"initial_stock": np.array([0, np.nan, 0, 0])}, "initial_stock must be finite"),
        ({"split": np.array(["train", "val", "tst", "test"])}, "split must be one of"),
        ({"split": np.array([1, 2, 3, 4])}, "split must hold strings"),
        ({"coeff_features": (2,)}, "coeff_features index 2 is out of range"),
        ({"max_replenish": 0}, "max_replenish must be finite and > 0"),
        ({"holding_cost": "0.1"}, "holding_cost must be a number"),
        ({"lost_sales": 1}, "lost_sales must be a bool"),
        ({"name": ""}, "name must be a non-empty string"),
    ],
)
def test_construction_rejects_bad_fields(overrides, message):
    with pytest.raises(ValueError, match=message):
        small_dataset(**overrides)


def test_construction_normalizes_dtypes_and_validate_checks_the_whole():
    dataset = small_dataset(demand=[[1, 2, 3]] * 4, split=["train", "val", "test", "test"])
    assert dataset.demand.dtype == np.float64 and dataset.split.dtype.kind == "U"
    assert dataset.validate() is dataset
    # Selections may repeat a trajectory or hold one split; validate() is where they fail.
    repeated = dataset.select(np.array([0, 0, 2]))
    assert repeated.n_trajectories == 3
    with pytest.raises(ValueError, match=r"sku_id must be unique, repeated: \[7\]"):
        repeated.validate(require_splits=())
    test_only = dataset.subset("test")
    with pytest.raises(ValueError, match="no trajectories in split 'train'"):
        test_only.validate()
    assert test_only.validate(require_splits=("test",)) is test_only
    with pytest.raises(ValueError, match="params must be JSON-serializable"):
        small_dataset(params={"x": np.float32(1.0)}).validate()
    with pytest.raises(ValueError, match="params must be JSON-serializable"):
        small_dataset(params={"x": float("nan")}).validate()


def test_equals_compares_exactly():
    dataset = small_dataset()
    assert dataset.equals(small_dataset())
    assert not dataset.equals(small_dataset(demand=dataset.demand + 1e-12))
    assert not dataset.equals(dataclasses.replace(dataset, params={}))
    assert not dataset.equals("tiny")


# ---- on-disk format --------------------------------------------------------------------------


def test_committed_datasets_regenerate_byte_for_byte(tmp_path):
    for setting in ("setting1", "setting2", "setting3"):
        committed = REPO_DATASETS / setting
        folder = save_dataset(make_setting(setting), tmp_path / setting)
        for file_name in (DATA_FILE, META_FILE):
            assert (folder / file_name).read_bytes() == (committed / file_name).read_bytes(), (
                f"{committed / file_name} differs from a fresh generation: regenerate it with "
                f"`deepstock generate {setting}`"
            )


def test_committed_datasets_load_as_generated():
    assert default_datasets_dir() == REPO_DATASETS
    for setting in ("setting1", "setting2", "setting3"):
        loaded = load_setting(setting)
        assert loaded.equals(make_setting(setting))


def test_csv_layout(tmp_path):
    folder = save_dataset(make_setting("setting2"), tmp_path / "s2")
    lines = (folder / DATA_FILE).read_text().splitlines()
    assert lines[0] == ",".join(CORE_COLUMNS) + ",previous_demand"
    assert lines[1] == "1,train,0,0.0,1,2,0.0,0.9950806338071247"
    assert len(lines) == 1 + 120 * 31
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["format_version"] == 1
    assert meta["feature_names"] == ["previous_demand"]
    assert meta["split_sizes"] == {"train": 10, "val": 10, "test": 100}
    assert sorted(path.name for path in folder.iterdir()) == sorted([DATA_FILE, META_FILE])


def test_save_is_deterministic_and_overwrites(tmp_path):
    dataset = make_setting("setting4", n_skus=2, horizon_periods=3, test_repeats=2)
    first = save_dataset(dataset, tmp_path / "a")
    save_dataset(make_setting("setting1", test_size=1), tmp_path / "b")
    second = save_dataset(dataset, tmp_path / "b")  # overwrites another dataset
    for file_name in (DATA_FILE, META_FILE):
        assert (first / file_name).read_bytes() == (second / file_name).read_bytes()
    assert load_dataset(second).equals(dataset)


def test_save_refuses_invalid_datasets(tmp_path):
    with pytest.raises(ValueError, match="no trajectories in split 'train'"):
        save_dataset(small_dataset().subset("test"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_load_ignores_row_order(tmp_path):
    dataset = small_dataset()
    folder = save_dataset(dataset, tmp_path / "d")
    path = folder / DATA_FILE
    header, *rows = path.read_text().splitlines()
    # Days reversed within each SKU, SKUs kept in order of first appearance.
    by_sku: dict[str, list[str]] = {}
    for row in rows:
        by_sku.setdefault(row.split(",")[0], []).append(row)
    shuffled = [row for sku_rows in by_sku.values() for row in reversed(sku_rows)]
    path.write_text("\n".join([header, *shuffled]) + "\n")
    assert load_dataset(folder).equals(dataset)


finite_floats = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def datasets(draw) -> InventoryDataset:
    n = draw(st.integers(3, 6))
    horizon = draw(st.integers(1, 4))
    n_features = draw(st.integers(0, 2))
    shape = (n, horizon)
    demand = draw(
        st.lists(st.floats(min_value=0, allow_infinity=False), min_size=n * horizon)
        .map(lambda values: values[: n * horizon])
        .map(lambda values: np.array(values).reshape(shape))
    )
    features = np.array(
        draw(st.lists(finite_floats, min_size=n * horizon * n_features, max_size=n * horizon * 2))
    )[: n * horizon * n_features].reshape(n, horizon, n_features)
    # Every split gets at least one trajectory; the rest are drawn.
    split = list(SPLITS) + draw(st.lists(st.sampled_from(SPLITS), min_size=n - 3, max_size=n - 3))
    split = draw(st.permutations(split))
    sku_id = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n, unique=True))
    names = draw(
        st.lists(
            st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
                lambda name: name not in CORE_COLUMNS
            ),
            min_size=n_features,
            max_size=n_features,
            unique=True,
        )
    )
    return InventoryDataset(
        name=draw(st.text(min_size=1, max_size=8)),
        demand=demand,
        features=features,
        feature_names=tuple(names),
        review_period=np.array(draw(st.lists(st.integers(1, 9), min_size=n, max_size=n))),
        lead_time=np.array(
            draw(st.lists(st.integers(0, 9), min_size=n * horizon, max_size=n * horizon))
        ).reshape(shape),
        initial_stock=np.array(draw(st.lists(finite_floats, min_size=n, max_size=n))),
        split=np.array(split),
        sku_id=np.array(sku_id, dtype=np.int64),
        holding_cost=draw(st.floats(0, 10)),
        backlog_cost=draw(st.floats(0, 10)),
        max_replenish=draw(st.floats(1e-3, 1e6)),
        lost_sales=draw(st.booleans()),
        coeff_features=tuple(range(draw(st.integers(0, n_features)))),
        params=draw(
            st.dictionaries(
                st.text(max_size=5), st.one_of(st.integers(), finite_floats, st.text()), max_size=3
            )
        ),
    )


@settings(max_examples=40, deadline=None)
@given(dataset=datasets())
def test_save_load_round_trip_is_exact(dataset):
    with tempfile.TemporaryDirectory() as directory:
        folder = save_dataset(dataset, Path(directory) / "d")
        loaded = load_dataset(folder)
        assert loaded.equals(dataset)
        # Saving what was loaded writes the same bytes.
        again = save_dataset(loaded, Path(directory) / "e")
        for file_name in (DATA_FILE, META_FILE):
            assert (folder / file_name).read_bytes() == (again / file_name).read_bytes()
        assert sorted(path.name for path in folder.iterdir()) == sorted([DATA_FILE, META_FILE])


# ---- load errors -----------------------------------------------------------------------------


def _edit_csv(folder: Path, edit) -> None:
    path = folder / DATA_FILE
    header, *rows = path.read_text().splitlines()
    header, rows = edit(header, rows)
    path.write_text("\n".join([header, *rows]) + "\n")


def _set_field(rows: list[str], index: int, column: str, value: str) -> list[str]:
    fields = rows[index].split(",")
    fields[CORE_COLUMNS.index(column)] = value
    return [*rows[:index], ",".join(fields), *rows[index + 1 :]]


# Each edit of the CSV of small_dataset() (rows: sku 7 days 0-2, sku -3 days 0-2, ...) and the
# message that load_dataset must give; the message always also names the file.
CSV_ERRORS = {
    "missing column": (
        lambda h, r: (h.replace(",trend", ""), [x.rsplit(",", 1)[0] for x in r]),
        r"missing columns \['trend'\]",
    ),
    "unknown column": (
        lambda h, r: (h + ",extra", [x + ",1" for x in r]),
        r"unknown columns \['extra'\]",
    ),
    "repeated column": (lambda h, r: (h + ",level", [x + ",1" for x in r]), "repeated columns"),
    "ragged row": (lambda h, r: (h, [*r[:2], r[2] + ",9", *r[3:]]), "line 4 has 10 fields"),
    "float day": (lambda h, r: (h, _set_field(r, 1, "day", "1.5")), "column 'day' must hold int"),
    "huge sku_id": (
        lambda h, r: (h, _set_field(r, 0, "sku_id", "9" * 20)),
        "column 'sku_id' holds an integer outside the int64 range",
    ),
    "text demand": (
        lambda h, r: (h, _set_field(r, 4, "demand", "many")),
        "column 'demand' must hold numbers .line 6",
    ),
    "negative demand": (
        lambda h, r: (h, _set_field(r, 4, "demand", "-1.0")),
        "demand must be >= 0 .sku_id -3, day 1",
    ),
    "nan demand": (
        lambda h, r: (h, _set_field(r, 4, "demand", "nan")),
        "demand must be finite .sku_id -3, day 1",
    ),
    "infinite feature": (
        lambda h, r: (h, [*r[:-1], r[-1].rsplit(",", 1)[0] + ",inf"]),
        "features must be finite",
    ),
    "review period 0": (
        lambda h, r: (h, [_set_field([x], 0, "review_period", "0")[0] for x in r]),
        "review_period must be >= 1 .sku_id 7",
    ),
    "review period changes": (
        lambda h, r: (h, _set_field(r, 0, "review_period", "5")),
        "column 'review_period' must be constant within a SKU .sku_id 7",
    ),
    "negative lead time": (
        lambda h, r: (h, _set_field(r, 7, "lead_time", "-1")),
        "lead_time must be >= 0 .sku_id 12, day 1",
    ),
    "unknown split": (
        lambda h, r: (h, [x.replace(",val,", ",validation,") for x in r]),
        "split must be one of .* .sku_id -3 has 'validation'",
    ),
    "split changes within a SKU": (
        lambda h, r: (h, _set_field(r, 2, "split", "test")),
        "column 'split' must be constant within a SKU .sku_id 7",
    ),
    "empty split": (
        lambda h, r: (h, [x.replace(",val,", ",test,") for x in r]),
        "no trajectories in split 'val'",
    ),
    "duplicate row": (
        lambda h, r: (h, [*r, r[4]]),
        "repeated rows for sku_id -3, day 1",
    ),
    "missing day": (
        lambda h, r: (h, [*r[:4], *r[5:]]),
        "sku_id -3 has 2 days, sku_id 7 has 3",
    ),
    "days not 0..T-1": (
        lambda h, r: (h, _set_field(r, 5, "day", "7")),
        r"column 'day' of sku_id -3 must be 0..2, got \[0, 1, 7\]",
    ),
    "no rows": (lambda h, r: (h, []), "no rows"),
}


@pytest.mark.parametrize("case", sorted(CSV_ERRORS))
def test_load_rejects_bad_csv(tmp_path, case):
    edit, message = CSV_ERRORS[case]
    folder = save_dataset(small_dataset(), tmp_path / "d")
    _edit_csv(folder, edit)
    with pytest.raises(ValueError, match=message) as error:
        load_dataset(folder)
    assert str(folder) in str(error.value)


META_ERRORS = {
    "missing key": (lambda m: m.pop("lost_sales"), r"missing keys \['lost_sales'\]"),
    "unknown key": (lambda m: m.update(colour="red"), r"unknown keys \['colour'\]"),
    "wrong type": (lambda m: m.update(holding_cost="0.1"), "'holding_cost' must be int or float"),
    "bool as number": (lambda m: m.update(horizon=True), "'horizon' must be int"),
    "future version": (lambda m: m.update(format_version=2), "format_version 2 is not supported"),
    "wrong count": (lambda m: m.update(n_trajectories=5), "n_trajectories is 5 but"),
    "wrong split sizes": (
        lambda m: m["split_sizes"].update(val=2),
        "split_sizes is .* but trajectories.csv has",
    ),
    "negative cost": (lambda m: m.update(backlog_cost=-1), "backlog_cost must be finite and >= 0"),
    "feature not in csv": (
        lambda m: m.update(feature_names=["level", "trend", "season"]),
        r"missing columns \['season'\]",
    ),
    "feature missing from meta": (
        lambda m: m.update(feature_names=["level"], coeff_features=[]),
        r"unknown columns \['trend'\]",
    ),
}


@pytest.mark.parametrize("case", sorted(META_ERRORS))
def test_load_rejects_bad_meta(tmp_path, case):
    edit, message = META_ERRORS[case]
    folder = save_dataset(small_dataset(), tmp_path / "d")
    meta = json.loads((folder / META_FILE).read_text())
    edit(meta)
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=message) as error:
        load_dataset(folder)
    assert str(folder) in str(error.value)


def test_load_rejects_missing_or_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such dataset folder"):
        load_dataset(tmp_path / "absent")
    folder = save_dataset(small_dataset(), tmp_path / "d")
    (folder / META_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="meta.json: not valid JSON"):
        load_dataset(folder)
    (folder / META_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="meta.json: missing"):
        load_dataset(folder)
    folder = save_dataset(small_dataset(), tmp_path / "e")
    (folder / DATA_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="trajectories.csv: missing"):
        load_dataset(folder)
    (folder / DATA_FILE).write_text("")
    with pytest.raises(ValueError, match="empty file"):
        load_dataset(folder)


# ---- load_setting ----------------------------------------------------------------------------


def test_load_setting_generates_when_nothing_is_saved(tmp_path):
    dataset = load_setting("setting4", n_skus=2, horizon_periods=2, datasets_dir=tmp_path)
    assert dataset.equals(make_setting("setting4", n_skus=2, horizon_periods=2))
    assert list(tmp_path.iterdir()) == []


def test_load_setting_reads_saved_and_checks_its_parameters(tmp_path):
    saved = make_setting("setting1", stream="fresh", seed=5, lead_time=2)
    save_dataset(saved, tmp_path / saved.name)
    loaded = load_setting("setting1", stream="fresh", seed=5, lead_time=2, datasets_dir=tmp_path)
    assert loaded.equals(saved)
    # A folder under a setting's name that holds other data is an error, not silently used.
    save_dataset(make_setting("setting1", lead_time=2, name="setting1"), tmp_path / "setting1")
    with pytest.raises(ValueError, match="setting1: was generated with"):
        load_setting("setting1", datasets_dir=tmp_path)

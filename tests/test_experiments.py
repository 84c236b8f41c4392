"""The experiment definitions, and the committed quick results reproduced from their records."""

import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from deepstock.datasets.catalog import load_setting
from deepstock.model.optimal import benchmark_losses
from deepstock.model.regularizations import BUILTIN_REGULARIZATIONS
from deepstock.paper.experiments import (
    ExperimentContext,
    dataset_on_split,
    proxy_comparison,
    proxy_full_length,
    run_experiment,
    setting4,
    setting_benchmark,
    settings_comparison,
    state_spread,
    trials_to_beat_ds,
)
from deepstock.results.store import (
    ResultStore,
    current_cpu_capability,
    record_cpu_capability,
)


@pytest.fixture
def smoke_context(tmp_path):
    return ExperimentContext(
        profile="smoke",
        device="cpu",
        store=ResultStore(tmp_path / "results"),
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
    )


def test_dataset_on_split_uses_one_split_three_times():
    dataset = load_setting("setting3")
    fitted = dataset_on_split(dataset, "test")
    test = dataset.subset("test")
    for split in ("train", "val", "test"):
        part = fitted.subset(split)
        assert np.array_equal(part.demand, test.demand)
        assert np.array_equal(part.sku_id, test.sku_id)
    assert fitted.params["fitted_on_split"] == "test"


def test_trials_to_beat_ds_is_the_first_crossing():
    rows = []
    curves = {
        ("ds", "none"): [1.2, 1.1, 1.0, 1.0],
        ("ddpg", "none"): [2.0, 1.5, 0.99, 0.9],  # below DS first after 3 trials
        ("ppo", "none"): [2.0, 2.0, 2.0, 2.0],  # never
        ("ds", "base"): [1.0, 1.0, 1.0, 1.0],
        ("ddpg", "base"): [0.9, 0.8, 0.8, 0.8],  # at once
        ("ppo", "base"): [1.0, 0.95, 0.9, 0.9],  # equal is not below: after 2
    }
    for (method, reg), values in curves.items():
        for n, value in enumerate(values, start=1):
            rows.append(
                {"method": method, "regularization": reg, "n_trials": n, "best_val_loss": value}
            )
    counts = trials_to_beat_ds(pd.DataFrame(rows)).set_index(["method", "regularization"])
    assert counts.loc[("ddpg", "none"), "trials"] == 3
    assert pd.isna(counts.loc[("ppo", "none"), "trials"])
    assert counts.loc[("ddpg", "base"), "trials"] == 1
    assert counts.loc[("ppo", "base"), "trials"] == 2
    assert (counts["budget"] == 4).all()


def test_setting4_smoke_cell_and_resume(smoke_context):
    tables = setting4(smoke_context, n_skus=(5,), horizons=(2,))
    row = tables["results"].iloc[0]
    bench = benchmark_losses(load_setting("setting4", n_skus=5, horizon_periods=2))[0]
    assert row["benchmark_test_loss"] == pytest.approx(bench["test_loss"])
    assert row["test_gap_pct"] == pytest.approx(100 * (row["test_loss"] / bench["test_loss"] - 1))
    assert row["paper_test_gap_pct"] == pytest.approx(21.40)
    stored = sorted(smoke_context.store.keys())
    again = setting4(smoke_context, n_skus=(5,), horizons=(2,))
    assert sorted(smoke_context.store.keys()) == stored  # nothing retrained
    pd.testing.assert_frame_equal(again["results"], tables["results"])


def test_settings_comparison_smoke_gaps(smoke_context):
    tables = settings_comparison(smoke_context, settings=("setting1",), pairs=(("ds", "base"),))
    results, bench = tables["results"], tables["benchmarks"]
    primary = bench[bench["primary"]].iloc[0]
    assert primary["policy"] == "dp_true"
    row = results.iloc[0]
    assert row["val_gap_pct"] == pytest.approx(100 * (row["val_loss"] / primary["val_loss"] - 1))
    assert row["paper_test_loss"] == pytest.approx(1.0959)
    assert set(tables["curves"]["n_trials"]) == {1, 2}


def test_settings_comparison_takes_a_plug_in_regularization(smoke_context):
    from deepstock.model.regularizations import (
        REGULARIZATIONS,
        BaseStockRegularization,
        register_regularization,
    )

    class HalfBase(BaseStockRegularization):
        """Base stock on half the network's output (a plug-in for this test)."""

        name = "test_half_base"

        def order(self, raw, observation, coeff_values, max_replenish):
            return super().order(raw / 2, observation, coeff_values, max_replenish)

    register_regularization(HalfBase())
    try:
        tables = settings_comparison(
            smoke_context, settings=("setting1",), pairs=(("ds", "test_half_base"),)
        )
    finally:
        REGULARIZATIONS.pop("test_half_base")
    row = tables["results"].iloc[0]
    assert row["regularization"] == "test_half_base" and np.isfinite(row["test_loss"])
    assert np.isnan(row["paper_test_loss"])  # the paper did not run it


def test_proxy_comparison_smoke_layout_and_resume(smoke_context):
    from deepstock.datasets.proxy import generate_proxy

    proxy = generate_proxy(seed=1, train_size=12, val_size=8, test_size=12, horizon=40)
    pairs = (("ds", "coeff"), ("ppo", "both"))
    tables = proxy_comparison(smoke_context, dataset=proxy, pairs=pairs)
    results = tables["results"]
    assert list(results["method"]) == ["incumbent", "ds", "ppo"]
    assert results.loc[0, "test_gap_pct"] == 0.0
    for split in ("val", "test"):
        j = results[f"{split}_objective"]
        sr, tt = results[f"{split}_stockout_rate_pct"], results[f"{split}_turnover_days"]
        np.testing.assert_allclose(j, sr + tt / 2, rtol=1e-6)  # J = 100 SR + TT / 2 per row
    assert (results.loc[1:, "runs"] == 3).all()  # smoke: 2 trials + 1 seed
    runs = tables["runs"]
    assert len(runs) == 6 and set(runs["stage"]) == {"search", "confirm"}
    np.testing.assert_allclose(
        runs["test_objective"],
        runs["test_stockout_rate_pct"] + runs["test_turnover_days"] / 2,
        rtol=1e-6,
    )
    stored = sorted(smoke_context.store.keys())
    again = proxy_comparison(smoke_context, dataset=proxy, pairs=pairs)
    assert sorted(smoke_context.store.keys()) == stored  # read back, nothing retrained
    pd.testing.assert_frame_equal(again["results"], results)
    with pytest.raises(ValueError, match="objective 'tmall'"):
        proxy_comparison(smoke_context, dataset=load_setting("setting1"))


def test_proxy_full_length_retrains_the_winners_longer(smoke_context):
    from deepstock.datasets.proxy import generate_proxy

    proxy = generate_proxy(seed=1, train_size=12, val_size=8, test_size=12, horizon=40)
    pairs = (("ds", "both"),)
    tables = proxy_full_length(
        smoke_context, dataset=proxy, pairs=pairs, seeds=(0, 1), full_length=False
    )
    runs, summary = tables["runs"], tables["summary"]
    assert len(runs) == 2 and list(runs["seed"]) == [0, 1]
    assert (runs["trained_for"] <= 3).all()  # smoke's 3 epochs, not the paper's 3000
    row = summary.iloc[0]
    assert row["test_objective"] == pytest.approx(runs["test_objective"].mean())
    winner = proxy_comparison(smoke_context, dataset=proxy, pairs=pairs)["results"].iloc[1]
    assert row["budget_test_objective"] == pytest.approx(winner["test_objective"])
    assert row["incumbent_test_objective"] > 0


def test_ar1_benchmark_fits_each_split(smoke_context):
    bench = setting_benchmark("setting3", load_setting("setting3"), smoke_context)
    row = bench.iloc[0]
    assert row["policy"] == "ds_on_split" and row["primary"]
    assert row["val_loss"] > 0 and row["test_loss"] > 0 and row["val_loss"] != row["test_loss"]


def test_bad_experiment_and_parameters_fail_at_once(smoke_context):
    with pytest.raises(ValueError, match="unknown experiment"):
        run_experiment("nope", smoke_context)
    with pytest.raises(ValueError, match="n_skus"):
        setting4(smoke_context, n_skus=(0,), horizons=(2,))
    with pytest.raises(ValueError, match="workers"):
        ExperimentContext(profile="smoke", workers=0)
    with pytest.raises(ValueError, match="profile"):
        ExperimentContext(profile="huge")


#: PyTorch's CPU kernel families, narrowest first: a machine runs its own and every narrower one
#: (``ATEN_CPU_CAPABILITY`` selects one before torch is imported).
KERNEL_WIDTHS = ("DEFAULT", "AVX2", "AVX512")


def _reproduce_with_kernels(keys, capability):
    """``reproduce_stored_runs`` in a fresh interpreter whose torch uses ``capability``'s kernels."""
    script = (
        "import sys, json\n"
        "from deepstock.results.store import ResultStore, current_cpu_capability\n"
        "from deepstock.paper.experiments import reproduce_stored_runs\n"
        "assert current_cpu_capability() == sys.argv[1], current_cpu_capability()\n"
        "table = reproduce_stored_runs(ResultStore.for_profile('quick'), sys.argv[2:])\n"
        "print(table.to_json(orient='records'))\n"
    )
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        # torch's own kernels, and the widest instructions MKL's and oneDNN's may use
        "ATEN_CPU_CAPABILITY": capability.lower(),
        "MKL_ENABLE_INSTRUCTIONS": {"DEFAULT": "SSE4_2", "AVX512": "AVX512"}.get(
            capability, capability
        ),
        "ONEDNN_MAX_CPU_ISA": {"DEFAULT": "SSE41", "AVX512": "AVX512_CORE"}.get(
            capability, capability
        ),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, capability, *keys],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_json(io.StringIO(done.stdout.strip().splitlines()[-1]), orient="records")


def test_committed_quick_results_reproduce():
    """Retrain a sample of the committed quick runs from their records: the same numbers.

    A run reproduces to the last digits with CPU kernels of the width it was computed with
    (another width may round differently, which DDPG amplifies). A machine can run its own
    width and every narrower one, so the sample is drawn from the runs recorded with those, and
    each is retrained with its recorded kernels; every method and the proxy must have some.
    Runs stored before the width was recorded are left out: on an AMD AVX512 machine some of
    them differ (up to 0.42 for a DDPG run), so they were computed on another CPU model."""
    store = ResultStore.for_profile("quick")
    records = list(store.records())
    assert records, "the committed quick results (data/results/quick) are missing"
    capability = current_cpu_capability()
    assert capability in KERNEL_WIDTHS, f"unknown CPU kernel width {capability}"
    runnable = KERNEL_WIDTHS[: KERNEL_WIDTHS.index(capability) + 1]
    groups = {}
    for record in records:
        if record["identity"]["regularization"] not in BUILTIN_REGULARIZATIONS:
            continue  # a plug-in defined in a chapter (not registered here)
        if "cpu_capability" not in record["code_version"]:
            continue  # stored before the kernels were recorded: they are unknown
        if record_cpu_capability(record) not in runnable:
            continue
        proxy = record["dataset"]["name"].startswith("tmall-proxy")
        groups.setdefault((record["identity"]["method"], proxy), []).append(record)
    methods = {method for method, _ in groups}
    assert {"ds", "ddpg", "ppo"} <= methods, (
        f"no committed runs computed with {'/'.join(runnable)} kernels for "
        f"{sorted({'ds', 'ddpg', 'ppo'} - methods)}"
    )
    assert any(proxy for _, proxy in groups), "no committed proxy runs"

    def quickest(group):
        return sorted(group, key=lambda r: (r["result"]["wall_time_s"], r["key"]))

    # per method its quickest run (DS: the two quickest), then the quickest proxy run if none
    # of those is on the proxy: every method and the proxy, in about a minute
    sample = []
    for method in sorted(methods):
        runs = quickest([r for (m, _), group in groups.items() if m == method for r in group])
        sample.extend(runs[: 2 if method == "ds" else 1])
    if not any(r["dataset"]["name"].startswith("tmall-proxy") for r in sample):
        sample.append(quickest([r for (_, proxy), g in groups.items() if proxy for r in g])[0])
    by_width = {}
    for record in sample:
        by_width.setdefault(record_cpu_capability(record), []).append(record["key"])
    table = pd.concat(
        [_reproduce_with_kernels(keys, width) for width, keys in sorted(by_width.items())],
        ignore_index=True,
    )
    assert len(table) == len(sample)
    assert (table["max_abs_diff"] < 1e-6).all(), table.to_string()


def test_state_spread_ratio_and_its_block_bootstrap_interval():
    rng = np.random.default_rng(3)
    wide, narrow = rng.normal(0, 3.0, 4000), rng.normal(0, 1.0, 4000)

    def frame(none, base):
        return pd.DataFrame(
            {
                "regularization": ["none"] * len(none) + ["base"] * len(base),
                "pipeline_0": np.concatenate([none, base]),
            }
        )

    row = state_spread(frame(wide, narrow), block=10, n_boot=200).iloc[0]
    assert row["ratio"] == pytest.approx(np.std(narrow, ddof=1) / np.std(wide, ddof=1))
    assert row["ratio_low"] < 1 / 3 < row["ratio_high"] < 1
    assert row["narrower_with_base"] is not None and bool(row["narrower_with_base"])
    same = state_spread(frame(wide, rng.normal(0, 3.0, 4000)), block=10, n_boot=200).iloc[0]
    assert same["ratio_low"] < 1 < same["ratio_high"] and same["narrower_with_base"] is None
    wider = state_spread(frame(narrow, wide), block=10, n_boot=200).iloc[0]
    assert wider["narrower_with_base"] is not None and not bool(wider["narrower_with_base"])
    # the same seed gives the same interval
    again = state_spread(frame(wide, narrow), block=10, n_boot=200).iloc[0]
    assert again["ratio_low"] == row["ratio_low"]
    with pytest.raises(ValueError, match="block must be an integer"):
        state_spread(frame(wide, narrow), block=0)
    with pytest.raises(ValueError, match="fewer than two blocks"):
        state_spread(frame(wide[:5], narrow), block=10)

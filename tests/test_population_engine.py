"""The population engine's plumbing: dispatch, train(engine=...), the result store's population
runs (keys, resume after a kill) and the command line."""

from __future__ import annotations

import json

import pytest

from deepstock.methods.ds import train_ds
from deepstock.methods.population.engine import (
    POPULATION_TRAINERS,
    default_population_size,
    train_population,
)
from deepstock.methods.train import resolve_config, train
from deepstock.results.store import (
    ResultStore,
    cached_train,
    cached_train_population,
    dataset_fingerprint,
    run_key,
)
from tests.test_ds import tiny_dataset

SHORT = {"epochs": 3, "patience": 100, "batch_size": 3, "hidden_layers": [8, 8]}


def test_train_population_dispatches_and_train_selects_the_engine() -> None:
    dataset = tiny_dataset()
    assert "ds" in POPULATION_TRAINERS
    assert default_population_size("ds", "cpu") >= 1
    population = train("ds", "base", dataset, SHORT, seed=3, device="cpu", engine="population")
    single = train_ds(dataset, "base", resolve_config("ds", "base", SHORT), seed=3, device="cpu")
    assert population.extras["engine"] == "population"
    assert population.test_loss == pytest.approx(single.test_loss, abs=1e-5)
    # train() starts from the published configuration; train_population from the class defaults
    published = resolve_config("ds", "base", SHORT)
    results = train_population("ds", "base", dataset, [published, SHORT], [3, 4], device="cpu")
    assert results[0].test_loss == pytest.approx(population.test_loss, abs=1e-12)
    assert results[1].seed == 4
    with pytest.raises(ValueError, match="engine must be one of"):
        train("ds", "base", dataset, SHORT, engine="jax")
    with pytest.raises(ValueError, match="no trainer for method 'nope'"):
        train_population("nope", "base", dataset, [SHORT], [0])


def test_population_runs_have_their_own_keys_and_single_keys_stay(tmp_path) -> None:
    dataset = tiny_dataset()
    store = ResultStore(tmp_path)
    resolved = resolve_config("ds", "base", SHORT, use_defaults=False)
    fingerprint = dataset_fingerprint(dataset)
    plain = run_key("ds", "base", resolved, 0, fingerprint)
    assert run_key("ds", "base", resolved, 0, fingerprint, engine="sb3") == plain
    population_key = run_key("ds", "base", resolved, 0, fingerprint, engine="population")
    assert population_key != plain
    first = cached_train(
        store, "ds", "base", dataset, SHORT, 0, "cpu", use_defaults=False, engine="population"
    )
    assert first["key"] == population_key and not first["cached"]
    again = cached_train(
        store, "ds", "base", dataset, SHORT, 0, "cpu", use_defaults=False, engine="population"
    )
    assert again["cached"] and again["val"] == first["val"]
    record = store.read(population_key)
    assert record["identity"]["engine"] == "population"
    assert "population_source_hash" in record["code_version"]
    assert population_key in ResultStore(tmp_path, strict=True)


def test_cached_population_resumes_after_a_kill(tmp_path) -> None:
    dataset = tiny_dataset()
    store = ResultStore(tmp_path)
    configs = [{**SHORT, "learning_rate": lr} for lr in (1e-3, 1e-2, 3e-2)]
    configs.append(dict(configs[0]))  # a duplicate run trains once
    seeds = [0, 1, 2, 0]
    trained: list[list[int]] = []

    class Killed(RuntimeError):
        pass

    def killed_after_one(method, reg, data, cfgs, sds, **kwargs):
        trained.append(list(sds))
        done = kwargs["on_member_done"]

        def first_only(index, result):
            done(index, result)
            raise Killed

        return train_population(
            method, reg, data, cfgs, sds, **{**kwargs, "on_member_done": first_only}
        )

    with pytest.raises(Killed):
        cached_train_population(
            store,
            "ds",
            "base",
            dataset,
            configs,
            seeds,
            use_defaults=False,
            train_population_fn=killed_after_one,
        )
    assert trained == [[0, 1, 2]] and len(store.to_frame()) == 1

    reported: list[int] = []

    def counting(method, reg, data, cfgs, sds, **kwargs):
        trained.append(list(sds))
        return train_population(method, reg, data, cfgs, sds, **kwargs)

    summaries = cached_train_population(
        store,
        "ds",
        "base",
        dataset,
        configs,
        seeds,
        use_defaults=False,
        on_member_done=lambda index, summary: reported.append(index),
        train_population_fn=counting,
    )
    assert len(trained[1]) == 2  # only the two unfinished runs
    assert sorted(reported) == [0, 1, 2, 3]
    assert [s["cached"] for s in summaries] == [True, False, False, True]
    assert summaries[0]["key"] == summaries[3]["key"] and summaries[0]["val"] == summaries[3]["val"]
    fresh = cached_train_population(
        store, "ds", "base", dataset, configs, seeds, use_defaults=False
    )
    assert all(s["cached"] for s in fresh)
    assert [s["val"] for s in fresh] == [s["val"] for s in summaries]
    for index in (1, 2):
        single = cached_train(
            store, "ds", "base", dataset, configs[index], seeds[index], use_defaults=False
        )
        assert single["val"]["loss"] == pytest.approx(summaries[index]["val"]["loss"], abs=1e-5)


def test_cli_train_with_the_population_engine(capsys) -> None:
    from deepstock.tools.cli import main

    code = main(
        [
            "train",
            "--setting",
            "setting1",
            "--method",
            "ds",
            "--reg",
            "base",
            "--set",
            "epochs=2",
            "--engine",
            "population",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 0
    output = json.loads(capsys.readouterr().out)
    assert output["config"]["epochs"] == 2 and output["method"] == "ds"
    with pytest.raises(SystemExit):
        main(["train", "--setting", "setting1", "--method", "ds", "--reg", "base", "--engine", "x"])


def test_bench_population_reports_throughput_as_json(capsys) -> None:
    from deepstock.tools.cli import main

    args = ["bench", "--population", "--json", "--members", "1", "3", "--length", "1"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    ds = report["methods"]["ds"]
    assert ds["unit"] == "epochs" and ds["config"]["epochs"] == 1
    assert [row["members"] for row in ds["population"]] == [1, 3]
    assert all(row["agent_per_s"] > 0 for row in ds["population"]) and ds["speedup"] > 0
    assert main(["bench", "--population", "--methods", "nope"]) == 2
    assert "no population benchmark for method 'nope'" in capsys.readouterr().err

"""`deepstock store verify [--repair]` and the tuner's check of the records it relies on."""

from __future__ import annotations

import json

import pytest
from conftest import FakeTrainer, read_run_log

from deepstock.results.store import ResultStore
from deepstock.tools.cli import main
from deepstock.tuning.procedure import TrainingObjective, Tuner


def _tuner(dataset, store, log, tmp_path) -> Tuner:
    objective = TrainingObjective(
        method="ds",
        regularization="base",
        dataset=dataset,
        store=store,
        overrides={"epochs": 3},
        train_fn=FakeTrainer(str(log)),
    )
    url = f"sqlite:///{tmp_path / 'study.db'}"
    return Tuner(objective, n_trials=3, top_k=1, n_seeds=2, n_startup_trials=2, storage=url)


def _alter(path) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    record["result"]["val"]["loss"] = 0.0  # a hand edit: the checksum no longer matches
    path.write_text(json.dumps(record), encoding="utf-8")


def test_store_verify_finds_and_quarantines_corrupt_records(setting1_dataset, tmp_path, capsys):
    store = ResultStore(tmp_path / "results")
    _tuner(setting1_dataset, store, tmp_path / "runs.log", tmp_path).run()
    key = next(store.keys())
    _alter(store.path(key))
    study = next(store.studies_dir.glob("*.json"))
    study.write_text(study.read_text(encoding="utf-8")[:-20], encoding="utf-8")  # cut short

    assert main(["store", "verify", "--results", str(store.root)]) == 1
    out = capsys.readouterr().out
    assert f"{key}.json: checksum mismatch" in out and f"{study.name}: not a study record" in out
    assert "5 run and 2 study records checked, 2 corrupt" in out

    assert main(["store", "verify", "--results", str(store.root), "--repair"]) == 0
    assert (store.root / "quarantine" / "runs" / key[:2] / f"{key}.json").is_file()
    capsys.readouterr()
    assert main(["store", "verify", "--results", str(store.root)]) == 0
    assert "4 run and 1 study records checked, all intact" in capsys.readouterr().out


def test_store_verify_refuses_a_missing_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        main(["store", "verify", "--results", str(tmp_path / "nope")])
    assert error.value.code == 2 and "no such folder" in capsys.readouterr().err


def test_tuning_recomputes_a_corrupt_record_it_relies_on(setting1_dataset, tmp_path):
    store = ResultStore(tmp_path / "results")
    log = tmp_path / "runs.log"
    tuner = _tuner(setting1_dataset, store, log, tmp_path)
    first = tuner.run()
    runs = len(read_run_log(log))
    key = first.winners.merge(first.trials, on="trial_number")["key"].iloc[0]
    _alter(store.path(key))

    with pytest.warns(UserWarning, match="corrupt result record, will recompute"):
        second = tuner.run()  # the study answers; the damaged record is still found
    assert len(read_run_log(log)) == runs + 2  # that one run, trained again
    assert store.read(key) is not None
    assert second.summary() == first.summary()

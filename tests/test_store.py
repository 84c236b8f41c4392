"""The result store: keys, atomic writes, corruption, caching, strict mode, extras."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeTrainer, read_run_log

from deepstock.core import files as files_module
from deepstock.results import store as store_module
from deepstock.results.store import (
    ResultStore,
    cached_train,
    dataset_fingerprint,
    record_cpu_capability,
    resolve_config,
    run_key,
    source_hash,
)

DS_CONFIG = {"learning_rate": 0.02, "epochs": 3, "patience": 2, "hidden_layers": [16, 16]}


def starts(log: Path) -> list[str]:
    return [run for event, run in read_run_log(log) if event == "start"]


# ---------------------------------------------------------------------- fingerprints and keys
def test_dataset_fingerprint_covers_data_not_name(setting1_dataset):
    same = dataclasses.replace(setting1_dataset, name="another-name")
    assert dataset_fingerprint(same) == dataset_fingerprint(setting1_dataset)
    demand = setting1_dataset.demand.copy()
    demand[0, 5] += 1.0
    changed = dataclasses.replace(setting1_dataset, demand=demand)
    assert dataset_fingerprint(changed) != dataset_fingerprint(setting1_dataset)
    costlier = dataclasses.replace(setting1_dataset, backlog_cost=0.8)
    assert dataset_fingerprint(costlier) != dataset_fingerprint(setting1_dataset)


def test_committed_runs_keep_their_keys_after_later_keys_and_fields():
    """Keys added later (the datasets' objective, DS's stockout_smoothing) leave the keys of the
    committed runs as they were: every committed DS record's identity, recomputed from today's
    resolved configuration and fingerprint, gives its stored key."""
    from deepstock.paper.experiments import dataset_for_record

    store = ResultStore.for_profile("quick")
    checked = 0
    for record in store.records():
        identity = record["identity"]
        if identity["method"] != "ds" or checked >= 3:
            continue
        config = resolve_config("ds", identity["regularization"], identity["config"])
        assert config["stockout_smoothing"] == 0.1
        dataset = dataset_for_record(record)
        key = run_key(
            "ds", identity["regularization"], config, identity["seed"], dataset_fingerprint(dataset)
        )
        assert key == record["key"]
        changed = {**config, "stockout_smoothing": 0.2}
        assert run_key("ds", identity["regularization"], changed, 0, "f" * 64) != run_key(
            "ds", identity["regularization"], config, 0, "f" * 64
        )
        checked += 1
    assert checked == 3


def test_key_uses_the_resolved_configuration():
    explicit = resolve_config("ds", "base", {"epochs": 3000}, use_defaults=False)
    implicit = resolve_config("ds", "base", {}, use_defaults=False)
    assert explicit == implicit  # 3000 is the default: the same run, the same key
    assert run_key("ds", "base", explicit, 0, "f" * 64) == run_key(
        "ds", "base", implicit, 0, "f" * 64
    )
    other = resolve_config("ds", "base", {"epochs": 10}, use_defaults=False)
    keys = {
        run_key("ds", "base", explicit, 0, "f" * 64),
        run_key("ds", "base", other, 0, "f" * 64),
        run_key("ds", "base", explicit, 1, "f" * 64),
        run_key("ds", "none", explicit, 0, "f" * 64),
        run_key("ds", "base", explicit, 0, "e" * 64),
    }
    assert len(keys) == 5
    with pytest.raises(ValueError, match="unknown ds configuration key"):
        resolve_config("ds", "base", {"no_such_key": 1})


def test_source_hash_ignores_comments_and_docstrings_but_not_code(tmp_path):
    (tmp_path / "model").mkdir()
    module = tmp_path / "model" / "simulator.py"
    module.write_text('"""Doc."""\n\ndef f(x):\n    return x + 1\n')
    first = source_hash(tmp_path)
    assert first["files"] == ["model/simulator.py"]
    module.write_text('"""Other doc."""\n# a comment\n\n\ndef f(x):  # why\n    return (x + 1)\n')
    os.utime(module, (1, 1))  # a new mtime, so the cache is not what answers
    assert source_hash(tmp_path)["hash"] == first["hash"]
    module.write_text('"""Doc."""\n\ndef f(x):\n    return x + 2\n')
    os.utime(module, (2, 2))
    assert source_hash(tmp_path)["hash"] != first["hash"]


# ---------------------------------------------------------------------- caching
def test_cached_train_trains_once_and_only_what_is_new(store, setting1_dataset, tmp_path):
    log = tmp_path / "runs.log"
    trainer = FakeTrainer(str(log))
    first = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    assert first["cached"] is False and first["val"]["loss"] > 0
    again = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    assert again["cached"] is True and again["key"] == first["key"]
    assert again["val"] == first["val"] and again["curve"] == first["curve"]
    assert len(starts(log)) == 1

    # another seed and another learning rate: only those two are trained
    cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 1, train_fn=trainer)
    changed = {**DS_CONFIG, "learning_rate": 0.03}
    cached_train(store, "ds", "base", setting1_dataset, changed, 0, train_fn=trainer)
    for seed in (0, 1):
        cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, seed, train_fn=trainer)
    assert len(starts(log)) == 3
    assert len(list(store.keys())) == 3

    frame = store.to_frame()
    assert sorted(frame["seed"]) == [0, 0, 1]
    assert set(frame["method"]) == {"ds"} and set(frame["dataset"]) == {"setting1"}


def test_records_hold_identity_code_version_and_dataset(store, setting1_dataset):
    summary = cached_train(
        store, "ds", "none", setting1_dataset, DS_CONFIG, 3, train_fn=FakeTrainer()
    )
    record = store.read(summary["key"])
    assert record["identity"]["seed"] == 3
    assert record["identity"]["config"]["learning_rate"] == 0.02
    # resolved: the published tuned configuration under the given keys (use_defaults=True)
    assert record["identity"]["config"]["batch_size"] == 5
    assert record["identity"]["config"]["scheduler_patience"] == 3
    assert record["dataset"] == {
        "name": "setting1",
        "fingerprint": dataset_fingerprint(setting1_dataset),
    }
    version = record["code_version"]
    assert version["package"] and version["source_hash"] == source_hash()["hash"]
    assert "methods/ds.py" in version["source_files"] and version["device_kind"] == "cpu"
    assert store.path(summary["key"]).parent.name == summary["key"][:2]  # sharded


# ---------------------------------------------------------------------- atomic writes
def test_write_is_atomic_when_interrupted(store, setting1_dataset, monkeypatch):
    trainer = FakeTrainer()
    summary = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    path = store.path(summary["key"])
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk gone")

    # the replacement of the record fails half-way: the old record stays whole, no temp file
    monkeypatch.setattr(files_module.os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        store.put(
            identity=store.read(summary["key"])["identity"],
            dataset_name="setting1",
            result={**summary, "val": {"loss": 123.0}},
        )
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert list((store.root / "tmp").iterdir()) == []
    assert store.get(summary["key"])["result"]["val"]["loss"] == summary["val"]["loss"]


# ---------------------------------------------------------------------- corruption
def _corrupt_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def _corrupt_value(path: Path) -> None:
    record = json.loads(path.read_text())
    record["result"]["val"]["loss"] = 0.0001  # a doctored number: the checksum catches it
    path.write_text(json.dumps(record))


def _corrupt_missing_field(path: Path) -> None:
    record = json.loads(path.read_text())
    del record["result"]
    path.write_text(json.dumps(record))


def _corrupt_not_json(path: Path) -> None:
    path.write_bytes(b"\x00\xff not json")


@pytest.mark.parametrize(
    "corrupt", [_corrupt_truncate, _corrupt_value, _corrupt_missing_field, _corrupt_not_json]
)
def test_corrupt_record_is_detected_and_recomputed(store, setting1_dataset, tmp_path, corrupt):
    log = tmp_path / "runs.log"
    trainer = FakeTrainer(str(log))
    summary = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    corrupt(store.path(summary["key"]))
    with pytest.warns(UserWarning, match="corrupt result record"):
        assert store.get(summary["key"]) is None
    assert store.corrupt == [summary["key"]]
    fresh = ResultStore(store.root)
    with pytest.warns(UserWarning, match="corrupt result record"):
        redo = cached_train(fresh, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    assert redo["cached"] is False and redo["val"] == summary["val"]
    assert len(starts(log)) == 2
    assert fresh.get(summary["key"]) is not None  # the new record replaced the bad one


def test_record_under_the_wrong_key_is_corrupt(store, setting1_dataset):
    trainer = FakeTrainer()
    one = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    two = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 1, train_fn=trainer)
    store.path(two["key"]).write_bytes(store.path(one["key"]).read_bytes())
    with pytest.warns(UserWarning, match="another key"):
        assert store.get(two["key"]) is None


# ---------------------------------------------------------------------- extras
def test_extras_small_drops_arrays_all_keeps_them(store, setting1_dataset, tmp_path):
    log = tmp_path / "runs.log"
    trainer = FakeTrainer(str(log))
    small = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    record = store.read(small["key"])
    assert record["extras"] == {"epochs_run": 2}
    assert record["extras_dropped"] == ["train_losses"]
    assert store.arrays(small["key"]) == {}

    # asking for every extra recomputes the run once and keeps the array beside the JSON
    full = cached_train(
        store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer, extras="all"
    )
    assert full["cached"] is False and full["key"] == small["key"]
    arrays = store.arrays(full["key"])
    np.testing.assert_array_equal(arrays["train_losses"], np.arange(200.0))
    again = cached_train(
        store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer, extras="all"
    )
    assert again["cached"] is True
    assert len(starts(log)) == 2

    # the array file is part of the record: altering it makes the record corrupt
    npz = store.path(full["key"]).with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.warns(UserWarning, match="array file"):
        assert store.get(full["key"]) is None


# ---------------------------------------------------------------------- strict mode
def test_strict_mode_requires_the_current_source_hash(store, setting1_dataset, tmp_path):
    log = tmp_path / "runs.log"
    trainer = FakeTrainer(str(log))
    summary = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    path = store.path(summary["key"])
    record = store.read(summary["key"])
    record["code_version"]["source_hash"] = "0" * 16  # a record made by other code
    del record["checksum"]
    record["checksum"] = store_module.sha256_text(store_module.canonical_json(record))
    path.write_text(json.dumps(record))

    lenient = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    assert lenient["cached"] is True
    strict = ResultStore(store.root, strict=True)
    assert strict.get(summary["key"]) is None
    redo = cached_train(strict, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    assert redo["cached"] is False
    assert strict.get(summary["key"])["code_version"]["source_hash"] == source_hash()["hash"]
    assert len(starts(log)) == 2


def test_bad_arguments_fail_with_their_name(store, setting1_dataset):
    with pytest.raises(ValueError, match="extras"):
        cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, extras="some")
    with pytest.raises(ValueError, match="unknown method"):
        cached_train(store, "a2c", "base", setting1_dataset, DS_CONFIG, 0)
    with pytest.raises(ValueError, match="seed"):
        cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 1.5)
    with pytest.raises(ValueError, match="hex digits"):
        store.path("../../etc")
    (store.root.parent / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        ResultStore(store.root.parent / "file")


def test_real_ds_run_is_stored_and_reused(store, setting1_dataset):
    """One real (tiny) DS run through the store: the stored summary equals the trained one."""
    config = {"epochs": 2, "patience": 1, "hidden_layers": [8], "batch_size": 10}
    first = cached_train(store, "ds", "base", setting1_dataset, config, 0, use_defaults=False)
    second = cached_train(store, "ds", "base", setting1_dataset, config, 0, use_defaults=False)
    assert first["cached"] is False and second["cached"] is True
    assert second["test"] == first["test"] and second["config"] == first["config"]
    record = store.read(first["key"])
    assert record["extras"]["epochs_run"] == 2


def test_a_run_stored_before_its_cpu_capability_can_be_labelled(store, setting1_dataset, tmp_path):
    trainer = FakeTrainer(str(tmp_path / "runs.log"))
    run = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    key = run["key"]
    path = store.path(key)
    record = json.loads(path.read_text())
    record["code_version"].pop("cpu_capability", None)  # as written before the field existed
    record.pop("checksum")
    record["checksum"] = store_module.sha256_text(store_module.canonical_json(record))
    path.write_text(json.dumps(record, sort_keys=True, indent=1) + "\n")
    assert record_cpu_capability(store.read(key)) == "AVX512"
    assert store.label_cpu_capability(key, "AVX2") is True
    relabelled = store.read(key)  # checksum valid, result unchanged
    assert record_cpu_capability(relabelled) == "AVX2"
    assert relabelled["result"] == record["result"]
    assert store.label_cpu_capability(key, "AVX512") is False  # a recorded capability stays
    assert record_cpu_capability(store.read(key)) == "AVX2"


def test_runs_move_to_the_keys_of_a_reworded_dataset(store, setting1_dataset, tmp_path):
    trainer = FakeTrainer(str(tmp_path / "runs.log"))
    reworded = dataclasses.replace(
        setting1_dataset, params={**setting1_dataset.params, "about": "reworded"}
    )
    old, new = map(store_module.dataset_fingerprint, (setting1_dataset, reworded))
    first = cached_train(store, "ds", "base", setting1_dataset, DS_CONFIG, 0, train_fn=trainer)
    second = cached_train(
        store, "ds", "none", setting1_dataset, DS_CONFIG, 1, train_fn=trainer, extras="all"
    )
    (store.policy_path(first["key"])).write_bytes(b"policy bytes")
    with pytest.raises(ValueError, match="old_fingerprint must be a SHA-256"):
        store.rekey_dataset("abc", new)

    moved = store.rekey_dataset(old, new)

    assert sorted(moved) == sorted([first["key"], second["key"]])
    for old_key, new_key in moved.items():
        assert store.read(old_key) is None and not store.path(old_key).exists()
        record = store.read(new_key)  # checksum, key and arrays intact
        assert record["identity"]["dataset"] == new == record["dataset"]["fingerprint"]
    # the same configuration on the reworded dataset is now read, not trained again
    calls = len(read_run_log(tmp_path / "runs.log"))
    again = cached_train(store, "ds", "base", reworded, DS_CONFIG, 0, train_fn=trainer)
    assert again["cached"] and again["key"] == moved[first["key"]]
    assert again["val"] == first["val"] and len(read_run_log(tmp_path / "runs.log")) == calls
    assert store.policy_path(again["key"]).read_bytes() == b"policy bytes"
    assert not store.policy_path(first["key"]).exists()
    arrays = store.read(moved[second["key"]])["extras_arrays"]
    assert arrays is not None and arrays["file"] == f"{moved[second['key']]}.npz"
    assert store.rekey_dataset(old, new) == {}  # nothing left to move

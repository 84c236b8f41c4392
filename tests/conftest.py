"""Shared fixtures of the test suite."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import pytest

from deepstock.datasets.synthetic import make_setting
from deepstock.methods.common import CurvePoint
from deepstock.methods.train import TrainResult
from deepstock.model.dataset import InventoryDataset
from deepstock.results.store import ResultStore


@pytest.fixture(scope="session")
def setting1_dataset() -> InventoryDataset:
    """Setting 1 (INDEP) from the authors' stream: 10 train, 10 validation, 100 test."""
    return make_setting("setting1")


@pytest.fixture
def isolated_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default result store and Optuna folders at a temporary folder, so a test never
    writes under the checkout's ``data/``. Returns that folder."""
    monkeypatch.setenv("DEEPSTOCK_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("DEEPSTOCK_OPTUNA_DIR", str(tmp_path / "optuna"))
    return tmp_path


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    """An empty result store in a temporary folder."""
    return ResultStore(tmp_path / "results")


class FakeTrainer:
    """A stand-in for :func:`deepstock.training.train`: no training, a deterministic score.

    The validation loss is a smooth function of the configuration (minimal at learning_rate
    1e-2, initial_action_bias 0.5) plus a seed-dependent offset; the test loss is the
    validation loss plus 0.05. Each call appends ``start <seed> <config>`` to ``log_path``
    (when given) before sleeping ``sleep_s`` seconds and ``end ...`` after, so tests can count
    how often each run was started and finished. Picklable (worker processes import it from
    this module).
    """

    def __init__(self, log_path: str | None = None, sleep_s: float = 0.0) -> None:
        self.log_path = log_path
        self.sleep_s = sleep_s

    def _log(self, text: str) -> None:
        if self.log_path is not None:
            # one short write with O_APPEND: lines of concurrent processes do not interleave
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
                handle.flush()
                os.fsync(handle.fileno())

    @staticmethod
    def run_id(config: dict[str, Any], seed: int) -> str:
        from deepstock.results.store import canonical_json

        return f"{seed}|{canonical_json(config)}"

    def __call__(
        self,
        method: str,
        regularization: str,
        dataset: InventoryDataset,
        config: dict[str, Any],
        *,
        seed: int = 0,
        device: str = "cpu",
        progress: bool = False,
        use_defaults: bool = True,
    ) -> TrainResult:
        run = self.run_id(config, seed)
        self._log(f"start {run}")
        if self.sleep_s:
            time.sleep(self.sleep_s)
        rate = float(config.get("learning_rate", 1e-2))
        bias = float(config.get("initial_action_bias", 0.5))
        val = 1.0 + math.log10(rate / 1e-2) ** 2 + (bias - 0.5) ** 2 + 0.01 * (seed % 7)
        self._log(f"end {run}")
        return TrainResult(
            method=method,
            regularization=regularization,
            config=dict(config),
            seed=seed,
            device="cpu",
            policy=None,  # type: ignore[arg-type]
            val_metrics={"loss": val},
            test_metrics={"loss": val + 0.05},
            train_metrics={"loss": val - 0.05},
            curve=[CurvePoint(step=1, val_loss=val + 0.1), CurvePoint(step=2, val_loss=val)],
            curve_unit="epochs",
            wall_time_s=self.sleep_s,
            extras={"epochs_run": 2, "train_losses": [float(i) for i in range(200)]},
        )


def read_run_log(path: str | Path) -> list[tuple[str, str]]:
    """The ``(event, run id)`` lines written by :class:`FakeTrainer`."""
    path = Path(path)
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        event, _, run = line.partition(" ")
        events.append((event, run))
    return events


def assert_done_exactly_once(tuner: Any, result: Any) -> None:
    """Every stage-1 trial and stage-2 job of repeat 0 is complete exactly once, and two worker
    processes shared the work."""
    import optuna

    storage = tuner._storage_handle
    search = optuna.load_study(study_name=tuner.search_study_name(0), storage=storage)
    complete = search.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == tuner.n_trials
    configs = [json.dumps(t.user_attrs["run"]["config"], sort_keys=True) for t in complete]
    assert len(set(configs)) == len(configs)  # no configuration evaluated twice
    assert sorted(result.trials["trial_number"]) == sorted(t.number for t in complete)

    confirm_name = result.plan["studies"]["confirm"][0]
    confirm = optuna.load_study(study_name=confirm_name, storage=storage)
    confirmed = confirm.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    jobs = [t.user_attrs["job"]["job"] for t in confirmed]
    workers = {t.user_attrs["run"]["worker"] for t in complete + confirmed}
    assert len(workers) == 2
    assert sorted(jobs) == list(range(tuner.top_k * tuner.n_seeds))
    assert len(result.confirm) == tuner.top_k * tuner.n_seeds

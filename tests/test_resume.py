"""Resume and concurrency of the tuner: a failed or killed trial leaves no trace in the result,
workers die with their parent, and storages are checked before anything is written."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

import optuna
import pandas as pd
import pytest

from deepstock.tuning.procedure import ToyObjective, Tuner

optuna.logging.set_verbosity(optuna.logging.WARNING)

BUDGET = {"n_trials": 8, "top_k": 2, "n_seeds": 2, "n_startup_trials": 3, "seed": 5}


@contextlib.contextmanager
def _deadline(seconds: int, what: str):
    """Fail (instead of hanging) when the body takes longer than ``seconds``."""

    def expire(_signum, _frame):
        raise AssertionError(f"{what} (over {seconds} s)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _same_tuning(resumed, uninterrupted) -> None:
    """Every stage-1 configuration and score (in order), the stage-2 runs and the winner."""
    columns = ["trial_index", "seed", "val_loss", "test_loss", "best_val_so_far", "config"]
    pd.testing.assert_frame_equal(resumed.trials[columns], uninterrupted.trials[columns])
    columns = ["candidate", "seed", "val_loss", "test_loss"]
    pd.testing.assert_frame_equal(resumed.confirm[columns], uninterrupted.confirm[columns])
    columns = ["candidate", "val_loss", "test_loss", "config"]
    pd.testing.assert_frame_equal(resumed.winners[columns], uninterrupted.winners[columns])


@dataclass
class FailsOnce(ToyObjective):
    """The toy objective, raising on its ``fail_at``-th evaluation (once: a device error, an
    interrupted run)."""

    fail_at: int = 3
    calls: int = 0

    def evaluate(self, config, seed):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated failure")
        return super().evaluate(config, seed)


def test_a_failed_trial_does_not_change_later_draws(tmp_path):
    uninterrupted = Tuner(ToyObjective(), storage=f"sqlite:///{tmp_path / 'a.db'}", **BUDGET).run()
    tuner = Tuner(FailsOnce(), storage=f"sqlite:///{tmp_path / 'b.db'}", **BUDGET)
    with pytest.raises(RuntimeError, match="simulated failure"):
        tuner.run()
    resumed = tuner.run()
    states = [
        t.state
        for t in optuna.load_study(
            study_name=tuner.search_study_name(0), storage=tuner._storage_handle
        ).trials
    ]
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    _same_tuning(resumed, uninterrupted)


def test_a_killed_worker_resumed_at_once_gives_the_uninterrupted_result(tmp_path):
    """Kill the only worker in the middle of stage 1 and resume right away (the heartbeat's
    grace period is long: the dead trial is found by its owner's process id)."""
    objective = ToyObjective(sleep_s=0.3)
    uninterrupted = Tuner(objective, storage=f"sqlite:///{tmp_path / 'a.db'}", **BUDGET).run()
    tuner = Tuner(
        objective,
        storage=f"sqlite:///{tmp_path / 'b.db'}",
        heartbeat_interval=1,
        grace_period=600,
        **BUDGET,
    )
    tuner.prepare()
    (worker,) = tuner.start_workers(1)
    study = optuna.load_study(study_name=tuner.search_study_name(0), storage=tuner._storage_handle)
    deadline = time.monotonic() + 120
    while True:  # 4 finished trials and a 5th under way (sampled), then kill the worker
        trials = study.get_trials(deepcopy=False)
        complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        running = [  # sampled in full (x, learning_rate, width)
            t for t in trials if t.state == optuna.trial.TrialState.RUNNING and len(t.params) == 3
        ]
        if complete >= 4 and running:
            break
        assert worker.is_alive() and time.monotonic() < deadline, "worker did not progress"
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()

    with _deadline(90, "the resume waited for the dead worker's trial"):
        resumed = tuner.run()
    _same_tuning(resumed, uninterrupted)
    trials = optuna.load_study(
        study_name=tuner.search_study_name(0), storage=tuner._storage_handle
    ).trials
    (failed,) = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    retried = [t for t in trials if t.system_attrs.get("requeued_from") == failed.number]
    assert len(retried) == 1 and retried[0].params == failed.params


# ====================================================================== arguments first
def _no_training(*_args, **_kwargs):
    raise AssertionError("training started")


def test_a_missing_gpu_fails_before_any_study_or_file(isolated_results, setting1_dataset):
    from deepstock.tuning.procedure import tune_setting

    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        tune_setting(
            "setting1", "ds", "base", profile="smoke", device="cuda", train_fn=_no_training
        )
    assert not (isolated_results / "optuna").exists()
    assert not (isolated_results / "results").exists()


def _sqlite(path) -> str:
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("make_url", "message"),
    [
        (lambda tmp: "xyz://host/db", "unknown scheme 'xyz'"),
        (lambda tmp: "sqlite://", "in-memory SQLite"),
        (lambda tmp: "sqlite:///:memory:", "in-memory SQLite"),
        (lambda tmp: _sqlite(tmp / "missing" / "study.db"), "does not exist; create it"),
        (lambda tmp: _sqlite(tmp), "is a folder"),
        (lambda tmp: "postgresql://user@localhost:99999/db", "bad port"),
        (lambda tmp: "postgresql://user@localhost:port/db", "bad port"),
        (lambda tmp: "postgresql://user@127.0.0.1:1/db", "cannot be opened.*start the database"),
    ],
)
def test_bad_storage_urls_are_one_clear_line(tmp_path, make_url, message):
    url = make_url(tmp_path)
    with pytest.raises(ValueError, match=message) as error:
        Tuner(ToyObjective(), n_trials=2, top_k=1, n_seeds=1, storage=url).run()
    text = str(error.value)
    assert "\n" not in text and repr(url) in text


def test_a_mysql_url_without_its_driver_names_the_package(tmp_path):
    import importlib.util

    if importlib.util.find_spec("MySQLdb"):
        pytest.skip("mysqlclient is installed")
    with pytest.raises(ValueError, match="pip install mysqlclient"):
        Tuner(ToyObjective(), n_trials=2, top_k=1, n_seeds=1, storage="mysql://u@h/db")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a database at all\n" * 10, "is not an SQLite database"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "cannot be opened.*damaged"),
    ],
)
def test_a_file_that_is_not_a_study_database_is_refused(tmp_path, content, message):
    path = tmp_path / "study.db"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        Tuner(ToyObjective(), n_trials=2, top_k=1, n_seeds=1, storage=_sqlite(path)).run()
    assert path.read_bytes() == content  # left as it was


def test_cli_tune_names_a_bad_storage_in_one_line(isolated_results, capsys):
    from deepstock.tools.cli import main

    argv = ["tune", "--setting", "setting1", "--method", "ds", "--reg", "base"]
    with pytest.raises(SystemExit) as error:
        main([*argv, "--profile", "smoke", "--storage", "xyz://nowhere"])
    err = capsys.readouterr().err
    assert error.value.code == 2 and "unknown scheme 'xyz'" in err and "Traceback" not in err
    assert not (isolated_results / "results" / "runs").exists()


# ====================================================================== stop signals
@pytest.mark.parametrize(
    ("method", "at_call"),
    [("_create_new_trial", 3), ("set_trial_state_values", 2), ("set_trial_state_values", 5)],
)
def test_a_stop_signal_inside_optunas_ask_or_tell_leaves_no_running_trial(
    tmp_path, monkeypatch, method, at_call
):
    """SIGTERM delivered while Optuna creates a trial (ask) or writes its outcome (tell): the
    signal waits for the write to finish, the tuning stops, no trial is left RUNNING, and the
    resumed tuning is the uninterrupted one."""
    uninterrupted = Tuner(ToyObjective(), storage=_sqlite(tmp_path / "a.db"), **BUDGET).run()

    original = getattr(optuna.storages.RDBStorage, method)
    calls = {"n": 0}

    def signalled(self, *args, **kwargs):
        calls["n"] += 1
        value = original(self, *args, **kwargs)
        if calls["n"] == at_call:
            os.kill(os.getpid(), signal.SIGTERM)  # lands while the storage call returns
        return value

    monkeypatch.setattr(optuna.storages.RDBStorage, method, signalled)
    url = _sqlite(tmp_path / "b.db")
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        Tuner(ToyObjective(), storage=url, **BUDGET).run()
    assert calls["n"] >= at_call
    monkeypatch.undo()
    tuner = Tuner(ToyObjective(), storage=url, **BUDGET)
    study = optuna.load_study(study_name=tuner.search_study_name(0), storage=url)
    assert optuna.trial.TrialState.RUNNING not in {t.state for t in study.trials}
    _same_tuning(tuner.run(), uninterrupted)


def test_a_deferred_stop_signal_is_raised_where_interrupts_are_allowed():
    from deepstock.tuning import procedure

    order = []
    with procedure._sigterm_interrupts(), pytest.raises(KeyboardInterrupt):
        with procedure._interrupts_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            order.append("after the signal")  # the deferred block goes on to its end
    assert order == ["after the signal"]
    with procedure._sigterm_interrupts(), procedure._interrupts_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):
            with procedure._interrupts_allowed():  # raised on entry
                order.append("never")
        order.append("after the allowed block")  # nothing left to raise at the end
    assert order == ["after the signal", "after the allowed block"]


# ====================================================================== process ownership
_PARENT_SCRIPT = """
import sys
from deepstock.tuning.procedure import ToyObjective, Tuner
Tuner(ToyObjective(sleep_s=0.4), storage=sys.argv[1], heartbeat_interval=1, grace_period=600,
      n_trials=10, top_k=1, n_seeds=1, n_startup_trials=3).run(workers=2)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow  # about 85 s each on a loaded 2-core machine: three processes import torch
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_workers_die_with_their_parent_and_the_tuning_resumes(tmp_path, signum):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'study.db'}"
    tuner = Tuner(
        ToyObjective(sleep_s=0.4),
        storage=url,
        heartbeat_interval=1,
        grace_period=600,
        n_trials=10,
        top_k=1,
        n_seeds=1,
        n_startup_trials=3,
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT_SCRIPT, url],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while len(workers) < 2:  # both workers have started a trial
            assert parent.poll() is None and time.monotonic() < deadline, "no workers started"
            time.sleep(0.1)
            try:
                study = optuna.load_study(
                    study_name=tuner.search_study_name(0), storage=tuner._storage_handle
                )
            except KeyError:
                continue
            workers |= {
                t.user_attrs["owner"]["pid"] for t in study.trials if "owner" in t.user_attrs
            }
        os.kill(parent.pid, signum)
        parent.wait(timeout=60)
        deadline = time.monotonic() + 40
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, f"workers {workers} outlived their parent"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    if signum != signal.SIGKILL:  # stopped by the interrupt, not killed by the signal
        # Python ends on an uncaught KeyboardInterrupt by re-raising SIGINT on itself
        assert parent.returncode == -signal.SIGINT
        assert "KeyboardInterrupt" in parent.stderr.read().decode()
    if signum != signal.SIGKILL:
        # every stopped trial is marked failed (after a SIGKILL of the parent, a worker that
        # did not stop in time may leave one running: the resume finds its owner dead)
        study = optuna.load_study(
            study_name=tuner.search_study_name(0), storage=tuner._storage_handle
        )
        assert optuna.trial.TrialState.RUNNING not in {t.state for t in study.trials}

    with _deadline(90, "the resume did not finish"):
        result = tuner.run()
    assert len(result.trials) == 10 and result.trials["config"].is_unique

"""Search spaces, profiles and the two-stage tuner (toy objectives, fake and real training)."""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from conftest import FakeTrainer, assert_done_exactly_once, read_run_log

from deepstock.methods.train import config_from_mapping
from deepstock.model.regularizations import register_regularization
from deepstock.results.store import ResultStore
from deepstock.tuning.procedure import (
    Objective,
    RunScore,
    ToyObjective,
    TrainingObjective,
    Tuner,
    select_winner,
    tune_setting,
)
from deepstock.tuning.profiles import PROFILES, Profile, parse_override, resolve_profile
from deepstock.tuning.spaces import (
    Choice,
    LogUniform,
    SearchSpace,
    Uniform,
    search_space,
    setting_family,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

PAPER_SPACES = [
    (method, regularization, setting)
    for method, settings in (
        ("ds", ("setting1", "setting2", "setting3", "setting4")),
        ("ddpg", ("setting1", "setting2", "setting3")),
        ("ppo", ("setting1", "setting2", "setting3")),
    )
    for setting in settings
    for regularization in ("none", "base")
]


# ====================================================================== search spaces
@pytest.mark.parametrize(("method", "regularization", "setting"), PAPER_SPACES)
def test_sampled_configurations_are_valid_settings(method, regularization, setting):
    space = search_space(method, regularization, setting)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(5):
        trial = study.ask()
        config = space.sample(trial)
        assert set(config) == set(space.keys)
        config_from_mapping(method, config)  # every key known, every value in range
        study.tell(trial, 0.0)
        assert space.decode(trial.params) == config
    for name, dist in space.params.items():
        values = [t.params[name] for t in study.trials]
        if isinstance(dist, (Uniform, LogUniform)):
            assert all(dist.low <= v <= dist.high for v in values), name


def test_spaces_follow_the_paper():
    ddpg1 = search_space("ddpg", "base", "setting1")
    assert ddpg1.params["learning_rate"] == LogUniform(3e-4, 9e-3)
    assert ddpg1.params["gamma"] == Uniform(0.98, 1.0)
    assert ddpg1.fixed["net_arch"] == {"pi": [64, 64], "qf": [64, 64]}
    assert ddpg1.fixed["total_steps"] == 200_000 and ddpg1.fixed["lr_fraction"] == 0.95
    assert ddpg1.dataset_constants == {"max_replenish": 100}
    assert "max_replenish" not in ddpg1.keys
    assert search_space("ddpg", "none", "setting2").fixed["net_arch"] == {
        "pi": [32, 32],
        "qf": [32, 32],
    }
    assert search_space("ddpg", "none", "setting3").fixed["net_arch"]["qf"] == [16, 16]
    assert search_space("ddpg", "none", "setting3").params["initial_action_bias"] == Uniform(0, 0.6)

    # PPO's gae_lambda on AR(1) depends on the regularization; on INDEP it does not
    assert search_space("ppo", "base", "setting2").params["gae_lambda"] == Uniform(0.0, 0.5)
    assert search_space("ppo", "none", "setting3").params["gae_lambda"] == Uniform(0.5, 1.0)
    assert search_space("ppo", "base", "setting1").params["gae_lambda"] == Uniform(0.5, 1.0)
    assert search_space("ppo", "base", "setting2").fixed["net_arch"] == {
        "pi": [128, 128],
        "vf": [64, 64],
    }
    assert search_space("ppo", "base", "setting1").fixed["vf_coef"] == 0.4
    assert search_space("ppo", "none", "setting2").params["eval_freq"] == Choice((1024, 2048))

    ds4 = search_space("ds", "base", "setting4")
    assert ds4.fixed["scheduler_factor"] == 0.5
    assert ds4.params["hidden_layers"] == Choice(([16, 16], [32, 32], [64, 64]))
    assert ds4.params["batch_size"] == Choice((5, 10, 20))
    assert ds4.dataset_constants == {"max_replenish": 500}
    assert search_space("ds", "none", "setting1").params["scheduler_factor"] == Uniform(0.5, 0.95)
    assert [setting_family(f"setting{i}") for i in (1, 2, 3, 4)] == ["indep", "ar1", "ar1", "iid"]


def test_space_refuses_what_the_paper_did_not_tune():
    with pytest.raises(ValueError, match="unknown setting"):
        search_space("ds", "base", "setting9")
    with pytest.raises(ValueError, match="unknown method"):
        search_space("a2c", "base", "setting1")
    with pytest.raises(ValueError, match="no ddpg search space for setting4"):
        search_space("ddpg", "base", "setting4")
    with pytest.raises(ValueError, match="'coeff' has no search space"):
        search_space("ds", "coeff", "setting1")


def test_proxy_spaces_cover_every_method_and_regularization():
    for method in ("ddpg", "ppo", "ds"):
        for regularization in ("none", "base", "coeff", "both"):
            space = search_space(method, regularization, "proxy")
            assert space.dataset_constants == {}  # the proxy's order cap is its own
            assert space.params["initial_action_bias"] == Uniform(0.0, 0.3)
    assert search_space("ds", "both", "proxy").params["batch_size"] == Choice((10, 20))
    assert setting_family("proxy") == "proxy"


def test_plug_in_regularizations_borrow_the_space_of_their_tuning_like():
    from deepstock.model.regularizations import REGULARIZATIONS, BaseStockRegularization

    class Capped(BaseStockRegularization):
        name = "test_capped"
        tuning_like = "none"

    register_regularization(Capped())
    try:
        # PPO on AR(1): gae_lambda depends on the regularization (None: uniform(0.5, 1))
        space = search_space("ppo", "test_capped", "setting2")
        assert space.params["gae_lambda"] == Uniform(0.5, 1.0)
        assert search_space("ds", "test_capped", "setting1") == search_space(
            "ds", "base", "setting1"
        )
    finally:
        REGULARIZATIONS.pop("test_capped")
    with pytest.raises(ValueError, match="unknown regularization"):
        search_space("ds", "test_capped", "setting1")


def test_space_data_and_overrides():
    space = search_space("ds", "base", "setting1")
    described = space.describe()
    assert set(described["kind"]) == {"sampled", "fixed", "dataset"}
    assert json.loads(json.dumps(space.to_dict())) == space.to_dict()
    shorter = space.with_overrides({"epochs": 5, "learning_rate": 0.01})
    assert "learning_rate" not in shorter.params and shorter.fixed["learning_rate"] == 0.01
    assert shorter.fixed["epochs"] == 5 and space.fixed["epochs"] == 3000  # original untouched
    assert Choice(([32, 32], [64, 64])).decode("[64, 64]") == [64, 64]
    with pytest.raises(ValueError, match="low < high"):
        Uniform(1.0, 1.0)
    with pytest.raises(ValueError, match="low > 0"):
        LogUniform(0.0, 1.0)
    with pytest.raises(ValueError, match="distinct"):
        Choice((1, 1))
    with pytest.raises(ValueError, match="both sampled and fixed"):
        SearchSpace("ds", params={"epochs": Choice((1, 2))}, fixed={"epochs": 3})


# ====================================================================== profiles
def test_profiles_and_overrides():
    paper = resolve_profile("paper")
    assert (paper.n_trials, paper.top_k, paper.n_seeds, paper.repeats) == (50, 5, 5, 3)
    assert paper.training == {} and paper.runs_per_repeat == 75
    smoke = resolve_profile("smoke")
    assert smoke.n_trials <= 2 and smoke.top_k == 1 and smoke.n_seeds == 1
    quick = resolve_profile("quick", n_trials=8, repeats=None)
    assert quick.n_trials == 8 and quick.repeats == PROFILES["quick"].repeats
    assert resolve_profile("quick", n_trials=1).top_k == 1  # top_k follows a smaller budget
    merged = resolve_profile("quick", training={"ddpg": {"total_steps": 5000}})
    assert merged.training_overrides("ddpg")["total_steps"] == 5000
    assert merged.training_overrides("ds") == PROFILES["quick"].training_overrides("ds")
    assert resolve_profile(paper, name="mine").name == "mine"
    assert parse_override("ddpg.total_steps=5000") == ("ddpg", "total_steps", 5000)
    assert parse_override("ds.hidden_layers=[8, 8]") == ("ds", "hidden_layers", [8, 8])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profile": "huge"}, "unknown profile 'huge'"),
        ({"n_trials": -1}, "n_trials must be an integer >= 1"),
        ({"n_trials": 0}, "n_trials must be an integer >= 1"),
        ({"repeats": 0}, "repeats must be an integer >= 1"),
        ({"n_seeds": 2.5}, "n_seeds must be an integer >= 1"),
        ({"top_k": True}, "top_k must be an integer >= 1"),
        ({"top_k": 60, "n_trials": 50}, "top_k \\(60\\) must be <= n_trials"),
        ({"budget": 3}, "unknown profile field"),
        ({"training": {"a2c": {}}}, "unknown method 'a2c'"),
        ({"training": {"ds": 5}}, "must be a mapping"),
    ],
)
def test_bad_profiles_fail_at_once(kwargs, message):
    kwargs = dict(kwargs)
    name = kwargs.pop("profile", "quick")
    with pytest.raises(ValueError, match=message):
        resolve_profile(name, **kwargs)


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize("method", ["ds", "ddpg", "ppo"])
def test_profile_training_overrides_are_valid_settings(name, method):
    PROFILES[name].validate_training(method)


def test_profile_training_override_errors_name_the_key():
    with pytest.raises(ValueError, match="training\\['ds'\\].*no_such_key"):
        resolve_profile("quick", training={"ds": {"no_such_key": 1}}).validate_training("ds")
    with pytest.raises(ValueError, match="epochs"):
        resolve_profile("quick", training={"ds": {"epochs": -5}}).validate_training("ds")
    with pytest.raises(ValueError, match="METHOD.KEY=VALUE"):
        parse_override("total_steps=5")


# ====================================================================== the tuner on a toy
def test_tpe_beats_random_search_on_average():
    """With 30 trials on a known function, TPE gets closer to the optimum than random search,
    averaged over 8 seeds."""
    excess = {"tpe": [], "random": []}
    for seed in range(8):
        for sampler in excess:
            tuner = Tuner(
                ToyObjective(noise=0.0),
                n_trials=30,
                top_k=1,
                n_seeds=1,
                n_startup_trials=8,
                seed=seed,
                sampler=sampler,
                storage="memory",
            )
            best = tuner.run().trials["val_loss"].min()
            excess[sampler].append(best - ToyObjective.OPTIMAL_LOSS)
    tpe, random = np.mean(excess["tpe"]), np.mean(excess["random"])
    assert tpe < 0.5 * random, (tpe, random)


def test_tuning_is_deterministic_and_tidy():
    def run() -> object:
        tuner = Tuner(
            ToyObjective(), n_trials=6, top_k=2, n_seeds=3, repeats=2, seed=3, storage="memory"
        )
        return tuner.run()

    first, second = run(), run()
    pd.testing.assert_frame_equal(first.trials, second.trials)
    pd.testing.assert_frame_equal(first.winners, second.winners)

    trials = first.trials
    assert len(trials) == 12 and list(trials["trial_index"][:6]) == [1, 2, 3, 4, 5, 6]
    assert set(trials["seed"]) == {3, 1003}  # one stage-1 seed per repeat
    assert (np.diff(trials["best_val_so_far"][:6]) <= 0).all()
    assert {"param_x", "param_learning_rate", "param_width"} <= set(trials.columns)
    confirm = first.confirm
    assert len(confirm) == 2 * 2 * 3
    assert sorted(set(confirm[confirm.repeat == 1]["seed"])) == [1004, 1005, 1006]
    assert len(first.winners) == 2 and first.candidates["winner"].sum() == 2
    # the two candidates of a repeat are its two best distinct stage-1 configurations
    repeat0 = trials[trials.repeat == 0].sort_values("val_loss")
    assert list(first.candidates[first.candidates.repeat == 0]["trial_number"]) == list(
        repeat0["trial_number"][:2]
    )
    summary = first.summary()
    assert summary["repeats"] == 2
    assert summary["test_loss"] == pytest.approx(first.winners["test_loss"].mean())
    curve = first.best_so_far(average=True)
    assert list(curve["n_trials"]) == [1, 2, 3, 4, 5, 6]
    json.dumps(first.to_dict())


class SkewedObjective(Objective):
    """Two arms: ``steady`` scores 2.0 with every seed; ``skewed`` scores 1.0, 0.9 and 10.0 with
    the stage-2 seeds 1, 2, 3 (mean 3.97, median 1.0) and 1.5 in stage 1."""

    label = "skewed"
    space = SearchSpace("toy", params={"arm": Choice(("steady", "skewed"))})
    VAL = {"steady": [2.0, 2.0, 2.0], "skewed": [1.0, 0.9, 10.0]}
    TEST = {"steady": [2.1, 2.1, 2.1], "skewed": [1.1, 1.2, 9.0]}

    def evaluate(self, config, seed):
        arm = config["arm"]
        if seed == 0:  # stage 1
            return RunScore(val_loss=1.5 if arm == "skewed" else 2.0, test_loss=0.0)
        return RunScore(val_loss=self.VAL[arm][seed - 1], test_loss=self.TEST[arm][seed - 1])

    def identity(self):
        return {"kind": "skewed"}


def test_stage_two_picks_the_median_not_the_mean():
    tuner = Tuner(
        SkewedObjective(),
        n_trials=12,
        top_k=2,
        n_seeds=3,
        n_startup_trials=12,
        storage="memory",
    )
    result = tuner.run()
    assert set(result.trials["param_arm"]) == {"steady", "skewed"}
    candidates = result.candidates.set_index(result.candidates["config"].map(json.loads).str["arm"])
    assert candidates.loc["skewed", "mean_val_loss"] > candidates.loc["steady", "mean_val_loss"]
    assert candidates.loc["skewed", "winner"] and not candidates.loc["steady", "winner"]
    (winner,) = result.winners.to_dict("records")
    assert json.loads(winner["config"]) == {"arm": "skewed"}
    assert winner["val_loss"] == 1.0  # median of 1.0, 0.9, 10.0
    assert winner["test_loss"] == 1.2  # median of the same runs' test losses
    assert winner["test_loss_at_median_val"] == 1.1  # the run whose val is the median


def test_select_winner_ties_and_even_seeds():
    confirm = pd.DataFrame(
        {
            "candidate": [0, 0, 1, 1],
            "val_loss": [1.0, 3.0, 2.0, 2.0],
            "test_loss": [5.0, 7.0, 6.0, 6.5],
        }
    )
    table = select_winner(confirm)
    assert list(table["median_val_loss"]) == [2.0, 2.0]
    assert list(table["winner"]) == [True, False]  # tie: the better stage-1 rank
    assert table["test_loss_at_median_val"][0] == 5.0  # lower median of two runs
    assert table["median_test_loss"][0] == 6.0
    nan = pd.DataFrame({"candidate": [0, 1], "val_loss": [math.nan, 3.0], "test_loss": [1, 1]})
    assert list(select_winner(nan)["winner"]) == [False, True]  # a diverged run loses
    with pytest.raises(ValueError, match="no runs"):
        select_winner(confirm.iloc[:0])


def test_tuner_checks_its_arguments():
    with pytest.raises(ValueError, match="n_trials must be an integer >= 1"):
        Tuner(ToyObjective(), n_trials=-3, top_k=1, n_seeds=1, storage="memory")
    with pytest.raises(ValueError, match="storage must be"):
        Tuner(ToyObjective(), n_trials=3, top_k=1, n_seeds=1, storage="some/file.db")
    with pytest.raises(ValueError, match="sampler"):
        Tuner(ToyObjective(), n_trials=3, top_k=1, n_seeds=1, storage="memory", sampler="grid")
    with pytest.raises(ValueError, match="grace_period"):
        Tuner(ToyObjective(), n_trials=3, top_k=1, n_seeds=1, heartbeat_interval=5, grace_period=5)
    tuner = Tuner(ToyObjective(), n_trials=3, top_k=1, n_seeds=1, storage="memory")
    with pytest.raises(ValueError, match="cannot be shared"):
        tuner.run(workers=2)


def test_two_machines_share_one_study_exactly(tmp_path):
    """Two tuners built separately (as on two machines), one worker each, one storage."""
    url = f"sqlite:///{tmp_path / 'study.db'}"

    def machine() -> Tuner:
        return Tuner(
            ToyObjective(sleep_s=0.3),
            n_trials=6,
            top_k=2,
            n_seeds=2,
            n_startup_trials=3,
            storage=url,
            heartbeat_interval=1,
            grace_period=3,
        )

    first, second = machine(), machine()
    first.prepare()
    processes = first.start_workers(1) + second.start_workers(1)
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    assert_done_exactly_once(first, first.result())


def test_two_workers_share_one_study_exactly(tmp_path):
    tuner = Tuner(
        ToyObjective(sleep_s=0.3),
        n_trials=6,
        top_k=2,
        n_seeds=2,
        n_startup_trials=3,
        storage=f"sqlite:///{tmp_path / 'study.db'}",
        heartbeat_interval=1,
        grace_period=3,
    )
    result = tuner.run(workers=2)
    assert_done_exactly_once(tuner, result)


# ====================================================================== training objectives
def _objective(dataset, store, trainer, **kwargs) -> TrainingObjective:
    return TrainingObjective(
        method="ds",
        regularization="base",
        dataset=dataset,
        store=store,
        overrides={"epochs": 3},
        train_fn=trainer,
        **kwargs,
    )


def test_training_objective_checks_space_against_dataset_and_settings(setting1_dataset, store):
    objective = _objective(setting1_dataset, store, FakeTrainer())
    assert objective.label == "setting1-ds-base" and objective.setting == "setting1"
    assert objective.space.fixed["epochs"] == 3
    with pytest.raises(ValueError, match="max_replenish=500"):
        TrainingObjective("ds", "base", setting1_dataset, setting="setting4", store=store)
    with pytest.raises(ValueError, match="does not fit its settings.*no_such_key"):
        _objective(setting1_dataset, store, FakeTrainer()).__class__(
            "ds", "base", setting1_dataset, store=store, overrides={"no_such_key": 1}
        )


def test_larger_budget_computes_only_the_new_runs(setting1_dataset, store, tmp_path):
    log = tmp_path / "runs.log"
    objective = _objective(setting1_dataset, store, FakeTrainer(str(log)))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    small = Tuner(objective, n_trials=4, top_k=1, n_seeds=2, n_startup_trials=2, storage=url)
    first = small.run()
    assert len(read_run_log(log)) == 2 * (4 + 2)
    assert len(store.to_frame()) == 6

    large = Tuner(objective, n_trials=7, top_k=1, n_seeds=2, n_startup_trials=2, storage=url)
    assert large.study_prefix == small.study_prefix  # the same study, continued
    second = large.run()
    pd.testing.assert_frame_equal(
        second.trials.iloc[:4].reset_index(drop=True), first.trials.reset_index(drop=True)
    )
    started = collections.Counter(run for event, run in read_run_log(log) if event == "start")
    assert max(started.values()) == 1  # nothing trained twice
    new_confirm = 0 if second.winners["config"][0] == first.winners["config"][0] else 2
    assert sum(started.values()) == 6 + 3 + new_confirm


def test_fresh_storage_rebuilds_from_the_result_store(setting1_dataset, isolated_results):
    """The Optuna database is not committed; the result store's study records are enough to
    report a finished tuning again without training anything."""
    log = isolated_results / "runs.log"
    trainer = FakeTrainer(str(log))
    store = ResultStore(isolated_results / "results")
    kwargs = {"profile": "smoke", "store": store, "storage": "memory", "train_fn": trainer}
    first = tune_setting("setting1", "ds", "base", dataset=setting1_dataset, **kwargs)
    runs = len(read_run_log(log))
    assert runs == 2 * (2 + 1) and len(store.to_frame()) == 3
    assert len(list(store.studies_dir.glob("*.json"))) == 2

    second = tune_setting("setting1", "ds", "base", dataset=setting1_dataset, **kwargs)
    assert len(read_run_log(log)) == runs  # nothing trained
    pd.testing.assert_frame_equal(first.winners, second.winners)
    assert first.plan["profile"]["name"] == "smoke"


def test_resume_after_a_killed_worker_loses_and_repeats_nothing(setting1_dataset, tmp_path):
    log = tmp_path / "runs.log"
    store = ResultStore(tmp_path / "results")
    objective = _objective(setting1_dataset, store, FakeTrainer(str(log), sleep_s=0.4))
    tuner = Tuner(
        objective,
        n_trials=7,
        top_k=2,
        n_seeds=2,
        n_startup_trials=3,
        storage=f"sqlite:///{tmp_path / 'study.db'}",
        heartbeat_interval=1,
        grace_period=2,
    )
    tuner.prepare()
    (worker,) = tuner.start_workers(1)
    deadline = time.monotonic() + 120
    while True:  # wait for 3 finished runs and a 4th under way, then kill the worker
        events = [event for event, _ in read_run_log(log)]
        if events.count("end") >= 3 and events.count("start") > events.count("end"):
            break
        assert worker.is_alive() and time.monotonic() < deadline, "worker did not progress"
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    assert worker.exitcode == -signal.SIGKILL

    study = optuna.load_study(study_name=tuner.search_study_name(0), storage=tuner._storage_handle)
    finished = {
        t.number: (t.params, t.value)
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    }
    assert len(finished) >= 3
    (killed,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))

    result = tuner.run(workers=1)  # resume in this process

    study = optuna.load_study(study_name=tuner.search_study_name(0), storage=tuner._storage_handle)
    complete = {t.number: t for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
    for number, (params, value) in finished.items():  # nothing finished was lost or redone
        assert complete[number].params == params and complete[number].value == value
    assert len(complete) == 7 and len(result.trials) == 7
    assert study.trials[killed.number].state == optuna.trial.TrialState.FAIL
    retried = [t for t in complete.values() if t.system_attrs.get("requeued_from") == killed.number]
    assert len(retried) == 1 and retried[0].params == killed.params

    events = read_run_log(log)
    started = collections.Counter(run for event, run in events if event == "start")
    ended = collections.Counter(run for event, run in events if event == "end")
    assert max(ended.values()) == 1  # every run finished exactly once
    twice = [run for run, count in started.items() if count == 2]
    assert len(twice) == 1 and max(started.values()) == 2  # only the killed run started again
    assert set(started) == set(ended)
    for key in list(result.trials["key"]) + list(result.confirm["key"]):
        assert store.get(key) is not None  # every finished run is in the store


# ====================================================================== the paper's entry point
@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("setting9", "ds", "base"), {}, "unknown setting 'setting9'"),
        (("setting4", "ds", "base"), {"n_skus": 5}, "setting4 needs horizon_periods"),
        (("setting4", "ds", "base"), {"n_skus": 0, "horizon_periods": 2}, "n_skus must be"),
        (("setting4", "ds", "base"), {"n_skus": 5, "horizon_periods": -2}, "horizon_periods"),
        (("setting1", "ds", "base"), {"n_skus": 5}, "apply to setting4 only"),
        (("setting1", "ds", "base"), {"n_trials": -1}, "n_trials must be an integer >= 1"),
        (("setting1", "ds", "base"), {"n_seeds": 0}, "n_seeds must be an integer >= 1"),
        (("setting1", "ds", "base"), {"profile": "fast"}, "unknown profile"),
        (("setting1", "a2c", "base"), {}, "unknown method"),
        (("setting1", "ds", "coeff"), {}, "has no search space"),
        (("setting4", "ppo", "base"), {"n_skus": 5, "horizon_periods": 2}, "no ppo search"),
    ],
)
def test_bad_parameters_fail_before_anything_runs(args, kwargs, message, isolated_results):
    def must_not_train(*_args, **_kwargs):
        raise AssertionError("training started")

    with pytest.raises(ValueError, match=message):
        tune_setting(*args, train_fn=must_not_train, **kwargs)
    assert not (isolated_results / "optuna").exists()
    assert not (isolated_results / "results").exists()


@pytest.mark.parametrize("method", ["ddpg", "ppo"])
def test_smoke_tuning_with_real_sb3_methods(method, store):
    """The smoke profile end to end with real (tiny) DDPG and PPO runs."""
    result = tune_setting(
        "setting2", method, "base", profile="smoke", store=store, storage="memory"
    )
    assert len(result.trials) == 2 and len(result.confirm) == 1
    assert math.isfinite(result.summary()["test_loss"])
    config = json.loads(result.winners["config"][0])
    assert config["total_steps"] == PROFILES["smoke"].training_overrides(method)["total_steps"]
    assert config["net_arch"] == search_space(method, "base", "setting2").fixed["net_arch"]
    assert len(store.to_frame()) == 3


def test_smoke_tuning_with_real_ds(store):
    """The smoke profile end to end with real DS training runs (tiny)."""
    result = tune_setting("setting1", "ds", "base", profile="smoke", store=store, storage="memory")
    assert len(result.trials) == 2 and len(result.confirm) == 1
    summary = result.summary()
    assert math.isfinite(summary["val_loss"]) and math.isfinite(summary["test_loss"])
    assert 0.5 < summary["test_loss"] < 50
    frame = store.to_frame()
    assert len(frame) == 3 and set(frame["method"]) == {"ds"}
    config = json.loads(result.winners["config"][0])
    assert config["epochs"] == PROFILES["smoke"].training_overrides("ds")["epochs"]
    assert isinstance(Profile, type)


# ====================================================================== command line
def test_cli_tune_runs_and_resumes(isolated_results, capsys):
    from deepstock.tools.cli import main

    argv = ["tune", "--setting", "setting1", "--method", "ds", "--reg", "base"]
    argv += ["--profile", "smoke", "--trials", "3", "--set", "epochs=2", "--json"]
    assert main(argv) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["plan"]["n_trials"] == 3 and output["plan"]["profile"]["name"] == "smoke"
    assert output["benchmark"]["policy"] and math.isfinite(output["benchmark"]["test_gap_pct"])
    assert [point["n_trials"] for point in output["best_so_far"]] == [1, 2, 3]
    store = ResultStore(isolated_results / "results" / "smoke")
    frame = store.to_frame()
    assert len(frame) == 4 and all(json.loads(c)["epochs"] == 2 for c in frame["config"])
    assert list((isolated_results / "optuna").glob("*.db"))

    # the same command again: everything is found, the same numbers come out
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["summary"] == output["summary"]
    assert len(store.to_frame()) == 4


def test_cli_tune_rejects_bad_input(isolated_results, capsys):
    from deepstock.tools.cli import main

    base = ["tune", "--method", "ds", "--reg", "base", "--profile", "smoke"]
    with pytest.raises(SystemExit) as error:
        main([*base, "--setting", "setting4", "--n", "5"])
    assert error.value.code == 2 and "--horizon" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--setting", "setting1", "--trials", "-2"])
    assert "--trials: must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--setting", "setting1", "--set", "no_such_key=1"])
    assert "no_such_key" in capsys.readouterr().err
    assert not (isolated_results / "results" / "runs").exists()

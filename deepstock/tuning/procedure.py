"""Two-stage hyperparameter tuning (the book's *Methods and tuning protocol* chapter), resumable and parallel.

The paper's procedure, for one (method, regularization, setting):

1. **Stage 1 (search).** A Tree-structured Parzen Estimator (Optuna's seeded ``TPESampler``)
   proposes ``n_trials`` configurations from the search space; each is trained once (one seed)
   and scored by its validation loss. The best-so-far validation loss after each trial is the
   curve of the paper's Figure 2.
2. **Stage 2 (confirm).** The ``top_k`` best distinct configurations are each re-trained with
   ``n_seeds`` other seeds. The winner is the configuration with the lowest **median**
   validation loss over its seeds (ties: the better stage-1 rank).
3. **Report.** The winner's validation loss is that median; its **test loss is the median of the
   test losses of the same runs** (the winner's seeds); the test loss of the run whose validation
   loss is the median (the lower median for an even number of seeds) is reported beside it as
   ``test_loss_at_median_val``.
4. The procedure is **repeated** ``repeats`` times with other sampler and training seeds and the
   winners' losses are averaged.

Seeds: repeat ``r`` of a tuning with base ``seed`` trains its stage-1 runs with seed
``seed + 1000 r`` and its stage-2 runs with seeds ``seed + 1000 r + 1 ... + n_seeds``; its
sampler is re-seeded for every trial from ``(seed, r, position)``, where the position counts the
trials before it that are complete, running or waiting (failed and pruned trials do not count): a
trial that failed or whose worker was killed leaves no trace in later draws, so a resumed tuning
gives exactly the configurations of an uninterrupted one. With one worker the whole procedure is
deterministic.

**Objectives.** The tuner works on any :class:`Objective`: a search space, a way to sample it and
``evaluate(config, seed) -> RunScore``. :class:`TrainingObjective` trains a method through the
result store (:func:`deepstock.results.store.cached_train`), so every finished run is on disk the moment
it finishes and re-running finds it; :class:`ToyObjective` is a cheap function with a known
optimum (tests, demonstrations).

**Storage and scale-out.** Both stages are Optuna studies in one storage: an SQLite file under
``data/optuna/`` by default (ignored by git), or any database URL (PostgreSQL, MySQL), which lets
workers on several machines join the same studies (same command, same ``--storage``).
``workers=N`` runs N local worker processes (``spawn``, one torch thread each). Every worker runs
the same loop on the shared studies, so the stage-1 trials and the stage-2 runs are each done
once:

* stage 1: a worker starts a trial only while fewer than ``n_trials`` are complete or under way;
* stage 2: the jobs (configuration x seed) are numbered; the storage hands out trial numbers
  atomically and trial ``k`` runs job ``k``, so each job is claimed by one worker, with no leader;
* a worker that dies (killed, machine lost) stops its trials' heartbeats; after the grace period
  another worker marks the trial failed and re-enqueues its parameters, so the configuration is
  trained again. A trial records its owner (host name and process id); a worker on the same host
  whose owner process no longer exists fails and re-enqueues it at once, without waiting for the
  grace period (a re-run right after a kill resumes where the killed run stopped) (and the finished runs of every worker are in the result store, so nothing
  finished is computed twice). A trial that two racing workers would start beyond ``n_trials``
  stops before sampling (pruned); the report uses the first ``n_trials`` complete trials.

After a tuning finishes, the finished trials of its studies are also written to the result store
(``studies/``), so a fresh checkout with the committed results but no Optuna database rebuilds the
studies from them instead of re-running anything.

**Several machines.** Start a database every machine can reach (``scripts/postgres_server.sh``
starts a loopback one for tests) and run the same command on each machine, for example
``deepstock tune --setting setting1 --method ddpg --reg base --storage
postgresql://user@host:5432/db --workers 8``. The trial values, test losses and store keys live in
the database, so any machine can print the final report; each machine's result store holds the
runs it trained (one file per run, so copying the ``runs/`` folders together merges them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepstock.core.files import data_dir
from deepstock.datasets.catalog import load_setting
from deepstock.methods.population.engine import check_engine
from deepstock.methods.train import config_from_mapping
from deepstock.model.dataset import InventoryDataset
from deepstock.model.simulator import resolve_device
from deepstock.results.store import (
    CorruptRecordError,
    ResultStore,
    cached_train,
    cached_train_population,
    canonical_json,
    dataset_fingerprint,
)
from deepstock.tuning.profiles import Profile, resolve_profile
from deepstock.tuning.spaces import (
    Choice,
    LogUniform,
    SearchSpace,
    Uniform,
    search_space,
    setting_family,
)

__all__ = [
    "POPULATION_BATCH_TRIALS",
    "Objective",
    "RunScore",
    "ToyObjective",
    "TrainingObjective",
    "Tuner",
    "TuningResult",
    "default_optuna_dir",
    "check_storage_url",
    "default_storage_url",
    "select_winner",
    "tune_setting",
]

_SEED_STRIDE = 1000  # training seeds of repeat r start at seed + 1000 r

#: Stage-1 trials per batch on the population engine by default: the authors' 10 random
#: start-up trials make up the first batch; later batches are TPE draws with the constant liar.
POPULATION_BATCH_TRIALS = 10
_POLL_S = 0.5  # how often a waiting worker looks at the storage again
_INTERRUPTED_EXIT = 130  # exit status of a worker stopped by a signal (128 + SIGINT)
_OWNER = "owner"  # user attribute of a running trial: {"host": ..., "pid": ...} of its worker


# ====================================================================== objectives
@dataclass(frozen=True)
class RunScore:
    """The outcome of one evaluation of a configuration with one seed.

    Attributes:
        val_loss: validation loss (what the tuner minimizes); NaN is treated as +inf.
        test_loss: test loss (reported, never used to choose).
        wall_time_s: training wall time, seconds.
        key: the result store key of the run, when there is one.
        cached: ``True`` when the run was read from the store, not computed.
    """

    val_loss: float
    test_loss: float
    wall_time_s: float = 0.0
    key: str | None = None
    cached: bool = False


class Objective:
    """What the tuner optimizes: a search space and ``evaluate(config, seed)``.

    Subclasses set :attr:`space` (or override :meth:`sample`), :attr:`label` and implement
    :meth:`evaluate` and :meth:`identity`. Instances are sent to worker processes, so they must
    pickle (module-level classes with plain attributes).
    """

    #: A short name for studies and files (letters, digits, ``-``, ``_``, ``.``).
    label: str = "objective"
    #: The search space sampled in stage 1.
    space: SearchSpace
    #: Whether evaluations use torch (worker processes then limit torch to one thread).
    uses_torch: bool = False

    def sample(self, trial: Any) -> dict[str, Any]:
        """A configuration drawn through an Optuna trial."""
        return self.space.sample(trial)

    def evaluate(self, config: dict[str, Any], seed: int) -> RunScore:
        raise NotImplementedError

    def evaluate_many(
        self,
        configs: Sequence[dict[str, Any]],
        seeds: Sequence[int],
        on_done: Callable[[int, RunScore], None] | None = None,
    ) -> list[RunScore]:
        """Evaluate ``(configs[i], seeds[i])`` for every ``i``, calling ``on_done(i, score)`` as
        each finishes. This default evaluates them one after the other; an objective that can
        do them together (the population engine) overrides it."""
        scores = []
        for index, (config, seed) in enumerate(zip(configs, seeds, strict=True)):
            scores.append(self.evaluate(config, seed))
            if on_done is not None:
                on_done(index, scores[-1])
        return scores

    def identity(self) -> dict[str, Any]:
        """JSON-serializable description of everything that determines the scores (it names
        the studies: another identity is another study)."""
        raise NotImplementedError


@dataclass
class ToyObjective(Objective):
    """A cheap objective with a known optimum, shaped like a hyperparameter search.

    ``loss(config) = 1 + (x - 1.3)^2 / 4 + log10(learning_rate / 3e-3)^2 / 2
    + 0.3 * [width != 64]``: minimum 1.0 at ``x = 1.3``, ``learning_rate = 3e-3``,
    ``width = 64``. The validation and test losses add independent Gaussian noise of standard
    deviation ``noise``, drawn from a generator seeded by ``(seed, config)``, so a configuration
    scores differently under different seeds, like a training run.

    Args:
        noise: noise standard deviation (>= 0).
        sleep_s: seconds each evaluation sleeps (>= 0), to imitate training time.
    """

    noise: float = 0.05
    sleep_s: float = 0.0
    label: str = "toy"
    space: SearchSpace = field(
        default_factory=lambda: SearchSpace(
            method="toy",
            params={
                "x": Uniform(-4.0, 4.0),
                "learning_rate": LogUniform(1e-4, 1e-1),
                "width": Choice((16, 32, 64, 128)),
            },
            fixed={"depth": 2},
        )
    )

    #: The optimum and its loss.
    OPTIMUM = {"x": 1.3, "learning_rate": 3e-3, "width": 64}
    OPTIMAL_LOSS = 1.0

    def __post_init__(self) -> None:
        if not (self.noise >= 0 and math.isfinite(self.noise)):
            raise ValueError(f"noise must be finite and >= 0, got {self.noise}")
        if not (self.sleep_s >= 0 and math.isfinite(self.sleep_s)):
            raise ValueError(f"sleep_s must be finite and >= 0, got {self.sleep_s}")

    @staticmethod
    def loss(config: Mapping[str, Any]) -> float:
        """The noise-free loss of a configuration."""
        return (
            1.0
            + (config["x"] - 1.3) ** 2 / 4.0
            + math.log10(config["learning_rate"] / 3e-3) ** 2 / 2.0
            + (0.0 if config["width"] == 64 else 0.3)
        )

    def evaluate(self, config: dict[str, Any], seed: int) -> RunScore:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        digest = hashlib.sha256(canonical_json([seed, config]).encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        base = self.loss(config)
        val, test = base + self.noise * rng.standard_normal(2)
        return RunScore(val_loss=float(val), test_loss=float(test), wall_time_s=self.sleep_s)

    def identity(self) -> dict[str, Any]:
        return {"kind": "toy", "noise": self.noise, "space": self.space.to_dict()}


@dataclass
class TrainingObjective(Objective):
    """Train ``method`` with ``regularization`` on ``dataset``, through the result store.

    Args:
        method: ``"ds"``, ``"ddpg"`` or ``"ppo"``.
        regularization: ``"none"`` or ``"base"`` (the regularizations with a search space).
        dataset: train/val/test trajectories.
        setting: whose search space (default: the dataset's ``params["setting"]``).
        store: where runs are cached (default: a :class:`~deepstock.results.store.ResultStore` at its
            default root).
        device: torch device of every run.
        overrides: configuration keys fixed for every run (a profile's training lengths); an
            overridden sampled key is no longer sampled.
        train_fn: the training function (default :func:`deepstock.training.train`), for tests.
        engine: ``"sb3"`` (one run at a time on each method's single-run path) or
            ``"population"`` (:meth:`evaluate_many` trains its runs as one population,
            :func:`deepstock.results.store.cached_train_population`).
        max_members: the population engine's most members per computation (default: chosen
            from the device).

    Raises:
        ValueError: at construction, when the space and the dataset disagree (the order cap),
            or a key of the space or of ``overrides`` is not a field of the method's settings.
    """

    method: str
    regularization: str
    dataset: InventoryDataset
    setting: str | None = None
    store: ResultStore | None = None
    device: str = "cpu"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    train_fn: Callable[..., Any] | None = None
    uses_torch: bool = True
    engine: str = "sb3"
    max_members: int | None = None

    def __post_init__(self) -> None:
        check_engine(self.engine)
        if not isinstance(self.dataset, InventoryDataset):
            raise ValueError(f"dataset must be an InventoryDataset, got {type(self.dataset)}")
        if self.setting is None:
            self.setting = str(self.dataset.params.get("setting", ""))
            if not self.setting:
                raise ValueError(
                    f"dataset {self.dataset.name!r} does not record its setting; pass setting="
                )
        self.overrides = json.loads(json.dumps(dict(self.overrides)))
        self.space = search_space(self.method, self.regularization, self.setting)
        self.space = self.space.with_overrides(self.overrides)
        cap = self.space.dataset_constants.get("max_replenish")
        if cap is not None and "max_replenish" in self.dataset.params.get("model_changes", {}):
            # the cap was changed on purpose (InventoryDataset.with_model): the space follows
            cap = self.dataset.max_replenish
            constants = {**self.space.dataset_constants, "max_replenish": cap}
            self.space = dataclasses.replace(self.space, dataset_constants=constants)
        if cap is not None and float(cap) != float(self.dataset.max_replenish):
            raise ValueError(
                f"the {self.setting} search space assumes max_replenish={cap}, but dataset "
                f"{self.dataset.name!r} has {self.dataset.max_replenish}"
            )
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'cpu', got {self.device!r}")
        resolve_device(self.device)  # a missing GPU fails here, before any study or file
        if self.store is None:
            self.store = ResultStore()
        self.label = f"{self.dataset.name}-{self.method}-{self.regularization}"
        self._fingerprint = dataset_fingerprint(self.dataset)
        _check_space_keys(self.method, self.space)

    def evaluate(self, config: dict[str, Any], seed: int) -> RunScore:
        summary = cached_train(
            self.store,
            self.method,
            self.regularization,
            self.dataset,
            config,
            seed,
            self.device,
            use_defaults=False,
            setting=self.setting,
            train_fn=self.train_fn,
            engine=self.engine,
        )
        return _score(summary)

    def evaluate_many(
        self,
        configs: Sequence[dict[str, Any]],
        seeds: Sequence[int],
        on_done: Callable[[int, RunScore], None] | None = None,
    ) -> list[RunScore]:
        if self.engine != "population":
            return super().evaluate_many(configs, seeds, on_done)
        summaries = cached_train_population(
            self.store,
            self.method,
            self.regularization,
            self.dataset,
            configs,
            seeds,
            self.device,
            use_defaults=False,
            setting=self.setting,
            max_members=self.max_members,
            on_member_done=(
                (lambda index, summary: on_done(index, _score(summary)))
                if on_done is not None
                else None
            ),
        )
        return [_score(summary) for summary in summaries]

    def identity(self) -> dict[str, Any]:
        identity = {
            "kind": "training",
            "method": self.method,
            "regularization": self.regularization,
            "dataset": self._fingerprint,
            "space": self.space.to_dict(),
        }
        if self.engine == "population":
            # other runs (their own store keys): other studies
            identity["engine"] = self.engine
        return identity


def _score(summary: Mapping[str, Any]) -> RunScore:
    return RunScore(
        val_loss=float(summary["val"]["loss"]),
        test_loss=float(summary["test"]["loss"]),
        wall_time_s=float(summary.get("wall_time_s", 0.0)),
        key=summary["key"],
        cached=bool(summary["cached"]),
    )


def _check_space_keys(method: str, space: SearchSpace) -> None:
    """Build the method's settings from a representative configuration of ``space``: unknown
    keys and out-of-range fixed values fail now, not in a worker an hour later."""

    config: dict[str, Any] = {}
    for name, dist in space.params.items():
        if isinstance(dist, Uniform):
            config[name] = (dist.low + dist.high) / 2
        elif isinstance(dist, LogUniform):
            config[name] = math.sqrt(dist.low * dist.high)
        else:
            config[name] = dist.decode(dist.labels[0])
    config.update(space.fixed)
    try:
        config_from_mapping(method, config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"search space of {method} does not fit its settings: {error}") from None


# ====================================================================== winner selection
def select_winner(confirm: pd.DataFrame) -> pd.DataFrame:
    """Per candidate configuration, the median (and mean) losses over its seeds; the winner.

    Args:
        confirm: one row per stage-2 run with columns ``candidate`` (stage-1 rank, 0 = best),
            ``val_loss`` and ``test_loss``.

    Returns:
        one row per candidate (sorted by ``candidate``) with ``n_seeds``, ``median_val_loss``,
        ``mean_val_loss``, ``median_test_loss``, ``mean_test_loss``,
        ``test_loss_at_median_val`` and ``winner`` (exactly one ``True``: the lowest median
        validation loss, ties to the better stage-1 rank).
    """
    if confirm.empty:
        raise ValueError("stage 2 has no runs to choose from")
    rows = []
    for candidate, runs in confirm.groupby("candidate", sort=True):
        vals = [_finite_or_inf(v) for v in runs["val_loss"]]
        tests = [_finite_or_inf(v) for v in runs["test_loss"]]
        # the run whose validation loss is the (lower) median
        order = sorted(range(len(vals)), key=lambda i: (vals[i], i))
        median_run = order[(len(order) - 1) // 2]
        rows.append(
            {
                "candidate": int(candidate),
                "n_seeds": len(vals),
                "median_val_loss": statistics.median(vals),
                "mean_val_loss": float(np.mean(vals)),
                "median_test_loss": statistics.median(tests),
                "mean_test_loss": float(np.mean(tests)),
                "test_loss_at_median_val": tests[median_run],
            }
        )
    table = pd.DataFrame(rows)
    best = min(range(len(table)), key=lambda i: (table["median_val_loss"][i], i))
    table["winner"] = [i == best for i in range(len(table))]
    return table


def _finite_or_inf(value: Any) -> float:
    value = float(value)
    return math.inf if math.isnan(value) else value


# ====================================================================== the result
@dataclass
class TuningResult:
    """Tidy outputs of a tuning (every repeat).

    Attributes:
        label: what was tuned (``"setting1-ddpg-base"``, ``"toy"``).
        plan: the budget and seeds (``n_trials``, ``top_k``, ``n_seeds``, ``repeats``, ``seed``,
            ``n_startup_trials``, ``sampler``) and the study names.
        trials: one row per stage-1 trial used (the first ``n_trials`` complete by number):
            ``repeat``, ``trial_index`` (1-based), ``trial_number`` (Optuna's), ``seed``,
            ``val_loss``, ``test_loss``, ``best_val_so_far``, ``wall_time_s``, ``key``,
            ``config`` (JSON text) and one ``param_<name>`` column per sampled key.
        confirm: one row per stage-2 run: ``repeat``, ``candidate`` (stage-1 rank among distinct
            configurations, 0 = best), ``trial_number`` (its stage-1 trial), ``seed``,
            ``val_loss``, ``test_loss``, ``wall_time_s``, ``key``.
        candidates: one row per (repeat, candidate): the columns of :func:`select_winner` plus
            ``repeat``, ``trial_number``, ``stage1_val_loss``, ``config``.
        winners: one row per repeat: ``repeat``, ``candidate``, ``trial_number``, ``val_loss``
            (median over seeds), ``test_loss`` (median over the same runs),
            ``test_loss_at_median_val``, ``mean_val_loss``, ``mean_test_loss``, ``config``.
    """

    label: str
    plan: dict[str, Any]
    trials: pd.DataFrame
    confirm: pd.DataFrame
    candidates: pd.DataFrame
    winners: pd.DataFrame

    def best_so_far(self, *, average: bool = False) -> pd.DataFrame:
        """Best stage-1 validation loss after each trial (Figure 2): ``repeat``, ``n_trials``,
        ``best_val_loss``; with ``average`` one row per ``n_trials`` averaged over repeats."""
        curve = self.trials[["repeat", "trial_index", "best_val_so_far"]].rename(
            columns={"trial_index": "n_trials", "best_val_so_far": "best_val_loss"}
        )
        if average:
            return curve.groupby("n_trials", as_index=False)["best_val_loss"].mean()
        return curve.reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """The reported numbers: winners' losses averaged over repeats (and their spread)."""
        val = self.winners["val_loss"].to_numpy(dtype=float)
        test = self.winners["test_loss"].to_numpy(dtype=float)
        return {
            "label": self.label,
            "repeats": len(self.winners),
            "val_loss": float(val.mean()),
            "test_loss": float(test.mean()),
            "val_loss_std": float(val.std(ddof=1)) if len(val) > 1 else 0.0,
            "test_loss_std": float(test.std(ddof=1)) if len(test) > 1 else 0.0,
            "test_loss_at_median_val": float(self.winners["test_loss_at_median_val"].mean()),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable view: summary, plan, winners and the averaged Figure-2 curve."""
        return {
            "summary": self.summary(),
            "plan": self.plan,
            "winners": json.loads(self.winners.to_json(orient="records")),
            "best_so_far": json.loads(self.best_so_far(average=True).to_json(orient="records")),
        }


# ====================================================================== storage helpers
def default_optuna_dir() -> Path:
    """Where SQLite study files go: ``$DEEPSTOCK_OPTUNA_DIR`` when set; else ``data/optuna``
    of the checkout; else ``~/.cache/deepstock/optuna``."""
    return data_dir("optuna", environment="DEEPSTOCK_OPTUNA_DIR")


def default_storage_url(label: str) -> str:
    """The SQLite URL of a tuning's default study file, ``<optuna dir>/<label>.db``."""
    folder = default_optuna_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / f'{label}.db').resolve()}"


def _requeue_stale_trial(study: Any, trial: Any) -> None:
    """Heartbeat callback: put a dead worker's trial back in the queue (same parameters, same
    job), so another worker runs it; the failed original stays as a FAIL trial."""
    import optuna

    system_attrs = {"requeued_from": trial.number}
    # the dead owner is dropped: the new trial gets its own when a worker starts it
    user_attrs = {name: value for name, value in trial.user_attrs.items() if name != _OWNER}
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user_attrs,
            system_attrs=system_attrs,
        )
    )


def _claim(trial: Any) -> None:
    """Record this process as the owner of a trial it starts (see :func:`_fail_orphaned_trials`)."""
    trial.set_user_attr(_OWNER, {"host": socket.gethostname(), "pid": os.getpid()})


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _fail_orphaned_trials(study: Any, storage: Any) -> int:
    """Fail and re-enqueue the running trials whose owner process, on this host, is gone.

    The heartbeat finds dead workers on any machine, but only after the grace period; a worker
    killed on this machine is found at once, so a re-run right after a kill does not sample a
    new trial beside the dead one (which would change every later draw). Returns how many
    trials were failed. Two workers racing for the same trial: the storage lets one finish it.
    """
    import optuna

    host, me = socket.gethostname(), os.getpid()
    failed = 0
    study_id = None
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = trial.user_attrs.get(_OWNER)
        if not owner or owner.get("host") != host or owner.get("pid") == me:
            continue
        if _process_exists(int(owner["pid"])):
            continue
        if study_id is None:
            study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            finished = storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
        except RuntimeError:  # another worker finished it first
            continue
        if finished:
            _requeue_stale_trial(study, storage.get_trial(trial_id))
            failed += 1
    return failed


class _TrialSeededSampler:
    """An Optuna sampler that delegates to a fresh inner sampler for every trial, seeded from
    ``entropy + [trial position]`` (see :meth:`Tuner._sampler`).

    A trial's position is its number less the failed and pruned trials numbered below it: the
    trials a killed worker or population left behind (failed, then re-enqueued) do not shift
    the seeds of the trials sampled after them. Without such trials, position = number.
    """

    def __init__(self, make: Callable[[int], Any], entropy: list[int]) -> None:
        self._make = make
        self._entropy = list(entropy)
        self._inner = make(self._seed(-1))

    def _seed(self, position: int) -> int:
        entropy = [*self._entropy, position + 1]  # SeedSequence wants non-negative entropy
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def before_trial(self, study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        gone = (TrialState.FAIL, TrialState.PRUNED)
        position = sum(
            1
            for other in study.get_trials(deepcopy=False)
            if other.number < trial.number and other.state not in gone
        )
        self._inner = self._make(self._seed(position))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Any, trial: Any, param_name: str, param_distribution: Any
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Seeds come from trial positions; nothing to reseed."""


def _database_url(url: str) -> str:
    """``url`` with a PostgreSQL driver SQLAlchemy can import: a plain ``postgresql://`` URL
    means psycopg 3 to SQLAlchemy 2.1, while the project's extra installs psycopg2."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
            return f"postgresql+psycopg2://{rest}"
        return f"postgresql://{rest}"
    return url


#: Database URL schemes the tuner accepts and, per scheme, the drivers SQLAlchemy would use
#: (module name, package to install).
_DRIVERS: dict[str, tuple[tuple[str, str], ...]] = {
    "sqlite": (("sqlite3", "Python built with SQLite"),),
    "postgresql": (("psycopg2", "psycopg2-binary"), ("psycopg", "psycopg[binary]")),
    "postgresql+psycopg2": (("psycopg2", "psycopg2-binary"),),
    "postgresql+psycopg": (("psycopg", "psycopg[binary]"),),
    "postgres": (("psycopg2", "psycopg2-binary"), ("psycopg", "psycopg[binary]")),
    "mysql": (("MySQLdb", "mysqlclient"),),
    "mysql+mysqldb": (("MySQLdb", "mysqlclient"),),
    "mysql+pymysql": (("pymysql", "PyMySQL"),),
}
_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_storage_url(url: str) -> None:
    """Check an Optuna storage URL without connecting: a known scheme, its driver installed, a
    valid port, and for SQLite an existing folder and, when the file exists, an SQLite file.

    Raises:
        ValueError: one line naming the URL, what is wrong and what to do.
    """
    import importlib.util
    from urllib.parse import urlsplit

    if url == "memory":
        return
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"storage {url!r} is not a database URL; use sqlite:///file.db, "
            "postgresql://user@host:port/db, mysql://user@host/db or 'memory'"
        )
    scheme = scheme.lower()
    if scheme not in _DRIVERS:
        raise ValueError(
            f"storage {url!r}: unknown scheme {scheme!r}; use one of {sorted(_DRIVERS)}"
        )
    drivers = _DRIVERS[scheme]
    if not any(importlib.util.find_spec(module) for module, _ in drivers):
        install = " or ".join(package for _, package in drivers)
        raise ValueError(
            f"storage {url!r} needs a {scheme} driver that is not installed: pip install {install}"
        )
    if scheme == "sqlite":
        if rest in ("", "/", "/:memory:") or rest.startswith("/:memory:?"):
            raise ValueError(
                f"storage {url!r} is an in-memory SQLite database, which the tuner's heartbeat "
                "thread cannot share; use storage 'memory' (one process) or sqlite:///file.db"
            )
        path = Path(rest[1:].split("?", 1)[0])
        if not path.parent.is_dir():
            raise ValueError(
                f"storage {url!r}: folder {str(path.parent)!r} does not exist; create it or "
                "choose another path"
            )
        if path.is_dir():
            raise ValueError(f"storage {url!r}: {str(path)!r} is a folder, not a database file")
        if path.is_file() and path.stat().st_size:
            with open(path, "rb") as handle:
                head = handle.read(len(_SQLITE_MAGIC))
            if head != _SQLITE_MAGIC:
                raise ValueError(
                    f"storage {url!r}: {str(path)!r} is not an SQLite database; move it away "
                    "or choose another path"
                )
        return
    try:
        port = urlsplit(url).port
    except ValueError as error:
        raise ValueError(f"storage {url!r}: bad port ({error})") from None
    if port == 0:
        raise ValueError(f"storage {url!r}: bad port 0 (expected 1-65535)")


def _make_storage(url: str, heartbeat_interval: int, grace_period: int) -> Any:
    """Open an Optuna storage; a database that cannot be reached or read is one ``ValueError``
    naming the URL."""
    check_storage_url(url)
    try:
        return _open_storage(url, heartbeat_interval, grace_period)
    except (ImportError, ModuleNotFoundError) as error:
        raise ValueError(f"storage {url!r}: a database driver is missing ({error})") from None
    except Exception as error:  # SQLAlchemy's connection and schema errors
        text = str(error).strip().splitlines()
        reason = text[0] if text else type(error).__name__
        hint = (
            "the file is damaged or not an Optuna database; move it away"
            if url.startswith("sqlite")
            else "start the database server or check the URL (host, port, user, database)"
        )
        raise ValueError(f"storage {url!r} cannot be opened: {reason[:300]}; {hint}") from None


def _open_storage(url: str, heartbeat_interval: int, grace_period: int) -> Any:
    import optuna

    if url == "memory":
        return optuna.storages.InMemoryStorage()
    url = _database_url(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # several processes write the same file: wait for the lock instead of failing
        engine_kwargs["connect_args"] = {"timeout": 120}
    else:
        engine_kwargs["pool_pre_ping"] = True
    # Optuna >= 4.9 names the stale-trial callback heartbeat_stale_trial_callback; older
    # versions call it failed_trial_callback.
    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    callback_name = (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in parameters
        else "failed_trial_callback"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeats are flagged experimental
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            **{callback_name: _requeue_stale_trial},
        )


def _fail_stale_trials(study: Any) -> None:
    """Fail (and re-enqueue, through the storage's callback) trials of dead workers."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _study_exists(storage: Any, name: str) -> bool:
    import optuna

    try:
        optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return False
    return True


def _export_trials(study: Any) -> dict[str, Any]:
    import optuna

    trials = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        trials.append(
            {
                "number": trial.number,
                "params": trial.params,
                "distributions": {
                    name: optuna.distributions.distribution_to_json(dist)
                    for name, dist in trial.distributions.items()
                },
                "value": trial.value,
                "user_attrs": {k: v for k, v in trial.user_attrs.items() if k != _OWNER},
            }
        )
    return {"study_name": study.study_name, "user_attrs": study.user_attrs, "trials": trials}


def _trial_contents(payload: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """A study's finished trials without their numbers, in a canonical order."""
    trials = sorted(
        canonical_json({key: value for key, value in entry.items() if key != "number"})
        for entry in payload.get("trials", [])
    )
    return canonical_json(payload.get("user_attrs", {})), trials


def _restore_order(entry: Mapping[str, Any]) -> tuple[int, int]:
    job = entry["user_attrs"].get("job")
    return (job["job"] if job else entry["number"], entry["number"])


def _import_trials(study: Any, payload: Mapping[str, Any]) -> int:
    import optuna

    trials = [
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE,
            params=entry["params"],
            distributions={
                name: optuna.distributions.json_to_distribution(text)
                for name, text in entry["distributions"].items()
            },
            value=entry["value"],
            user_attrs=entry["user_attrs"],
        )
        # stage-2 trials in job order, so that restored trial k holds job k as a live one would
        for entry in sorted(payload["trials"], key=_restore_order)
    ]
    study.add_trials(trials)
    for name, value in payload.get("user_attrs", {}).items():
        study.set_user_attr(name, value)
    return len(trials)


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Environment for spawned workers: one BLAS/OpenMP thread each (read at their import)."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in names:
            os.environ[name] = "1"
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_STOP_GRACE_S = 30.0  # a worker told to stop that has not stopped after this long is ended


class _Deferral:
    """Where a stop signal may raise ``KeyboardInterrupt`` (module state of the main thread).

    Optuna creates a trial inside ``ask`` and writes its outcome inside ``tell``; an interrupt
    landing in either leaves the trial RUNNING with no owner recorded, so nothing fails it until
    the heartbeat's grace period. While ``depth > 0`` a signal is only noted (``pending``) and
    raised where interrupts are allowed again: inside the run itself (the trial is then failed
    like any error) or once the trial is complete.
    """

    depth = 0
    pending: str | None = None


def _interrupt_now_or_later(message: str) -> None:
    if _Deferral.depth > 0:
        _Deferral.pending = message
        return
    _Deferral.pending = None
    raise KeyboardInterrupt(message)


def _raise_pending() -> None:
    if _Deferral.pending is not None:
        message, _Deferral.pending = _Deferral.pending, None
        raise KeyboardInterrupt(message)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Within the block a stop signal waits; it is raised when the block ends."""
    _Deferral.depth += 1
    try:
        yield
    finally:
        _Deferral.depth -= 1
    if _Deferral.depth == 0:
        _raise_pending()


@contextlib.contextmanager
def _interrupts_allowed() -> Iterator[None]:
    """Within a deferring block, the part a stop signal may interrupt (a run's training): a
    signal that waited is raised on entry."""
    saved, _Deferral.depth = _Deferral.depth, 0
    try:
        _raise_pending()
        yield
    finally:
        _Deferral.depth = saved


def _raise_interrupt(signum: int, _frame: Any) -> None:
    # once: a second SIGTERM (the parent's and the parent-watch's) must not interrupt the
    # clean-up that the first one started
    signal.signal(signum, signal.SIG_IGN)
    _interrupt_now_or_later(f"stopped by signal {signal.Signals(signum).name}")


def _raise_keyboard_interrupt(signum: int, _frame: Any) -> None:
    # Ctrl-C in the process the user started: waits like a stop signal, but a second Ctrl-C
    # still reaches Python (it interrupts the clean-up; the resume then fails the trial left)
    _interrupt_now_or_later("interrupted (Ctrl-C)")


def _fail_own_trials(study: Any, storage: Any) -> None:
    """Mark failed the trials this process left running (an interrupt that landed outside the
    trial's own error handling): a resumed tuning then runs them again at once."""
    import optuna

    me, host = os.getpid(), socket.gethostname()
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = trial.user_attrs.get(_OWNER) or {}
        if owner.get("pid") == me and owner.get("host") == host:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            with contextlib.suppress(RuntimeError):  # finished meanwhile
                storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` in the main thread, as SIGINT
    does: Optuna then marks the trial under way failed (so a resumed tuning runs it again, at
    the same position, with the same draw) and the finally-blocks stop the workers. Outside
    the main thread (where handlers cannot be set) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:  # not when the caller installed its own
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)


def _watch_parent() -> None:
    """In a worker: when the parent process dies (even by SIGKILL), stop this worker as if it
    had received SIGTERM, and end it outright if it has not stopped after a grace period, so
    that no orphaned worker keeps training and writing."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(_STOP_GRACE_S)
        os.kill(os.getpid(), signal.SIGKILL)  # still running: end it outright

    threading.Thread(target=watch, name="deepstock-parent-watch", daemon=True).start()


def _worker_entry(tuner: Tuner) -> None:
    """Body of a spawned worker process: it stops cleanly on SIGTERM or SIGINT and when its
    parent dies (the trial under way is marked failed and runs again on resume)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)  # Ctrl-C reaches the whole process group
    _watch_parent()
    if tuner.objective.uses_torch:
        import torch

        torch.set_num_threads(1)
    try:
        tuner.work()
    except KeyboardInterrupt:
        sys.exit(_INTERRUPTED_EXIT)


# ====================================================================== the tuner
@dataclass
class Tuner:
    """Two-stage tuning of an :class:`Objective` on an Optuna storage.

    Args:
        objective: what to tune.
        n_trials, top_k, n_seeds, repeats, n_startup_trials: the budget (see
            :class:`deepstock.tuning.profiles.Profile`).
        seed: base seed of the samplers and the training runs.
        storage: ``None`` (an SQLite file under :func:`default_optuna_dir`), ``"memory"``
            (in-process only, ``workers=1``) or a database URL (``sqlite:///path``,
            ``postgresql://user@host:port/db``...).
        sampler: ``"tpe"`` (the paper) or ``"random"`` (a baseline).
        record_store: where the finished studies are also written (default: the objective's
            store when it has one); ``None`` keeps them only in the storage.
        heartbeat_interval, grace_period: seconds; a running trial whose heartbeat is older than
            the grace period is taken for dead, failed and re-enqueued.
        batch_trials: ``q``, trials evaluated together (default 1, one at a time). With
            ``q > 1`` stage 1 asks the sampler for ``q`` trials at a time (TPE's constant liar
            treats the trials under way as the worst so far, so a batch spreads out; the first
            ``n_startup_trials`` are random), evaluates each batch with
            :meth:`Objective.evaluate_many` (one population on the population engine) and
            reports every trial the moment its run finishes; stage 2 evaluates all its runs as
            one batch. A batch interrupted by an error fails and re-enqueues its unfinished
            trials (same configurations, same seeds), so a re-run trains exactly those; a killed
            process's trials are failed and re-enqueued after the grace period, as in the
            one-at-a-time path.

    The study names are ``<label>-<hash>-r<repeat>-search`` and
    ``<label>-<hash>-r<repeat>-confirm-<jobs hash>``, where the first hash covers the
    objective's identity, the sampler, its start-up trials and the seed (not ``n_trials``: a
    larger budget continues the same study) and the second the stage-2 jobs.
    """

    objective: Objective
    n_trials: int
    top_k: int
    n_seeds: int
    repeats: int = 1
    seed: int = 0
    n_startup_trials: int = 10
    storage: str | None = None
    sampler: str = "tpe"
    record_store: ResultStore | None = None
    heartbeat_interval: int = 10
    grace_period: int = 30
    batch_trials: int = 1

    def __post_init__(self) -> None:
        # the budget is checked by Profile (same rules, same messages)
        Profile(
            name="tuner",
            n_trials=self.n_trials,
            top_k=self.top_k,
            n_seeds=self.n_seeds,
            repeats=self.repeats,
            n_startup_trials=self.n_startup_trials,
        )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.sampler not in ("tpe", "random"):
            raise ValueError(f"sampler must be 'tpe' or 'random', got {self.sampler!r}")
        if (
            isinstance(self.batch_trials, bool)
            or not isinstance(self.batch_trials, int)
            or self.batch_trials < 1
        ):
            raise ValueError(f"batch_trials must be an integer >= 1, got {self.batch_trials!r}")
        for name in ("heartbeat_interval", "grace_period"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1 (seconds), got {value!r}")
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"grace_period ({self.grace_period}) must exceed heartbeat_interval "
                f"({self.heartbeat_interval})"
            )
        label = self.objective.label
        if not label or any(not (c.isalnum() or c in "-_.") for c in label):
            raise ValueError(f"objective label {label!r}: letters, digits, '-', '_', '.' only")
        if self.storage is None:
            self.storage = default_storage_url(label)
        if not isinstance(self.storage, str) or not (
            self.storage == "memory" or "://" in self.storage
        ):
            raise ValueError(
                f"storage must be 'memory' or a database URL such as sqlite:///file.db or "
                f"postgresql://user@host:port/db, got {self.storage!r}"
            )
        check_storage_url(self.storage)
        if self.record_store is None:
            self.record_store = getattr(self.objective, "store", None)
        identity = {
            "objective": self.objective.identity(),
            "sampler": self.sampler,
            "n_startup_trials": self.n_startup_trials,
            "seed": self.seed,
        }
        if self.batch_trials > 1:
            # batches of constant-liar draws are other draws: another study
            identity["batch_trials"] = self.batch_trials
        digest = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:10]
        self.study_prefix = f"{label}-{digest}"
        self._storage_object: Any = None
        self._active_study: Any = None  # the study this process is working on

    # ---- pickling: the storage connection stays in its process ------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_storage_object"] = None
        state["_active_study"] = None
        return state

    # ---- names and seeds --------------------------------------------------------------------
    def search_study_name(self, repeat: int) -> str:
        return f"{self.study_prefix}-r{repeat}-search"

    def stage1_seed(self, repeat: int) -> int:
        return self.seed + _SEED_STRIDE * repeat

    def stage2_seeds(self, repeat: int) -> list[int]:
        return [self.seed + _SEED_STRIDE * repeat + 1 + j for j in range(self.n_seeds)]

    def _sampler(self, repeat: int) -> Any:
        """The stage-1 sampler of ``repeat``: TPE (or random), re-seeded for every trial from
        ``(seed, repeat, trial position)`` (:class:`_TrialSeededSampler`). Positions are unique
        among a study's live trials, so workers on any machine never repeat each other's draws,
        and one trial's draw does not depend on which worker (or how many) ran the trials
        before it, nor on how many trials failed."""
        import optuna

        def make(sampler_seed: int) -> Any:
            if self.sampler == "random":
                return optuna.samplers.RandomSampler(seed=sampler_seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # constant_liar is flagged experimental
                return optuna.samplers.TPESampler(
                    seed=sampler_seed, n_startup_trials=self.n_startup_trials, constant_liar=True
                )

        return _TrialSeededSampler(make, [self.seed, repeat])

    @property
    def _storage_handle(self) -> Any:
        if self._storage_object is None:
            assert self.storage is not None
            self._storage_object = _make_storage(
                self.storage, self.heartbeat_interval, self.grace_period
            )
        return self._storage_object

    def _study(self, name: str, sampler: Any = None) -> Any:
        import optuna

        return optuna.create_study(
            study_name=name,
            storage=self._storage_handle,
            sampler=sampler,
            direction="minimize",
            load_if_exists=True,
        )

    def _restore(self, study: Any) -> None:
        """Fill an empty study from its record in the result store, when there is one."""
        if self.record_store is None or study.get_trials(deepcopy=False):
            return
        payload = self.record_store.get_study(study.study_name)
        if payload is not None and isinstance(payload.get("trials"), list):
            _import_trials(study, payload)

    # ---- stage 1 ------------------------------------------------------------------------------
    def _search_objective(self, repeat: int) -> Callable[[Any], float]:
        import optuna

        seed = self.stage1_seed(repeat)

        def run_trial(trial: Any) -> float:
            if self._is_surplus(trial):
                # Workers raced for the last trial(s): this one would exceed n_trials. It stops
                # before sampling, so the sampler never sees it.
                raise optuna.TrialPruned("stage 1 already has n_trials trials")
            with _interrupts_allowed():  # Optuna fails the trial on an interrupt in here
                _claim(trial)
                config = self.objective.sample(trial)
                score = self.objective.evaluate(config, seed)
                trial.set_user_attr("run", _run_attrs(config, seed, score))
            return _finite_or_inf(score.val_loss)

        return run_trial

    def _is_surplus(self, trial: Any) -> bool:
        """Whether ``n_trials`` trials numbered below ``trial`` are complete, running or waiting
        (or waiting with any number: a waiting trial is handed out before a new one is made)."""
        from optuna.trial import TrialState

        alive = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        ahead = sum(
            1
            for other in trial.study.get_trials(deepcopy=False)
            if (other.number < trial.number and other.state in alive)
            or (other.state == TrialState.WAITING)
        )
        return ahead >= self.n_trials

    def _run_search(self, repeat: int, on_trial: Callable[[], None]) -> None:
        from optuna.trial import TrialState

        study = self._study(self.search_study_name(repeat), self._sampler(repeat))
        self._active_study = study
        objective = self._search_objective(repeat)
        while True:
            _fail_stale_trials(study)
            _fail_orphaned_trials(study, self._storage_handle)
            states = [t.state for t in study.get_trials(deepcopy=False)]
            complete = states.count(TrialState.COMPLETE)
            if complete >= self.n_trials:
                return
            waiting = states.count(TrialState.WAITING)
            under_way = states.count(TrialState.RUNNING) + waiting
            if waiting or complete + under_way < self.n_trials:
                with _interrupts_deferred():  # not inside Optuna's ask or tell
                    study.optimize(objective, n_trials=1, catch=(), gc_after_trial=False)
                on_trial()
            else:
                time.sleep(_POLL_S)  # the last trials are running elsewhere

    def run_search(self, repeat: int, on_trial: Callable[[], None] | None = None) -> None:
        """Run (or resume) stage 1 of ``repeat`` only, in this process (after :meth:`prepare`):
        one trial at a time, or in batches when ``batch_trials > 1``."""
        callback = on_trial or (lambda: None)
        if self.batch_trials > 1:
            self._run_search_batched(repeat, callback)
        else:
            self._run_search(repeat, callback)

    def search_trials(self, repeat: int) -> list[Any]:
        """The first ``n_trials`` complete stage-1 trials of ``repeat`` by number (frozen
        Optuna trials; each has its run under ``user_attrs["run"]``)."""
        return self._search_trials(repeat)

    def _search_trials(self, repeat: int) -> list[Any]:
        """The first ``n_trials`` complete stage-1 trials by number (frozen trials)."""
        from optuna.trial import TrialState

        study = self._study(self.search_study_name(repeat))
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return sorted(trials, key=lambda t: t.number)[: self.n_trials]

    # ---- stage 2 ------------------------------------------------------------------------------
    def _jobs(self, repeat: int) -> tuple[list[dict[str, Any]], str]:
        """The stage-2 jobs of a finished stage 1 and the name of their study."""
        trials = self._search_trials(repeat)
        if len(trials) < self.n_trials:
            raise RuntimeError(
                f"stage 1 of repeat {repeat} has {len(trials)} of {self.n_trials} trials"
            )
        ranked = sorted(trials, key=lambda t: (t.value, t.number))
        seen: set[str] = set()
        candidates = []
        for trial in ranked:
            text = canonical_json(trial.user_attrs["run"]["config"])
            if text not in seen:
                seen.add(text)
                candidates.append(trial)
            if len(candidates) == self.top_k:
                break
        jobs = [
            {
                "job": index * self.n_seeds + j,
                "candidate": index,
                "trial_number": trial.number,
                "stage1_val_loss": trial.value,
                "config": trial.user_attrs["run"]["config"],
                "seed": seed,
            }
            for index, trial in enumerate(candidates)
            for j, seed in enumerate(self.stage2_seeds(repeat))
        ]
        digest = hashlib.sha256(
            canonical_json([(job["config"], job["seed"]) for job in jobs]).encode()
        ).hexdigest()[:8]
        return jobs, f"{self.study_prefix}-r{repeat}-confirm-{digest}"

    def _confirm_objective(self, jobs: Sequence[Mapping[str, Any]]) -> Callable[[Any], float]:
        import optuna

        def run_job(trial: Any) -> float:
            with _interrupts_allowed():  # Optuna fails the trial on an interrupt in here
                return run_claimed_job(trial)

        def run_claimed_job(trial: Any) -> float:
            _claim(trial)
            job = trial.user_attrs.get("job")  # set when the trial re-runs a dead worker's job
            if job is None:
                # A new trial's number is handed out atomically by the storage: trial k runs
                # job k, so every job is claimed by exactly one worker, on any machine.
                if trial.number >= len(jobs):
                    raise optuna.TrialPruned("every stage-2 job is taken")
                job = dict(jobs[trial.number])
                trial.set_user_attr("job", job)
            score = self.objective.evaluate(job["config"], job["seed"])
            trial.set_user_attr("run", _run_attrs(job["config"], job["seed"], score))
            return _finite_or_inf(score.val_loss)

        return run_job

    def _run_confirm(self, repeat: int, on_trial: Callable[[], None]) -> None:
        import optuna
        from optuna.trial import TrialState

        jobs, name = self._jobs(repeat)
        study = self._study(name, optuna.samplers.RandomSampler(seed=0))
        self._active_study = study
        objective = self._confirm_objective(jobs)
        while True:
            _fail_stale_trials(study)
            _fail_orphaned_trials(study, self._storage_handle)
            trials = study.get_trials(deepcopy=False)
            if not _missing_jobs(trials, len(jobs), (TrialState.COMPLETE,)):
                return
            states = [t.state for t in trials]
            if TrialState.WAITING in states or len(trials) < len(jobs):
                with _interrupts_deferred():  # not inside Optuna's ask or tell
                    study.optimize(objective, n_trials=1, catch=(), gc_after_trial=False)
                on_trial()
            elif TrialState.RUNNING in states:
                time.sleep(_POLL_S)  # the last jobs are running elsewhere
            else:
                # A job whose trial failed with an error (not a dead worker, which is
                # re-enqueued by the heartbeat) has no live trial left: enqueue it again.
                alive = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
                for index in sorted(_missing_jobs(trials, len(jobs), alive)):
                    study.enqueue_trial({}, user_attrs={"job": dict(jobs[index])})

    def _confirm_runs(self, repeat: int) -> tuple[list[dict[str, Any]], list[Any]]:
        """Stage-2 jobs and, per job, its first complete trial (``None`` if not done)."""
        from optuna.trial import TrialState

        jobs, name = self._jobs(repeat)
        if not _study_exists(self._storage_handle, name):
            return jobs, [None] * len(jobs)
        study = self._study(name)
        done: dict[int, Any] = {}
        for trial in sorted(
            study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
            key=lambda t: t.number,
        ):
            job = trial.user_attrs.get("job")
            if job is not None:
                done.setdefault(job["job"], trial)
        return jobs, [done.get(job["job"]) for job in jobs]

    # ---- batched stages (batch_trials > 1) -----------------------------------------------------
    def _evaluate_batch(
        self,
        study: Any,
        batch: Sequence[tuple[Any, dict[str, Any], int]],
        on_trial: Callable[[], None],
    ) -> None:
        """Evaluate ``(trial, config, seed)`` triples together; each trial is told the moment
        its run finishes. On an error the unfinished trials are failed and re-enqueued."""
        from optuna.trial import TrialState

        told: set[int] = set()

        def finished(index: int, score: RunScore) -> None:
            trial, config, seed = batch[index]
            with _interrupts_deferred():  # a trial is told whole or not at all
                trial.set_user_attr("run", _run_attrs(config, seed, score))
                study.tell(trial, _finite_or_inf(score.val_loss))
                told.add(index)
            on_trial()

        numbers = [trial.number for trial, _, _ in batch]
        with _Heartbeats(self._storage_handle, study.study_name, numbers):
            try:
                with _interrupts_allowed():
                    self.objective.evaluate_many(
                        [config for _, config, _ in batch],
                        [seed for _, _, seed in batch],
                        on_done=finished,
                    )
            except BaseException:
                with _interrupts_deferred():
                    frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
                    for index, (trial, _, _) in enumerate(batch):
                        if index not in told:
                            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                            _requeue_stale_trial(study, frozen[trial.number])
                raise
        if len(told) != len(batch):
            raise RuntimeError(
                f"the objective reported {len(told)} of the {len(batch)} runs of a batch"
            )

    def _run_search_batched(self, repeat: int, on_trial: Callable[[], None]) -> None:
        from optuna.trial import TrialState

        study = self._study(self.search_study_name(repeat), self._sampler(repeat))
        seed = self.stage1_seed(repeat)
        while True:
            _fail_stale_trials(study)
            states = [t.state for t in study.get_trials(deepcopy=False)]
            complete = states.count(TrialState.COMPLETE)
            if complete >= self.n_trials:
                return
            room = self.n_trials - complete - states.count(TrialState.RUNNING)
            if room <= 0:
                time.sleep(_POLL_S)  # the last trials are running elsewhere
                continue
            # a stop signal waits until the asked trials are in the batch, whose evaluation
            # then fails and re-enqueues them
            with _interrupts_deferred():
                batch = []
                for _ in range(min(self.batch_trials, room)):
                    # ask() hands out re-enqueued trials first; each is sampled before the next
                    # is asked, so the constant liar sees it
                    trial = _ask(study)
                    if self._is_surplus(trial):
                        study.tell(trial, state=TrialState.PRUNED)
                        break
                    batch.append((trial, self.objective.sample(trial), seed))
                if batch:
                    self._evaluate_batch(study, batch, on_trial)
            if not batch:
                time.sleep(_POLL_S)

    def _run_confirm_batched(self, repeat: int, on_trial: Callable[[], None]) -> None:
        import optuna
        from optuna.trial import TrialState

        jobs, name = self._jobs(repeat)
        study = self._study(name, optuna.samplers.RandomSampler(seed=0))
        while True:
            _fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            if not _missing_jobs(trials, len(jobs), (TrialState.COMPLETE,)):
                return
            states = [t.state for t in trials]
            if TrialState.WAITING in states or len(trials) < len(jobs):
                with _interrupts_deferred():  # as in stage 1: asked trials reach the batch
                    batch = []
                    while TrialState.WAITING in states or len(trials) < len(jobs):
                        # claim every job still free: trial k runs job k (module docstring)
                        trial = _ask(study)
                        job = trial.user_attrs.get("job")
                        if job is None:
                            if trial.number >= len(jobs):
                                study.tell(trial, state=TrialState.PRUNED)
                                break
                            job = dict(jobs[trial.number])
                            trial.set_user_attr("job", job)
                        batch.append((trial, job["config"], job["seed"]))
                        trials = study.get_trials(deepcopy=False)
                        states = [t.state for t in trials]
                    if batch:
                        self._evaluate_batch(study, batch, on_trial)
            elif TrialState.RUNNING in states:
                time.sleep(_POLL_S)  # the last jobs are running elsewhere
            else:
                alive = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
                for index in sorted(_missing_jobs(trials, len(jobs), alive)):
                    study.enqueue_trial({}, user_attrs={"job": dict(jobs[index])})

    # ---- the whole procedure ------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the stage-1 studies (restoring them from the result store when the storage
        has none). Called by :meth:`run`; call it yourself before starting workers by hand."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        for repeat in range(self.repeats):
            self._restore(self._study(self.search_study_name(repeat)))
            if len(self._search_trials(repeat)) >= self.n_trials:
                self._restore(self._study(self._jobs(repeat)[1]))

    def work(self, on_trial: Callable[[], None] | None = None) -> None:
        """One worker's share: for each repeat, stage 1 then stage 2, until both are complete.

        This is what each worker process runs, here or on another machine (every worker runs
        the same loop; the storage decides who runs what).
        """
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        callback = on_trial or (lambda: None)
        try:
            for repeat in range(self.repeats):
                if self.batch_trials > 1:
                    self._run_search_batched(repeat, callback)
                    self._run_confirm_batched(repeat, callback)
                else:
                    self._run_search(repeat, callback)
                    self._run_confirm(repeat, callback)
        except KeyboardInterrupt:
            if self._active_study is not None:
                _fail_own_trials(self._active_study, self._storage_handle)
            raise

    def start_workers(self, n: int, *, first_index: int = 0) -> list[Any]:
        """Start ``n`` worker processes (``spawn``) running :meth:`work`; returns them started.

        Worker indices ``first_index ... first_index + n - 1`` name the processes.
        """
        if self.storage == "memory":
            raise ValueError("storage 'memory' lives in one process; use a file or a database")
        context = multiprocessing.get_context("spawn")
        processes = []
        with _single_threaded_children():
            for index in range(first_index, first_index + n):
                process = context.Process(
                    target=_worker_entry, args=(self,), name=f"deepstock-tune-{index}"
                )
                process.start()
                processes.append(process)
        return processes

    def run(self, *, workers: int = 1, progress: bool = False) -> TuningResult:
        """Run (or resume) the whole tuning and return its result.

        Args:
            workers: worker processes; 1 runs in this process (deterministic).
            progress: show a progress bar (runs done of all, with a remaining-time estimate).
        """
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        if workers > 1 and self.storage == "memory":
            raise ValueError("storage 'memory' cannot be shared by workers; use a file or URL")
        self._storage_handle  # noqa: B018 (reach the database before any trial starts)
        self.prepare()
        if self.record_store is not None and self.record_store.stored_only:
            # the store's studies and runs only: a tuning that is not complete there is an
            # error naming how many runs it lacks, and nothing trains
            done, _ = self.progress()
            total = 0
            for repeat in range(self.repeats):
                stage1_done = len(self._search_trials(repeat)) >= self.n_trials
                stage2 = len(self._jobs(repeat)[0]) if stage1_done else self.top_k * self.n_seeds
                total += self.n_trials + stage2
            if done < total:
                self.record_store.require_stored(
                    f"tuning {self.objective.label} ({self.study_prefix})", total - done, total
                )
            result = self.result()
            self.verify_records(result)
            return result
        bar = self._progress_bar() if progress else None
        with _sigterm_interrupts():
            try:
                if workers == 1:
                    self.work(on_trial=(lambda: self._update_bar(bar)) if bar else None)
                else:
                    self._supervise(self.start_workers(workers), bar)
            finally:
                if bar is not None:
                    self._update_bar(bar)
                    bar.close()
        result = self.result()
        self.verify_records(result)
        self.save_records()
        return result

    def verify_records(self, result: TuningResult) -> list[str]:
        """Check the stored run records the result relies on and recompute the corrupt ones.

        The trial values come from the study, so a damaged record in the result store would
        otherwise go unseen (and be lost to a fresh checkout, which rebuilds studies from the
        store). Each corrupt run is trained again with its configuration and seed (the store
        replaces the record); a recomputed validation loss that differs from the study's is
        warned about.

        Returns:
            The keys of the records found corrupt.
        """
        store = getattr(self.objective, "store", None)
        if not isinstance(store, ResultStore):
            return []
        runs: dict[str, tuple[str, int, float]] = {}
        for table, configs in ((result.trials, result.trials["config"]), (result.confirm, None)):
            for index, row in table.reset_index(drop=True).iterrows():
                if not row["key"] or row["key"] in runs:
                    continue
                config = configs[index] if configs is not None else self._confirm_config(row)
                runs[row["key"]] = (config, int(row["seed"]), float(row["val_loss"]))
        corrupt = []
        for key, (config, seed, val_loss) in runs.items():
            try:
                store.read(key)
            except CorruptRecordError:
                corrupt.append(key)
                score = self.objective.evaluate(json.loads(config), seed)
                if not math.isclose(_finite_or_inf(score.val_loss), val_loss, rel_tol=1e-9):
                    warnings.warn(
                        f"run {key} was corrupt in the store and was recomputed: validation "
                        f"loss {score.val_loss:.6g}, the study has {val_loss:.6g}",
                        stacklevel=2,
                    )
        return corrupt

    def _confirm_config(self, row: Any) -> str:
        jobs, _ = self._jobs(int(row["repeat"]))
        for job in jobs:
            if job["trial_number"] == row["trial_number"] and job["seed"] == row["seed"]:
                return canonical_json(job["config"])
        raise RuntimeError(f"stage-2 run {row['key']} matches no job")

    def _supervise(self, processes: list[Any], bar: Any) -> None:
        """Wait for the workers, updating the bar; a worker that raised stops them all."""
        try:
            while any(p.is_alive() for p in processes):
                for p in processes:
                    if p.exitcode == _INTERRUPTED_EXIT:
                        raise KeyboardInterrupt(f"tuning worker {p.name} was stopped")
                    if p.exitcode is not None and p.exitcode > 0:
                        raise RuntimeError(
                            f"tuning worker {p.name} failed (exit code {p.exitcode}); "
                            "its traceback is above"
                        )
                if bar is not None:
                    self._update_bar(bar)
                time.sleep(1.0)
            for p in processes:
                if p.exitcode is not None and p.exitcode > 0:
                    raise RuntimeError(f"tuning worker {p.name} failed (exit code {p.exitcode})")
                if p.exitcode is not None and p.exitcode < 0:
                    warnings.warn(
                        f"tuning worker {p.name} was killed (signal {-p.exitcode}); "
                        "run the tuning again to finish it",
                        stacklevel=2,
                    )
        finally:
            # SIGTERM: each worker fails its trial under way and exits; one that does not
            # within the grace period is killed (its trial is re-enqueued on resume)
            for p in processes:
                if p.is_alive():
                    p.terminate()
            deadline = time.monotonic() + _STOP_GRACE_S
            for p in processes:
                p.join(max(0.0, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
                    p.join()

    def _progress_bar(self) -> Any:
        from tqdm.auto import tqdm

        total = self.repeats * (self.n_trials + self.top_k * self.n_seeds)
        done, _ = self.progress()  # a resumed tuning starts where it stopped
        return tqdm(
            total=total,
            initial=min(done, total),
            desc=f"tune {self.objective.label}",
            unit="run",
            leave=True,
        )

    def _update_bar(self, bar: Any) -> None:
        done, best = self.progress()
        if best is not None:
            bar.set_postfix(best_val=f"{best:.4g}", refresh=False)
        # update() (not assigning n) keeps tqdm's rate and remaining-time estimate
        bar.update(max(0, min(done, bar.total) - bar.n))

    def progress(self) -> tuple[int, float | None]:
        """Runs done (stage-1 trials and stage-2 jobs, over every repeat) and the best stage-1
        validation loss so far (of the current repeat)."""
        done, best = 0, None
        for repeat in range(self.repeats):
            trials = self._search_trials(repeat)
            done += len(trials)
            if trials:
                best = min(t.value for t in trials)
            if len(trials) < self.n_trials:
                break
            _, runs = self._confirm_runs(repeat)
            done += sum(run is not None for run in runs)
        return done, best

    # ---- results --------------------------------------------------------------------------------
    def result(self) -> TuningResult:
        """Read the finished tuning from the storage.

        Raises:
            RuntimeError: a stage is not complete (run :meth:`run` again to resume).
        """
        trial_rows, confirm_rows, candidate_rows, winner_rows = [], [], [], []
        names: dict[str, list[str]] = {"search": [], "confirm": []}
        params = list(self.objective.space.params)
        for repeat in range(self.repeats):
            trials = self._search_trials(repeat)
            if len(trials) < self.n_trials:
                raise RuntimeError(
                    f"{self.search_study_name(repeat)}: {len(trials)} of {self.n_trials} "
                    "stage-1 trials are complete; run the tuning again to resume"
                )
            names["search"].append(self.search_study_name(repeat))
            best = math.inf
            for index, trial in enumerate(trials, start=1):
                run = trial.user_attrs["run"]
                best = min(best, trial.value)
                row = {
                    "repeat": repeat,
                    "trial_index": index,
                    "trial_number": trial.number,
                    "seed": run["seed"],
                    "val_loss": trial.value,
                    "test_loss": run["test_loss"],
                    "best_val_so_far": best,
                    "wall_time_s": run["wall_time_s"],
                    "key": run["key"],
                    "config": canonical_json(run["config"]),
                }
                row.update({f"param_{name}": _cell(run["config"].get(name)) for name in params})
                trial_rows.append(row)

            jobs, runs = self._confirm_runs(repeat)
            if any(run is None for run in runs):
                raise RuntimeError(
                    f"stage 2 of repeat {repeat}: {sum(r is None for r in runs)} of "
                    f"{len(runs)} runs are missing; run the tuning again to resume"
                )
            names["confirm"].append(self._jobs(repeat)[1])
            rows = []
            for job, trial in zip(jobs, runs, strict=True):
                run = trial.user_attrs["run"]
                rows.append(
                    {
                        "repeat": repeat,
                        "candidate": job["candidate"],
                        "trial_number": job["trial_number"],
                        "seed": job["seed"],
                        "val_loss": trial.value,
                        "test_loss": run["test_loss"],
                        "wall_time_s": run["wall_time_s"],
                        "key": run["key"],
                    }
                )
            confirm_rows += rows
            table = select_winner(pd.DataFrame(rows))
            first_job = {job["candidate"]: job for job in jobs}
            for entry in table.to_dict("records"):
                job = first_job[entry["candidate"]]
                entry.update(
                    repeat=repeat,
                    trial_number=job["trial_number"],
                    stage1_val_loss=job["stage1_val_loss"],
                    config=canonical_json(job["config"]),
                )
                candidate_rows.append(entry)
                if entry["winner"]:
                    winner_rows.append(
                        {
                            "repeat": repeat,
                            "candidate": entry["candidate"],
                            "trial_number": entry["trial_number"],
                            "val_loss": entry["median_val_loss"],
                            "test_loss": entry["median_test_loss"],
                            "test_loss_at_median_val": entry["test_loss_at_median_val"],
                            "mean_val_loss": entry["mean_val_loss"],
                            "mean_test_loss": entry["mean_test_loss"],
                            "config": entry["config"],
                        }
                    )
        candidates = pd.DataFrame(candidate_rows)
        first = ["repeat", "candidate", "trial_number", "stage1_val_loss"]
        candidates = candidates[first + [c for c in candidates.columns if c not in first]]
        return TuningResult(
            label=self.objective.label,
            plan={
                "n_trials": self.n_trials,
                "top_k": self.top_k,
                "n_seeds": self.n_seeds,
                "repeats": self.repeats,
                "seed": self.seed,
                "n_startup_trials": self.n_startup_trials,
                "sampler": self.sampler,
                "studies": names,
            },
            trials=pd.DataFrame(trial_rows),
            confirm=pd.DataFrame(confirm_rows),
            candidates=candidates,
            winners=pd.DataFrame(winner_rows),
        )

    def save_records(self) -> None:
        """Write the finished trials of every study of this tuning to the result store."""
        if self.record_store is None:
            return
        for repeat in range(self.repeats):
            search = self._study(self.search_study_name(repeat))
            self._put_study_if_changed(search.study_name, _export_trials(search))
            _, name = self._jobs(repeat)
            if _study_exists(self._storage_handle, name):
                confirm = self._study(name)
                self._put_study_if_changed(name, _export_trials(confirm))

    def _put_study_if_changed(self, name: str, payload: dict[str, Any]) -> None:
        # A study rebuilt from the store numbers its trials afresh; rewriting an unchanged
        # record would only renumber them (and dirty a checkout of the committed results).
        existing = self.record_store.get_study(name)
        if existing is None or _trial_contents(existing) != _trial_contents(payload):
            self.record_store.put_study(name, payload)


def _ask(study: Any) -> Any:
    """``study.ask()``; Optuna warns that heartbeats are meant for ``optimize``, but the batched
    stages record them themselves (:class:`_Heartbeats`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask()


class _Heartbeats:
    """Record the heartbeats of trials evaluated outside ``study.optimize`` (ask and tell),
    every heartbeat interval from a background thread, so that a killed process's trials go
    stale and are failed and re-enqueued like those of a killed one-at-a-time worker. A storage
    without heartbeats (in memory) needs none."""

    def __init__(self, storage: Any, study_name: str, numbers: Sequence[int]) -> None:
        self._storage = storage
        self._interval = None
        self._ids: list[int] = []
        if hasattr(storage, "record_heartbeat") and storage.get_heartbeat_interval():
            self._interval = float(storage.get_heartbeat_interval())
            study_id = storage.get_study_id_from_name(study_name)
            self._ids = [
                storage.get_trial_id_from_study_id_trial_number(study_id, number)
                for number in numbers
            ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while True:
            for trial_id in self._ids:
                self._storage.record_heartbeat(trial_id)
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> _Heartbeats:
        if self._interval is not None:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _missing_jobs(trials: Sequence[Any], n_jobs: int, states: tuple[Any, ...]) -> set[int]:
    """Indices of the stage-2 jobs that no trial in one of ``states`` covers."""
    covered = {
        t.user_attrs["job"]["job"] for t in trials if t.state in states and "job" in t.user_attrs
    }
    return set(range(n_jobs)) - covered


def _run_attrs(config: Mapping[str, Any], seed: int, score: RunScore) -> dict[str, Any]:
    return {
        "config": json.loads(canonical_json(config)),
        "seed": int(seed),
        "val_loss": _finite_or_inf(score.val_loss),
        "test_loss": _finite_or_inf(score.test_loss),
        "wall_time_s": float(score.wall_time_s),
        "key": score.key,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


def _cell(value: Any) -> Any:
    """A DataFrame cell for a configuration value (lists and dicts as JSON text)."""
    return canonical_json(value) if isinstance(value, (list, dict)) else value


# ====================================================================== one paper experiment
def _check_setting_options(
    setting: str, n_skus: int | None, horizon_periods: int | None
) -> dict[str, int]:
    setting_family(setting)  # unknown setting -> clear error
    options = {"n_skus": n_skus, "horizon_periods": horizon_periods}
    if setting != "setting4":
        given = [name for name, value in options.items() if value is not None]
        if given:
            raise ValueError(f"{given} apply to setting4 only, not {setting}")
        return {}
    for name, value in options.items():
        if value is None:
            raise ValueError(f"setting4 needs {name} (N SKUs and H review periods)")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
            raise ValueError(f"setting4 {name} must be an integer in [1, 10000], got {value!r}")
    return {name: int(value) for name, value in options.items() if value is not None}


def tune_setting(
    setting: str,
    method: str,
    regularization: str,
    *,
    profile: str | Profile = "quick",
    store: ResultStore | None = None,
    storage: str | None = None,
    workers: int = 1,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = False,
    dataset: InventoryDataset | None = None,
    n_skus: int | None = None,
    horizon_periods: int | None = None,
    train_fn: Callable[..., Any] | None = None,
    engine: str = "sb3",
    batch_trials: int | None = None,
    max_members: int | None = None,
    **profile_overrides: Any,
) -> TuningResult:
    """Tune ``method`` with ``regularization`` on a synthetic setting, the paper's way.

    Args:
        setting: ``"setting1"`` ... ``"setting4"``, or ``"proxy"`` (the Tmall-like proxy).
        method: ``"ds"``, ``"ddpg"`` or ``"ppo"``.
        regularization: a registered regularization (``"none"``, ``"base"``, ``"coeff"``,
            ``"both"`` or a plug-in).
        profile: the budget (``"smoke"``, ``"quick"``, ``"paper"`` or a
            :class:`~deepstock.tuning.profiles.Profile`); ``profile_overrides`` replace its fields
            (``n_trials=8``...).
        store: the result store (default: ``data/results/<profile name>`` of the checkout,
            :meth:`~deepstock.results.store.ResultStore.for_profile`).
        storage: Optuna storage (default: an SQLite file under ``data/optuna/``).
        workers: local worker processes.
        device: torch device of every run.
        seed: base seed of samplers and runs.
        progress: show a progress bar.
        dataset: the trajectories (default: :func:`deepstock.datasets.load_setting`, or
            the committed proxy for ``"proxy"``).
        n_skus, horizon_periods: ``N`` and ``H`` of setting 4 (required there only).
        train_fn: training function (tests).
        engine: ``"sb3"`` (each run on its method's single-run path) or ``"population"``
            (batches of runs trained as one population; their runs have their own store keys
            and the tuning its own studies).
        batch_trials: ``q``, stage-1 trials per batch (:class:`Tuner`); default 1 on the
            ``"sb3"`` engine and :data:`POPULATION_BATCH_TRIALS` on the population engine.
        max_members: the population engine's most members per computation (default: from the
            device).

    Every argument is checked before anything runs.
    """
    options = _check_setting_options(setting, n_skus, horizon_periods)
    search_space(method, regularization, setting)  # method/regularization/setting checks
    resolved = resolve_profile(profile, **profile_overrides)
    if dataset is None:
        dataset = load_setting(setting, **options)
    objective = TrainingObjective(
        method=method,
        regularization=regularization,
        dataset=dataset,
        setting=setting,
        store=store if store is not None else ResultStore.for_profile(resolved.name),
        device=device,
        overrides=resolved.training_overrides(method),
        train_fn=train_fn,
        engine=engine,
        max_members=max_members,
    )
    if batch_trials is None:
        batch_trials = POPULATION_BATCH_TRIALS if engine == "population" else 1
    tuner = Tuner(
        objective,
        n_trials=resolved.n_trials,
        top_k=resolved.top_k,
        n_seeds=resolved.n_seeds,
        repeats=resolved.repeats,
        n_startup_trials=resolved.n_startup_trials,
        seed=seed,
        storage=storage,
        batch_trials=batch_trials,
    )
    result = tuner.run(workers=workers, progress=progress)
    result.plan["profile"] = resolved.to_dict()
    return result

"""The ``deepstock`` command line.

Each subcommand lives in one ``_add_<command>(subparsers)`` function that builds its parser and
sets ``handler`` to the function that runs it; :func:`main` parses and dispatches. To add a
command, write ``_add_<command>`` and ``_run_<command>`` and list ``_add_<command>`` in
:data:`_COMMANDS`. A handler returns the exit status; bad input goes through
``parser.error`` (message on stderr, exit status 2, as argparse does for syntax errors).

Commands:
    generate: draw a dataset of settings 1-4 and write it to a folder (the book's *The inventory model* and *Settings 1-3* chapters).
    benchmark: losses of the optimal benchmark policies of a setting (the book's *Settings 1-3* chapter).
    bench: performance figures (simulator throughput, DP time).
    train: train one (method, regularization) policy and print its losses.
    tune: two-stage hyperparameter tuning of one (method, regularization) on a setting.
    run: one of the experiments (settings, figure2, figure3, setting4, tuned, proxy,
        proxy_full_length; beyond the paper, coordination); ``run settings --data`` compares
        every pair on a user's dataset.
    evaluate: score a saved policy file on a split of any dataset.
    order: a saved policy's recommended order per SKU for today's state.
    dashboard: open Optuna's dashboard on a tuning's storage.
    store verify [--repair]: check every record of a result store (and quarantine the corrupt).

``--data PATH`` (a dataset folder or a ``.csv`` file, format in ``data/README.md``) replaces
``--setting`` in train, tune, run settings, benchmark and evaluate.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from deepstock.datasets.catalog import ALL_SETTINGS, default_datasets_dir
from deepstock.datasets.io import DATA_FILE, META_FILE, save_dataset
from deepstock.datasets.synthetic import SETTINGS, STREAMS, dataset_name, make_setting

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


class _LazyNames(Sequence):
    """The names of a registry (methods, regularizations, profiles, experiments), read when
    argparse first checks a value or prints the help: building the parser, and every argument
    error before such a value, imports no torch (seconds on a loaded machine)."""

    def __init__(self, *sources: tuple[str, str]) -> None:
        self._sources = sources  # (module, attribute) of each registry, in listing order
        self._names: tuple[str, ...] | None = None

    def _get(self) -> tuple[str, ...]:
        if self._names is None:
            import importlib

            names: list[str] = []
            for module, attribute in self._sources:
                names += sorted(getattr(importlib.import_module(module), attribute))
            self._names = tuple(names)
        return self._names

    def __contains__(self, value: object) -> bool:
        return value in self._get()

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, index: Any) -> Any:
        return self._get()[index]


_METHOD_NAMES = _LazyNames(("deepstock.methods.train", "METHODS"))
_REGULARIZATION_NAMES = _LazyNames(("deepstock.model.regularizations", "REGULARIZATIONS"))
_PROFILE_NAMES = _LazyNames(("deepstock.tuning.profiles", "PROFILES"))
_EXPERIMENT_NAMES = _LazyNames(
    ("deepstock.paper.experiments", "EXPERIMENTS"), ("deepstock.beyond", "BEYOND_EXPERIMENTS")
)


#: The device every command uses unless told otherwise.
DEFAULT_DEVICE = "auto"


def _add_device_option(parser: argparse.ArgumentParser, what: str = "every run") -> None:
    """``--device`` with the same default and help in every command."""
    parser.add_argument(
        "--device",
        default=DEFAULT_DEVICE,
        help=f"torch device of {what}: auto (CUDA when available, else CPU), cpu or cuda[:N] "
        f"(default: {DEFAULT_DEVICE})",
    )


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="torch CPU threads of this process (default: 1; the paper's networks are small, and "
        "more threads mostly add synchronization: two made DDPG several times slower here)",
    )


def _set_threads(threads: int) -> None:
    import torch  # lazily: the parser and its errors do not wait for torch

    torch.set_num_threads(threads)


def _show_progress(args: argparse.Namespace) -> bool:
    """A progress bar only on a terminal: in a log file each refresh would be one more line."""
    return not args.no_progress and not args.json and sys.stderr.isatty()


def _add_stream_options(parser: argparse.ArgumentParser, *, seed_flag: str = "--seed") -> None:
    """The dataset options every command shares: --stream, the stream's seed (``seed_flag``)
    and setting4's --n and --horizon."""
    parser.add_argument(
        "--stream",
        choices=STREAMS,
        default="authors",
        help="random stream of the dataset: the authors' draws or fresh ones (default: authors)",
    )
    parser.add_argument(
        seed_flag,
        type=_non_negative_int,
        default=None,
        help="seed of the dataset's stream (default: 42, the authors'; the proxy: 0)",
    )
    parser.add_argument(
        "--n", type=_positive_int, help="setting4: number of SKUs N (the paper: 5, 10, 20)"
    )
    parser.add_argument(
        "--horizon",
        type=_positive_int,
        help="setting4: horizon H in review periods, T = (P + L) + P*H days "
        "(the paper: 2, 8, 16, 32, 64)",
    )


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    """--data PATH and the options of a CSV dataset (they override the YAML beside it)."""
    parser.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help="a user's dataset instead of a setting: a dataset folder (trajectories.csv + "
        "meta.json) or one .csv table with a split column (format in data/README.md)",
    )
    group = parser.add_argument_group(
        "CSV dataset options", "override the YAML file beside the .csv (FILE.yaml)"
    )
    group.add_argument("--max-replenish", type=_finite_float, help="order cap, units")
    group.add_argument("--holding-cost", type=_finite_float, help="h per unit on hand per day")
    group.add_argument(
        "--backlog-cost", type=_finite_float, help="b per unit backlogged or lost per day"
    )
    group.add_argument(
        "--lost-sales",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="lost sales (--lost-sales) or backlog (--no-lost-sales); default: the YAML's, "
        "else backlog",
    )
    group.add_argument(
        "--feature",
        dest="features",
        action="append",
        metavar="COLUMN",
        help="a feature column of the .csv (repeatable, in order)",
    )
    group.add_argument(
        "--coeff-feature",
        dest="coeff_features",
        action="append",
        metavar="COLUMN",
        help="a demand-rate feature (units/day) for the Coeff and Both regularizations "
        "(repeatable)",
    )


#: The CSV options that are problem constants: without --data, `run settings` and
#: `run setting4` apply them to the paper's datasets (InventoryDataset.with_model).
_MODEL_FLAGS = ("max_replenish", "holding_cost", "backlog_cost", "lost_sales")

_CSV_FLAGS = {
    "max_replenish": "--max-replenish",
    "holding_cost": "--holding-cost",
    "backlog_cost": "--backlog-cost",
    "lost_sales": "--lost-sales",
    "features": "--feature",
    "coeff_features": "--coeff-feature",
}


def _user_dataset(
    args: argparse.Namespace, parser: argparse.ArgumentParser, require_splits: Any = None
) -> Any:
    """The dataset of --data (with the CSV options); a bad file fails through the parser."""
    from deepstock.datasets.io import load_data
    from deepstock.model.dataset import SPLITS

    options = {key: getattr(args, key, None) for key in _CSV_FLAGS}
    try:
        return load_data(
            args.data,
            require_splits=SPLITS if require_splits is None else require_splits,
            **options,
        )
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))


def _check_no_csv_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    given = [flag for key, flag in _CSV_FLAGS.items() if getattr(args, key, None) is not None]
    if given and getattr(args, "data", None) is None:
        verb = "applies" if len(given) == 1 else "apply"
        parser.error(f"{', '.join(given)} {verb} to --data FILE.csv only")


# ---- generate --------------------------------------------------------------------------------

# Options of `generate` -> the generator argument they set, and the settings they apply to.
_GENERATE_OPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "n": ("n_skus", ("setting4",)),
    "horizon": ("horizon_periods", ("setting4",)),
    "test_repeats": ("test_repeats", ("setting4",)),
    "days": ("horizon", ("setting1", "setting2", "setting3")),
    "train_size": ("train_size", ("setting1", "setting2", "setting3")),
    "val_size": ("val_size", ("setting1", "setting2", "setting3")),
    "test_size": ("test_size", ("setting1", "setting2", "setting3")),
    "lead_time": ("lead_time", SETTINGS),
    "review_period": ("review_period", SETTINGS),
}


def _add_generate(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="draw the dataset of a synthetic setting and write it to a folder",
        description=(
            "Draw the dataset of setting1 (INDEP), setting2 / setting3 (AR(1), 10 or 5 "
            "training trajectories) or setting4 (IID, needs --n and --horizon) and write it as "
            f"{DATA_FILE} and {META_FILE} (format in data/README.md). The authors' stream "
            "reproduces the paper's trajectories draw for draw; the fresh stream draws new "
            "ones from the same distributions."
        ),
    )
    parser.add_argument("setting", choices=SETTINGS, help="which setting to draw")
    _add_stream_options(parser)
    parser.add_argument(
        "--test-repeats",
        type=_positive_int,
        help="setting4: test trajectories per SKU (default: 100)",
    )
    parser.add_argument(
        "--days", type=_positive_int, help="settings 1-3: days T per trajectory (default: 31)"
    )
    parser.add_argument(
        "--train-size", type=_positive_int, help="settings 1-3: training trajectories"
    )
    parser.add_argument("--val-size", type=_positive_int, help="settings 1-3: validation ones")
    parser.add_argument(
        "--test-size", type=_positive_int, help="settings 1-3: test trajectories (default: 100)"
    )
    parser.add_argument(
        "--lead-time", type=_non_negative_int, help="lead time L >= 0 in days (default: 1)"
    )
    parser.add_argument(
        "--review-period",
        type=_positive_int,
        help="review period P >= 1 in days (default: 2)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder to write (default: data/datasets/<name>, where <name> is the setting for "
        "the authors' default and describes the options otherwise)",
    )
    parser.set_defaults(handler=_run_generate, command_parser=parser)


def _run_generate(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.command_parser
    overrides: dict[str, Any] = {}
    for option, (argument, settings) in _GENERATE_OPTIONS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if args.setting not in settings:
            flag = "--" + option.replace("_", "-")
            parser.error(f"{flag} applies to {', '.join(settings)}, not {args.setting}")
        overrides[argument] = value
    if args.setting == "setting4" and (args.n is None or args.horizon is None):
        parser.error("setting4 needs --n (number of SKUs) and --horizon (review periods H)")

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file; give a folder (new or holding a dataset)")
    try:
        seed = 42 if args.seed is None else args.seed
        dataset = make_setting(args.setting, stream=args.stream, seed=seed, **overrides)
    except ValueError as error:
        parser.error(str(error))
    if args.out is not None:
        folder = args.out
    else:
        root = default_datasets_dir() or Path("data") / "datasets"
        folder = root / dataset_name(args.setting, stream=args.stream, seed=seed, **overrides)
    try:
        save_dataset(dataset, folder)
    except OSError as error:  # a read-only folder, a file where a folder should be, a full disk
        parser.error(f"cannot write the dataset to {folder}: {error.strerror or error}")
    sizes = ", ".join(f"{count} {split}" for split, count in dataset.split_sizes().items())
    print(
        f"wrote {folder}/{DATA_FILE} and {META_FILE}: dataset {dataset.name!r}, "
        f"{dataset.n_trajectories} trajectories ({sizes}) x {dataset.horizon} days"
    )
    return 0


# ---- benchmark -------------------------------------------------------------------------------


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _add_benchmark(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="losses of the optimal benchmark policies of a setting",
        description=(
            "Simulate the benchmark policies of a synthetic setting (the book's *Settings 1-3* chapter) on its "
            "training, validation and test trajectories and print their losses. setting1: the "
            "exact DP base-stock policy with the true demand distributions (dp_true) and with "
            "the training trajectories' empirical frequencies (dp_empirical, the authors' "
            "benchmark); setting4: the critical-fractile base stock (needs --n and --horizon). "
            "setting2 / setting3 (AR(1)) have no closed-form benchmark: it is DS trained on the "
            "test trajectories, computed by the experiments (deepstock run)."
        ),
    )
    parser.add_argument(
        "setting", nargs="?", choices=SETTINGS, help="which setting (or --data PATH)"
    )
    _add_stream_options(parser)
    _add_data_options(parser)
    parser.add_argument(
        "--z",
        type=_finite_float,
        help="setting4: normal quantile of the critical fractile (default: the exact quantile "
        "of b/(b+h), 1.28155; the authors used 1.282)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list with one object per benchmark policy instead of a table",
    )
    parser.set_defaults(handler=_run_benchmark, command_parser=parser)


def _run_benchmark(args: argparse.Namespace) -> int:
    from deepstock.datasets.catalog import load_setting
    from deepstock.model.optimal import benchmark_losses

    parser: argparse.ArgumentParser = args.command_parser
    _check_no_csv_options(args, parser)
    if (args.setting is None) == (args.data is None):
        parser.error("give a setting or --data PATH (one of them)")
    overrides: dict[str, Any] = {}
    if args.setting == "setting4":
        if args.n is None or args.horizon is None:
            parser.error("setting4 needs --n (number of SKUs) and --horizon (review periods H)")
        overrides = {"n_skus": args.n, "horizon_periods": args.horizon}
    else:
        for flag, value in (("--n", args.n), ("--horizon", args.horizon), ("--z", args.z)):
            if value is not None:
                parser.error(f"{flag} applies to setting4, not {args.setting or args.data}")
    try:
        if args.data is not None:
            dataset = _user_dataset(args, parser)
        else:
            dataset = load_setting(args.setting, stream=args.stream, seed=args.seed, **overrides)
        results = benchmark_losses(dataset, z=args.z)
    except ValueError as error:
        parser.error(str(error))

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if not results:
        print(
            f"{dataset.name}: no closed-form benchmark for the AR(1) settings; the benchmark is "
            "DS trained on the test trajectories, computed by the experiments (deepstock run)."
        )
        return 0
    print(f"benchmark losses on {dataset.name} (mean per-day loss per trajectory)")
    print(f"{'policy':<20}{'train':>10}{'val':>10}{'test':>10}  notes")
    for row in results:
        notes = []
        if "expected_loss" in row:
            notes.append(f"DP expected loss {row['expected_loss']:.4f}")
        if "z" in row:
            notes.append(f"z = {row['z']:.5f}")
        if "factor" in row:
            if row["rate_feature"] is None:
                rate = f"{row['rate']:.4g} units/day, the training mean"
            else:
                rate = f"feature {dataset.feature_names[row['rate_feature']]!r}"
            notes.append(
                f"heuristic fitted on val: level = {row['factor']:g} x (L + P) x rate ({rate})"
            )
        print(
            f"{row['policy']:<20}{row['train_loss']:>10.4f}{row['val_loss']:>10.4f}"
            f"{row['test_loss']:>10.4f}  {'; '.join(notes)}"
        )
    return 0


# ---- bench ------------------------------------------------------------------------------------


def _add_bench(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure the simulator's throughput and the setting-1 DP's time (or, with "
        "--population, the population engine's)",
        description=(
            "Measure the batched simulator in its no-grad and differentiable modes "
            "(trajectory-days per second, setting-1-like demand) and the wall time of the exact "
            "setting-1 DP. Figures depend on the machine and its load: they are reported, "
            "not checked."
        ),
    )
    parser.add_argument(
        "--batches",
        type=_positive_int,
        nargs="+",
        default=[1, 10_000],
        help="batch sizes (trajectories per rollout) to measure (default: 1 10000)",
    )
    _add_device_option(parser, "the measurements")
    parser.add_argument(
        "--min-seconds",
        type=_positive_float,
        default=1.0,
        help="measure each case this long, seconds > 0 (default: 1)",
    )
    parser.add_argument(
        "--population",
        action="store_true",
        help=(
            "measure the population engine instead: per method, the single run's throughput "
            "and the population's agent-steps/s at each --members size, and the speedup"
        ),
    )
    parser.add_argument(
        "--members",
        type=_positive_int,
        nargs="+",
        default=[1, 5, 10, 25, 50],
        help="--population: population sizes K (default: 1 5 10 25 50)",
    )
    parser.add_argument(
        "--methods", nargs="+", help="--population: methods (default: every population trainer)"
    )
    parser.add_argument(
        "--length",
        type=_positive_int,
        help="--population: length of each run (DS epochs, DDPG/PPO env steps)",
    )
    parser.add_argument(
        "--stage1",
        action="store_true",
        help="--population: also time a whole DS Base stage 1 of setting 1 (50 trials, paper)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_run_bench)


def _run_population_bench(args: argparse.Namespace) -> int:
    from deepstock.tools.perf import population_throughput, tuning_stage1_timing

    try:
        report = population_throughput(
            args.methods, sizes=args.members, device=args.device, length=args.length
        )
        if args.stage1:
            report["stage1"] = tuning_stage1_timing(device=args.device)
    except ValueError as error:
        print(f"deepstock bench: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for method, row in report["methods"].items():
        print(f"{method}: single run {row['single_per_s']:,.1f} {row['unit']}/s")
        for entry in row["population"]:
            print(
                f"  K = {entry['members']:>4}  {entry['agent_per_s']:>10,.1f} member-"
                f"{row['unit']}/s  ({entry['agent_per_s'] / row['single_per_s']:.1f}x)"
            )
        print(f"  speedup {row['speedup']:.1f}x")
    if "stage1" in report:
        stage = report["stage1"]
        print(
            f"stage 1 ({stage['method']} {stage['regularization']}, {stage['setting']}, "
            f"{stage['n_trials']} trials in batches of {stage['batch_trials']}): "
            f"{stage['seconds']:.0f} s, best val {stage['best_val_loss']:.4f}"
        )
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from deepstock.tools.perf import dp_timing, simulator_throughput

    if args.population:
        return _run_population_bench(args)
    try:
        simulator = [
            simulator_throughput(
                batch,
                differentiable=differentiable,
                device=args.device,
                min_seconds=args.min_seconds,
            )
            for differentiable in (False, True)
            for batch in args.batches
        ]
    except ValueError as error:
        print(f"deepstock bench: error: {error}", file=sys.stderr)
        return 2
    report = {"simulator": simulator, "dp": dp_timing()}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for row in simulator:
        print(
            f"simulator {row['mode']:>24}  batch {row['batch']:>6}  "
            f"{row['trajectory_days_per_s']:>14,.0f} trajectory-days/s"
        )
    for name, seconds in report["dp"].items():
        print(f"{name:<34} {1e3 * seconds:.2f} ms")
    return 0


# ---- train ------------------------------------------------------------------------------------


def _key_value(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"cannot parse the value of {key!r}: {error}") from None


def _add_setting_options(parser: argparse.ArgumentParser) -> None:
    """--setting or --data, --stream, --seed of the data and setting4's --n and --horizon."""
    parser.add_argument(
        "--setting",
        choices=ALL_SETTINGS,
        help="which setting, or 'proxy' (the Tmall-like proxy of the book's comparison); "
        "or --data PATH",
    )
    # --seed is the training seed in these commands; the data's seed is --data-seed
    _add_stream_options(parser, seed_flag="--data-seed")
    _add_data_options(parser)


def _setting_dataset(
    args: argparse.Namespace, parser: argparse.ArgumentParser, require_splits: Any = None
) -> Any:
    from deepstock.datasets.catalog import load_setting

    _check_no_csv_options(args, parser)
    if (args.setting is None) == (args.data is None):
        parser.error("give --setting NAME or --data PATH (one of them)")
    if args.data is not None:
        for flag, value in (("--n", args.n), ("--horizon", args.horizon)):
            if value is not None:
                parser.error(f"{flag} applies to setting4, not --data")
        return _user_dataset(args, parser, require_splits)
    overrides: dict[str, Any] = {}
    if args.setting == "setting4":
        if args.n is None or args.horizon is None:
            parser.error("setting4 needs --n (number of SKUs) and --horizon (review periods H)")
        overrides = {"n_skus": args.n, "horizon_periods": args.horizon}
    elif args.n is not None or args.horizon is not None:
        parser.error(f"--n and --horizon apply to setting4, not {args.setting}")
    try:
        return load_setting(args.setting, stream=args.stream, seed=args.data_seed, **overrides)
    except ValueError as error:
        parser.error(str(error))


def _loss_name(dataset: Any) -> str:
    """What a dataset's loss is called in printed lines: ``loss``, or ``J`` on the proxy."""
    return "J" if dataset.objective == "tmall" else "loss"


def _benchmarks(dataset: Any) -> list[dict[str, Any]]:
    """The dataset's benchmark policies (:func:`deepstock.model.optimal.benchmark_losses`;
    a user's dataset: the cover base stock fitted on validation)."""
    from deepstock.model.optimal import benchmark_losses

    return benchmark_losses(dataset)


def _add_train(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one policy (method x regularization) and print its losses",
        description=(
            "Train one policy with DDPG, PPO, DS or DQN (not in the paper; None and Base only) "
            "and a regularization on the training "
            "trajectories of a setting or of a user's dataset (--data), keep the best validation "
            "policy and print its validation and test losses (and the gap to the setting's "
            "benchmark where it has a closed form; on --data, to the cover base stock fitted on "
            "validation). --save writes the policy file, --tensorboard the curves. The "
            "configuration starts from the paper's tuned setting-1 configuration of the pair; "
            "--config FILE (YAML) and --set KEY=VALUE override it."
        ),
    )
    _add_setting_options(parser)
    parser.add_argument(
        "--method",
        choices=_METHOD_NAMES,
        metavar="METHOD",
        required=True,
        help="DRL method: %(choices)s",
    )
    parser.add_argument(
        "--reg",
        choices=_REGULARIZATION_NAMES,
        metavar="REG",
        required=True,
        help="regularization: %(choices)s",
    )
    parser.add_argument("--config", type=Path, help="YAML file of configuration overrides")
    parser.add_argument(
        "--set",
        dest="overrides",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one configuration key (repeatable), e.g. --set total_steps=20000",
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="training seed")
    _add_device_option(parser, "the run")
    _add_threads_option(parser)
    _add_engine_option(parser)
    parser.add_argument(
        "--save",
        type=Path,
        metavar="PATH",
        help="write the best policy to this policy file (.safetensors): weights, "
        "regularization, input normalization, configuration, dataset fingerprint, code version",
    )
    parser.add_argument(
        "--tensorboard",
        type=Path,
        metavar="DIR",
        help="write training and validation curves to DIR in TensorBoard's format "
        "(needs the tensorboard package); view them with: tensorboard --logdir DIR",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=_run_train, command_parser=parser)


def _add_engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=("sb3", "population"),
        default="sb3",
        help=(
            "sb3: each method's single-run path (Stable-Baselines3 for DDPG/PPO, DS's own); "
            "population: the population engine, many runs as one batched computation "
            "(default: sb3)"
        ),
    )


def _run_train(args: argparse.Namespace) -> int:
    from deepstock.methods.train import load_config_file, train
    from deepstock.model.optimal import gap_pct

    parser: argparse.ArgumentParser = args.command_parser
    _set_threads(args.threads)
    dataset = _setting_dataset(args, parser)
    try:
        config = load_config_file(args.config) if args.config is not None else {}
        config.update(dict(args.overrides))
        result = train(
            args.method,
            args.reg,
            dataset,
            config,
            seed=args.seed,
            device=args.device,
            progress=_show_progress(args),
            engine=args.engine,
            tensorboard=args.tensorboard,
        )
    except (ValueError, ImportError) as error:
        parser.error(str(error))
    if args.save is not None:
        from deepstock.results.policies import save_policy

        try:
            save_policy(result, args.save, dataset)
        except ValueError as error:
            parser.error(str(error))
    benchmarks = _benchmarks(dataset)
    reference = benchmarks[0] if benchmarks else None
    summary = result.summary()
    if reference is not None:
        summary["benchmark"] = {
            "policy": reference["policy"],
            "val_loss": reference["val_loss"],
            "test_loss": reference["test_loss"],
            "val_gap_pct": gap_pct(result.val_loss, reference["val_loss"]),
            "test_gap_pct": gap_pct(result.test_loss, reference["test_loss"]),
        }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"{args.method} / {args.reg} on {dataset.name}, seed {args.seed}, "
        f"device {result.device}: {result.wall_time_s:.1f} s"
    )
    if args.save is not None:
        print(f"  policy saved to {args.save}")
    for split in ("train", "val", "test"):
        metrics = {"train": result.train_metrics, "val": result.val_metrics}.get(
            split, result.test_metrics
        )
        line = f"  {split:<5} {_loss_name(dataset)} {metrics['loss']:.4f}"
        if reference is not None and split != "train":
            gap = summary["benchmark"][f"{split}_gap_pct"]
            line += f"  gap {gap:+.2f}% vs {reference['policy']} ({reference[f'{split}_loss']:.4f})"
        print(line)
    return 0


# ---- tune -------------------------------------------------------------------------------------


def _add_tune(subparsers: Any) -> None:

    parser = subparsers.add_parser(
        "tune",
        help="tune one (method, regularization) on a setting, the paper's two-stage way",
        description=(
            "Stage 1: TPE proposes configurations from the paper's search space, each trained "
            "once and scored by its validation loss. Stage 2: the best ones are re-trained with "
            "several seeds; the winner has the best median validation loss. Repeated and "
            "averaged. The budget comes from --profile (smoke, quick, paper) and the options "
            "below. Every finished run is stored under --results; a second run (or a run "
            "resumed after an interruption) computes only what is missing. Workers on several "
            "machines share one tuning through a database --storage URL."
        ),
    )
    _add_setting_options(parser)
    parser.add_argument(
        "--method",
        choices=_METHOD_NAMES,
        metavar="METHOD",
        required=True,
        help="DRL method: %(choices)s",
    )
    parser.add_argument(
        "--reg",
        choices=_REGULARIZATION_NAMES,
        metavar="REG",
        required=True,
        help="regularization (coeff and both need the proxy's demand features)",
    )
    parser.add_argument(
        "--profile",
        choices=_PROFILE_NAMES,
        metavar="PROFILE",
        default="quick",
        help="budget: %(choices)s (default: quick)",
    )
    parser.add_argument("--trials", type=_positive_int, help="stage-1 trials (profile's)")
    parser.add_argument("--top-k", type=_positive_int, help="configurations re-run in stage 2")
    parser.add_argument("--seeds", type=_positive_int, help="seeds per stage-2 configuration")
    parser.add_argument("--repeats", type=_positive_int, help="repeats of the whole procedure")
    parser.add_argument(
        "--set",
        dest="overrides",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix one configuration key of every run (repeatable), e.g. --set total_steps=5000",
    )
    parser.add_argument(
        "--storage",
        help=(
            "Optuna storage: a database URL (sqlite:///file.db, postgresql://user@host:port/db) "
            "shared by every worker, or 'memory'; default: an SQLite file under data/optuna/"
        ),
    )
    parser.add_argument(
        "--space",
        choices=(*SETTINGS, "proxy"),
        help="with --data: whose search spaces to borrow (default: proxy, which assumes no "
        "order cap; settings 1-3 assume the paper's cap of 100 units)",
    )
    parser.add_argument(
        "--workers", type=_positive_int, default=1, help="local worker processes (default: 1)"
    )
    parser.add_argument(
        "--results", type=Path, help="result store folder (default: data/results/PROFILE)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="reuse stored runs only if made by the same code"
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="base seed")
    _add_device_option(parser)
    _add_threads_option(parser)
    _add_engine_option(parser)
    parser.add_argument(
        "--batch-trials",
        type=_positive_int,
        help=(
            "stage-1 trials asked of TPE at a time and trained together "
            "(default: 1 on sb3, 10 on population)"
        ),
    )
    parser.add_argument(
        "--max-members",
        type=_positive_int,
        help="population engine: most members per computation (default: from the device)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=_run_tune, command_parser=parser)


def _run_tune(args: argparse.Namespace) -> int:
    from deepstock.model.optimal import gap_pct
    from deepstock.results.store import ResultStore
    from deepstock.tuning.procedure import tune_setting

    parser: argparse.ArgumentParser = args.command_parser
    _set_threads(args.threads)
    dataset = _setting_dataset(args, parser)
    if args.space is not None and args.data is None:
        parser.error("--space applies to --data only (a setting has its own search spaces)")
    space = args.setting if args.data is None else (args.space or "proxy")
    try:
        if args.results is not None:
            store = ResultStore(args.results, strict=args.strict)
        else:
            store = ResultStore.for_profile(args.profile, strict=args.strict)
        result = tune_setting(
            space,
            args.method,
            args.reg,
            profile=args.profile,
            store=store,
            storage=args.storage,
            workers=args.workers,
            device=args.device,
            seed=args.seed,
            progress=_show_progress(args),
            dataset=dataset,
            n_skus=args.n,
            horizon_periods=args.horizon,
            n_trials=args.trials,
            top_k=args.top_k,
            n_seeds=args.seeds,
            repeats=args.repeats,
            training={args.method: dict(args.overrides)} if args.overrides else None,
            engine=args.engine,
            batch_trials=args.batch_trials,
            max_members=args.max_members,
        )
    except ValueError as error:
        parser.error(str(error))
    output = result.to_dict()
    benchmarks = _benchmarks(dataset)
    reference = benchmarks[0] if benchmarks else None
    summary = output["summary"]
    if reference is not None:
        output["benchmark"] = {
            "policy": reference["policy"],
            "val_loss": reference["val_loss"],
            "test_loss": reference["test_loss"],
            "val_gap_pct": gap_pct(summary["val_loss"], reference["val_loss"]),
            "test_gap_pct": gap_pct(summary["test_loss"], reference["test_loss"]),
        }
    if args.json:
        print(json.dumps(output, indent=2))
        return 0
    plan = output["plan"]
    print(
        f"{args.method} / {args.reg} on {dataset.name}, profile {args.profile}: "
        f"{plan['n_trials']} trials, top {plan['top_k']} x {plan['n_seeds']} seeds, "
        f"{plan['repeats']} repeat(s)"
    )
    for winner in output["winners"]:
        print(
            f"  repeat {winner['repeat']}: winner trial {winner['trial_number']}  "
            f"val {winner['val_loss']:.4f}  test {winner['test_loss']:.4f} (medians over seeds)"
        )
    line = f"  mean  val {summary['val_loss']:.4f}  test {summary['test_loss']:.4f}"
    if dataset.objective == "tmall":
        line += " (J)"
    if reference is not None:
        bench = output["benchmark"]
        line += (
            f"  gap {bench['val_gap_pct']:+.2f}% / {bench['test_gap_pct']:+.2f}% "
            f"vs {reference['policy']}"
        )
    print(line)
    return 0


# ---- run --------------------------------------------------------------------------------------


def _add_run(subparsers: Any) -> None:

    parser = subparsers.add_parser(
        "run",
        help="run (or read back) one of the paper's synthetic experiments",
        description=(
            "Run an experiment of the paper at a budget: settings (settings 1-3, Figure 1 and "
            "Tables 6-8), figure2 (setting-1 tuning curves), figure3 (DDPG critic loss and "
            "buffer states), setting4 (DS Base over N x H, Figure 4 and Table 9), tuned (the "
            "published setting-1 configurations at full length), proxy (the Tmall-like proxy: "
            "3 methods x 4 regularizations tuned on J, Table 1's layout), proxy_full_length (its "
            "best pairs at the paper's training length); beyond the paper, coordination "
            "(inventory and recommendation on two timescales: the multi-timescale method "
            "against its baselines over seeds, no tuning). `run settings --data PATH` runs the "
            "settings comparison on a user's dataset instead: every pair tuned, next to the "
            "cover base stock fitted on validation. Without --data, --lost-sales, "
            "--max-replenish, --holding-cost and --backlog-cost run settings or setting4 on the "
            "paper's demand under those constants (datasets named after the change, their runs "
            "stored apart). Every "
            "training run is stored in the result store the moment it finishes; re-running "
            "reads what is stored and computes only what is missing, so an interrupted run "
            "resumes."
        ),
    )
    parser.add_argument(
        "experiment", choices=_EXPERIMENT_NAMES, metavar="EXPERIMENT", help="%(choices)s"
    )
    parser.add_argument(
        "--profile",
        choices=_PROFILE_NAMES,
        metavar="PROFILE",
        default="quick",
        help="budget: %(choices)s (default: quick)",
    )
    parser.add_argument("--trials", type=_positive_int, help="stage-1 trials (profile's)")
    parser.add_argument("--top-k", type=_positive_int, help="configurations re-run in stage 2")
    parser.add_argument(
        "--seeds",
        type=_positive_int,
        help="seeds per stage-2 configuration (coordination: seeds per method)",
    )
    parser.add_argument("--repeats", type=_positive_int, help="repeats of the whole procedure")
    _add_device_option(parser)
    _add_threads_option(parser)
    parser.add_argument(
        "--workers", type=_positive_int, default=1, help="local worker processes per tuning"
    )
    parser.add_argument(
        "--storage", help="Optuna storage URL shared by workers (default: SQLite in data/optuna)"
    )
    parser.add_argument(
        "--results", type=Path, help="result store folder (default: data/results/PROFILE)"
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="base seed")
    _add_data_options(parser)
    parser.add_argument(
        "--space",
        choices=(*SETTINGS, "proxy"),
        default="proxy",
        help="with --data: whose search spaces the tunings borrow (default: proxy)",
    )
    parser.add_argument(
        "--stored-only",
        action="store_true",
        help="build the tables from the result store alone, never train: a missing run is an "
        "error naming it and how many are missing",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the tables as JSON")
    parser.set_defaults(handler=_run_run, command_parser=parser)


def _run_run(args: argparse.Namespace) -> int:
    from deepstock.beyond import BEYOND_EXPERIMENTS
    from deepstock.paper.experiments import ExperimentContext, data_comparison, run_experiment
    from deepstock.results.store import ResultStore
    from deepstock.tuning.profiles import resolve_profile

    parser: argparse.ArgumentParser = args.command_parser
    model = {}
    if args.data is None:
        # without --data the problem-constant options change the paper's datasets
        model = {key: getattr(args, key) for key in _MODEL_FLAGS if getattr(args, key) is not None}
        if model and args.experiment not in ("settings", "setting4"):
            flags = ", ".join(_CSV_FLAGS[key] for key in model)
            parser.error(
                f"{flags}: the paper's model can be changed in `run settings` and "
                f"`run setting4`, not in `run {args.experiment}` (or give --data FILE.csv)"
            )
        for key in model:
            setattr(args, key, None)  # consumed here, not CSV options
    _check_no_csv_options(args, parser)
    _set_threads(args.threads)
    if args.experiment in BEYOND_EXPERIMENTS:
        if args.data is not None:
            parser.error(f"--data applies to `run settings`, not `run {args.experiment}`")
        tables = _run_beyond(args, parser)
        return _print_tables(tables, as_json=args.json)
    dataset = None
    if args.data is not None:
        if args.experiment != "settings":
            parser.error(f"--data applies to `run settings`, not `run {args.experiment}`")
        dataset = _user_dataset(args, parser)
    try:
        profile = resolve_profile(
            args.profile,
            n_trials=args.trials,
            top_k=args.top_k,
            n_seeds=args.seeds,
            repeats=args.repeats,
        )
        context = ExperimentContext(
            profile=profile,
            device=args.device,
            workers=args.workers,
            storage=args.storage,
            store=ResultStore(args.results) if args.results else None,
            seed=args.seed,
            progress=_show_progress(args),
            model=model,
            stored_only=args.stored_only,
        )
        if dataset is not None:
            tables = data_comparison(context, dataset, space=args.space)
        else:
            tables = run_experiment(args.experiment, context)
    except ValueError as error:
        parser.error(str(error))
    return _print_tables(tables, as_json=args.json)


def _run_beyond(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """An experiment of :mod:`deepstock.beyond`: no tuning, so the tuning options do not apply."""
    from deepstock.beyond import BEYOND_EXPERIMENTS
    from deepstock.results.store import ResultStore

    tuning_only = {
        "--trials": args.trials,
        "--top-k": args.top_k,
        "--repeats": args.repeats,
        "--storage": args.storage,
    }
    given = [flag for flag, value in tuning_only.items() if value is not None]
    if args.workers != 1:
        given.append("--workers")
    if args.seed != 0:
        given.append("--seed")
    if given:
        parser.error(
            f"{args.experiment} does not tune and trains seeds 0..N-1 (--seeds N): "
            f"{', '.join(given)} do(es) not apply"
        )
    quiet = args.no_progress or args.json

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        if args.results:
            store = ResultStore(args.results, stored_only=args.stored_only)
        else:
            store = ResultStore.for_profile(args.profile, stored_only=args.stored_only)
        return BEYOND_EXPERIMENTS[args.experiment](
            args.profile,
            device=args.device,
            store=store,
            n_seeds=args.seeds,
            progress=None if quiet else progress,
        )
    except ValueError as error:
        parser.error(str(error))


def _print_tables(tables: dict[str, Any], *, as_json: bool) -> int:
    """Print named tables as text (long ones summarized) or, with ``as_json``, as JSON."""
    import pandas as pd

    if as_json:
        print(
            json.dumps(
                {
                    name: json.loads(table.to_json(orient="records"))
                    for name, table in tables.items()
                },
                indent=2,
            )
        )
        return 0
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
        for name, table in tables.items():
            if len(table) > 40:
                print(f"{name}: {len(table)} rows (use --json for all)")
                continue
            print(f"{name}:")
            print(table.to_string(index=False))
            print()
    return 0


# ---- evaluate ---------------------------------------------------------------------------------


def _add_evaluate(subparsers: Any) -> None:
    from deepstock.model.dataset import SPLITS

    parser = subparsers.add_parser(
        "evaluate",
        help="score a saved policy file on a split of any dataset",
        description=(
            "Load a policy file (deepstock train --save) and simulate it on one split of a "
            "dataset (--data PATH or --setting NAME): the loss, the gap to the dataset's "
            "benchmark where it has one, the Stockout Rate and the Turnover Time. The dataset "
            "needs the policy's features (same names, same order) and maximum lead time."
        ),
    )
    parser.add_argument("policy", type=Path, help="the policy file (.safetensors)")
    _add_setting_options(parser)
    parser.add_argument(
        "--split", choices=SPLITS, default="test", help="which split (default: test)"
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(handler=_run_evaluate, command_parser=parser)


def _run_evaluate(args: argparse.Namespace) -> int:
    from deepstock.model.optimal import gap_pct
    from deepstock.results.policies import load_policy

    parser: argparse.ArgumentParser = args.command_parser
    try:
        policy = load_policy(args.policy)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    dataset = _setting_dataset(args, parser, require_splits=(args.split,))
    try:
        metrics = policy.evaluate(dataset, args.split)
    except ValueError as error:
        parser.error(str(error))
    from deepstock.results.store import dataset_fingerprint

    report: dict[str, Any] = {
        "policy": str(args.policy),
        "method": policy.method,
        "regularization": policy.regularization,
        "dataset": dataset.name,
        "split": args.split,
        "trained_on_this_dataset": dataset_fingerprint(dataset) == policy.dataset_fingerprint,
        **metrics,
    }
    if all(size > 0 for size in dataset.split_sizes().values()):
        benchmarks = _benchmarks(dataset)
        if benchmarks:
            reference = benchmarks[0]
            report["benchmark"] = reference["policy"]
            report["benchmark_loss"] = reference[f"{args.split}_loss"]
            report["gap_pct"] = gap_pct(metrics["loss"], reference[f"{args.split}_loss"])
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{policy.method} / {policy.regularization} policy {args.policy} on {dataset.name}, "
        f"split {args.split}"
        + ("" if report["trained_on_this_dataset"] else " (not the data it was trained on)")
    )
    line = f"  {_loss_name(dataset)} {metrics['loss']:.4f}"
    if "gap_pct" in report:
        line += f"  gap {report['gap_pct']:+.2f}% vs {report['benchmark']} "
        line += f"({report['benchmark_loss']:.4f})"
    print(line)
    print(
        f"  stockout rate {100 * metrics['stockout_rate']:.2f}%  turnover time "
        f"{metrics['turnover_time']:.2f} days  J {metrics['objective']:.3f}"
    )
    return 0


# ---- order ------------------------------------------------------------------------------------


def _add_order(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "order",
        help="a saved policy's recommended order per SKU for today's state",
        description=(
            "Read today's state per SKU (a .csv or .json file: sku_id, on_hand, "
            "arriving_1..arriving_L, the policy's features, and for Coeff/Both policies of SKUs "
            "it was not trained on <feature>_min / <feature>_max) and print the recommended "
            "order per SKU, with the base-stock level the order fills up to for Base and Both "
            "policies. Today is taken to be an order day."
        ),
    )
    parser.add_argument("policy", type=Path, help="the policy file (.safetensors)")
    parser.add_argument("--state", type=Path, required=True, help="the state file (.csv/.json)")
    parser.add_argument(
        "--format", choices=("csv", "json"), default="csv", help="output format (default: csv)"
    )
    parser.set_defaults(handler=_run_order, command_parser=parser)


def _run_order(args: argparse.Namespace) -> int:
    from deepstock.results.policies import load_policy

    parser: argparse.ArgumentParser = args.command_parser
    try:
        policy = load_policy(args.policy)
        orders = policy.order(args.state)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    if args.format == "json":
        print(orders.to_json(orient="records", indent=2))
    else:
        print(orders.to_csv(index=False), end="")
    return 0


# ---- dashboard --------------------------------------------------------------------------------


def _add_dashboard(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="open Optuna's dashboard on a tuning study",
        description=(
            "Serve optuna-dashboard (an optional extra: pip install 'deepstock[dashboard]') on "
            "the Optuna storage of a tuning: --storage URL, or the single SQLite file under "
            "data/optuna/ that `deepstock tune` writes by default."
        ),
    )
    parser.add_argument(
        "--storage", help="Optuna storage URL (sqlite:///file.db, postgresql://...)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=_positive_int, default=8080, help="port (default: 8080)")
    parser.set_defaults(handler=_run_dashboard, command_parser=parser)


def _run_dashboard(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.command_parser
    try:
        import optuna_dashboard
    except ImportError:
        print(
            "deepstock dashboard: optuna-dashboard is not installed; install it with "
            "pip install 'deepstock[dashboard]' (or pip install optuna-dashboard)",
            file=sys.stderr,
        )
        return 1
    from deepstock.tuning.procedure import default_optuna_dir

    storage = args.storage
    if storage is None:
        folder = default_optuna_dir()
        files = sorted(folder.glob("*.db")) if folder.is_dir() else []
        if len(files) != 1:
            found = ", ".join(str(f) for f in files) if files else "none"
            parser.error(f"give --storage URL: {folder} holds {len(files)} study files ({found})")
        storage = f"sqlite:///{files[0].resolve()}"
    print(f"optuna-dashboard on {storage}: http://{args.host}:{args.port}/ (Ctrl-C stops it)")
    optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0


# ---- store -------------------------------------------------------------------------------------


def _add_store(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "store",
        help="check the result store's records",
        description=(
            "verify: check every run record (checksum, schema, key, array file) and every study "
            "record of a result store; --repair moves the corrupt ones to <store>/quarantine/ "
            "(nothing is deleted), so that the next tuning or chapter recomputes them. Exit "
            "status 1 when corrupt records remain."
        ),
    )
    parser.add_argument("action", choices=("verify",), help="what to do")
    parser.add_argument(
        "--results", type=Path, help="result store folder (default: data/results/PROFILE)"
    )
    parser.add_argument(
        "--profile",
        choices=_PROFILE_NAMES,
        metavar="PROFILE",
        default="quick",
        help="whose store, when --results is not given: %(choices)s (default: quick)",
    )
    parser.add_argument("--repair", action="store_true", help="quarantine the corrupt records")
    parser.set_defaults(handler=_run_store, command_parser=parser)


def _run_store(args: argparse.Namespace) -> int:
    from deepstock.results.store import ResultStore

    parser: argparse.ArgumentParser = args.command_parser
    if args.results is not None and not args.results.is_dir():
        parser.error(f"--results {args.results}: no such folder")
    try:
        store = ResultStore(args.results) if args.results else ResultStore.for_profile(args.profile)
    except ValueError as error:
        parser.error(str(error))
    report = store.verify(repair=args.repair)
    for path, reason in report.corrupt:
        print(f"corrupt: {reason}" if str(path) in reason else f"corrupt: {path}: {reason}")
    for target in report.moved:
        print(f"moved to {target}")
    state = "all intact" if report.ok else f"{len(report.corrupt)} corrupt"
    print(f"{store.root}: {report.runs} run and {report.studies} study records checked, {state}")
    return 0 if report.ok or args.repair else 1


# ---- dispatch --------------------------------------------------------------------------------

_COMMANDS: tuple[Callable[[Any], None], ...] = (
    _add_generate,
    _add_benchmark,
    _add_bench,
    _add_train,
    _add_tune,
    _add_run,
    _add_evaluate,
    _add_order,
    _add_dashboard,
    _add_store,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``deepstock`` parser with every subcommand of :data:`_COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="deepstock",
        description="DeepStock companion: datasets, training and experiments of the paper.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in _COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Bad input raises ``SystemExit(2)`` with a message on stderr, as argparse does.
    """
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        # SIGINT, or SIGTERM during a tuning: finished runs are stored, the run under way is
        # marked failed; the same command resumes
        print(
            f"deepstock {args.command}: interrupted; run the same command again to resume",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())

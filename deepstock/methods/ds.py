"""DS, the differentiable simulator (the book's *The inventory model* and *Policy regularizations* and *Methods and tuning protocol* chapter; Madeka et al. 2022, Alvo et al. 2023).

DS needs no critic and no reward model: the simulator of the book's *The inventory model* chapter is written in PyTorch,
so the loss of a whole trajectory is a differentiable function of every order the policy placed.
Training rolls a minibatch of training trajectories through the simulator for the whole horizon
and follows the exact gradient of their mean loss:

    loss(theta) = mean over the minibatch of  (1 / |counted days|) * sum_t  h (y_t)^+ + b (-y_t)^+

where the end-of-day inventories ``y_t`` depend on the orders ``q_t = reg(f_theta(x_t, c_t))``.
Gradients flow through the clips of the regularization and of the order cap (zero where a clip
binds) and through every later day of the pipeline. On a dataset whose loss is Tmall's ``J``
(the Tmall-like proxy, ``objective="tmall"``) DS follows the gradient of a smooth version of
``J`` instead (:attr:`deepstock.model.simulator.Rollout.training_loss`, ``stockout_smoothing``), while
the validation that selects epochs uses the exact ``J``.

The module reads top to bottom: the settings (:class:`DSConfig`), the network
(:func:`make_network`), one epoch of training and one evaluation (:func:`train_one_epoch`,
:func:`evaluate_loss`), the training loop with ReduceLROnPlateau and early stopping
(:func:`fit_policy`), and the two entry points: :func:`train_ds` (train on the training split,
select on the validation split, report all three) and :func:`train_ds_on_split` (train and select
on one split, the AR(1) benchmark of the book's *Settings 1-3* chapter).

Facts of the authors' implementation that this one follows (where the paper is silent):

- the layers keep PyTorch's default initialization; only the output layer's bias is overwritten
  (its weights are not zeroed), so the untrained policy is a noisy version of the bias;
- an epoch shuffles the training trajectories (a fresh permutation each epoch, from a generator
  seeded with the run's seed) into minibatches of ``batch_size``, the last one possibly smaller;
- the training loss of a minibatch is its mean trajectory loss; gradients are clipped to a global
  norm of 5 before each Adam step; a minibatch with a non-finite loss is skipped;
- after the training pass the validation loss is computed once with no gradient;
  ``ReduceLROnPlateau`` steps on it every epoch; an epoch counts as an improvement only when the
  validation loss is strictly lower than the best so far; training stops after ``patience``
  epochs without improvement and the best validation weights are restored.

Differences from the authors' code (all deliberate):

- Coeff/Both output-layer bias: the authors fill every output with ``initial_action_bias *
  max_replenish``, which pins every coefficient at its upper clip 1, where its gradient is zero.
  Here each output starts at ``initial_action_bias`` of its own range
  (:meth:`deepstock.model.regularizations.Regularization.action_bounds`): ``[0, max_replenish]`` for None and
  Base (the same as the authors), ``[0, 1]`` for the Coeff/Both coefficients and their additive
  bias (the same action range the RL methods use, the book's *Methods and tuning protocol* chapter).
- The network sees every context feature (the authors' None/Base networks read only the first).
- The training simulator may run in float32 (``train_dtype``), evaluations always run in float64.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from deepstock.core.checks import check_int, check_number, is_integer
from deepstock.methods.common import (
    TENSORBOARD_TAGS,
    CurvePoint,
    TrainResult,
    evaluate_policy,
    seed_everything,
    settings_from_mapping,
    tensorboard_run_dir,
)
from deepstock.model.dataset import InventoryDataset
from deepstock.model.regularizations import (
    NetworkPolicy,
    Regularization,
    get_regularization,
    network_input_size,
)
from deepstock.model.simulator import InventorySimulator, resolve_device

__all__ = [
    "DSConfig",
    "FitOutcome",
    "evaluate_loss",
    "fit_policy",
    "make_network",
    "make_policy",
    "train_ds",
    "train_ds_on_split",
    "train_one_epoch",
]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


# ====================================================================== settings
@dataclass
class DSConfig:
    """Settings of one DS training run. Defaults: the authors' (untuned) Coeff/Both configuration;
    the tuned setting-1 configurations for None and Base ship as
    ``deepstock/configs/ds_setting1_{none,base}.yaml`` (the book's *Methods and tuning protocol* chapter)."""

    hidden_layers: list[int] = field(default_factory=lambda: [64, 64])
    """Widths of the hidden layers of the MLP (ELU between them). Search space {[32,32], [64,64],
    [128,128]}; IID {[16,16], [32,32], [64,64]}."""
    batch_size: int = 20
    """Trajectories per minibatch (>= 1); one Adam step per minibatch. Search space {5, 10}; IID
    {5, 10, 20}. Larger than the training split means one full batch per epoch."""
    learning_rate: float = 1e-3
    """Initial Adam learning rate (> 0). Search space loguniform(4e-4, 1e-1)."""
    scheduler_factor: float = 0.9
    """ReduceLROnPlateau factor in (0, 1): the learning rate is multiplied by it after
    ``scheduler_patience`` epochs without validation improvement. Search space uniform(0.5, 0.95);
    IID 0.5."""
    scheduler_patience: int = 3
    """Epochs without validation improvement before ReduceLROnPlateau cuts the rate (>= 0)."""
    epochs: int = 3000
    """Maximum number of epochs (>= 1); one epoch = one pass over the training trajectories."""
    patience: int = 30
    """Early stopping: stop after this many epochs without a strictly lower validation loss
    (>= 1)."""
    initial_action_bias: float = 0.5
    """Fraction in [0, 1] of each output's range that the untrained network outputs: the output
    layer's bias is ``low + initial_action_bias * (high - low)`` (``[0, max_replenish]`` units for
    None/Base, ``[0, 1]`` for Coeff/Both). Search space uniform(0.2, 0.7); AR(1)/IID
    uniform(0, 0.6)."""
    grad_clip_norm: float = 5.0
    """Global gradient-norm clip before each Adam step (> 0)."""
    stockout_smoothing: float = 0.1
    """On a dataset whose objective is Tmall's ``J`` (the proxy): width of the smooth stockout
    indicator DS differentiates, as a share of the SKU's mean daily demand (> 0; see
    :mod:`deepstock.model.simulator`). Unused on the cost objective of settings 1-4."""
    train_dtype: str = "float32"
    """Float precision of the training simulator, ``"float32"`` or ``"float64"``. The network is
    always float32 and every evaluation (validation, reported metrics) runs in float64."""

    def __post_init__(self) -> None:
        if isinstance(self.hidden_layers, tuple):
            self.hidden_layers = list(self.hidden_layers)
        if (
            not isinstance(self.hidden_layers, list)
            or not self.hidden_layers
            or not all(is_integer(w) and w >= 1 for w in self.hidden_layers)
        ):
            raise ValueError(
                f"DS config key 'hidden_layers' must be a non-empty list of positive integers, "
                f"got {self.hidden_layers!r}"
            )
        check_int("DS config key 'batch_size'", self.batch_size, 1)
        check_int("DS config key 'scheduler_patience'", self.scheduler_patience, 0)
        check_int("DS config key 'epochs'", self.epochs, 1)
        check_int("DS config key 'patience'", self.patience, 1)
        check_number(
            "DS config key 'learning_rate'",
            self.learning_rate,
            0.0,
            math.inf,
            low_open=True,
            high_open=True,
        )
        check_number(
            "DS config key 'scheduler_factor'",
            self.scheduler_factor,
            0.0,
            1.0,
            low_open=True,
            high_open=True,
        )
        check_number("DS config key 'initial_action_bias'", self.initial_action_bias, 0.0, 1.0)
        check_number(
            "DS config key 'grad_clip_norm'",
            self.grad_clip_norm,
            0.0,
            math.inf,
            low_open=True,
            high_open=True,
        )
        check_number(
            "DS config key 'stockout_smoothing'",
            self.stockout_smoothing,
            0.0,
            math.inf,
            low_open=True,
            high_open=True,
        )
        if self.train_dtype not in _DTYPES:
            raise ValueError(
                f"DS config key 'train_dtype' must be one of {sorted(_DTYPES)}, "
                f"got {self.train_dtype!r}"
            )


# ====================================================================== the network
def make_network(
    input_size: int,
    output_size: int,
    hidden_layers: list[int],
    *,
    output_bias: Tensor | float,
) -> nn.Sequential:
    """The DS policy network: ``Linear -> ELU -> ... -> Linear -> ReLU`` (the book's *Methods and tuning protocol* chapter).

    Args:
        input_size: width of the network input (:func:`deepstock.model.regularizations.network_input_size`).
        output_size: number of raw outputs of the regularization.
        hidden_layers: widths of the hidden layers.
        output_bias: the output layer's initial bias, a scalar or ``(output_size,)``, in the units
            of the raw output; the other parameters keep PyTorch's default initialization.

    Returns:
        a float32 module mapping ``(batch, input_size)`` to ``(batch, output_size)`` outputs >= 0.
    """
    layers: list[nn.Module] = []
    width = input_size
    for hidden in hidden_layers:
        layers += [nn.Linear(width, hidden), nn.ELU()]
        width = hidden
    output_layer = nn.Linear(width, output_size)
    with torch.no_grad():
        output_layer.bias.copy_(torch.as_tensor(output_bias, dtype=output_layer.bias.dtype))
    # ReLU output: a non-negative order (None) or order-up-to level (Base) or coefficient.
    layers += [output_layer, nn.ReLU()]
    return nn.Sequential(*layers)


def make_policy(
    dataset: InventoryDataset, regularization: str | Regularization, settings: DSConfig
) -> NetworkPolicy:
    """A freshly initialized DS policy for ``dataset`` (uses torch's global generator).

    The output bias is ``initial_action_bias`` of each output's range
    (:meth:`~deepstock.model.regularizations.Regularization.action_bounds`): ``initial_action_bias *
    max_replenish`` units for None and Base, ``initial_action_bias`` for the Coeff/Both outputs.
    """
    reg = get_regularization(regularization)
    n_outputs = reg.output_size(len(dataset.coeff_features))
    # input [c_t, x_t]: every context feature, then the pipeline (max lead time + 1 slots)
    input_size = network_input_size(dataset.features.shape[2], dataset.max_lead_time + 1)
    low, high = reg.action_bounds(dataset.max_replenish)
    bias = low + settings.initial_action_bias * (high - low)
    network = make_network(input_size, n_outputs, settings.hidden_layers, output_bias=bias)
    return NetworkPolicy(network, reg, dataset.max_replenish, dataset.coeff_features)


# ====================================================================== one epoch, one evaluation
def train_one_epoch(
    policy: NetworkPolicy,
    optimizer: torch.optim.Optimizer,
    simulator: InventorySimulator,
    permutation: Tensor,
    settings: DSConfig,
) -> tuple[float, int]:
    """One pass over the training trajectories, one Adam step per minibatch.

    Args:
        policy: the policy being trained (its parameters are in ``optimizer``).
        optimizer: Adam over the policy's parameters.
        simulator: the training simulator (all training trajectories).
        permutation: ``(n_train,)`` int64 on the simulator's device, this epoch's shuffled order.
        settings: ``batch_size`` and ``grad_clip_norm`` are used.

    Returns:
        ``(mean training loss, skipped minibatches)``: the trajectory-weighted mean of the
        minibatch losses before their updates (cost units per day) and the number of minibatches
        skipped for a non-finite loss.
    """
    policy.train()
    total, count, skipped = 0.0, 0, 0
    for minibatch in permutation.split(settings.batch_size):
        # The whole horizon in one graph: the gradient sees every later effect of every order.
        loss = simulator.rollout(policy, differentiable=True, index=minibatch).training_loss
        if not torch.isfinite(loss):
            skipped += 1
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(policy.parameters(), settings.grad_clip_norm)
        optimizer.step()
        total += float(loss.detach()) * minibatch.numel()
        count += minibatch.numel()
    return (total / count if count else math.nan), skipped


def evaluate_loss(policy: NetworkPolicy, simulator: InventorySimulator) -> float:
    """Mean trajectory loss of ``policy`` on every trajectory of ``simulator``, no gradient."""
    policy.eval()
    return float(simulator.rollout(policy, differentiable=False).loss)


# ====================================================================== the training loop
@dataclass
class FitOutcome:
    """What :func:`fit_policy` produced.

    Attributes:
        policy: the policy with the best validation weights restored (on the training device).
        curve: validation loss after each epoch (``step`` = epoch number, from 1).
        train_losses: mean training minibatch loss of each epoch.
        learning_rates: the learning rate used in each epoch.
        best_epoch: the epoch whose weights were kept (from 1).
        epochs_run: epochs completed before stopping.
        epoch_times_s: wall time of each epoch (training pass + validation), seconds.
        skipped_batches: minibatches skipped for a non-finite loss, in total.
        wall_time_s: wall time of the whole fit, seconds.
    """

    policy: NetworkPolicy
    curve: list[CurvePoint]
    train_losses: list[float]
    learning_rates: list[float]
    best_epoch: int
    epochs_run: int
    epoch_times_s: list[float]
    skipped_batches: int
    wall_time_s: float


def fit_policy(
    train_set: InventoryDataset,
    val_set: InventoryDataset,
    regularization: str | Regularization,
    settings: DSConfig,
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
    tensorboard: str | os.PathLike[str] | None = None,
) -> FitOutcome:
    """Train a DS policy on ``train_set``, selecting epochs by the loss on ``val_set``.

    Deterministic on CPU for a given ``seed`` (network initialization and the shuffles).
    ``tensorboard``: a folder; each epoch's validation loss, best validation loss, training
    loss and learning rate are written there (:data:`~deepstock.methods.common.TENSORBOARD_TAGS`
    and ``train/learning_rate``, step = epoch) in the run's sub-folder
    (:func:`~deepstock.methods.common.tensorboard_run_dir`).
    """
    start = time.perf_counter()
    device = resolve_device(device)
    reg = get_regularization(regularization)
    reg.output_size(len(train_set.coeff_features))  # fails early when features are missing

    # ---- seeding, simulators (built once), policy, optimizer, scheduler
    seed_everything(seed)
    shuffle_generator = torch.Generator().manual_seed(seed)
    train_sim = InventorySimulator.from_dataset(
        train_set,
        device=device,
        dtype=_DTYPES[settings.train_dtype],
        stockout_smoothing=settings.stockout_smoothing,
    )
    val_sim = InventorySimulator.from_dataset(val_set, device=device, dtype=torch.float64)
    policy = make_policy(train_set, reg, settings).to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min",
        factor=settings.scheduler_factor,
        patience=settings.scheduler_patience,
    )

    best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(policy.state_dict())
    epochs_since_best, skipped_total = 0, 0
    curve: list[CurvePoint] = []
    train_losses: list[float] = []
    learning_rates: list[float] = []
    epoch_times: list[float] = []

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.epochs, desc=f"DS {reg.name}", unit="epoch")
    writer = None
    if tensorboard is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(tensorboard_run_dir(tensorboard, "ds", reg.name, seed)))
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.perf_counter()
        learning_rates.append(optimizer.param_groups[0]["lr"])

        # ---- ALGO LOGIC: a shuffled pass of gradient steps, then one validation rollout
        permutation = torch.randperm(train_sim.batch_size, generator=shuffle_generator)
        train_loss, skipped = train_one_epoch(
            policy, optimizer, train_sim, permutation.to(device), settings
        )
        val_loss = evaluate_loss(policy, val_sim)
        scheduler.step(val_loss)

        # ---- bookkeeping: best weights, early stopping
        skipped_total += skipped
        train_losses.append(train_loss)
        curve.append(CurvePoint(step=epoch, val_loss=val_loss))
        if val_loss < best_loss:
            best_loss, best_epoch, epochs_since_best = val_loss, epoch, 0
            best_state = copy.deepcopy(policy.state_dict())
        else:
            epochs_since_best += 1
        epoch_times.append(time.perf_counter() - epoch_start)
        if writer is not None:
            writer.add_scalar(TENSORBOARD_TAGS["val_loss"], val_loss, epoch)
            writer.add_scalar(TENSORBOARD_TAGS["best_val_loss"], best_loss, epoch)
            writer.add_scalar(TENSORBOARD_TAGS["train_loss"], train_loss, epoch)
            writer.add_scalar("train/learning_rate", learning_rates[-1], epoch)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(val=f"{val_loss:.4f}", best=f"{best_loss:.4f}", lr=learning_rates[-1])
        if epochs_since_best >= settings.patience:
            break
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()

    policy.load_state_dict(best_state)
    policy.eval()
    return FitOutcome(
        policy=policy,
        curve=curve,
        train_losses=train_losses,
        learning_rates=learning_rates,
        best_epoch=best_epoch,
        epochs_run=len(curve),
        epoch_times_s=epoch_times,
        skipped_batches=skipped_total,
        wall_time_s=time.perf_counter() - start,
    )


# ====================================================================== entry points
def _resolve_settings(settings: DSConfig | Mapping[str, Any] | None) -> DSConfig:
    if isinstance(settings, DSConfig):
        return settings
    return settings_from_mapping(DSConfig, settings, method="ds")


def _check_same_pipeline_width(splits: Mapping[str, InventoryDataset]) -> None:
    # The network reads the whole pipeline (max lead time + 1 slots), so every split must have
    # the same maximum lead time for one network to act on all of them.
    widths = {name: part.max_lead_time for name, part in splits.items()}
    if len(set(widths.values())) > 1:
        raise ValueError(
            f"every split must have the same maximum lead time (the network reads the whole "
            f"pipeline), got {widths}"
        )


def _extras(outcome: FitOutcome) -> dict[str, Any]:
    times = outcome.epoch_times_s
    return {
        "epochs_run": outcome.epochs_run,
        "best_epoch": outcome.best_epoch,
        "mean_epoch_time_s": sum(times) / len(times),
        "train_loss_per_epoch": outcome.train_losses,
        "learning_rate_per_epoch": outcome.learning_rates,
        "skipped_batches": outcome.skipped_batches,
    }


def _result(
    reg: Regularization,
    settings: DSConfig,
    outcome: Any,
    metrics: dict[str, dict[str, float]],
    *,
    seed: int,
    device: torch.device,
) -> TrainResult:
    """The :class:`~deepstock.methods.common.TrainResult` of a fitted DS policy."""
    return TrainResult(
        method="ds",
        regularization=reg.name,
        config=dataclasses.asdict(settings),
        seed=seed,
        device=str(device),
        policy=outcome.policy.cpu(),
        val_metrics=metrics["val"],
        test_metrics=metrics["test"],
        train_metrics=metrics["train"],
        curve=outcome.curve,
        curve_unit="epochs",
        wall_time_s=outcome.wall_time_s,
        extras=_extras(outcome),
    )


def train_ds(
    dataset: InventoryDataset,
    regularization: str | Regularization,
    settings: DSConfig | Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
    tensorboard: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train DS on the ``train`` split, keep the best ``val`` epoch, evaluate on all splits.

    Args:
        dataset: with ``train``, ``val`` and ``test`` trajectories.
        regularization: ``"none"``, ``"base"``, ``"coeff"``, ``"both"`` (or a registered one).
        settings: a :class:`DSConfig` or a mapping of its keys (class defaults for the rest; use
            :func:`deepstock.training.train` to start from the tuned setting-1 configurations).
        seed: seeds the network initialization and the shuffles.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        progress: show a tqdm bar over epochs.
        tensorboard: a folder for TensorBoard curves (see :func:`fit_policy`), or ``None``.

    Returns:
        a :class:`~deepstock.methods.train.TrainResult` whose policy is the best-validation policy on
        the CPU; metrics come from float64 simulations of each whole split; ``wall_time_s`` is the
        training time (evaluations excluded); ``extras`` holds ``epochs_run``, ``best_epoch``,
        ``mean_epoch_time_s`` and per-epoch training losses and learning rates.
    """
    settings = _resolve_settings(settings)
    reg = get_regularization(regularization)
    reg.output_size(len(dataset.coeff_features))  # fails early when features are missing
    splits = {name: dataset.subset(name) for name in ("train", "val", "test")}  # fail early too
    _check_same_pipeline_width(splits)
    device = resolve_device(device)

    outcome = fit_policy(
        splits["train"],
        splits["val"],
        reg,
        settings,
        seed=seed,
        device=device,
        progress=progress,
        tensorboard=tensorboard,
    )
    metrics = {
        name: evaluate_policy(outcome.policy, part, device=device) for name, part in splits.items()
    }
    return _result(reg, settings, outcome, metrics, seed=seed, device=device)


def train_ds_on_split(
    dataset: InventoryDataset,
    regularization: str | Regularization = "base",
    settings: DSConfig | Mapping[str, Any] | None = None,
    *,
    split: str = "test",
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> TrainResult:
    """Train AND select DS on the trajectories of one split (the AR(1) benchmark, the book's *Settings 1-3* chapter).

    With no closed-form optimum for AR(1) demand, the benchmark is a DS policy fitted to the test
    trajectories themselves: every epoch trains on them and the early stopping watches the loss
    on the same trajectories. It is an in-sample fit, so its loss approximates (from above, up to
    the fit) the best a policy of this class could do on those paths.

    Returns:
        a :class:`~deepstock.methods.train.TrainResult` in which ``train_metrics``, ``val_metrics`` and
        ``test_metrics`` are all the metrics on ``split`` (so ``result.test_loss`` is the
        benchmark loss when ``split="test"``); ``extras["fitted_split"]`` names the split.
    """
    settings = _resolve_settings(settings)
    reg = get_regularization(regularization)
    reg.output_size(len(dataset.coeff_features))
    part = dataset.subset(split)
    device = resolve_device(device)

    outcome = fit_policy(part, part, reg, settings, seed=seed, device=device, progress=progress)
    on_split = evaluate_policy(outcome.policy, part, device=device)
    metrics = {name: dict(on_split) for name in ("train", "val", "test")}
    result = _result(reg, settings, outcome, metrics, seed=seed, device=device)
    result.extras["fitted_split"] = split
    return result

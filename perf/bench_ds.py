"""DS on setting 1: the time of one epoch and of one whole training run, with the losses reached.

Usage: ``python perf/bench_ds.py [--regularizations none base] [--seeds 0] [--device cpu]``

Prints JSON with, per regularization (the paper's tuned setting-1 configuration, the book's *Methods and tuning protocol* chapter):

- ``epoch_ms``: the median wall time of one epoch as the authors' trainer runs it (a training
  pass of gradient steps, a no-grad pass over the training split, a no-grad validation pass;
  they report about 50 ms), over ``--timed-epochs`` epochs after two warm-up epochs. DS itself
  skips the training-split pass (``train_epoch_ms`` is the training pass plus validation only);
- ``runs``: one full training run per seed (3000 epochs at most, patience 30) with its wall time,
  epochs, validation and test losses, and the test-loss gaps against the DP benchmarks
  (``dp_empirical`` is the authors' benchmark, test loss 0.8670; ``dp_true`` the project's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from deepstock.datasets.catalog import load_setting
from deepstock.methods.common import seed_everything
from deepstock.methods.ds import evaluate_loss, make_policy, train_one_epoch
from deepstock.methods.train import config_from_mapping, default_config, train
from deepstock.model.dataset import InventoryDataset
from deepstock.model.optimal import benchmark_losses
from deepstock.model.simulator import InventorySimulator, resolve_device


def time_epochs(
    dataset: InventoryDataset, regularization: str, device: torch.device, epochs: int
) -> dict[str, Any]:
    """Median per-epoch wall times (ms) of the authors' three passes and of DS's two."""
    settings = config_from_mapping("ds", default_config("ds", regularization))
    train_set, val_set = dataset.subset("train"), dataset.subset("val")
    seed_everything(0)
    train_dtype = getattr(torch, settings.train_dtype)
    train_sim = InventorySimulator.from_dataset(train_set, device=device, dtype=train_dtype)
    train_eval_sim = InventorySimulator.from_dataset(train_set, device=device)
    val_sim = InventorySimulator.from_dataset(val_set, device=device)
    policy = make_policy(train_set, regularization, settings).to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(0)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    full, ds_only = [], []
    for epoch in range(epochs + 2):
        permutation = torch.randperm(train_sim.batch_size, generator=generator).to(device)
        synchronize()
        start = time.perf_counter()
        train_one_epoch(policy, optimizer, train_sim, permutation, settings)
        synchronize()
        after_training = time.perf_counter()
        evaluate_loss(policy, train_eval_sim)
        synchronize()
        after_train_eval = time.perf_counter()
        evaluate_loss(policy, val_sim)
        synchronize()
        end = time.perf_counter()
        if epoch >= 2:  # warm-up epochs excluded
            full.append(end - start)
            ds_only.append((after_training - start) + (end - after_train_eval))
    return {
        "epoch_ms": 1e3 * statistics.median(full),
        "train_epoch_ms": 1e3 * statistics.median(ds_only),
        "timed_epochs": epochs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regularizations", nargs="+", default=["none", "base"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    parser.add_argument("--timed-epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    dataset = load_setting("setting1")
    dp_test = {row["policy"]: row["test_loss"] for row in benchmark_losses(dataset)}
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "dp_test_loss": dp_test,
        "results": {},
    }
    for regularization in args.regularizations:
        entry = time_epochs(dataset, regularization, device, args.timed_epochs)
        entry["runs"] = []
        for seed in args.seeds:
            start = time.perf_counter()
            result = train("ds", regularization, dataset, seed=seed, device=str(device))
            total = time.perf_counter() - start
            entry["runs"].append(
                {
                    "seed": seed,
                    "wall_time_s": total,
                    "training_time_s": result.wall_time_s,
                    "epochs_run": result.extras["epochs_run"],
                    "best_epoch": result.extras["best_epoch"],
                    "mean_epoch_ms": 1e3 * result.extras["mean_epoch_time_s"],
                    "val_loss": result.val_loss,
                    "test_loss": result.test_loss,
                    "test_gap": {
                        name: result.test_loss / loss - 1 for name, loss in dp_test.items()
                    },
                }
            )
        report["results"][regularization] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

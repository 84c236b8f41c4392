"""One-off migration (December 2026): the proxy's description no longer cites a document
outside the repository.

The committed proxy dataset (``data/datasets/proxy``) recorded in ``params["proxy"]`` a
description that cited a planning document this repository does not have. The text is
reworded; the trajectories, the
features and every other parameter are unchanged, so every run trained on the proxy is still
valid. Its fingerprint changes with the text, and with it every run key and the names of the
proxy's tuning studies (they hash the fingerprint). This script:

1. rewrites ``data/datasets/proxy`` with the new text (the dataset's writer; only the
   description in ``meta.json`` changes) and the datasets' manifest;
2. moves every proxy run of the ``quick`` and ``smoke`` stores to its new key
   (:meth:`deepstock.results.store.ResultStore.rekey_dataset`);
3. renames the proxy's study records to the names the tuner now gives them, with the moved
   runs' keys inside (the trials themselves are copied, not re-run);
4. removes the smoke store's runs of the proxy as regenerated on another machine (its
   features differed in the last bits; the book's chapter now reads the committed proxy);
5. checks that the proxy experiments' tables, read back from each store without training,
   are the same as before, number for number.

It resumes when interrupted and does nothing on stores already migrated. Run it from the
checkout's root: ``python scripts/migrate_proxy_description.py``.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pandas as pd

from deepstock.datasets.catalog import load_setting, write_fingerprints
from deepstock.datasets.io import save_dataset
from deepstock.model.dataset import InventoryDataset
from deepstock.paper.experiments import (
    PROXY_PAIRS,
    ExperimentContext,
    proxy_comparison,
    proxy_full_length,
    tune_pair,
)
from deepstock.results.store import ResultStore, dataset_fingerprint
from deepstock.tuning import procedure
from deepstock.tuning.procedure import Tuner

#: The proxy's fingerprint with the old description (every proxy run's key was made from it).
OLD_FINGERPRINT = "5887a015a8fe236a43ddd452d2085aa31c4f583af90e6358cc72d3677c7ef68b"
NEW_TEXT = (
    "the project's own synthetic stand-in for Tmall's private data (see the book's proxy chapter)"
)
ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "data" / "datasets"
PROFILES = ("quick", "smoke")
BEFORE = ROOT / "data" / "results" / "proxy_tables_before_migration.pickle"


def tables(profile: str, dataset: InventoryDataset) -> dict[str, pd.DataFrame]:
    """The proxy experiments' tables, read back from the profile's store (nothing trains)."""
    context = ExperimentContext(profile=profile, device="cpu", stored_only=True)
    out = dict(proxy_comparison(context, dataset=dataset))
    out.update({f"full {k}": v for k, v in proxy_full_length(context, dataset=dataset).items()})
    return {k: v for k, v in out.items() if isinstance(v, pd.DataFrame)}


class _Prefix(Exception):
    pass


def study_prefixes(
    profile: str, dataset: InventoryDataset, fingerprint: str
) -> dict[tuple[str, str], str]:
    """The study-name prefix the tuner gives each proxy pair on ``dataset`` when the dataset's
    fingerprint is ``fingerprint`` (nothing runs)."""

    def capture(self, **_):
        raise _Prefix(self.study_prefix)

    original, Tuner.run = Tuner.run, capture
    original_fingerprint = procedure.dataset_fingerprint
    procedure.dataset_fingerprint = lambda _: fingerprint
    prefixes = {}
    try:
        context = ExperimentContext(profile=profile, device="cpu", storage="memory")
        for method, regularization in PROXY_PAIRS:
            try:
                tune_pair("proxy", method, regularization, context, dataset=dataset)
            except _Prefix as found:
                prefixes[method, regularization] = str(found)
    finally:
        Tuner.run = original
        procedure.dataset_fingerprint = original_fingerprint
    return prefixes


def main() -> None:
    dataset = load_setting("proxy")
    if dataset.params.get("proxy") != NEW_TEXT:
        if dataset_fingerprint(dataset) != OLD_FINGERPRINT:
            raise SystemExit("data/datasets/proxy is not the dataset this migration expects")
        # the tables as they are, before anything moves
        BEFORE.write_bytes(pickle.dumps({p: tables(p, dataset) for p in PROFILES}))
        reworded = dataclasses.replace(dataset, params={**dataset.params, "proxy": NEW_TEXT})
        save_dataset(reworded, DATASETS / "proxy")
        manifest = json.loads((DATASETS / "fingerprints.json").read_text(encoding="utf-8"))
        write_fingerprints(DATASETS, sorted(manifest))
        dataset = load_setting("proxy")
    assert dataset.params["proxy"] == NEW_TEXT
    old_fingerprint, new_fingerprint = OLD_FINGERPRINT, dataset_fingerprint(dataset)

    for profile in PROFILES:
        store = ResultStore.for_profile(profile)
        moved = store.rekey_dataset(old_fingerprint, new_fingerprint)
        print(f"{profile}: {len(moved)} proxy runs moved to their new keys")
        old_prefixes = study_prefixes(profile, dataset, old_fingerprint)
        new_prefixes = study_prefixes(profile, dataset, new_fingerprint)
        assert new_prefixes == study_prefixes(profile, dataset, dataset_fingerprint(dataset))
        renamed = 0
        for pair, old_prefix in old_prefixes.items():
            for path in sorted(store.studies_dir.glob(f"{old_prefix}-*.json")):
                name = path.stem.replace(old_prefix, new_prefixes[pair], 1)
                text = json.dumps(store.read_study(path))
                for old_key, new_key in moved.items():
                    text = text.replace(old_key, new_key)
                payload = json.loads(text.replace(old_prefix, new_prefixes[pair]))
                store.put_study(name, payload)
                path.unlink()
                renamed += 1
        print(f"{profile}: {renamed} proxy studies renamed")
        stale = [
            record["key"]
            for record in store.records()
            if record["dataset"]["name"] == "tmall-proxy"
            and record["identity"]["dataset"] != new_fingerprint
        ]
        for key in stale:
            for path in (store.path(key), store.path(key).with_suffix(".npz")):
                path.unlink(missing_ok=True)
            store.policy_path(key).unlink(missing_ok=True)
        known = set(new_prefixes.values())
        orphans = [
            path
            for path in store.studies_dir.glob("tmall-proxy-*.json")
            if not any(path.stem.startswith(prefix) for prefix in known)
        ]
        for path in orphans:
            path.unlink()
        print(f"{profile}: {len(stale)} runs and {len(orphans)} studies of another proxy removed")

    if BEFORE.is_file():
        before = pickle.loads(BEFORE.read_bytes())
        for profile in PROFILES:
            after = tables(profile, dataset)
            assert sorted(after) == sorted(before[profile])
            for name, table in before[profile].items():
                # the same numbers; a "key" column holds the runs' new keys, each in the store
                keys = [c for c in table.columns if c == "key"]
                pd.testing.assert_frame_equal(
                    table.drop(columns=keys), after[name].drop(columns=keys), check_exact=True
                )
                store = ResultStore.for_profile(profile)
                assert all(store.read(key) is not None for c in keys for key in after[name][c])
            print(f"{profile}: every proxy table is the same as before ({len(after)} tables)")
        BEFORE.unlink()


if __name__ == "__main__":
    main()

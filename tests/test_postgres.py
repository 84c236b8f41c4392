"""Tuning workers sharing one study on a real PostgreSQL server (loopback, temporary).

The server is installed if missing (``scripts/postgres_server.sh install``: apt-get, as root)
and started on a free port of 127.0.0.1 in a temporary folder; the tests are skipped, with the
reason, only where PostgreSQL is missing and cannot be installed.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import assert_done_exactly_once

from deepstock.tuning.procedure import ToyObjective, Tuner

pytestmark = pytest.mark.postgres

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres_server.sh"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver (psycopg2-binary) is missing")
    install = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True)
    if install.returncode == 3:
        pytest.skip(f"PostgreSQL cannot be installed here: {install.stderr.strip()}")
    assert install.returncode == 0, install.stdout + install.stderr
    start = subprocess.run(
        ["bash", str(SCRIPT), "start", str(_free_port())], capture_output=True, text=True
    )
    assert start.returncode == 0, start.stdout + start.stderr
    values = dict(line.split("=", 1) for line in start.stdout.splitlines() if "=" in line)
    try:
        yield values["DATABASE_URL"]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", values["PGDATA_DIR"]], check=True)


def _tuner(url: str, **kwargs) -> Tuner:
    settings = dict(
        n_trials=6,
        top_k=2,
        n_seeds=2,
        n_startup_trials=3,
        storage=url,
        heartbeat_interval=1,
        grace_period=3,
    )
    settings.update(kwargs)
    return Tuner(ToyObjective(sleep_s=0.3), **settings)


def test_two_workers_on_postgres_run_each_trial_once(postgres_url):
    tuner = _tuner(postgres_url)
    result = tuner.run(workers=2)
    assert_done_exactly_once(tuner, result)
    assert result.summary()["val_loss"] < 3.0


def test_two_machines_on_postgres_run_each_trial_once(postgres_url):
    """Two tuners built separately (as on two machines) join the same studies."""
    first, second = _tuner(postgres_url, seed=1), _tuner(postgres_url, seed=1)
    first.prepare()
    processes = first.start_workers(1) + second.start_workers(1)
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    result = second.result()
    assert_done_exactly_once(second, result)
    assert result.winners.equals(first.result().winners)

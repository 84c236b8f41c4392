"""Plug-in regularizations outside the package: loading from $DEEPSTOCK_PLUGINS, their code in
the identity of stored runs, and the published configuration they borrow."""

import subprocess
import sys
import textwrap

import pytest

from deepstock.methods.train import default_config
from deepstock.model.regularizations import (
    BUILTIN_REGULARIZATIONS,
    REGULARIZATIONS,
    BaseStockRegularization,
    load_plugins,
    register_regularization,
)
from deepstock.results.fingerprints import regularization_fingerprint
from deepstock.results.store import run_key

PLUGIN = textwrap.dedent(
    '''
    from deepstock.model.regularizations import BaseStockRegularization, register_regularization


    class HalfTarget(BaseStockRegularization):
        """Base stock on half the network's output."""

        name = "{name}"
        tuning_like = "base"

        def order(self, raw, observation, coeff_values, max_replenish):
            return super().order(raw * {factor}, observation, coeff_values, max_replenish)


    register_regularization(HalfTarget(), overwrite=True)
    '''
)


def write_plugin(folder, module, name, factor=0.5):
    path = folder / f"{module}.py"
    path.write_text(PLUGIN.format(name=name, factor=factor))
    return path


def test_plugins_load_from_the_environment_variable(tmp_path, monkeypatch):
    write_plugin(tmp_path, "plugin_half_a", "test_half_a")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_plugins("plugin_half_a") == ["plugin_half_a"]
        assert "test_half_a" in REGULARIZATIONS
    finally:
        REGULARIZATIONS.pop("test_half_a", None)
    with pytest.raises(ImportError, match="DEEPSTOCK_PLUGINS names the module 'no_such_mod'"):
        load_plugins("no_such_mod")
    # a fresh process (a tuning worker, the command line) registers it from the variable alone
    code = "import deepstock.model.regularizations as p; print('test_half_a' in p.REGULARIZATIONS)"
    env = {"DEEPSTOCK_PLUGINS": "plugin_half_a", "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"


def test_a_plugins_code_is_part_of_its_run_keys(tmp_path, monkeypatch):
    assert all(regularization_fingerprint(name) is None for name in BUILTIN_REGULARIZATIONS)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        write_plugin(tmp_path, "plugin_half_b", "test_half_b", factor=0.5)
        load_plugins("plugin_half_b")
        first = regularization_fingerprint("test_half_b")
        key = run_key("ds", "test_half_b", {"epochs": 3}, 0, "f" * 64)
        # the same name, edited code: another fingerprint, another key
        write_plugin(tmp_path, "plugin_half_c", "test_half_b", factor=0.25)
        load_plugins("plugin_half_c")
        assert regularization_fingerprint("test_half_b") not in (None, first)
        assert run_key("ds", "test_half_b", {"epochs": 3}, 0, "f" * 64) != key
    finally:
        REGULARIZATIONS.pop("test_half_b", None)


def test_overwriting_a_builtin_name_is_fingerprinted():
    original = REGULARIZATIONS["base"]

    class MyBase(BaseStockRegularization):
        pass

    register_regularization(MyBase(), overwrite=True)
    try:
        assert regularization_fingerprint("base") is not None
    finally:
        register_regularization(original, overwrite=True)
    assert regularization_fingerprint("base") is None


def test_plugins_borrow_the_published_configuration_of_their_tuning_like():
    class LikeNone(BaseStockRegularization):
        name = "test_like_none"
        tuning_like = "none"

    register_regularization(LikeNone())
    try:
        assert default_config("ddpg", "test_like_none") == default_config("ddpg", "none")
        assert default_config("ds", "test_like_none") == default_config("ds", "none")
    finally:
        REGULARIZATIONS.pop("test_like_none")
    # the paper's Coeff and Both keep the settings classes' defaults
    assert default_config("ds", "coeff") == {}


def test_classes_without_a_source_file_are_fingerprinted_by_their_methods():
    """A class typed in a notebook cell has no source file; editing a method still shows."""

    def make(factor):
        namespace = {"BaseStockRegularization": BaseStockRegularization, "__name__": "__main__"}
        exec(  # noqa: S102 - what a notebook cell does
            "class Scaled(BaseStockRegularization):\n"
            "    name = 'test_scaled'\n"
            "    def order(self, raw, observation, coeff_values, max_replenish):\n"
            f"        return super().order(raw * {factor}, observation, coeff_values, "
            "max_replenish)\n",
            namespace,
        )
        return namespace["Scaled"]()

    one, same, other = make(0.5), make(0.5), make(0.25)
    register_regularization(one)
    try:
        first = regularization_fingerprint(one)
        register_regularization(same, overwrite=True)
        assert regularization_fingerprint(same) == first
        register_regularization(other, overwrite=True)
        assert regularization_fingerprint(other) != first
    finally:
        REGULARIZATIONS.pop("test_scaled")

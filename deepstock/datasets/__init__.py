"""The datasets: the paper's synthetic settings 1-4 (with the authors' random streams), the
project's Tmall-like proxy, and the documented file format.

:func:`load_setting` is the one entry point for every named dataset.
"""

from deepstock.datasets.catalog import ALL_SETTINGS, default_datasets_dir, load_setting
from deepstock.datasets.io import load_dataset, save_dataset
from deepstock.datasets.synthetic import make_setting

__all__ = [
    "ALL_SETTINGS",
    "default_datasets_dir",
    "load_dataset",
    "load_setting",
    "make_setting",
    "save_dataset",
]

"""Datasets of the paper's experiments in their upstream formats, with encoders and event transforms.

Loaders take a ``root`` directory (default: the environment variable ``IIRSNN_DATA``), parse the
upstream files themselves, verify what they can, and raise :class:`MissingDataError` or
:class:`CorruptFileError` naming the file and the problem. Nothing downloads at import.
"""

from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.files import data_root, dataset_dir

__all__ = ["CorruptFileError", "DataError", "MissingDataError", "data_root", "dataset_dir"]

"""Datasets of the paper's experiments in their upstream formats, with encoders and event transforms.

Loaders take a ``root`` directory (default: the environment variable ``IIRSNN_DATA``), parse the
upstream files themselves, verify what they can, and raise :class:`MissingDataError` or
:class:`CorruptFileError` naming the file and the problem. Nothing downloads at import;
``iirsnn data list|verify|download`` (see :mod:`~iirsnn.data.registry`) does it explicitly.

Samples are time-major per sample (``[T, ...]``, or images ``[1, 28, 28]`` for MNIST, encoded per batch);
:func:`time_major_collate` batches them into the models' ``[T, B, ...]``.
"""

from iirsnn.data.associative import AssociativeMemory
from iirsnn.data.auslan import Auslan
from iirsnn.data.collate import time_major_collate
from iirsnn.data.corruption import Corruption
from iirsnn.data.dvs_gesture import DVSGesture, DVSGestureSamples
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.files import data_root, dataset_dir
from iirsnn.data.fsdd import FSDD
from iirsnn.data.japanese_vowels import JapaneseVowels
from iirsnn.data.mnist import MNIST
from iirsnn.data.nmnist import NMNIST
from iirsnn.data.tidigits import TIDIGITS
from iirsnn.data.timeseries import CurrentLIFEncoding
from iirsnn.data.uea import UEA

__all__ = [
    "FSDD",
    "MNIST",
    "NMNIST",
    "TIDIGITS",
    "UEA",
    "AssociativeMemory",
    "Auslan",
    "CorruptFileError",
    "Corruption",
    "CurrentLIFEncoding",
    "DVSGesture",
    "DVSGestureSamples",
    "DataError",
    "JapaneseVowels",
    "MissingDataError",
    "data_root",
    "dataset_dir",
    "time_major_collate",
]

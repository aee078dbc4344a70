"""The named tasks of the experiments: each builder reads (or generates) a dataset and returns a :class:`Task`.

:func:`build_task` looks a name up in :data:`TASKS`, checks the options against the builder's keyword
arguments (an unknown option is an error naming it and the known ones), builds the task and carves a
validation split from the training data (``val_fraction``, ``split_seed``) unless the task brings its own.
Series are standardised with statistics of the training split only.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from iirsnn.data.associative_task import associative_memory
from iirsnn.data.tasks import SplitTensors, Task, TensorTask, carve_validation

Root = str | os.PathLike | None


@dataclass(frozen=True)
class TaskEntry:
    """A builder ``build(root, seed, **options) -> Task``, the data directory it reads (None: generated), a
    line for listings, and whether it brings its own validation split."""

    build: Callable[..., Task]
    dataset: str | None
    description: str
    own_validation: bool = False


def _evenly_spaced(n: int, limit: int | None) -> list[int]:
    """Indices of at most ``limit`` of ``n`` samples, evenly spaced (so that data ordered by class keep every
    class); all of them when ``limit`` is None or not below ``n``."""
    if limit is None or limit >= n:
        return list(range(n))
    return torch.linspace(0, n - 1, limit).round().long().tolist()


def _stack(dataset, limit: int | None = None) -> SplitTensors:
    """The samples ``(x, label)`` of a dataset (at most ``limit``, :func:`_evenly_spaced`) as :class:`SplitTensors`."""
    index = _evenly_spaced(len(dataset), limit)
    xs, ys = zip(*(dataset[i] for i in index), strict=True)
    lengths = getattr(dataset, "valid_lengths", None)
    return SplitTensors(torch.stack(xs), torch.tensor(ys, dtype=torch.long),
                        lengths=None if lengths is None else lengths[index].clone())


def _limited(split: SplitTensors, limit: int | None) -> SplitTensors:
    """At most ``limit`` samples of an in-memory split (:func:`_evenly_spaced`)."""
    n = split.x.shape[0]
    return split if limit is None or limit >= n else split.select(torch.tensor(_evenly_spaced(n, limit)))


def spike_timing(root: Root, seed: int, classes: int = 5, channels: int = 40, steps: int = 60,
                 train_per_class: int = 80, test_per_class: int = 40, jitter: float = 1.5, deletion: float = 0.1,
                 background: float = 0.01) -> Task:
    """Generated spike-timing patterns (:mod:`iirsnn.data.spike_timing`): classes differ only in timing."""
    from iirsnn.data import spike_timing as st

    g = torch.Generator().manual_seed(seed)
    times = st.templates(classes, channels, steps, g)
    splits = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        y = st.balanced_labels(classes, per_class, g)
        splits[split] = SplitTensors(st.corrupted_samples(times, y, steps, jitter, deletion, background, g), y)
    return TensorTask("spike-timing", "classification", splits, classes,
                      description=f"{classes} spike-timing patterns on {channels} channels, {steps} steps")


def _series_splits(train_set, test_set, limit: int | None = None) -> dict[str, SplitTensors]:
    stats = train_set.channel_stats()
    train_set.normalize = test_set.normalize = stats
    return {"train": _stack(train_set, limit), "test": _stack(test_set, limit)}


def auslan(root: Root, seed: int, length: int = 60, mode: str = "resample", test_session: int = 9,
           limit: int | None = None) -> Task:
    """Australian Sign Language HQ: 95 signs, 22 channels; test = one recording session (default 9)."""
    from iirsnn.data.auslan import Auslan

    common = dict(root=root, test_session=test_session, length=length, mode=mode)
    splits = _series_splits(Auslan(split="train", **common), Auslan(split="test", **common), limit)
    from iirsnn.data.auslan import CLASSES
    return TensorTask("auslan", "classification", splits, len(CLASSES), list(CLASSES),
                      description=f"Auslan HQ, 22 channels, {length} frames ({mode}), test session {test_session}")


def japanese_vowels(root: Root, seed: int, length: int = 29, mode: str = "pad") -> Task:
    """Japanese Vowels: 9 speakers, 12 LPC channels, upstream train (270) / test (370)."""
    from iirsnn.data.japanese_vowels import CLASSES, JapaneseVowels

    splits = _series_splits(JapaneseVowels(root, "train", length, mode), JapaneseVowels(root, "test", length, mode))
    return TensorTask("japanese-vowels", "classification", splits, len(CLASSES), list(CLASSES),
                      description=f"Japanese Vowels, 12 channels, {length} frames ({mode})")


def uea(root: Root, seed: int, problem: str = "", length: int | None = None, mode: str = "pad") -> Task:
    """Any UEA/UCR multivariate problem in ``<root>/<problem>/`` (.ts or .arff)."""
    from iirsnn.data.uea import UEA

    if not problem:
        raise ValueError("the uea task needs data.options.problem (e.g. --problem JapaneseVowels)")
    train = UEA(problem, root, "train", length=length, mode=mode)
    test = UEA(problem, root, "test", length=train.length, mode=mode if length is not None else "pad")
    splits = _series_splits(train, test)
    return TensorTask(f"uea:{problem}", "classification", splits, len(train.classes), list(train.classes),
                      description=f"UEA {problem}, {train.series[0].shape[1]} channels, {train.length} frames")


NORMALIZATIONS = ("channels", "utterance")


def _standardised(parts: dict[str, SplitTensors], normalize: str = "channels") -> dict[str, SplitTensors]:
    """Per-channel standardisation of [N, T, C] features with the training split's statistics; with
    ``normalize="utterance"`` each utterance is first standardised per channel over its own frames (cepstral
    mean and variance normalisation: it removes a speaker's and a microphone's constant offsets)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {list(NORMALIZATIONS)}, got {normalize!r}")
    if normalize == "utterance":
        parts = {name: SplitTensors((s.x - s.x.mean(1, keepdim=True)) / s.x.std(1, keepdim=True).clamp(min=1e-6),
                                    s.y, s.target, s.lengths) for name, s in parts.items()}
    frames = parts["train"].x.reshape(-1, parts["train"].x.shape[-1])
    mean, std = frames.mean(0), frames.std(0).clamp(min=1e-6)
    return {name: SplitTensors((s.x - mean) / std, s.y, s.target, s.lengths) for name, s in parts.items()}


def fsdd(root: Root, seed: int, split: str = "standard", held_out_speakers: Sequence[str] = ("theo",),
         val_speakers: Sequence[str] = (), normalize: str = "channels", n_mfcc: int = 20, n_frames: int = 90,
         limit: int | None = None) -> Task:
    """Free Spoken Digit Dataset as MFCC [n_frames, n_mfcc]: ``split="standard"`` (repetitions 0-4 of every
    speaker are the test set) or ``"speakers"`` (``held_out_speakers`` are the test set, and
    ``val_speakers``, when given, the validation set: a speaker-independent selection). ``normalize``:
    see :func:`_standardised`."""
    from iirsnn.data.audio import MfccConfig
    from iirsnn.data.fsdd import CLASSES, FSDD

    if split not in ("standard", "speakers"):
        raise ValueError(f"fsdd split must be 'standard' or 'speakers', got {split!r}")
    if isinstance(held_out_speakers, str) or isinstance(val_speakers, str):
        raise ValueError("held_out_speakers and val_speakers must be lists of speaker names")
    if val_speakers and split != "speakers":
        raise ValueError("val_speakers needs split='speakers'")
    if set(val_speakers) & set(held_out_speakers):
        raise ValueError(f"val_speakers {list(val_speakers)} overlap the held-out test speakers "
                         f"{list(held_out_speakers)}")
    mfcc = MfccConfig(n_mfcc=n_mfcc, n_frames=n_frames)
    # (the FSDD split, the speakers it holds out: the test split holds exactly those)
    plan = {"train": ("train", [*held_out_speakers, *val_speakers]), "test": ("test", list(held_out_speakers))}
    if val_speakers:
        plan["val"] = ("test", list(val_speakers))
    parts = {}
    for name, (fsdd_split, held) in plan.items():
        held = held if split == "speakers" else None
        files = None
        if limit is not None:  # MFCC of the chosen recordings only
            names = [r.name for r in FSDD(root, fsdd_split, held_out_speakers=held, mfcc=mfcc, cache=False).recordings]
            files = [names[i] for i in _evenly_spaced(len(names), limit)]
        parts[name] = _stack(FSDD(root, fsdd_split, held_out_speakers=held, files=files, mfcc=mfcc))
    described = f"{split} split" + (f", validation speakers {', '.join(val_speakers)}" if val_speakers else "")
    return TensorTask("fsdd", "classification", _standardised(parts, normalize), len(CLASSES), list(CLASSES),
                      description=f"FSDD spoken digits, MFCC {n_mfcc} x {n_frames}, {described}, {normalize} "
                                  "normalisation")


def tidigits(root: Root, seed: int, normalize: str = "channels", n_mfcc: int = 20, n_frames: int = 90) -> Task:
    """TIDIGITS isolated digits (11 classes) as MFCC [n_frames, n_mfcc], the corpus' own train/test split."""
    from iirsnn.data.audio import MfccConfig
    from iirsnn.data.tidigits import CLASSES, TIDIGITS

    mfcc = MfccConfig(n_mfcc=n_mfcc, n_frames=n_frames)
    parts = {s: _stack(TIDIGITS(root, s, mfcc=mfcc)) for s in ("train", "test")}
    return TensorTask("tidigits", "classification", _standardised(parts, normalize), len(CLASSES), list(CLASSES),
                      description=f"TIDIGITS isolated digits, MFCC {n_mfcc} x {n_frames}")


def mnist(root: Root, seed: int, limit: int | None = None) -> Task:
    """MNIST images [1, 28, 28] in [0, 1] (static: an encoder makes the steps)."""
    from iirsnn.data.mnist import CLASSES, MNIST

    splits = {}
    for split, train in (("train", True), ("test", False)):
        data = MNIST(root, train=train)
        images = data.images.unsqueeze(1)
        splits[split] = _limited(SplitTensors(images, data.targets), limit)
        splits[split].x = splits[split].x.to(torch.float32).div_(255.0)
    return TensorTask("mnist", "classification", splits, 10, list(CLASSES), static=True,
                      description="MNIST digits, 1 x 28 x 28 analog pixels")


def _frames(dataset, limit: int | None) -> SplitTensors:
    """Event frames [N, T, 2, H, W] kept as uint8 (counts clipped at 255; the batches are float32)."""
    index = _evenly_spaced(len(dataset), limit)
    xs = [dataset[i][0].clamp(max=255).to(torch.uint8) for i in index]
    return SplitTensors(torch.stack(xs), dataset.targets[index].clone())


def nmnist(root: Root, seed: int, release: str = "auto", steps: int = 30, duration_us: int = 300_000,
           binary: bool = True, limit: int | None = None) -> Task:
    """N-MNIST as event frames [steps, 2, 34, 34]: ``steps`` bins over the first ``duration_us`` of each
    recording, 1 where a bin has any event when ``binary`` (OR), else the event count. ``release``:
    ``"nmnist"`` (the original), ``"nmnist_small"`` (SLAYER's 1,000/100 subset) or ``"auto"`` (the original
    when present)."""
    from iirsnn.data.files import data_root
    from iirsnn.data.nmnist import NMNIST

    if release not in ("auto", "nmnist", "nmnist_small"):
        raise ValueError(f"release must be 'auto', 'nmnist' or 'nmnist_small', got {release!r}")
    if release == "auto":
        release = "nmnist" if (data_root(root) / "nmnist").is_dir() else "nmnist_small"
    splits = {split: _frames(NMNIST(root, train=train, T=steps, duration_us=duration_us, binary=binary,
                                    name=release), limit) for split, train in (("train", True), ("test", False))}
    return TensorTask("nmnist", "classification", splits, 10, [str(k) for k in range(10)],
                      description=f"N-MNIST ({release}), {steps} {'OR' if binary else 'count'} bins over "
                                  f"{duration_us / 1000:g} ms, 2 x 34 x 34")


def _without_class(split: SplitTensors, label: int) -> SplitTensors:
    keep = split.y != label
    return SplitTensors(split.x[keep], split.y[keep])


def dvs_gesture(root: Root, seed: int, release: str = "auto", steps: int = 30, duration_us: int = 1_450_000,
                downsample: int = 4, binary: bool = True, classes: int = 11) -> Task:
    """DVS128 Gesture as event frames [steps, 2, 128/d, 128/d]: ``classes`` 11 as released ("other" included),
    or 10 without the "other" gestures (the paper's "10 gestures").
    ``release="samples"`` (or ``"auto"`` without the IBM release) uses SLAYER's ten sample streams as both the
    training and the test split: a smoke test of the pipeline, not an accuracy."""
    from iirsnn.data.dvs_gesture import CLASSES, DVSGesture, DVSGestureSamples
    from iirsnn.data.files import data_root

    if release not in ("auto", "ibm", "samples"):
        raise ValueError(f"release must be 'auto', 'ibm' or 'samples', got {release!r}")
    if classes not in (10, 11):
        raise ValueError(f"classes must be 11 (as released) or 10 (without 'other_gestures'), got {classes!r}")
    if release == "auto":
        release = "ibm" if (data_root(root) / "dvs128_gesture").is_dir() else "samples"
    options = dict(T=steps, duration_us=duration_us, downsample=downsample, binary=binary)
    if release == "ibm":
        splits = {split: _frames(DVSGesture(root, train=train, **options), None)
                  for split, train in (("train", True), ("test", False))}
    else:
        samples = _frames(DVSGestureSamples(root, **options), None)
        splits = {"train": samples, "val": samples, "test": samples}
    if classes == 10:
        splits = {name: _without_class(split, len(CLASSES) - 1) for name, split in splits.items()}
    return TensorTask("dvs-gesture", "classification", splits, classes, list(CLASSES[:classes]),
                      description=f"DVS128 Gesture ({release}), {steps} bins, {128 // downsample}^2 frames")


TASKS: dict[str, TaskEntry] = {
    "spike-timing": TaskEntry(spike_timing, None, "generated spike-timing patterns (no data needed)"),
    "auslan": TaskEntry(auslan, "auslan_hq", "Australian Sign Language HQ, 95 signs"),
    "japanese-vowels": TaskEntry(japanese_vowels, "japanese_vowels", "Japanese Vowels, 9 speakers"),
    "uea": TaskEntry(uea, "uea", "a UEA/UCR multivariate problem (data.options.problem)"),
    "fsdd": TaskEntry(fsdd, "fsdd", "Free Spoken Digit Dataset (MFCC)"),
    "tidigits": TaskEntry(tidigits, "tidigits", "TIDIGITS isolated digits (MFCC)"),
    "mnist": TaskEntry(mnist, "mnist", "MNIST digits"),
    "nmnist": TaskEntry(nmnist, "nmnist_small", "N-MNIST event frames (the original release, or SLAYER's subset)"),
    "dvs-gesture": TaskEntry(dvs_gesture, "dvs128_gesture_slayer_samples", "DVS128 Gesture event frames"),
    "assoc-memory": TaskEntry(associative_memory, "associative_memory",
                              "associative memory: reconstruct ten 300 x 300 spike patterns from corrupted copies",
                              own_validation=True),
}


def register(name: str, entry: TaskEntry) -> None:
    """Add a task (e.g. one of a user's own datasets) under ``name``."""
    TASKS[name] = entry


def build_task(name: str, root: Root = None, options: dict | None = None, seed: int = 0,
               val_fraction: float = 0.1, split_seed: int = 0) -> Task:
    """The task ``name`` built with ``options``, its validation split carved from the training data."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    entry = TASKS[name]
    options = dict(options or {})
    parameters = inspect.signature(entry.build).parameters
    known = [p for p in parameters if p not in ("root", "seed")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} of task {name!r}; its options: {known}")
    task = entry.build(root, seed, **options)
    if not entry.own_validation and isinstance(task, TensorTask) and "val" not in task.splits:
        train, val = carve_validation(task.splits["train"], val_fraction, split_seed)
        task.splits["train"] = train
        if val is not None:
            task.splits["val"] = val
    return task

"""Event transforms: time bins, frames, downsampling, cropping, packed frames, tonic's event layout."""

import numpy as np
import pytest
import torch

from iirsnn.data.errors import CorruptFileError
from iirsnn.data.events import (
    EVENT_DTYPE,
    FrameDataset,
    PackedFrames,
    crop_time,
    downsample,
    downsampled_size,
    frame_index,
    make_events,
    time_bins,
    to_frames,
)


def events_of(*rows: tuple[int, int, int, int]) -> np.ndarray:
    """Events from (x, y, t, p) rows."""
    x, y, t, p = (np.array(column) for column in zip(*rows, strict=True))
    return make_events(x, y, t, p)


EVENTS = events_of((0, 0, 0, 1), (1, 2, 5, 0), (1, 2, 6, 0), (3, 1, 9, 1))


def random_events(rng: np.random.Generator, n: int, width: int = 16, height: int = 12, span: int = 1000) -> np.ndarray:
    return make_events(rng.integers(0, width, n), rng.integers(0, height, n), np.sort(rng.integers(0, span, n)),
                       rng.integers(0, 2, n))


def test_make_events_has_tonics_layout():
    assert EVENTS.dtype == EVENT_DTYPE
    assert EVENT_DTYPE.names == ("x", "y", "t", "p")
    assert EVENTS["t"].tolist() == [0, 5, 6, 9]
    assert EVENTS["p"].tolist() == [True, False, False, True]
    with pytest.raises(ValueError, match="one length"):
        make_events([0, 1], [0], [0, 1], [0, 1])


def test_frames_count_each_event_in_its_bin_polarity_and_pixel():
    frames = to_frames(EVENTS, (4, 3), n_time_bins=2, duration=10)
    assert frames.shape == (2, 2, 3, 4) and frames.dtype == np.float32
    assert frames[0, 1, 0, 0] == 1  # t=0, ON, y=0, x=0
    assert frames[1, 0, 2, 1] == 2  # t=5 and t=6, OFF, y=2, x=1
    assert frames[1, 1, 1, 3] == 1  # t=9, ON, y=1, x=3
    assert frames.sum() == 4


def test_binary_frames_mark_cells_with_any_event():
    frames = to_frames(EVENTS, (4, 3), n_time_bins=2, duration=10, binary=True)
    assert frames.max() == 1 and frames.sum() == 3


def test_time_window_gives_bins_of_that_width_and_a_shorter_last_one():
    frames = to_frames(EVENTS, (4, 3, 2), time_window=4, duration=10)
    assert frames.shape[0] == 3  # [0, 4), [4, 8), [8, 10)
    assert frames.sum(axis=(1, 2, 3)).tolist() == [1, 2, 1]


def test_window_start_and_duration_leave_out_events_outside():
    frames = to_frames(EVENTS, (4, 3), n_time_bins=1, start=5, duration=4)  # [5, 9): t=9 is out
    assert frames.sum() == 2 and frames[0, 0, 2, 1] == 2


def test_default_duration_reaches_the_last_event():
    bins, inside, T = time_bins(EVENTS["t"], n_time_bins=10)
    assert T == 10 and inside.all() and bins.tolist() == [0, 5, 6, 9]


def test_equal_bins_split_the_window_exactly():
    t = np.arange(0, 300, dtype=np.int64)
    bins, inside, T = time_bins(t, n_time_bins=3, duration=300)
    assert T == 3 and inside.all() and np.bincount(bins).tolist() == [100, 100, 100]


def test_crop_time_is_half_open_and_keeps_times():
    cropped = crop_time(EVENTS, 5, 9)
    assert cropped["t"].tolist() == [5, 6]
    with pytest.raises(ValueError, match="start <= end"):
        crop_time(EVENTS, 9, 5)


def test_downsample_pools_blocks_of_pixels():
    xs, ys = np.meshgrid(np.arange(8), np.arange(8))
    events = make_events(xs.ravel(), ys.ravel(), np.zeros(64, np.int64), np.ones(64, np.int64))
    small = downsample(events, 4)
    assert downsampled_size((8, 8), 4) == (2, 2)
    assert downsampled_size((128, 128), 4) == (32, 32)
    assert downsampled_size((130, 128, 2), 4) == (33, 32)
    frames = to_frames(small, (2, 2), n_time_bins=1, duration=1)
    assert (frames[0, 1] == 16).all() and frames[0, 0].sum() == 0
    assert events["x"].max() == 7  # the input is not changed


def test_downsampled_frames_equal_sum_pooled_frames():
    rng = np.random.default_rng(0)
    events = random_events(rng, 5000, width=32, height=32)
    full = torch.from_numpy(to_frames(events, (32, 32), n_time_bins=5, duration=1000))
    pooled = torch.nn.functional.avg_pool2d(full, 4) * 16
    small = to_frames(downsample(events, 4), downsampled_size((32, 32), 4), n_time_bins=5, duration=1000)
    torch.testing.assert_close(torch.from_numpy(small), pooled)


def test_tonic_event_layouts_give_the_same_frames():
    """tonic's NMNIST uses int fields x, y, t, p; its DVSGesture orders the fields x, y, p, t."""
    nmnist = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
    gesture = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
    expected = to_frames(EVENTS, (4, 3), n_time_bins=2, duration=10)
    for dtype in (nmnist, gesture):
        other = np.empty(len(EVENTS), dtype)
        for name in "xytp":
            other[name] = EVENTS[name]
        np.testing.assert_array_equal(to_frames(other, (4, 3), n_time_bins=2, duration=10), expected)


def test_bad_arguments_raise_with_the_reason():
    with pytest.raises(TypeError, match="structured array"):
        to_frames(np.zeros((4, 4)), (4, 3), n_time_bins=2)
    with pytest.raises(ValueError, match="exactly one"):
        to_frames(EVENTS, (4, 3), n_time_bins=2, time_window=3)
    with pytest.raises(ValueError, match="exactly one"):
        to_frames(EVENTS, (4, 3))
    with pytest.raises(ValueError, match="outside the 3 x 3 sensor"):
        to_frames(EVENTS, (3, 3), n_time_bins=2)
    with pytest.raises(ValueError, match="sensor_size"):
        to_frames(EVENTS, (4, 3, 1), n_time_bins=2)
    with pytest.raises(ValueError, match="n_time_bins must be a positive int"):
        to_frames(EVENTS, (4, 3), n_time_bins=0)
    with pytest.raises(ValueError, match="give duration"):
        to_frames(EVENTS[:0], (4, 3), n_time_bins=2)
    with pytest.raises(TypeError, match="integers"):
        time_bins(np.array([0.5, 1.0]), n_time_bins=2)
    assert to_frames(EVENTS[:0], (4, 3), n_time_bins=2, duration=10).sum() == 0


def test_packed_frames_round_trip_to_dense_frames():
    rng = np.random.default_rng(1)
    samples = [random_events(rng, n) for n in (0, 1, 50, 3000)]
    window = {"n_time_bins": 4, "duration": 1000}
    packed = PackedFrames.from_indices((frame_index(e, (16, 12), **window)[0] for e in samples), (4, 2, 12, 16))
    assert len(packed) == 4 and packed.count.dtype == torch.uint8 and packed.index.dtype == torch.int32
    restored = PackedFrames.from_tensors(packed.to_tensors(), "test")
    for i, events in enumerate(samples):
        expected = torch.from_numpy(to_frames(events, (16, 12), **window))
        torch.testing.assert_close(packed[i], expected)
        torch.testing.assert_close(restored[i], expected)
    torch.testing.assert_close(packed[-1], packed[3])
    with pytest.raises(IndexError):
        packed[4]


def test_packed_frames_widen_the_count_type_for_large_counts():
    index = np.zeros(300, np.int64)  # 300 events in one cell
    packed = PackedFrames.from_indices([index], (1, 2, 1, 1))
    assert packed.count.dtype == torch.int16 and packed[0][0, 0, 0, 0] == 300


def test_inconsistent_packed_tensors_are_reported():
    tensors = PackedFrames.from_indices([np.array([0, 1, 1])], (1, 2, 1, 1)).to_tensors()
    broken = dict(tensors, offsets=torch.tensor([0, 5]))
    with pytest.raises(CorruptFileError, match="cache entry X: packed frames are inconsistent"):
        PackedFrames.from_tensors(broken, "cache entry X")
    with pytest.raises(CorruptFileError, match="lack"):
        PackedFrames.from_tensors({"index": tensors["index"]}, "cache entry X")
    out_of_range = dict(tensors, index=torch.tensor([0, 7], dtype=torch.int32))
    with pytest.raises(CorruptFileError, match="inconsistent"):
        PackedFrames.from_tensors(out_of_range, "cache entry X")


def test_frame_dataset_applies_binary_and_transform():
    packed = PackedFrames.from_indices([np.array([0, 0, 3]), np.array([1])], (1, 2, 1, 2))
    dataset = FrameDataset(packed, torch.tensor([1, 0]), ["a", "b"], binary=True, transform=lambda f: f * 10)
    frames, label = dataset[0]
    assert label == 1 and isinstance(label, int)
    assert frames.tolist() == [[[[10.0, 0.0]], [[0.0, 10.0]]]]
    with pytest.raises(CorruptFileError, match="2 frame stacks for 3 labels"):
        FrameDataset(packed, torch.tensor([1, 0, 1]), ["a", "b"], binary=False, transform=None)

"""Fixed lengths, standardisation, the current-based LIF encoding and the series dataset base."""

import math

import pytest
import torch
from torch.utils.data import DataLoader

from iirsnn.data import CorruptFileError
from iirsnn.data.timeseries import (
    ChannelStats,
    CurrentLIFEncoding,
    SeriesDataset,
    channel_stats,
    common_length,
    fit_length,
    parse_rows,
    resample,
    valid_lengths,
)
from iirsnn.functional.encoders import current_lif_encoder


def ramp(steps: int, channels: int = 2) -> torch.Tensor:
    """[steps, channels] with x[t, c] = t + 100 c."""
    return torch.arange(steps, dtype=torch.float32)[:, None] + 100 * torch.arange(channels)[None, :]


def test_common_length_defaults_to_the_longest_and_never_cuts_in_pad_mode():
    lengths = torch.tensor([3, 7, 5])
    assert common_length(lengths, None, "pad") == 7
    assert common_length(lengths, 9, "pad") == 9
    assert common_length(lengths, 4, "crop") == 4
    assert common_length(lengths, 4, "resample") == 4
    with pytest.raises(ValueError, match=r"2 series are longer than length=4.*mode='crop'"):
        common_length(lengths, 4, "pad")
    with pytest.raises(ValueError, match="explicit length"):
        common_length(lengths, None, "resample")
    with pytest.raises(ValueError, match="mode must be one of"):
        common_length(lengths, 4, "truncate")
    for bad in (0, -3, True, 2.5):
        with pytest.raises(ValueError, match="positive int"):
            common_length(lengths, bad, "pad")


def test_fit_length_pads_with_zeros_crops_only_when_asked_and_resamples():
    x = ramp(5)
    padded = fit_length(x, 8, "pad")
    assert padded.shape == (8, 2)
    assert torch.equal(padded[:5], x) and torch.equal(padded[5:], torch.zeros(3, 2))
    assert torch.equal(fit_length(x, 3, "crop"), x[:3])
    assert torch.equal(fit_length(x, 8, "crop"), padded)
    with pytest.raises(ValueError, match="never cuts"):
        fit_length(x, 3, "pad")
    assert fit_length(x, 5, "pad") is x
    stretched = fit_length(x, 9, "resample")
    assert stretched.shape == (9, 2)
    assert torch.allclose(stretched[:, 0], torch.linspace(0, 4, 9))  # linear in t: exact interpolation
    assert torch.allclose(stretched[:, 1], torch.linspace(100, 104, 9))


def test_resample_keeps_end_points_and_repeats_a_single_frame():
    x = torch.tensor([[0.0], [10.0], [0.0]])
    y = resample(x, 5)
    assert torch.allclose(y[:, 0], torch.tensor([0.0, 5.0, 10.0, 5.0, 0.0]))
    assert torch.allclose(resample(x, 2)[:, 0], torch.tensor([0.0, 0.0]))
    assert torch.equal(resample(torch.tensor([[3.0, 4.0]]), 4), torch.tensor([[3.0, 4.0]] * 4))
    assert resample(torch.zeros(6, 2, 3), 4).shape == (4, 2, 3)


def test_valid_lengths_follow_the_mode():
    lengths = torch.tensor([3, 7, 5])
    assert valid_lengths(lengths, 7, "pad").tolist() == [3, 7, 5]
    assert valid_lengths(lengths, 4, "crop").tolist() == [3, 4, 4]
    assert valid_lengths(lengths, 6, "resample").tolist() == [6, 6, 6]


def test_channel_stats_ignore_missing_values_and_constant_channels():
    a = torch.tensor([[1.0, 5.0, 2.0], [3.0, 5.0, float("nan")]])
    b = torch.tensor([[5.0, 5.0, 4.0]])
    stats = channel_stats([a, b])
    assert torch.allclose(stats.mean, torch.tensor([3.0, 5.0, 3.0]))
    assert torch.allclose(stats.std, torch.tensor([math.sqrt(8 / 3), 1.0, 1.0]))
    z = stats(torch.cat([a, b]))
    assert torch.allclose(z[:, 1], torch.zeros(3))
    assert torch.isnan(z[1, 2])
    with pytest.raises(ValueError, match=r"channels \[0\] have no observed"):
        channel_stats([torch.tensor([[float("nan"), 1.0]])])
    with pytest.raises(ValueError, match="at least one series"):
        channel_stats([])
    with pytest.raises(ValueError, match="3 channels"):
        ChannelStats(torch.zeros(2), torch.ones(2))(torch.zeros(4, 3))


def test_current_lif_encoding_splits_signs_into_two_neuron_populations():
    x = torch.zeros(40, 3)
    x[:, 0] = 0.8
    x[:, 1] = -0.8
    spikes = CurrentLIFEncoding()(x)
    assert spikes.shape == (40, 6)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert spikes[:, 0].sum() > 0 and spikes[:, 4].sum() > 0  # channel 0 positive, channel 1 negative
    assert spikes[:, [1, 2, 3, 5]].sum() == 0  # silent: channel 1 positive, channel 2 (zero), 0 negative
    assert torch.equal(spikes[:, 0], spikes[:, 4])  # symmetric currents, symmetric trains
    single = CurrentLIFEncoding(split_sign=False)(x)
    assert single.shape == (40, 3) and single[:, 1].sum() == 0
    batch = current_lif_encoder(x.unsqueeze(1), split_sign=True)
    assert torch.equal(spikes, batch[:, 0])


def test_current_lif_encoding_rate_follows_the_current_without_leak():
    x = torch.full((200, 1), 0.3)
    spikes = CurrentLIFEncoding(tau=math.inf, split_sign=False)(x)
    assert abs(spikes.sum().item() - 0.3 * 200) <= 1  # an integrate-and-fire neuron is a sigma-delta coder
    louder = CurrentLIFEncoding(tau=math.inf, split_sign=False, gain=2.0)(x)
    assert abs(louder.sum().item() - 0.6 * 200) <= 1


def make_dataset(**kwargs) -> SeriesDataset:
    series = [ramp(3) + 1, ramp(6) + 1, ramp(4) + 1]
    return SeriesDataset(series, torch.tensor([1, 0, 1]), ["a", "b"], **kwargs)


def test_series_dataset_fits_every_sample_and_keeps_lengths():
    data = make_dataset()
    assert len(data) == 3 and data.length == 6
    assert data.lengths.tolist() == [3, 6, 4] and data.valid_lengths.tolist() == [3, 6, 4]
    x, y = data[0]
    assert x.shape == (6, 2) and y == 1 and isinstance(y, int)
    assert torch.equal(x[:3], ramp(3) + 1) and not x[3:].any()
    batch, labels = next(iter(DataLoader(data, batch_size=3)))
    assert batch.shape == (3, 6, 2) and labels.tolist() == [1, 0, 1]
    cropped = make_dataset(length=4, mode="crop")
    assert cropped.valid_lengths.tolist() == [3, 4, 4] and torch.equal(cropped[1][0], ramp(4) + 1)
    with pytest.raises(ValueError, match="longer than length=4"):
        make_dataset(length=4)
    with pytest.raises(ValueError, match="3 series but 2 targets"):
        SeriesDataset([ramp(2)] * 3, torch.tensor([0, 1]), ["a", "b"])


def test_series_dataset_standardises_before_padding_and_transforms_last():
    data = make_dataset()
    stats = data.channel_stats()
    data.normalize = stats
    x, _ = data[0]
    assert torch.allclose(x[:3], stats(ramp(3) + 1))
    assert not x[3:].any()  # padding stays exactly zero after standardisation
    frames = torch.cat([stats(s) for s in data.series])
    assert torch.allclose(frames.mean(0), torch.zeros(2), atol=1e-6)
    assert torch.allclose(frames.std(0, unbiased=False), torch.ones(2), atol=1e-6)
    encoded = make_dataset(normalize=stats, transform=CurrentLIFEncoding())
    spikes, _ = encoded[1]
    assert spikes.shape == (6, 4)
    assert torch.equal(spikes, CurrentLIFEncoding()(stats(ramp(6) + 1)))


def test_parse_rows_checks_every_line_and_reports_row_lines():
    rows, lines = parse_rows(["1 2", "", " 3\t4 ", "5 6\r"], 2, "t.txt", skip_blank=True)
    assert rows.tolist() == [[1, 2], [3, 4], [5, 6]] and lines.tolist() == [0, 2, 3]
    cases = {
        "line 2 has 0 values": (["1 2", "", "3 4"], False),
        "line 2 has 1 values, expected 2": (["1 2", "3"], True),
        "line 2: '4,5' is not a number": (["1 2", "3 4,5"], True),
        "holds NaN or Inf": (["1 nan"], True),
    }
    for message, (text, skip_blank) in cases.items():
        with pytest.raises(CorruptFileError, match=f"t.txt: {message}"):
            parse_rows(text, 2, "t.txt", skip_blank=skip_blank)

"""The generated spike-timing task (the embedded default): its classes differ only in spike timing."""

import torch

from iirsnn.data import spike_timing as st


def test_spike_counts_do_not_tell_the_classes_apart_but_timing_does():
    """Nearest-centroid on spike counts stays near chance; nearest-centroid on the rasters is far above it."""
    g = torch.Generator().manual_seed(0)
    classes, channels, steps = 5, 40, 60
    times = st.templates(classes, channels, steps, g)
    y_train, y_test = st.balanced_labels(classes, 100, g), st.balanced_labels(classes, 100, g)
    x_train = st.corrupted_samples(times, y_train, steps, 1.5, 0.1, 0.01, g)  # [n, T, C]
    x_test = st.corrupted_samples(times, y_test, steps, 1.5, 0.1, 0.01, g)
    counts_train, counts_test = x_train.sum(1), x_test.sum(1)
    centroids = torch.stack([counts_train[y_train == c].mean(0) for c in range(classes)])
    predicted = torch.cdist(counts_test, centroids).argmin(1)
    assert float((predicted == y_test).float().mean()) < 0.3  # chance 0.2
    raster_centroids = torch.stack([x_train[y_train == c].mean(0).flatten() for c in range(classes)])
    predicted = torch.cdist(x_test.flatten(1), raster_centroids).argmin(1)
    assert float((predicted == y_test).float().mean()) > 0.6


def test_each_template_fires_every_channel_once_and_samples_are_binary():
    g = torch.Generator().manual_seed(1)
    times = st.templates(3, 10, 30, g)
    assert times.shape == (3, 10) and int(times.min()) >= 0 and int(times.max()) <= 24
    clean = st.corrupted_samples(times, torch.tensor([0, 1, 2]), 30, 0.0, 0.0, 0.0, g)
    assert torch.equal(clean.sum(1), torch.ones(3, 10))  # one spike per channel, at the template's time
    assert torch.equal(clean.argmax(1), times)
    labels = st.balanced_labels(3, 4, g)
    assert torch.equal(torch.bincount(labels), torch.tensor([4, 4, 4]))

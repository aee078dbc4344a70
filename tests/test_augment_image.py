"""Training-time augmentation of static images: crop and rotation do what they say, sample by sample."""

import math

import pytest
import torch

from iirsnn.data.tasks import Batch
from iirsnn.train.augment import active, augment
from iirsnn.train.augment_image import crop_rotate
from iirsnn.train.config import AugmentConfig, ConfigError, ExperimentConfig

B, H, W = 64, 28, 28


def _blob(row: float, col: float, sigma: float = 1.2) -> torch.Tensor:
    """A Gaussian spot [B, 1, H, W] at pixel (row, col) in every sample."""
    r = torch.arange(H, dtype=torch.float32).view(H, 1)
    c = torch.arange(W, dtype=torch.float32).view(1, W)
    spot = torch.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * sigma ** 2))
    return spot.expand(B, 1, H, W).clone()


def _centroids(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column [B] of each image's centre of mass, relative to the image centre."""
    r = torch.arange(H, dtype=torch.float32).view(1, H, 1) - (H - 1) / 2
    c = torch.arange(W, dtype=torch.float32).view(1, 1, W) - (W - 1) / 2
    mass = x[:, 0].sum((1, 2))
    return (x[:, 0] * r).sum((1, 2)) / mass, (x[:, 0] * c).sum((1, 2)) / mass


def test_rotation_turns_a_spot_about_the_centre_by_at_most_the_angle():
    torch.manual_seed(0)
    radius = 7.0
    out = crop_rotate(_blob((H - 1) / 2, (W - 1) / 2 + radius), crop=0.0, rotate=20.0, skip=0.0)
    rows, cols = _centroids(out)
    assert torch.allclose(torch.hypot(rows, cols), torch.full((B,), radius), atol=0.15)  # the radius is kept
    angles = torch.rad2deg(torch.atan2(rows, cols))
    assert angles.abs().max() <= 20.0 + 0.5
    assert angles.abs().max() > 10.0 and angles.min() < 0 < angles.max()  # both ways, not always small


def test_a_crop_zooms_in_and_never_reads_outside_the_image():
    torch.manual_seed(1)
    ones = torch.ones(B, 1, H, W)
    inside = crop_rotate(ones, crop=0.5, rotate=0.0, skip=0.0)[:, :, 1:-1, 1:-1]
    assert torch.allclose(inside, torch.ones_like(inside), atol=1e-5)  # the box lies inside the image
    spot = _blob((H - 1) / 2, (W - 1) / 2, sigma=2.0)
    out = crop_rotate(spot, crop=0.5, rotate=0.0, skip=0.0)
    spread = (out > 0.5).sum((1, 2, 3)).float() / (spot > 0.5).sum((1, 2, 3)).float()
    zoom_limit = 1 / (0.5 * 0.75)  # area >= 0.5, aspect ratio within [3/4, 4/3]: each side shrinks to >= 0.61
    assert spread.min() >= 0.9 and spread.max() <= zoom_limit * 1.1
    assert spread.mean() > 1.2  # it does zoom


def test_skip_leaves_that_share_of_images_exactly_as_they_were():
    torch.manual_seed(2)
    x = torch.rand(2000, 1, 8, 8)
    out = crop_rotate(x, crop=0.2, rotate=15.0, skip=0.5)
    untouched = (out == x).flatten(1).all(1).float().mean().item()
    assert abs(untouched - 0.5) < 0.05


def test_augment_routes_images_and_is_reproducible_from_the_seed():
    cfg = AugmentConfig(crop=0.15, rotate=15.0, image_skip=0.5)
    assert active(cfg, "image") == ["crop", "rotate", "image_skip"] and not active(cfg, "series")
    batch = Batch(torch.rand(B, 1, H, W), torch.zeros(B, dtype=torch.long), None, None)
    torch.manual_seed(3)
    first = augment(batch, cfg).x
    torch.manual_seed(3)
    assert torch.equal(first, augment(batch, cfg).x)
    assert not torch.equal(first, batch.x) and first.shape == batch.x.shape


@pytest.mark.parametrize("key, value, message", [
    ("crop", 1.0, "augment.crop"), ("crop", -0.1, "augment.crop"), ("rotate", 200.0, "augment.rotate"),
    ("image_skip", 1.0, "augment.image_skip"), ("image_skip", 0.5, "set augment.crop or augment.rotate"),
])
def test_impossible_image_augmentation_is_refused_by_name(key, value, message):
    cfg = ExperimentConfig()
    setattr(cfg.augment, key, value)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        cfg.check()


def test_the_aspect_ratio_is_respected_on_non_square_images():
    torch.manual_seed(4)
    r = torch.arange(20, dtype=torch.float32).view(20, 1)
    c = torch.arange(40, dtype=torch.float32).view(1, 40)
    x = torch.exp(-((r - 10) ** 2 + (c - 30) ** 2) / (2 * 1.5 ** 2)).expand(B, 1, 20, 40)  # right of the centre
    out = crop_rotate(x, crop=0.0, rotate=30.0, skip=0.0)
    r = torch.arange(20, dtype=torch.float32).view(1, 20, 1) - 9.5
    c = torch.arange(40, dtype=torch.float32).view(1, 1, 40) - 19.5
    mass = out[:, 0].sum((1, 2))
    radius = torch.hypot((out[:, 0] * r).sum((1, 2)) / mass, (out[:, 0] * c).sum((1, 2)) / mass)
    assert torch.allclose(radius, torch.full((B,), math.hypot(0.5, 10.5)), atol=0.2)  # a circle, not an ellipse

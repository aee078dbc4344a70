"""Training-time augmentation of static images [B, C, H, W]: a random resized crop and a rotation, as the
paper authors' MNIST examples do (torchvision's ``RandomResizedCrop(28, scale=(0.85, 1))`` and
``RandomRotation(15)`` under ``RandomApply(p=0.5)``).

Both act as one affine resampling per sample (bilinear, zeros outside the image), drawn from torch's global
generator, so an augmented run resumes bit for bit. Unlike the authors' code, whose ``RandomApply`` over
``[crop, rotate, Compose(crop, rotate)]`` crops and rotates a chosen image twice, a chosen image is cropped
once, then rotated once.
"""

from __future__ import annotations

import math

import torch

_LOG_RATIO = math.log(4 / 3)  # crop aspect ratios drawn log-uniformly from [3/4, 4/3], as torchvision's


def crop_rotate(x: torch.Tensor, crop: float, rotate: float, skip: float) -> torch.Tensor:
    """Images ``x`` [B, C, H, W], each (unless skipped, with probability ``skip``) cropped to a random box of
    area fraction in [1 - crop, 1] and aspect ratio in [3/4, 4/3] (a side longer than the image is cut to it),
    resized back to H x W, then rotated by an angle drawn uniformly from [-rotate, rotate] degrees. ``crop``
    0: no crop."""
    size = x.shape[0]
    area = 1.0 - crop * torch.rand(size, dtype=torch.float64)
    ratio = torch.exp(_LOG_RATIO * (2 * torch.rand(size, dtype=torch.float64) - 1)) if crop else torch.ones(size)
    width, height = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    # the box's centre, in the [-1, 1] coordinates of affine_grid, keeps the box inside the image
    centre_x = (1 - width) * (2 * torch.rand(size, dtype=torch.float64) - 1)
    centre_y = (1 - height) * (2 * torch.rand(size, dtype=torch.float64) - 1)
    angle = math.radians(rotate) * (2 * torch.rand(size, dtype=torch.float64) - 1)
    keep = torch.rand(size, dtype=torch.float64) < skip
    cos, sin = torch.cos(angle), torch.sin(angle)
    aspect = x.shape[-1] / x.shape[-2]  # a rotation in pixels, written in affine_grid's [-1, 1] coordinates
    # output pixel p reads the input at crop(rotation(p)): theta = [[w, 0, cx], [0, h, cy]] @ [[R, 0], [0, 1]]
    theta = torch.stack([torch.stack([width * cos, -width * sin / aspect, centre_x], 1),
                         torch.stack([height * sin * aspect, height * cos, centre_y], 1)], 1)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    theta = torch.where(keep.view(size, 1, 1), identity, theta).to(x.dtype)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.where(keep.view(size, 1, 1, 1), x, out)

"""Training-time augmentation of time-major series, applied to each training batch before the encoder
(static images: ``augment_image.py``).

Every transform of :class:`iirsnn.train.config.AugmentConfig` is off by default; the ones set act in this
order, each sample drawing its own values from torch's global generator (whose state checkpoints keep, so
an augmented run still resumes bit for bit):

1. ``warp``: stretch or compress the sample in time by a factor drawn uniformly from [1 - warp, 1 + warp]
   (linear interpolation of its valid frames, the result cut or zero-padded to T frames; ``lengths`` follow);
2. ``shift``: delay the sample by 0 .. shift frames (zeros in front, the last frames dropped);
3. ``scale``: multiply the sample by exp(N(0, scale^2)), one factor per sample;
4. ``noise``: add N(0, noise^2) to every value of the valid frames;
5. ``time_mask`` / ``channel_mask``: zero one run of up to that many consecutive frames / channels
   (SpecAugment's masks).

Series are standardised per channel, so zero is the training mean: padding and masks add no signal.
Validation and test batches are never augmented.
"""

from __future__ import annotations

import dataclasses

import torch

from iirsnn.data.tasks import Batch
from iirsnn.train.augment_image import crop_rotate
from iirsnn.train.config import AugmentConfig


def active(cfg: AugmentConfig, inputs: str | None = None) -> list[str]:
    """The names of the transforms set, of those for ``inputs`` (``"series"`` or ``"image"``) or of all."""
    return [f.name for f in dataclasses.fields(cfg)
            if getattr(cfg, f.name) and inputs in (None, f.metadata["inputs"])]


def augment(batch: Batch, cfg: AugmentConfig) -> Batch:
    """``batch`` with the transforms of ``cfg`` applied: series ``x`` [T, B, C...] time-major, or static
    images ``x`` [B, C, H, W] (crop and rotate)."""
    if active(cfg, "image"):
        x = crop_rotate(batch.x, cfg.crop, cfg.rotate, cfg.image_skip)
        return Batch(x, batch.y, batch.target, batch.lengths)
    x, lengths = batch.x, batch.lengths
    steps, size = x.shape[0], x.shape[1]
    if lengths is None:
        lengths = torch.full((size,), steps, dtype=torch.long, device=x.device)
    if cfg.warp:
        x, lengths = _warp(x, lengths, cfg.warp)
    if cfg.shift:
        x, lengths = _shift(x, lengths, cfg.shift)
    if cfg.scale:
        factor = torch.exp(cfg.scale * torch.randn(size, device=x.device, dtype=x.dtype))
        x = x * factor.view(1, size, *([1] * (x.dim() - 2)))
    if cfg.noise:
        valid = torch.arange(steps, device=x.device).view(steps, 1) < lengths.view(1, size)
        x = x + cfg.noise * torch.randn_like(x) * valid.view(steps, size, *([1] * (x.dim() - 2)))
    if cfg.time_mask:
        x = _mask(x, 0, cfg.time_mask)
    if cfg.channel_mask:
        x = _mask(x, 2, cfg.channel_mask)
    return Batch(x, batch.y, batch.target, lengths if batch.lengths is not None else None)


def _warp(x: torch.Tensor, lengths: torch.Tensor, warp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's valid frames resampled by a factor in [1 - warp, 1 + warp] (linear interpolation)."""
    steps, size = x.shape[0], x.shape[1]
    factor = 1.0 + warp * (2.0 * torch.rand(size, device=x.device) - 1.0)
    new_lengths = (lengths.to(factor.dtype) * factor).round().long().clamp(1, steps)
    t = torch.arange(steps, device=x.device, dtype=factor.dtype).view(steps, 1)
    # output frame t reads input position t * (L - 1) / (L' - 1), within the sample's valid frames
    ratio = (lengths - 1).to(factor.dtype) / (new_lengths - 1).clamp(min=1).to(factor.dtype)
    position = (t * ratio.view(1, size)).clamp(max=(lengths - 1).to(factor.dtype).view(1, size))
    low = position.floor().long()
    high = (low + 1).clamp(max=(lengths - 1).view(1, size))
    frac = (position - low.to(factor.dtype)).to(x.dtype)
    columns = torch.arange(size, device=x.device).view(1, size)
    extra = [1] * (x.dim() - 2)
    out = x[low, columns] * (1 - frac).view(steps, size, *extra) + x[high, columns] * frac.view(steps, size, *extra)
    valid = t < new_lengths.view(1, size)
    return out * valid.view(steps, size, *extra).to(x.dtype), new_lengths


def _shift(x: torch.Tensor, lengths: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample delayed by 0 .. shift frames."""
    steps, size = x.shape[0], x.shape[1]
    delay = torch.randint(0, shift + 1, (size,), device=x.device)
    source = torch.arange(steps, device=x.device).view(steps, 1) - delay.view(1, size)
    columns = torch.arange(size, device=x.device).view(1, size)
    out = x[source.clamp(min=0), columns]
    out = out * (source >= 0).view(steps, size, *([1] * (x.dim() - 2))).to(x.dtype)
    return out, (lengths + delay).clamp(max=steps)


def _mask(x: torch.Tensor, dim: int, width: int) -> torch.Tensor:
    """``x`` with one run of 0 .. width consecutive entries along ``dim`` zeroed in each sample."""
    extent, size = x.shape[dim], x.shape[1]
    run = torch.randint(0, min(width, extent) + 1, (size,), device=x.device)
    start = (torch.rand(size, device=x.device) * (extent - run + 1).to(torch.float32)).long()
    index = torch.arange(extent, device=x.device).view(extent, 1)
    hit = (index >= start.view(1, size)) & (index < (start + run).view(1, size))  # [extent, B]
    if dim == 0:
        hit = hit.view(extent, size, *([1] * (x.dim() - 2)))
    else:
        hit = hit.t().reshape(1, size, extent, *([1] * (x.dim() - 3)))
    return x.masked_fill(hit, 0.0)

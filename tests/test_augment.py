"""Training-time augmentation of series: each transform does what it says, sample by sample."""

import pytest
import torch

from iirsnn.data.tasks import Batch
from iirsnn.train.augment import active, augment
from iirsnn.train.config import AugmentConfig

T, B, C = 20, 16, 6


def _batch(lengths=None):
    x = torch.randn(T, B, C, generator=torch.Generator().manual_seed(0))
    if lengths is not None:
        x = x * (torch.arange(T).view(T, 1) < lengths.view(1, B)).view(T, B, 1)
    return Batch(x, torch.zeros(B, dtype=torch.long), None, lengths)


def test_nothing_set_is_inactive_and_the_identity():
    cfg = AugmentConfig()
    assert not active(cfg)
    batch = _batch()
    assert torch.equal(augment(batch, cfg).x, batch.x)


def test_warp_resamples_each_sample_linearly_to_its_new_length():
    torch.manual_seed(1)
    lengths = torch.randint(8, 15, (B,))
    ramp = torch.arange(T, dtype=torch.float32).view(T, 1, 1).expand(T, B, C).clone()
    ramp *= (torch.arange(T).view(T, 1) < lengths.view(1, B)).view(T, B, 1)
    out = augment(Batch(ramp, torch.zeros(B, dtype=torch.long), None, lengths), AugmentConfig(warp=0.3))
    changed = 0
    for b in range(B):
        n, m = int(lengths[b]), int(out.lengths[b])
        assert round(n * 0.7) - 1 <= m <= round(n * 1.3) + 1
        expected = torch.linspace(0, n - 1, m)  # a ramp stays a ramp from the first to the last valid frame
        assert torch.allclose(out.x[:m, b, 0], expected, atol=1e-4)
        assert torch.all(out.x[m:, b] == 0)
        changed += m != n
    assert changed > 0


def test_shift_delays_each_sample_by_at_most_shift_frames():
    torch.manual_seed(2)
    batch = _batch()
    out = augment(batch, AugmentConfig(shift=4))
    delays = set()
    for b in range(B):
        d = next(d for d in range(5) if torch.equal(out.x[d:, b], batch.x[: T - d, b]))
        assert torch.all(out.x[:d, b] == 0)
        delays.add(d)
    assert len(delays) > 1


def test_scale_multiplies_each_sample_by_one_positive_factor():
    torch.manual_seed(3)
    batch = _batch()
    out = augment(batch, AugmentConfig(scale=0.3))
    factors = (out.x / batch.x).permute(1, 0, 2).reshape(B, -1)  # [B, T * C]
    assert torch.allclose(factors, factors[:, :1].expand_as(factors), rtol=1e-5)
    assert torch.all(factors > 0) and factors[:, 0].std() > 0.05


def test_noise_has_the_asked_spread_and_leaves_padding_zero():
    torch.manual_seed(4)
    lengths = torch.full((B,), 12)
    batch = _batch(lengths)
    out = augment(batch, AugmentConfig(noise=0.5))
    delta = out.x - batch.x
    assert torch.all(delta[12:] == 0)
    assert abs(float(delta[:12].std()) - 0.5) < 0.05


@pytest.mark.parametrize("dim, key", [(0, "time_mask"), (2, "channel_mask")])
def test_a_mask_zeroes_one_run_of_at_most_width_entries(dim, key):
    torch.manual_seed(5)
    batch = _batch()
    out = augment(batch, AugmentConfig(**{key: 3}))
    for b in range(B):
        zeroed = (out.x[:, b] == 0).all(dim=1 if dim == 0 else 0)  # frames [T] or channels [C]
        hit = torch.nonzero(zeroed).flatten()
        assert hit.numel() <= 3
        if hit.numel():
            assert int(hit[-1] - hit[0]) + 1 == hit.numel()  # consecutive
        kept = ~zeroed
        assert torch.equal(out.x[:, b][kept] if dim == 0 else out.x[:, b][:, kept],
                           batch.x[:, b][kept] if dim == 0 else batch.x[:, b][:, kept])

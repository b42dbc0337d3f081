"""Input pipeline and augmentation: range, shape, channels; flip, rotation and mix-up really applied."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thyroid_bench.harness.preprocess import (
    augment,
    hflip,
    mixup,
    prepare_images,
    prepare_views,
    rotate,
    scale_counts,
    targets,
    to_channels,
)


def test_scale_counts_by_own_range():
    counts = np.array([[10, 20], [30, 110]], dtype=np.uint16)
    # (x - 10) * 255 / 100, rounded: 0, 25.5 -> 26 (round half to even gives 26), 51, 255
    assert scale_counts(counts).tolist() == [[0, 26], [51, 255]]
    assert scale_counts(np.full((4, 4), 7, dtype=np.uint16)).max() == 0  # flat image


def test_prepare_images_range_shape_and_values():
    rng = np.random.default_rng(0)
    imgs = [rng.poisson(5, (32, 32)).astype(np.uint16), rng.poisson(50, (16, 16)).astype(np.uint16)]
    x = prepare_images(imgs, 16)
    assert x.shape == (2, 1, 16, 16) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # The 16x16 image is not resized: exactly its 8-bit grayscale / 255.
    np.testing.assert_array_equal(x[1, 0].numpy(), scale_counts(imgs[1]).astype(np.float32) / 255)
    assert float(x[1].max()) == 1.0 and float(x[1].min()) == 0.0


def test_to_channels_replicates():
    x = torch.rand(2, 1, 8, 8)
    y = to_channels(x, 3)
    assert y.shape == (2, 3, 8, 8)
    assert torch.equal(y[:, 0], x[:, 0]) and torch.equal(y[:, 2], x[:, 0])
    assert to_channels(x, 1) is x


def test_hflip_only_where_masked():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    out = hflip(x, torch.tensor([True, False]))
    assert torch.equal(out[0, 0], x[0, 0, :, [3, 2, 1, 0]])
    assert torch.equal(out[1], x[1])


def test_rotation_by_90_equals_rot90():
    x = torch.rand(1, 1, 8, 8)
    out = rotate(x, torch.tensor([90.0]))
    # Counter-clockwise by 90 degrees, as torch.rot90 with k=1 over (H, W).
    torch.testing.assert_close(out, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(x, torch.tensor([0.0])), x, atol=1e-6, rtol=0)


def test_rotation_45_moves_pixels_and_zero_fills_corners():
    x = torch.ones(1, 1, 16, 16)
    out = rotate(x, torch.tensor([45.0]))
    assert float(out[0, 0, 0, 0]) == 0.0  # a corner comes from outside the image
    assert float(out[0, 0, 8, 8]) == pytest.approx(1.0)


def test_augment_is_seeded_and_applied():
    x = torch.rand(8, 1, 12, 12)
    a = augment(x, torch.Generator().manual_seed(1), hflip_p=0.5, rotation_deg=90)
    b = augment(x, torch.Generator().manual_seed(1), hflip_p=0.5, rotation_deg=90)
    assert torch.equal(a, b)
    assert not torch.allclose(a, x)
    assert torch.equal(augment(x, torch.Generator(), hflip_p=0.0, rotation_deg=0.0), x)
    flipped = augment(x, torch.Generator(), hflip_p=1.0, rotation_deg=0.0)
    assert torch.equal(flipped, x.flip(-1))


def test_mixup_targets_sum_to_one_and_mix_images():
    x = torch.rand(6, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    xm, t = mixup(x, y, 4, alpha=0.4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(t.sum(1), torch.ones(6))
    assert not torch.equal(xm, x)
    # Each mixed image is lam x_i + (1 - lam) x_j for one partner j and one lam for the batch,
    # and its target is lam onehot(y_i) + (1 - lam) onehot(y_j): fit lam per (i, j) by least squares.
    onehot = torch.nn.functional.one_hot(y, 4).float()
    lams = []
    for i in range(6):
        fits = []
        for j in range(6):
            d = (x[i] - x[j]).flatten()
            lam = float(((xm[i] - x[j]).flatten() @ d) / (d @ d)) if j != i else 1.0
            resid = float((xm[i] - (lam * x[i] + (1 - lam) * x[j])).abs().max())
            fits.append((resid, lam, j))
        resid, lam, j = min(fits)
        assert resid < 1e-5
        torch.testing.assert_close(t[i], lam * onehot[i] + (1 - lam) * onehot[j], atol=1e-5, rtol=0)
        if abs(lam - 1) > 1e-4:  # a case paired with itself fits any partner with lam = 1
            lams.append(lam)
    assert lams and max(lams) - min(lams) < 1e-5
    x0, t0 = mixup(x, y, 4, alpha=0.0, generator=torch.Generator())
    assert torch.equal(x0, x) and torch.equal(t0, onehot)


def test_prepare_views_stacks_each_view_prepared_on_its_own():
    rng = np.random.default_rng(1)
    anterior = [rng.poisson(5, (32, 32)).astype(np.uint16) for _ in range(3)]
    posterior = [rng.poisson(40, (32, 32)).astype(np.uint16) for _ in range(3)]
    x = prepare_views([anterior, posterior], 16)
    assert x.shape == (3, 2, 16, 16)
    assert torch.equal(x[:, :1], prepare_images(anterior, 16))
    assert torch.equal(x[:, 1:], prepare_images(posterior, 16))
    with pytest.raises(ValueError, match="one image per case"):
        prepare_views([anterior, posterior[:2]], 16)
    # two views feed a 2-channel model as they are, never a 3-channel one
    assert to_channels(x, 2) is x
    with pytest.raises(ValueError, match="in_chans=2"):
        to_channels(x, 3)


def test_targets_put_unknown_grades_in_their_own_column():
    y = torch.tensor([0, 3, -1, 1])
    t = targets(y, 4, unknown_column=True)
    assert t.tolist() == [[1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 1, 0, 0, 0]]
    assert torch.equal(targets(y[[0, 1, 3]], 4), torch.nn.functional.one_hot(y[[0, 1, 3]], 4))
    x = torch.rand(4, 2, 4, 4)
    gen_a, gen_b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    xm, tm = mixup(x, y, 4, alpha=0.4, generator=gen_a, unknown_column=True)
    torch.testing.assert_close(tm.sum(1), torch.ones(4))
    # the same draws as without the column: the first four columns are today's mix of the
    # known grades (rows mixed with an unknown-grade case keep the rest in the last column)
    known = y.clamp(min=0)
    xm2, tm2 = mixup(x, known, 4, alpha=0.4, generator=gen_b)
    assert torch.equal(xm, xm2)
    unknown_mass = tm[:, 4]
    torch.testing.assert_close(tm[:, :4] + unknown_mass[:, None] * torch.nn.functional.one_hot(
        torch.zeros(4, dtype=torch.long), 4), tm2)

"""Appearance shifts keep shape and dtype and move colour the documented way."""

import numpy as np
import pytest

from melascan.evaluation.shift import SHIFTS, dermoscope_frame, look_distance, mean_lab, warm_light, zoom


@pytest.fixture
def skin():
    rng = np.random.default_rng(0)
    return np.clip(rng.normal((190, 150, 140), 10, size=(64, 64, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_every_shift_keeps_shape_and_dtype(name, skin):
    out = SHIFTS[name](skin)
    assert out.shape == skin.shape and out.dtype == np.uint8
    assert not np.array_equal(out, skin)


def test_warm_light_raises_red_and_lowers_blue(skin):
    out = warm_light(skin).astype(float).mean(axis=(0, 1))
    ref = skin.astype(float).mean(axis=(0, 1))
    assert out[0] > ref[0] and out[2] < ref[2]


def test_frame_blackens_corners_only(skin):
    out = dermoscope_frame(skin)
    assert out[0, 0].sum() == 0 and out[-1, -1].sum() == 0
    assert np.array_equal(out[32, 32], skin[32, 32])


def test_look_distance_ranks_an_unusual_image_last(skin):
    rng = np.random.default_rng(1)
    refs = np.stack([mean_lab(np.clip(skin.astype(int) + rng.integers(-8, 8), 0, 255).astype(np.uint8))
                     for _ in range(30)])
    candidates = np.stack([mean_lab(skin), mean_lab(np.full_like(skin, 40))])
    d = look_distance(candidates, refs)
    assert d[1] > d[0]


@pytest.mark.parametrize("factor", [1.5, 2 / 3])
def test_zoom_scales_the_lesion_share_of_the_picture(factor):
    rgb = np.full((90, 120, 3), 200, np.uint8)
    rgb[30:60, 45:75] = 40  # a dark 30 x 30 px lesion in the centre
    out = zoom(rgb, factor)
    assert out.shape == rgb.shape
    share = lambda img: float(np.mean(img.mean(axis=2) < 120))  # noqa: E731
    assert share(out) == pytest.approx(share(rgb) * factor**2, rel=0.1)

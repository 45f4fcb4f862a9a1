"""Appearance shifts keep shape and dtype and move colour the documented way."""

import numpy as np
import pytest

from melascan.evaluation.shift import (
    SHIFTS,
    dermoscope_frame,
    downscale,
    ink_marks,
    look_distance,
    mean_lab,
    ruler,
    warm_light,
    zoom,
)


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


def _changed(a, b):
    return np.any(a != b, axis=2)


@pytest.mark.parametrize("seed", range(8))
def test_ink_marks_are_violet_and_leave_the_lesion_alone(skin, seed):
    out = ink_marks(skin, np.random.default_rng(seed))
    changed = _changed(out, skin)
    assert changed.any()
    assert not changed[24:40, 24:40].any()  # strokes circle the centre at 30-48 % of the side
    marked = out[changed].astype(float).mean(axis=0)
    assert marked[2] > marked[1]  # violet: more blue than green
    assert np.array_equal(ink_marks(skin), ink_marks(skin))  # the default seed repeats


@pytest.mark.parametrize("seed", range(8))
def test_ruler_lies_along_one_edge(skin, seed):
    out = ruler(skin, np.random.default_rng(seed))
    changed = _changed(out, skin)
    band = round(0.14 * 64) + 1
    edges = [changed[:band].sum(), changed[-band:].sum(), changed[:, :band].sum(), changed[:, -band:].sum()]
    assert max(edges) == changed.sum() > 0  # every changed pixel near one edge
    assert not changed[band:-band, band:-band].any()


@pytest.mark.parametrize("shape", [(150, 200, 3), (200, 150, 3)])
def test_ruler_stays_in_the_centre_square_the_classifier_sees(shape):
    from melascan.preprocess import center_square

    flat = np.full(shape, 150, np.uint8)
    for seed in range(6):
        out = ruler(flat, np.random.default_rng(seed))
        assert not np.array_equal(center_square(out), center_square(flat))


def test_downscale_shrinks_only_pictures_sharper_than_asked():
    rgb = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    small = downscale(rgb, 150)
    assert small.shape == (150, 200, 3) and small.dtype == np.uint8
    assert downscale(small, 150) is small  # already at (or under) the size: untouched
    assert abs(float(small.mean()) - float(rgb.mean())) < 2  # area interpolation keeps the mean

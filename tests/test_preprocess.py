"""preprocess.tta_views: the test-time views training's evaluation and the ONNX runtime share."""

import numpy as np
import pytest

from melascan.preprocess import (TTA_VIEW_COUNTS, center_square, center_square_box, lesion_outside_crop_fraction,
                                 tta_view_count, tta_views)


def _keys(views):
    return {v.tobytes() for v in views}


def test_each_view_count_is_a_group_of_distinct_symmetries():
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    assert tta_views(x, 1)[0].tobytes() == x.tobytes()
    np.testing.assert_array_equal(tta_views(x, 2)[1], x[..., ::-1])
    for n in TTA_VIEW_COUNTS:
        views = tta_views(x, n)
        assert len(views) == n == len(_keys(views))
        assert all(v.flags["C_CONTIGUOUS"] and v.shape == x.shape for v in views)
        # closed under the horizontal flip and the half turn: the mean has no preferred orientation
        if n >= 2:
            assert _keys(v[..., ::-1] for v in views) == _keys(views)
        if n >= 4:
            assert _keys(np.rot90(v, 2, axes=(-2, -1)) for v in views) == _keys(views)


def test_view_counts():
    assert [tta_view_count(v) for v in (None, False, 0, True, 1, 2, 4, 8)] == [1, 1, 1, 8, 1, 2, 4, 8]
    with pytest.raises(ValueError, match="test-time views"):
        tta_view_count(3)


def test_center_square_and_the_share_of_a_lesion_it_cuts_off():
    assert center_square_box(150, 200) == (0, 25, 150) and center_square_box(300, 300) == (0, 0, 300)
    assert center_square(np.zeros((150, 200, 3), np.uint8)).shape == (150, 150, 3)
    mask = np.zeros((150, 200), bool)
    mask[50:100, 80:120] = True  # centred: nothing cut
    assert lesion_outside_crop_fraction(mask) == 0.0
    mask[50:100, 0:40] = True  # a second blob, 25 of its 40 columns left of the crop
    assert lesion_outside_crop_fraction(mask) == pytest.approx(25 / 80)
    assert lesion_outside_crop_fraction(np.zeros((10, 10), bool)) == 0.0

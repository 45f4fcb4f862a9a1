"""preprocess.tta_views: the test-time views training's evaluation and the ONNX runtime share."""

import numpy as np
import pytest

from melascan.preprocess import TTA_VIEW_COUNTS, tta_view_count, tta_views


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

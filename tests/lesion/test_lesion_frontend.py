"""The one lesion front end: ``prepare_work`` -> ``WorkImage``, ``segment``, ``to_input_size``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from melascan.errors import ImageError
from melascan.lesion import WorkImage, analyze_lesion, prepare_work, segment_lesion
from melascan.lesion.preprocessing import rgb_to_lab
from melascan.lesion.segmentation import segment, to_input_size


def test_prepare_work_returns_the_working_size_image_and_its_masks(synth):
    image, _ = synth.add_hair(synth.disc_image())
    work = prepare_work(image)
    assert isinstance(work, WorkImage)
    assert work.rgb.shape == work.clean.shape == (192, 192, 3) and work.rgb.dtype == np.uint8
    assert work.fov.shape == work.hair.shape == (192, 192)
    assert work.fov.dtype == work.hair.dtype == bool
    assert work.input_shape == (300, 300) and work.scale == pytest.approx(300 / 192)
    assert work.hair.any()
    np.testing.assert_array_equal(work.lab, rgb_to_lab(work.clean))
    with pytest.raises(dataclasses.FrozenInstanceError):
        work.scale = 1.0


def test_prepare_work_refuses_what_the_analysis_refuses():
    with pytest.raises(ImageError):
        prepare_work(np.zeros((300, 300), np.uint8))


def test_every_entry_point_sees_the_same_mask(synth):
    image = synth.ellipse_image(size=320)
    work = prepare_work(image)
    seg = to_input_size(segment(work), work)
    assert seg.mask.shape == image.shape[:2] and seg.found
    np.testing.assert_array_equal(segment_lesion(image).mask, seg.mask)
    np.testing.assert_array_equal(analyze_lesion(image).mask, seg.mask)
    np.testing.assert_array_equal(analyze_lesion(image).segmentation.contour, seg.contour)


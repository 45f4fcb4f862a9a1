"""Pre-processing and segmentation: hair, vignette, no lesion, flags."""

from __future__ import annotations

import cv2
import numpy as np

from melascan.lesion import DEFAULT_CONFIG, analyze_lesion, remove_hair, segment_lesion
from melascan.lesion.preprocessing import field_of_view_mask, to_work_size
from melascan.lesion.segmentation import NO_LESION, TOO_SMALL, TOUCHES_BORDER, skin_region


def test_disc_is_segmented_at_input_size(synth):
    image = synth.disc_image(size=300, radius=60)
    seg = segment_lesion(image)
    assert seg.mask.shape == (300, 300) and seg.mask.dtype == bool
    assert seg.found and seg.flags == []
    assert synth.dice(seg.mask, synth.disc_mask(300, 60)) > 0.95
    assert seg.contour.ndim == 2 and seg.contour.shape[1] == 2
    assert 0.5 < seg.confidence <= 1.0


def test_large_input_is_mapped_back_to_its_size(synth):
    image = synth.disc_image(size=600, radius=150)
    seg = segment_lesion(image)
    assert seg.mask.shape == (600, 600)
    assert synth.dice(seg.mask, synth.disc_mask(600, 150)) > 0.95


def test_hair_over_a_disc_barely_changes_the_mask(synth):
    clean = synth.disc_image()
    hairy, hair = synth.add_hair(clean, count=10)
    truth = synth.disc_mask()
    assert synth.dice(segment_lesion(hairy).mask, truth) > 0.9
    assert synth.dice(segment_lesion(hairy).mask, segment_lesion(clean).mask) > 0.9


def test_remove_hair_finds_and_paints_over_hair(synth):
    skin = synth.uniform_skin()
    hairy, hair = synth.add_hair(skin, count=6)
    cleaned, found = remove_hair(hairy)
    assert cleaned.shape == hairy.shape and cleaned.dtype == np.uint8 and found.shape == hair.shape
    assert found[hair].mean() > 0.7  # most hair pixels detected
    near_hair = cv2.dilate(hair.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert found[~near_hair].mean() < 0.01  # nothing away from the hair
    # the painted pixels now look like skin again
    assert np.abs(cleaned[hair].astype(int) - np.array(synth.SKIN)).mean() < 20


def test_remove_hair_leaves_a_hairless_image_alone(synth):
    image = synth.disc_image()
    cleaned, found = remove_hair(image)
    assert not found.any()
    assert np.array_equal(cleaned, image)


def test_uniform_skin_is_flagged_not_guessed(synth):
    a = analyze_lesion(synth.uniform_skin())
    d = a.to_dict()
    assert not a.found and not a.mask.any()
    assert NO_LESION in d["segmentation_flags"] and NO_LESION in d["quality"]
    for key in ("asymmetry", "border", "diameter_px", "tds", "tds_band", "compactness"):
        assert d[key] is None
    assert d["colors"] == []


def test_dark_vignette_corners_are_not_lesion(synth):
    image, inside = synth.vignette(synth.disc_image())
    seg = segment_lesion(image)
    assert seg.found
    assert not (seg.mask & ~inside).any()
    assert synth.dice(seg.mask, synth.disc_mask()) > 0.9
    work, _ = to_work_size(image, 192)
    fov = field_of_view_mask(work)
    corners = np.zeros_like(fov)
    corners[:10, :10] = corners[:10, -10:] = corners[-10:, :10] = corners[-10:, -10:] = True
    assert not (fov & corners).any()


def test_vignette_without_lesion_is_no_lesion(synth):
    image, _ = synth.vignette(synth.uniform_skin())
    assert not segment_lesion(image).found


def test_field_of_view_is_everything_without_vignette(synth):
    assert field_of_view_mask(synth.disc_image()).all()


def test_lesion_running_off_the_picture_is_flagged(synth):
    image = synth.disc_image(radius=90, center=(290, 150))
    seg = segment_lesion(image)
    assert seg.found and TOUCHES_BORDER in seg.flags


def test_tiny_lesion_is_flagged_too_small(synth):
    seg = segment_lesion(synth.disc_image(radius=10))
    assert seg.found and TOO_SMALL in seg.flags



def test_skin_ring_width_comes_from_lesion_config(synth):
    mask = synth.disc_mask(size=200, radius=40)
    fov = np.ones(mask.shape, bool)
    narrow = skin_region(mask, fov, DEFAULT_CONFIG.with_(skin_ring_frac=0.02))
    wide = skin_region(mask, fov, DEFAULT_CONFIG.with_(skin_ring_frac=0.1))
    assert 0 < narrow.sum() < wide.sum() and not (wide & mask).any()
    hair = np.zeros(mask.shape, bool)
    hair[:, 100] = True
    assert not (skin_region(mask, fov, DEFAULT_CONFIG, hair) & hair).any()
    # no skin in the ring (the lesion fills the view): whatever skin is left
    corner = np.zeros(mask.shape, bool)
    corner[:5, :5] = True
    np.testing.assert_array_equal(skin_region(mask, mask | corner), corner)

"""Exact and perceptual duplicate detection (melascan.data.dedup)."""

from __future__ import annotations

import hashlib
import io

import imagehash
import numpy as np
import pytest
from PIL import Image

from melascan.data.dedup import (
    DEFAULT_MAX_DISTANCE,
    md5_file,
    near_duplicate_pairs,
    nearest_distances,
    pack_hashes,
    phash,
)
from melascan.errors import ImageError


def test_md5_file_matches_hashlib(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"melascan" * 1000)
    assert md5_file(path) == hashlib.md5(b"melascan" * 1000).hexdigest()


def test_phash_same_for_path_array_and_pil(tmp_path, synth):
    img = synth.pattern_image(1)
    path = synth.save_jpeg(img, tmp_path / "a.jpg")
    rgb = np.asarray(Image.open(path).convert("RGB"))
    h = phash(path)
    assert isinstance(h, imagehash.ImageHash)
    assert h.hash.size == 256
    assert h == phash(rgb) == phash(Image.fromarray(rgb))


def test_phash_of_a_bad_file_raises_image_error(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match="bad.jpg"):
        phash(bad)


def test_near_duplicate_found_unrelated_not(synth):
    original = synth.pattern_image(7)
    copy = Image.open(io.BytesIO(synth.brightened_copy(original)))
    hashes = {"orig": phash(original), "copy": phash(copy), "other": phash(synth.pattern_image(8))}
    pairs = near_duplicate_pairs(hashes)
    assert [(a, b) for a, b, _ in pairs] == [("copy", "orig")]
    assert pairs[0][2] <= DEFAULT_MAX_DISTANCE
    assert nearest_distances(hashes)["other"] > DEFAULT_MAX_DISTANCE


def test_pairs_match_brute_force_within_and_between_sets():
    rng = np.random.default_rng(0)
    base = rng.random((30, 16, 16)) > 0.5
    # make some neighbours: flip a few bits of earlier hashes
    for i in range(10, 30):
        base[i] = base[i - 10] ^ (rng.random((16, 16)) > 0.9)
    hashes = {f"k{i:02d}": imagehash.ImageHash(b) for i, b in enumerate(base)}
    within = near_duplicate_pairs(hashes, max_distance=40)
    brute = sorted(
        (a, b, hashes[a] - hashes[b]) for a in hashes for b in hashes if a < b and hashes[a] - hashes[b] <= 40
    )
    assert within == brute and len(within) >= 10
    left = dict(list(hashes.items())[:12])
    right = dict(list(hashes.items())[8:])
    between = near_duplicate_pairs(left, right, max_distance=40)
    brute_between = sorted(
        (a, b, left[a] - right[b]) for a in left for b in right if left[a] - right[b] <= 40
    )
    assert between == brute_between
    assert ("k08", "k08", 0) in between  # a key in both sets meets itself


def test_pack_hashes_handles_64_bit_hashes(synth):
    h = [imagehash.phash(synth.pattern_image(s), hash_size=8) for s in range(3)]
    packed = pack_hashes(h)
    assert packed.shape == (3, 1) and packed.dtype == np.uint64
    pairs = near_duplicate_pairs({str(i): x for i, x in enumerate(h)}, max_distance=64)
    assert {(a, b): d for a, b, d in pairs}[("0", "1")] == h[0] - h[1]


def test_empty_input_gives_no_pairs(synth):
    assert near_duplicate_pairs({}) == []
    assert near_duplicate_pairs({"a": phash(synth.pattern_image(1))}) == []

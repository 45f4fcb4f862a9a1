"""Duplicate detection: exact (content MD5) and near duplicates (perceptual hash).

* ``md5_file`` finds byte-identical copies.
* ``phash`` is the DCT perceptual hash of ``imagehash`` at ``hash_size=16``
  (256 bits): re-encoded, rescaled, brightened or recoloured copies of an image
  land within a few dozen bits of each other.
* ``near_duplicate_pairs`` compares every hash with every other one as packed
  ``uint64`` words (XOR + popcount in numpy), about a second for 10k x 10k.

Why 256 bits and ``DEFAULT_MAX_DISTANCE = 36`` (measured on melanoma-10k, details
and pictures in docs/data.md): dermoscopy images all look alike at 8x8 (a dark
blob on skin, often inside a black vignette), so the usual 64-bit phash puts
unrelated small benign lesions 2-4 bits apart. At 256 bits, visually checked pairs
are all the same lesion up to 26 bits, about half at 28-36 bits (the false ones
are mostly near-blank vignetted images) and almost none beyond 36. A false match
only keeps two unrelated images in the same split, a missed one leaks, so the
threshold sits at the end of the true matches.
"""

from __future__ import annotations

import hashlib
import os
from typing import Union

import imagehash
import numpy as np
from PIL import Image

from melascan.imageio import load_rgb

#: Side of the DCT hash grid: 16 -> 256-bit hashes.
HASH_SIZE = 16
#: Pairs at Hamming distance <= this (of 256 bits) count as near duplicates.
DEFAULT_MAX_DISTANCE = 36

#: Rows compared at once in ``near_duplicate_pairs`` (memory: rows x N bytes).
_CHUNK_ROWS = 1024


def md5_file(path: Union[str, os.PathLike]) -> str:
    """Hex MD5 of the file's bytes (the same value ``md5sum`` prints)."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def phash(image: Union[str, os.PathLike, np.ndarray, Image.Image]) -> imagehash.ImageHash:
    """256-bit perceptual hash of an image path, ``uint8`` RGB array or Pillow image.

    Paths are decoded with ``melascan.imageio.load_rgb`` (EXIF orientation applied,
    ``ImageError`` on a bad file), so the hash sees what the models see.
    """
    if isinstance(image, (str, os.PathLike)):
        image = load_rgb(image)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    return imagehash.phash(image, hash_size=HASH_SIZE)


def pack_hashes(hashes: list[imagehash.ImageHash]) -> np.ndarray:
    """Hashes -> ``(N, words)`` ``uint64`` array of their bits (any hash size)."""
    if not hashes:
        return np.zeros((0, 1), dtype=np.uint64)
    bits = np.stack([np.asarray(h.hash, dtype=bool).ravel() for h in hashes])
    packed = np.packbits(bits, axis=1)  # (N, bytes)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def hamming_matrix(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between packed hashes: ``(len(rows), len(cols))`` uint16."""
    dist = np.zeros((rows.shape[0], cols.shape[0]), dtype=np.uint16)
    for w in range(rows.shape[1]):
        dist += np.bitwise_count(rows[:, w, None] ^ cols[None, :, w]).astype(np.uint16)
    return dist


def near_duplicate_pairs(
    hashes_a: dict[str, imagehash.ImageHash],
    hashes_b: dict[str, imagehash.ImageHash] | None = None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> list[tuple[str, str, int]]:
    """All ``(key_a, key_b, distance)`` with Hamming distance ``<= max_distance``.

    With ``hashes_b=None`` pairs are searched within ``hashes_a`` (each unordered pair
    once, ``key_a < key_b``); otherwise between the two sets (a key present in both
    is compared with itself too). The result is sorted, so it never depends on dict
    order. Exact copies (distance 0) are included.
    """
    keys_a = sorted(hashes_a)
    keys_b = keys_a if hashes_b is None else sorted(hashes_b)
    packed_a = pack_hashes([hashes_a[k] for k in keys_a])
    packed_b = packed_a if hashes_b is None else pack_hashes([hashes_b[k] for k in keys_b])
    if packed_a.shape[1] != packed_b.shape[1]:
        raise ValueError("cannot compare hashes of different sizes")
    pairs: list[tuple[str, str, int]] = []
    for start in range(0, len(keys_a), _CHUNK_ROWS):
        rows = packed_a[start : start + _CHUNK_ROWS]
        # within one set, compare only with later keys (upper triangle): each pair once
        first_col = start if hashes_b is None else 0
        dist = hamming_matrix(rows, packed_b[first_col:])
        close = dist <= max_distance
        if hashes_b is None:  # never an image with itself, nor a pair twice inside the chunk
            close &= np.arange(dist.shape[1])[None, :] > np.arange(len(rows))[:, None]
        for i, j in zip(*np.nonzero(close)):
            pairs.append((keys_a[start + i], keys_b[first_col + j], int(dist[i, j])))
    pairs.sort()
    return pairs


def nearest_distances(hashes: dict[str, imagehash.ImageHash]) -> dict[str, int]:
    """Distance from each image to its closest other image (for choosing a threshold)."""
    keys = sorted(hashes)
    packed = pack_hashes([hashes[k] for k in keys])
    nearest: dict[str, int] = {}
    for start in range(0, len(keys), _CHUNK_ROWS):
        dist = hamming_matrix(packed[start : start + _CHUNK_ROWS], packed)
        rows = np.arange(len(dist))
        dist[rows, rows + start] = np.iinfo(np.uint16).max  # not with itself
        for i, d in enumerate(dist.min(axis=1)):
            nearest[keys[start + i]] = int(d)
    return nearest

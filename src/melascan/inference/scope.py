"""Out-of-scope detection: is this a dermoscopic image of a skin lesion at all?

A classifier scores anything it is given: a photo of printed text gets a melanoma
probability too. ``ScopeModel`` measures how far an image lies from the training images
in two ways, each a Gaussian fitted on training images only:

* ``network``: the ONNX model's ``embedding`` output, the global average of a mid-level
  stage of the network (two thirds of the way through; ``melascan.export.bundle``).
  Mid-level features still describe colour and texture, so text, landscapes and flat
  colours land far away; the last layer of a network fine-tuned for benign vs malignant
  has collapsed most of that (docs/model.md);
* ``colour``: ``colour_statistics`` of the picture (CIELAB percentiles, chroma, edges):
  a dermoscopic photo has skin and pigment colours, gray text or microscopy stains do not.

Each part: standardised features, squared Mahalanobis distance with a Ledoit-Wolf shrunk
covariance per feature, divided by its threshold. The threshold is the ``pass_rate``
quantile of the *validation* images' distances (never of test or external images); the
default, 1.0, is the largest validation distance: images from a new dermatoscope sit
farther from the training images than validation images of the training sources do, so
no validation image may be rejected. ``scores`` is the larger of the two ratios: an image
is in scope when it is at most 1.

Between "like the validation images" and "not a dermoscopic image" lies a picture that is in
scope but unlike most images the model's numbers were measured on (another dermatoscope,
another clinic): ``familiar_cut`` is the score below which ``FAMILIAR_RATE`` of the validation
images lie. The app does not reassure about a picture above it (``melascan.web.risk``).

Arrays in, numbers out; no torch. Saved as ``<model>_scope.npz`` beside the ONNX file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from melascan.errors import ModelError

DEFAULT_PASS_RATE = 1.0
#: Share of the validation images a picture's scope score must not exceed to count as familiar.
FAMILIAR_RATE = 0.95
PARTS = ("network", "colour")
COLOUR_SIDE_PX = 64


def pooled(features: np.ndarray) -> np.ndarray:
    """``(N, C, h, w)`` feature maps (or already pooled ``(N, C)``) -> ``(N, C)`` float64."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=(2, 3)) if features.ndim == 4 else features


def colour_statistics(rgb: np.ndarray) -> np.ndarray:
    """26 numbers describing an ``HxWx3`` ``uint8`` picture's colours and edges (at 64x64 px):
    CIELAB 5/25/50/75/95th percentiles and standard deviations, chroma mean/std/95th percentile,
    HSV saturation mean/std, gradient magnitude mean/90th percentile/share above 40."""
    small = cv2.resize(np.ascontiguousarray(rgb), (COLOUR_SIDE_PX, COLOUR_SIDE_PX), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    saturation = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float64)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    chroma = np.hypot(lab[:, 1] - 128, lab[:, 2] - 128)
    return np.concatenate([
        np.percentile(lab, [5, 25, 50, 75, 95], axis=0).ravel(), lab.std(axis=0),
        [chroma.mean(), chroma.std(), np.percentile(chroma, 95), saturation.mean(), saturation.std(),
         magnitude.mean(), np.percentile(magnitude, 90), (magnitude > 40).mean()],
    ])


@dataclass(frozen=True)
class Gaussian:
    """Standardised Mahalanobis distance per feature, and its in-scope threshold."""

    mean: np.ndarray  # (C,)
    scale: np.ndarray  # (C,)
    precision: np.ndarray  # (C, C)
    threshold: float

    def distances(self, x: np.ndarray) -> np.ndarray:
        z = (pooled(x) - self.mean) / self.scale
        return np.einsum("ij,jk,ik->i", z, self.precision, z) / self.mean.shape[0]

    @classmethod
    def fit(cls, train: np.ndarray, val: np.ndarray, pass_rate: float) -> "Gaussian":
        from sklearn.covariance import LedoitWolf

        x = pooled(train)
        if x.shape[0] < 3:
            raise ValueError(f"need at least 3 training images, got {x.shape[0]}")
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        precision = LedoitWolf().fit((x - mean) / scale).precision_
        unset = cls(mean, scale, precision, np.inf)
        return cls(mean, scale, precision, float(np.quantile(unset.distances(val), pass_rate)))


@dataclass(frozen=True)
class ScopeModel:
    network: Gaussian  # on the ONNX ``embedding`` output
    colour: Gaussian  # on ``colour_statistics``
    threshold: float = 1.0  # of ``scores``: each part's distance over its own threshold

    def scores(self, embedding: np.ndarray, colour: np.ndarray) -> np.ndarray:
        """The larger of the two parts' distance-to-threshold ratios (in scope when <= 1)."""
        return np.maximum(self.network.distances(embedding) / self.network.threshold,
                          self.colour.distances(colour) / self.colour.threshold)

    def in_scope(self, embedding: np.ndarray, colour: np.ndarray) -> np.ndarray:
        return self.scores(embedding, colour) <= self.threshold

    @property
    def embedding_size(self) -> int:
        return int(self.network.mean.shape[0])

    def save(self, path: str | Path) -> None:
        arrays = {f"{part}_{k}": getattr(getattr(self, part), k) for part in PARTS
                  for k in ("mean", "scale", "precision")}
        arrays.update({f"{part}_threshold": np.float64(getattr(self, part).threshold) for part in PARTS})
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "ScopeModel":
        try:
            with np.load(path, allow_pickle=False) as d:
                parts = {part: Gaussian(*(d[f"{part}_{k}"].astype(np.float64) for k in ("mean", "scale", "precision")),
                                        float(d[f"{part}_threshold"])) for part in PARTS}
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{path}: not a valid scope file ({exc})") from None
        for g in parts.values():
            c = g.mean.shape[0]
            if g.scale.shape != (c,) or g.precision.shape != (c, c) or not (g.scale > 0).all() or not g.threshold > 0:
                raise ModelError(f"{path}: inconsistent scope arrays")
        return cls(**parts)


def fit_scope(train_embedding: np.ndarray, val_embedding: np.ndarray, train_colour: np.ndarray,
              val_colour: np.ndarray, *, pass_rate: float = DEFAULT_PASS_RATE) -> ScopeModel:
    """Fit both parts on training images; each threshold lets ``pass_rate`` of the validation images pass."""
    return ScopeModel(Gaussian.fit(train_embedding, val_embedding, pass_rate),
                      Gaussian.fit(train_colour, val_colour, pass_rate))


def familiar_cut(val_scores: np.ndarray, rate: float = FAMILIAR_RATE) -> float:
    """The scope score at or below which a picture is like the validation images (their ``rate``
    quantile): above it, the model's measured numbers were not measured on pictures like it."""
    scores = np.asarray(val_scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no validation scores")
    return float(np.quantile(scores, rate))


def left_out_source_rates(train_embedding: np.ndarray, train_colour: np.ndarray, train_sources: np.ndarray,
                          val_embedding: np.ndarray, val_colour: np.ndarray, val_sources: np.ndarray,
                          *, pass_rate: float = DEFAULT_PASS_RATE) -> dict[str, dict[str, float]]:
    """For each source, ``{"rejected": r, "unfamiliar": u}``: the share of its validation images
    that a detector fitted (and thresholded, and given its ``familiar_cut``) without that source
    rejects, and the share it rejects or finds unfamiliar; an estimate of what a new dermatoscope
    meets. Empty with fewer than two sources. (The network itself still saw every source.)"""
    train_sources, val_sources = np.asarray(train_sources), np.asarray(val_sources)
    rates: dict[str, dict[str, float]] = {}
    if len(np.unique(val_sources)) < 2:
        return rates
    for source in np.unique(val_sources):
        keep_t, keep_v = train_sources != source, val_sources != source
        if keep_t.sum() < 3 or not keep_v.any():
            continue
        detector = fit_scope(train_embedding[keep_t], val_embedding[keep_v], train_colour[keep_t],
                             val_colour[keep_v], pass_rate=pass_rate)
        cut = familiar_cut(detector.scores(val_embedding[keep_v], val_colour[keep_v]))
        held = detector.scores(val_embedding[~keep_v], val_colour[~keep_v])
        rates[str(source)] = {"rejected": float(np.mean(held > detector.threshold)),
                              "unfamiliar": float(np.mean(held > cut))}
    return rates

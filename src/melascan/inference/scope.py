"""Out-of-scope detection: is this a dermoscopic image of a skin lesion at all?

A classifier scores anything it is given: a photo of printed text gets a melanoma
probability too. ``ScopeModel`` measures how far an image's **embedding** lies from the
training images' embeddings. The embedding is the ONNX model's ``embedding`` output: the
global average of a mid-level stage of the network (two thirds of the way through;
``melascan.inference.export``). Mid-level features still describe colour and texture,
so text, landscapes and flat colours land far away; the last layer of a network
fine-tuned for benign vs malignant has collapsed most of that (measured in docs/model.md).

* the embedding is standardised (training mean and standard deviation per channel);
* ``scores`` = squared Mahalanobis distance with a Ledoit-Wolf shrunk covariance, divided
  by the number of channels (below 1 for most training images);
* the threshold is the ``pass_rate`` quantile of the *validation* images' scores (never of
  test or external images); the default, 1.0, is the largest validation score: images from
  a new dermatoscope sit farther from the training images than validation images of the
  training sources do, so no validation image may be rejected.

Arrays in, numbers out; no torch. Saved as ``<model>_scope.npz`` beside the ONNX file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melascan.errors import ModelError

DEFAULT_PASS_RATE = 1.0  # no validation image is rejected (docs/model.md: why)


def pooled(features: np.ndarray) -> np.ndarray:
    """``(N, C, h, w)`` feature maps (or already pooled ``(N, C)``) -> ``(N, C)`` float64."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=(2, 3)) if features.ndim == 4 else features


@dataclass(frozen=True)
class ScopeModel:
    mean: np.ndarray  # (C,)
    scale: np.ndarray  # (C,) standard deviations
    precision: np.ndarray  # (C, C) inverse of the shrunk covariance of the standardised embeddings
    threshold: float  # scores above it are out of scope

    def scores(self, embedding: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance from the training images, per channel."""
        z = (pooled(embedding) - self.mean) / self.scale
        return np.einsum("ij,jk,ik->i", z, self.precision, z) / self.mean.shape[0]

    def in_scope(self, embedding: np.ndarray) -> np.ndarray:
        return self.scores(embedding) <= self.threshold

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean, scale=self.scale, precision=self.precision, threshold=np.float64(self.threshold))

    @classmethod
    def load(cls, path: str | Path) -> "ScopeModel":
        try:
            with np.load(path, allow_pickle=False) as d:
                model = cls(d["mean"].astype(np.float64), d["scale"].astype(np.float64),
                            d["precision"].astype(np.float64), float(d["threshold"]))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{path}: not a valid scope file ({exc})") from None
        c = model.mean.shape[0]
        if model.scale.shape != (c,) or model.precision.shape != (c, c) or not (model.scale > 0).all():
            raise ModelError(f"{path}: inconsistent scope arrays")
        return model


def fit_scope(train_embedding: np.ndarray, val_embedding: np.ndarray, *,
              pass_rate: float = DEFAULT_PASS_RATE) -> ScopeModel:
    """Fit mean, scale and shrunk covariance on training embeddings; set the threshold so that
    ``pass_rate`` of the validation images are in scope."""
    from sklearn.covariance import LedoitWolf

    x = pooled(train_embedding)
    if x.shape[0] < 3:
        raise ValueError(f"need at least 3 training images, got {x.shape[0]}")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    precision = LedoitWolf().fit((x - mean) / scale).precision_
    model = ScopeModel(mean, scale, precision, threshold=np.inf)
    threshold = float(np.quantile(model.scores(val_embedding), pass_rate))
    return ScopeModel(mean, scale, precision, threshold)

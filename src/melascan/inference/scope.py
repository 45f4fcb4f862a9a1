"""Out-of-scope detection: is this a dermoscopic image of a skin lesion at all?

A classifier scores anything it is given: a photo of printed text gets a melanoma
probability too. ``ScopeModel`` measures how far an image's pooled network features
(the global average of the ``features`` output, the vector the head sees) lie from the
training images' features:

* the features are centred and projected on their top ``k`` principal components;
  ``mahalanobis`` = sum of squared projections divided by each component's variance;
* what the components do not explain (``residual`` = squared norm of the rest) is
  divided by its mean per-dimension variance on the training images;
* ``score_of = (mahalanobis + residual) / (k + rest_dims)``: about 1 for typical
  training images, large for images unlike any of them.

The threshold is the ``pass_rate`` quantile of the scores of the *validation* images
(never of test or external images), so that share of in-scope dermoscopy passes.
Arrays in, numbers out; no torch. Saved as ``<model>_scope.npz`` beside the ONNX file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melascan.errors import ModelError

DEFAULT_COMPONENTS = 64
DEFAULT_PASS_RATE = 0.99


def pooled(features: np.ndarray) -> np.ndarray:
    """``(N, C, h, w)`` feature maps (or already pooled ``(N, C)``) -> ``(N, C)`` float64."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=(2, 3)) if features.ndim == 4 else features


@dataclass(frozen=True)
class ScopeModel:
    mean: np.ndarray  # (C,)
    components: np.ndarray  # (k, C), orthonormal rows
    variances: np.ndarray  # (k,)
    residual_variance: float  # mean per-dimension variance outside the k components
    threshold: float  # scores above it are out of scope

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Normalised distance of each image's features from the training images (about 1 = typical)."""
        x = pooled(features) - self.mean
        z = x @ self.components.T
        mahalanobis = (z**2 / self.variances).sum(axis=1)
        residual = ((x - z @ self.components) ** 2).sum(axis=1) / self.residual_variance
        dims = self.mean.shape[0]
        return (mahalanobis + residual) / dims

    def in_scope(self, features: np.ndarray) -> np.ndarray:
        return self.scores(features) <= self.threshold

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean.astype(np.float32), components=self.components.astype(np.float32),
                 variances=self.variances.astype(np.float32),
                 residual_variance=np.float32(self.residual_variance), threshold=np.float64(self.threshold))

    @classmethod
    def load(cls, path: str | Path) -> "ScopeModel":
        try:
            with np.load(path, allow_pickle=False) as d:
                model = cls(d["mean"].astype(np.float64), d["components"].astype(np.float64),
                            d["variances"].astype(np.float64), float(d["residual_variance"]), float(d["threshold"]))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{path}: not a valid scope file ({exc})") from None
        k, c = model.components.shape
        if model.mean.shape != (c,) or model.variances.shape != (k,) or not (model.variances > 0).all():
            raise ModelError(f"{path}: inconsistent scope arrays")
        return model


def fit_scope(train_features: np.ndarray, val_features: np.ndarray, *, components: int = DEFAULT_COMPONENTS,
              pass_rate: float = DEFAULT_PASS_RATE) -> ScopeModel:
    """Fit mean and principal components on training features; set the threshold so that
    ``pass_rate`` of the validation images are in scope."""
    x = pooled(train_features)
    if x.shape[0] < 3:
        raise ValueError(f"need at least 3 training images, got {x.shape[0]}")
    components = min(components, x.shape[0] - 1, x.shape[1] - 1)  # small data sets: fewer components
    mean = x.mean(axis=0)
    centred = x - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variances = singular**2 / (x.shape[0] - 1)
    k = components
    rest = max(1, x.shape[1] - k)
    residual_variance = float(max(variances[k:].sum() / rest, 1e-12))
    model = ScopeModel(mean, vt[:k], np.maximum(variances[:k], 1e-12), residual_variance, threshold=np.inf)
    threshold = float(np.quantile(model.scores(val_features), pass_rate))
    return ScopeModel(mean, vt[:k], model.variances, residual_variance, threshold)

"""The torch-free melanoma classifier: an ONNX model, its card, and CAM.

>>> clf = Classifier.default()               # the model shipped in melascan/assets/model
>>> p = clf.predict("lesion.jpg", with_cam=True)
>>> p.probability, p.labels["balanced"], p.cam.shape, p.in_scope

A model folder may also carry an out-of-scope detector (``scope``: is this a dermoscopic
image at all? see ``melascan.inference.scope``) and a fusion of the network with the
lesion measurements (``card["fusion"]``, see ``melascan.inference.fusion``). Both are
applied here, so ``predict``, ``analyze`` and the web app give the same answer; fusion
runs ``melascan.lesion.analyze_lesion`` unless the caller passes the analysis it has.

Pre-processing is the training pipeline's, parameterised by the card:
``imageio.load_rgb`` -> ``preprocess.prepare_pixels(rgb, size, color_constancy)`` ->
``preprocess.normalize(mean, std)``. P(melanoma) = softmax(logits / T)[1], the logits
averaged over ``input.test_time_views`` symmetries of the square when the card asks for them.

One ``Classifier`` may be shared by threads (Flask): its state is read-only after
construction and ``onnxruntime.InferenceSession.run`` is thread-safe.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from melascan import imageio, preprocess
from melascan.errors import ImageError, ModelError
from melascan.inference import card as model_card
from melascan.inference import fusion as fusion_mod
from melascan.inference.cam import cam_to_image, class_activation_map
from melascan.inference.scope import ScopeModel, colour_statistics
from melascan.preprocess import tta_views

#: Threads for one inference (``intra_op_num_threads``). On the 2-core target a second
#: thread did not lower batch-1 latency and cut batched throughput (docs/inference.md),
#: and with one thread per call concurrent requests spread over both cores. Override
#: with the environment variable ``MELASCAN_ORT_THREADS`` or ``Classifier(threads=)``.
DEFAULT_THREADS = 1


def calibrated_probability(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T)[..., 1] for 2-class logits (..., 2), computed stably."""
    logits = np.asarray(logits, dtype=np.float64)
    z = (logits[..., 1] - logits[..., 0]) / float(temperature)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = sigmoid(z), without overflow


def _not_dermoscopic(rgb: np.ndarray, lesion: dict | None) -> bool:
    """Whether the picture is not dermoscopy at all (``not_dermoscopic`` of the lesion
    analysis ``lesion``, a ``to_dict()``; without one, the same colour check on its own)."""
    from melascan.lesion.preprocessing import prepare_work
    from melascan.lesion.quality import NOT_DERMOSCOPIC, colours_look_dermoscopic

    if lesion is not None:
        return NOT_DERMOSCOPIC in (lesion.get("quality") or ())
    try:
        return not colours_look_dermoscopic(prepare_work(rgb))
    except (ImageError, ValueError):
        return False  # too small to judge the colours; the scope detector has spoken


def label_for(probability: float, threshold: float) -> str:
    """``"malignant"`` when ``probability >= threshold``, else ``"benign"``."""
    return "malignant" if probability >= threshold else "benign"


@dataclass(frozen=True)
class Prediction:
    """The result for one image."""

    probability: float  # calibrated P(melanoma) in [0, 1]
    logits: tuple[float, float]  # raw (benign, malignant), before temperature
    labels: dict[str, str]  # {"balanced": "benign"|"malignant", "screening": ...}
    thresholds: dict[str, float]  # the thresholds the labels used
    temperature: float
    cam: np.ndarray | None = field(default=None, repr=False, compare=False)  # HxW in [0, 1]
    in_scope: bool | None = None  # None: the model has no scope detector (see predict_rgbs)
    scope_score: float | None = None  # distance from the training images; > the card's threshold: out of scope
    familiar: bool | None = None  # scope_score <= the card's familiar cut (None: no detector or no cut)
    network_probability: float | None = None  # the network alone, when ``probability`` is fused
    fused: bool = False  # probability from the network + lesion measurements model

    @property
    def label(self) -> str:
        """The label at the balanced threshold."""
        return self.labels["balanced"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (the CAM is left out)."""
        return {
            "probability": self.probability,
            "logits": list(self.logits),
            "labels": dict(self.labels),
            "thresholds": dict(self.thresholds),
            "temperature": self.temperature,
            "in_scope": self.in_scope,
            "scope_score": self.scope_score,
            "familiar": self.familiar,
            "network_probability": self.network_probability,
            "fused": self.fused,
        }


def default_model_dir() -> Path:
    """The folder of the embedded model, ``melascan/assets/model``."""
    root = importlib.resources.files("melascan").joinpath("assets", "model")
    if not isinstance(root, Path):  # e.g. installed as a zip: onnxruntime needs a real file
        raise ModelError(f"the embedded model is not on the file system ({root})")
    return root


def _resolve(model: str | os.PathLike) -> tuple[Path, Path | None]:
    """``(model_dir, onnx_file_or_None)`` for a folder, an .onnx file or a model_card.json."""
    path = Path(model)
    if path.is_dir():
        return path, None
    if path.is_file() and path.name == model_card.CARD_FILE:
        return path.parent, None
    if path.is_file():
        return path.parent, path
    raise ModelError(f"model not found: {path}")


def _session_options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # With threads > 1, workers sleep instead of busy-waiting between ops: on 2 shared
    # cores (web server, lesion analysis, other requests) spinning made batch 1 slower.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


class Classifier:
    """An exported MelaScan model: ``<name>.onnx`` + ``<name>_head.npz`` + ``model_card.json``."""

    _default: "Classifier | None" = None
    _default_lock = threading.Lock()

    def __init__(self, model: str | os.PathLike, *, threads: int | None = None, verify: bool = True):
        """Load a model folder (or its .onnx file, or its model_card.json).

        ``verify`` checks the files' sha256 against the card. Raises ``ModelError``
        when something is missing, corrupt or inconsistent.
        """
        import onnxruntime as ort

        self.model_dir, onnx_file = _resolve(model)
        self.card = model_card.load_card(self.model_dir)
        if onnx_file is not None and onnx_file.name != self.card["files"]["onnx"]["name"]:
            raise ModelError(
                f"{onnx_file}: the model card in {self.model_dir} describes "
                f"{self.card['files']['onnx']['name']}, not this file"
            )
        if verify:
            model_card.verify_files(self.card, self.model_dir)
        self.onnx_path = self.model_dir / self.card["files"]["onnx"]["name"]
        self.weight, self.bias = self._load_head(self.model_dir / self.card["files"]["head"]["name"])

        inp = self.card["input"]
        self.image_size: int = inp["image_size"]
        self.mean: tuple[float, ...] = tuple(inp["mean"])
        self.std: tuple[float, ...] = tuple(inp["std"])
        self.color_constancy: str | None = inp["color_constancy"]
        self.test_time_views: int = model_card.test_time_views(self.card)
        self.temperature: float = float(self.card["calibration"]["temperature"])
        self.thresholds: dict[str, float] = {
            k: float(v) for k, v in self.card["calibration"]["thresholds"].items()
        }
        self.status: str = self.card["status"]
        scope_entry = self.card["files"].get("scope")
        self.scope: ScopeModel | None = ScopeModel.load(self.model_dir / scope_entry["name"]) if scope_entry else None
        familiar_below = (self.card.get("scope") or {}).get("familiar_below")
        self.familiar_below: float | None = None if familiar_below is None else float(familiar_below)
        self.fusion: dict | None = fusion_mod.check_fusion(self.card["fusion"]) if self.card.get("fusion") else None

        if threads is None:
            value = os.environ.get("MELASCAN_ORT_THREADS", str(DEFAULT_THREADS))
            if not value.strip().isdigit():
                raise ModelError(f"MELASCAN_ORT_THREADS must be a positive integer, got {value!r}")
            threads = int(value)
        self.threads = max(1, threads)
        try:
            self.session = ort.InferenceSession(
                str(self.onnx_path), _session_options(self.threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.onnx_path}: onnxruntime cannot load the model ({exc})") from None
        self._check_session()

    # ----------------------------------------------------------------- loading
    @classmethod
    def default(cls) -> "Classifier":
        """The embedded model (loaded once per process, shared)."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls(default_model_dir())
            return cls._default

    @staticmethod
    def _load_head(path: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as data:
                weight, bias = data["weight"].astype(np.float32), data["bias"].astype(np.float32)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{path}: not a valid head file ({exc})") from None
        if weight.ndim != 2 or weight.shape[0] != 2 or bias.shape != (2,):
            raise ModelError(f"{path}: expected weight (2, C) and bias (2,), got {weight.shape}, {bias.shape}")
        return weight, bias

    def _check_session(self) -> None:
        inputs = self.session.get_inputs()
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        name = self.card["input"]["name"]
        if len(inputs) != 1 or inputs[0].name != name:
            raise ModelError(f"{self.onnx_path}: expected one input named {name!r}")
        if list(inputs[0].shape[1:]) != [3, self.image_size, self.image_size]:
            raise ModelError(
                f"{self.onnx_path}: input shape {inputs[0].shape} does not match the card's "
                f"image_size {self.image_size}"
            )
        if "logits" not in outputs or "features" not in outputs:
            raise ModelError(f"{self.onnx_path}: expected outputs 'logits' and 'features'")
        if self.scope is not None and outputs.get("embedding", [None, None])[1] != self.scope.embedding_size:
            raise ModelError(f"{self.onnx_path}: the scope detector needs an 'embedding' output of "
                             f"{self.scope.embedding_size} channels")
        if outputs["features"][1] != self.weight.shape[1]:
            raise ModelError(
                f"{self.onnx_path}: {outputs['features'][1]} feature channels but the head "
                f"expects {self.weight.shape[1]}"
            )

    # ----------------------------------------------------------- pre-processing
    @staticmethod
    def load(image: Any) -> np.ndarray:
        """Any accepted image -> ``HxWx3`` ``uint8`` RGB.

        Accepts a path, bytes, a binary file object (via ``imageio.load_rgb``), a Pillow
        image, or an ``HxWx3`` ``uint8`` array (used as is).
        """
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
                raise ImageError(
                    f"expected an HxWx3 uint8 RGB array, got {image.dtype} array of shape {image.shape}"
                )
            return image
        if isinstance(image, Image.Image):
            return imageio.to_rgb_array(image)
        return imageio.load_rgb(image)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """``HxWx3`` ``uint8`` -> the model's ``(3, S, S)`` float32 input (training's pipeline)."""
        pixels = preprocess.prepare_pixels(rgb, self.image_size, self.color_constancy)
        return preprocess.normalize(pixels, self.mean, self.std)

    # --------------------------------------------------------------- inference
    def outputs(self, batch: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
        """The named ONNX outputs (``logits``, ``features``, ``embedding``) for a ``(N, 3, S, S)`` batch.
        With test-time views in the card, ``logits`` is their mean (one run over all views);
        ``features`` and ``embedding`` are always the image's own (CAM and scope see it as it is)."""
        names = list(names)
        feed = np.ascontiguousarray(batch, np.float32)
        if self.test_time_views == 1 or "logits" not in names:
            return self.session.run(names, {self.card["input"]["name"]: feed})
        n = len(feed)
        out = self.session.run(names, {self.card["input"]["name"]: np.concatenate(tta_views(feed, self.test_time_views))})
        return [o.reshape(self.test_time_views, n, *o.shape[1:]).mean(axis=0) if name == "logits" else o[:n]
                for name, o in zip(names, out)]

    def run(self, batch: np.ndarray, *, with_features: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw model: ``(N, 3, S, S)`` float32 -> ``(logits (N, 2), features (N, C, h, w) | None)``
        (logits averaged over the card's test-time views, as ``outputs``)."""
        out = self.outputs(batch, ["logits", "features"] if with_features else ["logits"])
        return out[0], (out[1] if with_features else None)

    def prediction_from_logits(self, logits: np.ndarray, cam: np.ndarray | None = None,
                               scope_inputs: tuple[np.ndarray, np.ndarray] | None = None) -> Prediction:
        """The network's ``Prediction`` from one image's raw logits (2,): temperature and thresholds
        applied; with ``scope_inputs`` (the ``embedding`` output and ``colour_statistics`` of the
        image) and a scope detector, ``in_scope`` too. No fusion."""
        probability = float(calibrated_probability(logits, self.temperature))
        score = None
        if self.scope is not None and scope_inputs is not None:
            embedding, colour = scope_inputs
            score = float(self.scope.scores(embedding[None], colour[None])[0])
        return Prediction(
            probability=probability,
            logits=(float(logits[0]), float(logits[1])),
            labels={k: label_for(probability, t) for k, t in self.thresholds.items()},
            thresholds=dict(self.thresholds),
            temperature=self.temperature,
            cam=cam,
            in_scope=None if score is None else bool(score <= self.scope.threshold),
            scope_score=score,
            familiar=None if score is None or self.familiar_below is None else bool(score <= self.familiar_below),
        )

    def fuse(self, prediction: Prediction, lesion: dict | None) -> Prediction:
        """The fused prediction (network + ``lesion``, a ``LesionAnalysis.to_dict()``), or
        ``prediction`` itself when the model has no fusion block."""
        if self.fusion is None:
            return prediction
        inputs = fusion_mod.lesion_inputs(prediction.logits[1] - prediction.logits[0], lesion)
        probability = float(fusion_mod.fused_probability(self.fusion, inputs)[0])
        thresholds = model_card.decision_thresholds(self.card)
        return dataclasses.replace(
            prediction, probability=probability, labels={k: label_for(probability, t) for k, t in thresholds.items()},
            thresholds=thresholds, network_probability=prediction.probability, fused=True)

    def predict_rgbs(self, rgbs: Sequence[np.ndarray], *, with_cam: bool = False,
                     lesions: Sequence[dict | None] | None = None,
                     cam_shape: tuple[int, int] | None = None) -> list[Prediction]:
        """Predictions for decoded ``uint8`` RGB arrays, one forward pass: network, scope, CAM
        (at each image's size, or ``cam_shape`` (h, w)) and (when the model has one) fusion
        with ``lesions`` (computed here when not given).

        ``in_scope`` is False when the scope detector rejects the image or when the lesion
        analysis's colour check (of ``lesions``, or run on its own) finds it is not a
        dermoscopic picture at all (``not_dermoscopic``: grayscale, green or neon)."""
        names = ["logits"] + (["features"] if with_cam else []) + (["embedding"] if self.scope is not None else [])
        out_arrays = dict(zip(names, self.outputs(np.stack([self.prepare(rgb) for rgb in rgbs]), names)))
        out = []
        for i, rgb in enumerate(rgbs):
            cam = self._cam(out_arrays["features"][i], *(cam_shape or rgb.shape[:2])) if with_cam else None
            scope_inputs = (out_arrays["embedding"][i], colour_statistics(rgb)) if self.scope is not None else None
            prediction = self.prediction_from_logits(out_arrays["logits"][i], cam, scope_inputs)
            if lesions is not None:
                lesion = lesions[i]
            else:  # only a fused model needs the whole analysis; the colour check runs without it
                lesion = self.lesion_measurements(rgb) if self.fusion is not None else None
            prediction = self.fuse(prediction, lesion)
            if prediction.in_scope and _not_dermoscopic(rgb, lesion):
                prediction = dataclasses.replace(prediction, in_scope=False)
            out.append(prediction)
        return out

    @staticmethod
    def lesion_measurements(rgb: np.ndarray) -> dict | None:
        """``analyze_lesion(rgb).to_dict()``, or None when the image cannot be analysed."""
        from melascan.lesion import analyze_lesion

        try:
            return analyze_lesion(rgb).to_dict()
        except (ImageError, ValueError):
            return None

    def _cam(self, features: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
        return cam_to_image(class_activation_map(features, self.weight), height_px, width_px)

    def predict(self, image: Any, *, with_cam: bool = False) -> Prediction:
        """Classify one image; with ``with_cam`` the same forward pass also gives the CAM."""
        return self.predict_batch([image], batch_size=1, with_cam=with_cam)[0]

    def predict_batch(
        self, images: Iterable[Any], *, batch_size: int = 32, with_cam: bool = False
    ) -> list[Prediction]:
        """Classify images in batches of ``batch_size``; any unreadable image raises ``ImageError``."""
        images = list(images)
        results: list[Prediction] = []
        batch_size = max(1, batch_size)
        for start in range(0, len(images), batch_size):
            rgbs = [self.load(img) for img in images[start : start + batch_size]]
            results.extend(self.predict_rgbs(rgbs, with_cam=with_cam))
        return results

    def predict_arrays(
        self, rgbs: Sequence[np.ndarray], *, with_features: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw logits (and features) for already-decoded ``uint8`` RGB arrays, one batch."""
        batch = np.stack([self.prepare(rgb) for rgb in rgbs])
        return self.run(batch, with_features=with_features)

    def cam(self, image: Any) -> np.ndarray:
        """The class activation map for malignant: ``HxW`` float32 in [0, 1] at the image's size."""
        return self.predict(image, with_cam=True).cam  # type: ignore[return-value]

    def summary(self) -> dict[str, Any]:
        """A few card fields worth showing next to a result."""
        return {
            "name": self.card.get("name"),
            "status": self.status,
            "architecture": self.card.get("architecture"),
            "image_size": self.image_size,
            "test_time_views": self.test_time_views,
            "temperature": self.temperature,
            "thresholds": dict(self.thresholds),
            "sha256": self.card["files"]["onnx"]["sha256"],
            "warnings": list(self.card.get("warnings", [])),
            "scope_threshold": None if self.scope is None else self.scope.threshold,
            "fused": self.fusion is not None,
        }

    def __repr__(self) -> str:
        return f"Classifier({str(self.model_dir)!r}, {self.card.get('architecture')}, status={self.status})"

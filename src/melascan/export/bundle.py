"""Export a PyTorch classifier to one ONNX file plus its CAM head and model card.

Needs torch (``melascan.export`` is the training side of the model folder); the runtime
(``melascan.inference``) reads what this writes and never imports torch.

The exported graph has one input and three outputs::

    input     (N, 3, S, S) float32, normalised as the card says
    logits    (N, 2)       benign, malignant
    features  (N, C, h, w) the last feature map, before global pooling (for CAM)
    embedding (N, E)       global average of a mid-level stage (two thirds of the way through
                           the network's stages), for the out-of-scope detector

After export, onnxruntime runs the file on a few random inputs and the largest
absolute difference to PyTorch is recorded (and must stay under a tolerance).

With ``fp16_weights`` the weights are stored as float16, each followed by a Cast to float32
(``store_weights_fp16``): the file is half the size, onnxruntime folds the casts when it loads
the model and computes in float32 as before; only the weights are rounded.
"""

from __future__ import annotations

import datetime as _dt
import logging
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from melascan.errors import ModelError
from melascan.inference import card as model_card

log = logging.getLogger(__name__)

#: ONNX opset: 18 is well supported by onnxruntime >= 1.14 and by the dynamo exporter.
DEFAULT_OPSET = 18
#: The embedded model must stay small enough for the repository and a quick app start.
DEFAULT_MAX_SIZE_MB = 25.0
INPUT_NAME = "input"
OUTPUT_NAMES = ("logits", "features", "embedding")
#: Relative logits tolerance of the ONNX check when the weights are stored as float16.
FP16_WEIGHTS_TOLERANCE = 1e-2


def embedding_stage(n_stages: int) -> int:
    """The intermediate stage whose pooled output is the embedding: two thirds of the way."""
    return (2 * n_stages) // 3


class LogitsAndFeatures(torch.nn.Module):
    """Wrap a timm model so that one forward pass returns ``(logits, features, embedding)``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        if not all(hasattr(model, m) for m in ("forward_intermediates", "forward_head")):
            raise ModelError(
                f"cannot export {type(model).__name__}: it needs timm's "
                "forward_intermediates/forward_head methods"
            )
        self.model = model
        with torch.no_grad():
            was_training = model.training
            self.n_stages = len(model.eval().forward_intermediates(torch.zeros(1, 3, 64, 64))[1])
            model.train(was_training)
        self.stage = embedding_stage(self.n_stages)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features, stages = self.model.forward_intermediates(x)
        return self.model.forward_head(features), features, stages[self.stage].mean(dim=(2, 3))


@dataclass
class ExportCheck:
    """What ``export_onnx`` did and measured (copied into the model card)."""

    path: str
    exporter: str
    opset: int
    image_size: int
    check_batch_sizes: list[int]
    max_abs_diff_logits: float
    max_abs_diff_features: float
    feature_shape: list[int]  # C, h, w
    embedding_size: int
    embedding_stage: list[int]  # [stage index, number of stages]
    size_bytes: int
    sha256: str
    torch_version: str
    onnxruntime_version: str
    weights: str  # "float32" or "float16 (cast to float32 in the graph)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def head_weights(model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's ``weight`` (2, C) and ``bias`` (2,) as float32 arrays, for CAM.

    If the head normalises the pooled vector with an affine LayerNorm (ConvNeXt),
    its per-channel scale is folded into the weights: the CAM is then an
    approximation (``export_bundle`` measures how close).
    """
    get = getattr(model, "get_classifier", None)
    fc = get() if callable(get) else None
    if not isinstance(fc, torch.nn.Linear) or fc.out_features != 2:
        raise ModelError(
            f"cannot find a 2-class linear classifier on {type(model).__name__} "
            f"(got {type(fc).__name__})"
        )
    weight = fc.weight.detach().float().cpu().numpy()
    bias = (
        fc.bias.detach().float().cpu().numpy() if fc.bias is not None else np.zeros(2, np.float32)
    )
    norm = getattr(getattr(model, "head", None), "norm", None)
    if isinstance(getattr(norm, "weight", None), torch.Tensor):
        weight = weight * norm.weight.detach().float().cpu().numpy()[None, :]
    return weight.astype(np.float32), bias.astype(np.float32)


def _export(wrapper: torch.nn.Module, example: torch.Tensor, out_path: Path, opset: int) -> str:
    """Write the ONNX file; dynamo exporter first, legacy TorchScript exporter as fallback."""
    for noisy in ("onnx_ir", "onnxscript"):  # one INFO line per folded constant
        logging.getLogger(noisy).setLevel(logging.WARNING)
    exporters = {
        "torch.onnx.export(dynamo=True)": {
            "dynamo": True, "dynamic_shapes": {"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
            "external_data": False, "optimize": True, "verbose": False,
        },
        "torch.onnx.export(dynamo=False)": {
            "dynamo": False, "dynamic_axes": {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)},
            "do_constant_folding": True,
        },
    }
    for i, (method, options) in enumerate(exporters.items()):
        try:
            torch.onnx.export(wrapper, (example,), str(out_path), input_names=[INPUT_NAME],
                              output_names=list(OUTPUT_NAMES), opset_version=opset, **options)
            return method
        except Exception as exc:  # exporter limitations differ per architecture
            if i == len(exporters) - 1:
                raise
            log.warning("dynamo ONNX export failed (%s: %s); using the legacy exporter", type(exc).__name__, exc)
    raise AssertionError("unreachable")


def store_weights_fp16(path: str | Path, min_elements: int = 16) -> int:
    """Rewrite the ONNX file at ``path`` with every float32 initializer of at least ``min_elements``
    values stored as float16 and cast back to float32 in the graph; returns how many were stored so."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    big = [t for t in graph.initializer if t.data_type == TensorProto.FLOAT and int(np.prod(t.dims)) >= min_elements]
    casts = []
    for tensor in big:
        half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name + "__fp16")
        casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=TensorProto.FLOAT,
                                      name=tensor.name + "__to_fp32"))
        graph.initializer.remove(tensor)
        graph.initializer.append(half)
    for node in reversed(casts):  # before every consumer: the graph stays topologically sorted
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return len(big)


def export_onnx(
    model: torch.nn.Module,
    out_path: str | Path,
    image_size: int,
    *,
    opset: int = DEFAULT_OPSET,
    check_batch_sizes: Sequence[int] = (1, 3),
    tolerance: float = 1e-4,
    max_size_mb: float | None = DEFAULT_MAX_SIZE_MB,
    seed: int = 0,
    fp16_weights: bool = False,
) -> ExportCheck:
    """Export ``model`` (a timm classifier with 2 outputs) to one ONNX file and check it.

    The check runs random normal inputs of each batch size through PyTorch and
    onnxruntime; the export fails if the logits differ by more than
    ``tolerance * max(1, max|logit|)`` (at least ``FP16_WEIGHTS_TOLERANCE`` with
    ``fp16_weights``, see the module doc). The file never uses external data and must
    not exceed ``max_size_mb`` (``None``: no limit).
    """
    import onnxruntime as ort

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    Path(str(out_path) + ".data").unlink(missing_ok=True)
    model = model.eval().float().cpu()
    wrapper = LogitsAndFeatures(model).eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(2, 3, image_size, image_size, generator=generator)
    with torch.no_grad():
        logits, features, embedding = wrapper(example)
    if logits.ndim != 2 or logits.shape[1] != 2 or features.ndim != 4:
        raise ModelError(
            f"expected logits (N, 2) and features (N, C, h, w), got {tuple(logits.shape)} "
            f"and {tuple(features.shape)}"
        )
    exporter = _export(wrapper, example, out_path, opset)
    if Path(str(out_path) + ".data").exists():
        raise ModelError(f"{out_path}: the exporter wrote external data; expected one file")
    if fp16_weights:
        store_weights_fp16(out_path)
        tolerance = max(tolerance, FP16_WEIGHTS_TOLERANCE)
    size_bytes = out_path.stat().st_size
    if max_size_mb is not None and size_bytes > max_size_mb * 1e6:
        raise ModelError(
            f"{out_path}: {size_bytes / 1e6:.1f} MB exceeds the {max_size_mb:g} MB limit "
            "for an embedded model (choose a smaller architecture, store the weights as float16 or raise the limit)"
        )

    session = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    diff_logits = diff_features = 0.0
    scale = 1.0
    for n in check_batch_sizes:
        x = torch.randn(n, 3, image_size, image_size, generator=generator)
        with torch.no_grad():
            ref_logits, ref_features, ref_embedding = (t.numpy() for t in wrapper(x))
        got_logits, got_features, got_embedding = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})
        diff_logits = max(diff_logits, float(np.abs(got_logits - ref_logits).max()))
        diff_features = max(diff_features, float(np.abs(got_features - ref_features).max()),
                            float(np.abs(got_embedding - ref_embedding).max()))
        scale = max(scale, float(np.abs(ref_logits).max()))
    if not diff_logits <= tolerance * scale:
        raise ModelError(
            f"{out_path}: ONNX logits differ from PyTorch by {diff_logits:.3g} "
            f"(tolerance {tolerance * scale:.3g}); the export is not faithful"
        )
    log.debug("exported %s (%.1f MB), max |logits diff| = %.3g", out_path, size_bytes / 1e6, diff_logits)
    return ExportCheck(
        path=str(out_path),
        exporter=exporter,
        opset=opset,
        image_size=image_size,
        check_batch_sizes=[int(n) for n in check_batch_sizes],
        max_abs_diff_logits=diff_logits,
        max_abs_diff_features=diff_features,
        feature_shape=[int(d) for d in features.shape[1:]],
        embedding_size=int(embedding.shape[1]),
        embedding_stage=[wrapper.stage, wrapper.n_stages],
        size_bytes=size_bytes,
        sha256=model_card.file_sha256(out_path),
        torch_version=torch.__version__,
        onnxruntime_version=ort.__version__,
        weights="float16 (cast to float32 in the graph)" if fp16_weights else "float32",
    )


def _cam_consistency(model: torch.nn.Module, weight: np.ndarray, bias: np.ndarray, image_size: int) -> float:
    """Max |logits - (mean_hw(features) @ W.T + b)|: 0 (to rounding) when CAM is exact."""
    x = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, features, _ = LogitsAndFeatures(model).eval()(x)
    pooled = features.mean(dim=(2, 3)).numpy()
    return float(np.abs(pooled @ weight.T + bias - logits.numpy()).max())


def architecture_name(model: torch.nn.Module) -> str:
    """The timm architecture name when known, else the class name."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__)


def export_bundle(
    model: torch.nn.Module,
    out_dir: str | Path,
    *,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    color_constancy: str | None,
    status: str = "trained",
    name: str = "melascan_default",
    architecture: str | None = None,
    calibration: dict | None = None,
    training: dict | None = None,
    metrics: dict | None = None,
    warnings: Sequence[str] = (),
    notes: str | None = None,
    opset: int = DEFAULT_OPSET,
    max_size_mb: float | None = DEFAULT_MAX_SIZE_MB,
    test_time_views: int = 1,
    fp16_weights: bool = False,
) -> dict:
    """Export ``model`` into ``out_dir`` as ``<name>.onnx``, ``<name>_head.npz`` and the
    model card (json + md). Returns the card.

    ``test_time_views`` > 1: the runtime averages the logits over that many symmetries of
    the square (``preprocess.tta_views``); ``calibration`` must then be fitted on such logits.

    ``calibration`` is ``{"temperature", "thresholds": {"balanced", "screening"},
    "source"}``; when ``None`` the defaults (T=1, thresholds 0.5) are used and the card
    says so. ``metrics`` maps an evaluated set's name to its ``metrics.json`` content;
    only pass numbers that were measured.
    """
    if status not in model_card.STATUSES:
        raise ValueError(f"status must be one of {model_card.STATUSES}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    warnings = list(warnings)
    if status == "untrained":
        warnings.insert(0, model_card.PLACEHOLDER_NOTE)
    if calibration is None:
        calibration = {
            "temperature": model_card.DEFAULT_TEMPERATURE,
            "thresholds": dict(model_card.DEFAULT_THRESHOLDS),
            "source": None,
        }
        warnings.append(
            "No calibration.json: temperature T = 1 (uncalibrated probabilities) and both "
            "thresholds = 0.5 (not tuned on validation data)."
        )

    onnx_path = out_dir / f"{name}.onnx"
    check = export_onnx(model, onnx_path, image_size, opset=opset, max_size_mb=max_size_mb, fp16_weights=fp16_weights)
    weight, bias = head_weights(model)
    if weight.shape[1] != check.feature_shape[0]:
        raise ModelError(
            f"head has {weight.shape[1]} input channels but the feature map has {check.feature_shape[0]}"
        )
    head_path = out_dir / f"{name}_head.npz"
    np.savez(head_path, weight=weight, bias=bias)
    cam_diff = _cam_consistency(model, weight, bias, image_size)

    card = {
        "schema_version": model_card.SCHEMA_VERSION,
        "name": name,
        "status": status,
        "warnings": warnings,
        "architecture": architecture or architecture_name(model),
        "precision": "fp32 (weights stored as fp16)" if fp16_weights else "fp32",
        "class_names": list(model_card.CLASS_NAMES),
        "input": {
            "name": INPUT_NAME,
            "image_size": int(image_size),
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "color_constancy": color_constancy or None,
            "test_time_views": int(test_time_views),
            "layout": "NCHW float32, (rgb/255 - mean) / std, after centre square crop and resize",
        },
        "outputs": {
            "logits": ["N", 2],
            "features": ["N", *check.feature_shape],
            "embedding": ["N", check.embedding_size],
            "embedding_from": f"global average of intermediate stage {check.embedding_stage[0]} of "
                              f"{check.embedding_stage[1]} (0-based; melascan.export.bundle.embedding_stage)",
        },
        "calibration": {
            "temperature": float(calibration["temperature"]),
            "thresholds": {k: float(calibration["thresholds"][k]) for k in ("balanced", "screening")},
            "source": calibration.get("source"),
            **{k: calibration[k] for k in ("fitted_on", "command") if calibration.get(k)},
        },
        "cam": {
            "method": "CAM (Zhou et al. 2016): sum_c (w[malignant,c] - w[benign,c]) * features[c], "
            "ReLU, normalised to [0, 1]",
            "weights_file": head_path.name,
            "max_abs_diff_pooled_logits": cam_diff,
            "exact": bool(cam_diff <= 1e-3 * max(1.0, float(np.abs(bias).max()))),
        },
        "training": training or {},
        "metrics": metrics or {},
        "notes": notes,
        "export": {
            **{k: v for k, v in check.to_dict().items() if k not in ("path", "sha256", "size_bytes")},
            "python": platform.python_version(),
        },
        "files": {
            "onnx": model_card.file_entry(onnx_path),
            "head": model_card.file_entry(head_path),
        },
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    model_card.write_card(card, out_dir)
    return card


def export_untrained(
    out_dir: str | Path,
    architecture: str = "efficientnet_lite0",
    image_size: int = 224,
    *,
    name: str = "melascan_default",
    seed: int = 0,
    head_std: float = 0.01,
    max_size_mb: float | None = DEFAULT_MAX_SIZE_MB,
) -> dict:
    """Export a randomly initialised timm model (ImageNet mean/std) as a placeholder.

    The classifier is re-initialised with N(0, ``head_std``) weights and zero bias so
    that its (meaningless) probabilities stay near 0.5 instead of saturating at 0 or 1
    as they do with timm's default head init on a random backbone. The card says
    ``"status": "untrained"`` and carries a loud warning.
    """
    import timm

    from melascan.preprocess import IMAGENET_MEAN, IMAGENET_STD

    torch.manual_seed(seed)
    model = timm.create_model(architecture, pretrained=False, num_classes=2)
    head = model.get_classifier()
    with torch.no_grad():
        torch.nn.init.normal_(head.weight, std=head_std)
        torch.nn.init.zeros_(head.bias)
    return export_bundle(
        model,
        out_dir,
        image_size=image_size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        color_constancy=None,
        status="untrained",
        name=name,
        architecture=architecture,
        calibration={
            "temperature": model_card.DEFAULT_TEMPERATURE,
            "thresholds": dict(model_card.DEFAULT_THRESHOLDS),
            "source": None,
        },
        training={
            "command": (
                "python -c \"from melascan.export.bundle import export_untrained; "
                f"export_untrained('OUT', '{architecture}', {image_size}, seed={seed}, head_std={head_std})\""
            ),
            "note": f"random initialisation (torch.manual_seed({seed}); classifier N(0, {head_std})), "
            "never trained",
        },
        max_size_mb=max_size_mb,
    )

"""Optional int8 quantization of an exported model folder (onnxruntime, no torch).

Static post-training quantization in QDQ format: int8 per-channel weights, uint8
activations whose ranges are calibrated on real training images (MinMax). On this
project's CPU (AVX-512 VNNI) it halves batch-1 latency (docs/inference.md). The new
folder keeps the head and the card, whose ``precision`` becomes ``"int8"`` and whose
``export.int8`` records how far the int8 model is from the fp32 one on held-out images.
Needs the ``onnx`` package (installed with the ``train`` extra), like the exporter.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from melascan.inference import card as model_card
from melascan.inference.classifier import Classifier, calibrated_probability, label_for

QUANTIZATION = "static QDQ, per-channel int8 weights, uint8 activations, MinMax calibration"


def _calibration_reader(batches: Sequence[np.ndarray], input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._iter = iter(batches)

        def get_next(self) -> dict | None:
            batch = next(self._iter, None)
            return None if batch is None else {input_name: batch}

    return Reader()


def quantize_onnx(fp32_path: str | Path, out_path: str | Path, batches: Sequence[np.ndarray], input_name: str) -> None:
    """Write the int8 version of ``fp32_path``; ``batches`` are model inputs (N,3,S,S)."""
    root = logging.getLogger()  # onnxruntime.quantization logs one INFO line per adjusted scale
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        _quantize(fp32_path, out_path, batches, input_name)
    finally:
        root.setLevel(level)


def _quantize(fp32_path, out_path, batches, input_name) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out_path),
            _calibration_reader(batches, input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


def compare(
    fp32: Classifier, int8: Classifier, images: Sequence[np.ndarray], labels: Sequence[int] | None = None
) -> dict[str, Any]:
    """How the int8 model differs from the fp32 one on ``images`` (uint8 RGB):
    probability differences, label agreement at both thresholds, ROC-AUC of each."""
    p32, p8 = [], []
    for start in range(0, len(images), 32):
        chunk = images[start : start + 32]
        p32.append(calibrated_probability(fp32.predict_arrays(chunk)[0], fp32.temperature))
        p8.append(calibrated_probability(int8.predict_arrays(chunk)[0], int8.temperature))
    a, b = np.concatenate(p32), np.concatenate(p8)
    out: dict[str, Any] = {
        "n_images": int(a.size),
        "max_abs_diff_probability": float(np.abs(a - b).max()),
        "mean_abs_diff_probability": float(np.abs(a - b).mean()),
    }
    for name, t in fp32.thresholds.items():
        same = [label_for(x, t) == label_for(y, t) for x, y in zip(a, b)]
        out[f"label_agreement_{name}"] = float(np.mean(same))
    if labels is not None and len(set(labels)) == 2:
        from sklearn.metrics import roc_auc_score

        out["roc_auc_fp32"] = float(roc_auc_score(labels, a))
        out["roc_auc_int8"] = float(roc_auc_score(labels, b))
    return out


def quantize_bundle(
    src_dir: str | Path,
    out_dir: str | Path,
    calibration_images: Sequence[np.ndarray],
    eval_images: Sequence[np.ndarray],
    eval_labels: Sequence[int] | None = None,
    *,
    calibration_source: str = "",
    eval_source: str = "",
) -> dict:
    """Quantize the fp32 model folder ``src_dir`` into ``out_dir`` (may not be the same).

    ``calibration_images`` (uint8 RGB, e.g. ~100 training images) set the activation
    ranges; ``eval_images`` (held-out, e.g. the validation split) measure the change.
    Returns the new card.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if src_dir.resolve() == out_dir.resolve():
        raise ValueError("quantize into another folder than the fp32 model's")
    fp32 = Classifier(src_dir, threads=2)
    out_dir.mkdir(parents=True, exist_ok=True)
    card = copy.deepcopy(fp32.card)
    onnx_out = out_dir / card["files"]["onnx"]["name"]
    batches = [fp32.prepare(rgb)[None] for rgb in calibration_images]
    quantize_onnx(fp32.onnx_path, onnx_out, batches, card["input"]["name"])
    shutil.copyfile(src_dir / card["files"]["head"]["name"], out_dir / card["files"]["head"]["name"])

    card["precision"] = "int8"
    card["files"]["onnx"] = model_card.file_entry(onnx_out)
    card["export"]["int8"] = {
        "method": QUANTIZATION,
        "calibration_images": len(calibration_images),
        "calibration_source": calibration_source,
        "fp32_sha256": fp32.card["files"]["onnx"]["sha256"],
    }
    card["warnings"] = list(card.get("warnings", [])) + [
        "int8-quantized model: the metrics in this card were measured on the fp32 model; "
        "export.int8.comparison gives the fp32-vs-int8 differences on held-out images."
    ]
    model_card.write_card(card, out_dir)
    int8 = Classifier(out_dir, threads=2)
    card["export"]["int8"]["comparison"] = {"source": eval_source, **compare(fp32, int8, eval_images, eval_labels)}
    model_card.write_card(card, out_dir)
    return card

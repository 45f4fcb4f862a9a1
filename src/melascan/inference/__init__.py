"""Torch-free inference: the ONNX classifier, its model card and CAM.

``melascan.inference.export`` (ONNX export) is the only module here that imports
torch; it is not imported by this package.
"""

from melascan.inference.classifier import Classifier, Prediction, calibrated_probability, label_for

__all__ = ["Classifier", "Prediction", "calibrated_probability", "label_for"]

"""The torch-free runtime: the ONNX classifier, its model card, CAM, scope detector and
fusion. It imports neither training nor evaluation; ``melascan.export`` writes the
model folders it reads."""

from melascan.inference.classifier import Classifier, Prediction, calibrated_probability, label_for

__all__ = ["Classifier", "Prediction", "calibrated_probability", "label_for"]

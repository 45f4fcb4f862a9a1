"""From a trained run to a model folder (needs torch): ONNX export, int8 quantization,
the scope detector and fusion heads, and the model card, built once (``export.run``).
The runtime that reads the folder is ``melascan.inference``."""

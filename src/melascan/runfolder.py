"""The training run folder: the one owner of its layout and files (torch-free).

Training, evaluation, export and the report all go through ``RunFolder``::

    runs/NAME/config.yaml                 the resolved RunConfig           (melascan train)
    runs/NAME/data.json                   manifest path + sha256, mean/std, class counts
    runs/NAME/history.csv                 one row per epoch
    runs/NAME/summary.json                best epoch, best validation metrics
    runs/NAME/train.log
    runs/NAME/checkpoints/best.pt, last.pt, epoch_010.pt ...
    runs/NAME/calibration.json            T + thresholds of "best"        (melascan evaluate)
    runs/NAME/calibration_<ckpt>.json     ... of another checkpoint
    runs/NAME/eval/<name>/                one evaluated set of "best"
    runs/NAME/eval/<name>@<ckpt>/         ... of another checkpoint
    runs/NAME/report.md, report.html      rebuilt from everything above
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from melascan.errors import DataError, ModelError
from melascan.serialization import json_safe

if TYPE_CHECKING:
    from melascan.data.manifest import Manifest
    from melascan.training.config import RunConfig

log = logging.getLogger(__name__)

BEST = "best"


def safe_name(text: str) -> str:
    """A folder-safe spelling of an evaluation or checkpoint name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "folder"


def read_json(path: str | Path) -> dict | None:
    """A JSON object file, ``None`` when missing; unreadable JSON is a DataError."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from None
    return value if isinstance(value, dict) else None


def write_json(path: str | Path, data: dict) -> None:
    """Strict JSON (``json_safe``), indented, with a final newline."""
    Path(path).write_text(json.dumps(json_safe(data), indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class RunFolder:
    """One run folder (see the module doc for the layout)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # --- training files -------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def data_path(self) -> Path:
        return self.path / "data.json"

    @property
    def history_path(self) -> Path:
        return self.path / "history.csv"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def read_config(self, overrides: list[str] | None = None) -> RunConfig:
        """The run's resolved ``config.yaml`` (with ``--set`` overrides, for a resume)."""
        from melascan.training.config import load_config

        if not self.config_path.is_file():
            raise DataError(f"not a run folder: {self.config_path} is missing")
        return load_config(self.config_path, overrides)

    def write_config(self, cfg: RunConfig) -> None:
        from melascan.training.config import save_config

        save_config(cfg, self.config_path)

    def read_data(self) -> dict:
        return read_json(self.data_path) or {}

    def write_data(self, data: dict) -> None:
        write_json(self.data_path, data)

    def read_summary(self) -> dict | None:
        return read_json(self.summary_path)

    def write_summary(self, summary: dict) -> None:
        write_json(self.summary_path, summary)

    def read_history(self, up_to_epoch: int | None = None) -> list[dict]:
        """``history.csv`` rows (strings), optionally only epochs ``<= up_to_epoch``."""
        if not self.history_path.is_file():
            return []
        with open(self.history_path, newline="", encoding="utf-8") as fh:
            return [r for r in csv.DictReader(fh) if up_to_epoch is None or int(r["epoch"]) <= up_to_epoch]

    def write_history(self, rows: list[dict], columns: Sequence[str]) -> None:
        with open(self.history_path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    def checkpoint(self, name: str = BEST) -> Path:
        """``best`` | ``last`` | ``epoch_010`` | a path to a ``.pt`` file; ModelError if missing."""
        candidate = Path(name)
        if candidate.suffix == ".pt" and candidate.is_file():
            return candidate
        path = self.checkpoints / f"{name}.pt"
        if not path.is_file():
            raise ModelError(f"checkpoint not found: {path}")
        return path

    def manifest(self, cfg: RunConfig | None = None) -> Manifest:
        """The run's manifest: ``data.json["manifest"]`` (absolute, written by training), else
        ``cfg.manifest`` relative to the working directory or the run folder. Warns when
        its sha256 differs from the one recorded at training time."""
        from melascan.data.manifest import read_manifest

        data = self.read_data()
        cfg = cfg or self.read_config()
        candidates = [Path(data["manifest"])] if data.get("manifest") else []
        candidates += [Path(cfg.manifest), self.path / cfg.manifest]
        for candidate in candidates:
            if candidate.is_file():
                manifest = read_manifest(candidate)
                if data.get("manifest_sha256") and data["manifest_sha256"] != manifest.sha256():
                    log.warning("%s changed since the run was trained: splits and leakage checks may not match",
                                candidate)
                return manifest
        raise DataError(f"{self.path}: the run's manifest was not found (tried {', '.join(map(str, candidates))})")

    # --- evaluation files -----------------------------------------------------------------
    def calibration_path(self, checkpoint: str = BEST) -> Path:
        name = "calibration.json" if checkpoint == BEST else f"calibration_{safe_name(checkpoint)}.json"
        return self.path / name

    def read_calibration(self, checkpoint: str = BEST) -> dict | None:
        """The calibration file of ``checkpoint`` (``temperature``, ``thresholds.balanced`` /
        ``screening``, ``fitted_on``, ``command``, optional ``tta``) with ``source`` = its
        path, or ``None`` when the checkpoint was not evaluated."""
        path = self.calibration_path(checkpoint)
        cal = read_json(path)
        if cal is None:
            return None
        try:
            cal["temperature"] = float(cal["temperature"])
            cal["thresholds"] = {k: float(cal["thresholds"][k]) for k in ("balanced", "screening")}
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: expected temperature and thresholds.balanced/screening ({exc})") from None
        return {**cal, "source": str(path)}

    def write_calibration(self, checkpoint: str, cal: dict) -> Path:
        path = self.calibration_path(checkpoint)
        write_json(path, cal)
        return path

    @property
    def eval_root(self) -> Path:
        return self.path / "eval"

    @staticmethod
    def parse_eval_name(folder_name: str) -> tuple[str, str]:
        """``"test@last"`` -> ``("test", "last")``; ``"test"`` -> ``("test", "best")``."""
        name, _, checkpoint = folder_name.partition("@")
        return name, checkpoint or BEST

    @staticmethod
    def eval_name(name: str, checkpoint: str = BEST) -> str:
        """``test`` for the best checkpoint, ``test@last`` for another one."""
        name = safe_name(name)
        return name if checkpoint == BEST else f"{name}@{safe_name(checkpoint)}"

    def eval_dir(self, name: str, checkpoint: str = BEST) -> Path:
        return self.eval_root / self.eval_name(name, checkpoint)

    def evaluations(self, checkpoint: str | None = BEST) -> dict[str, Path]:
        """``{name: eval folder}`` of every evaluation with a ``metrics.json``, of
        ``checkpoint`` only (``None``: of every checkpoint)."""
        found = {}
        for path in sorted(self.eval_root.glob("*/metrics.json")):
            name = path.parent.name
            if checkpoint is None or self.parse_eval_name(name)[1] == safe_name(checkpoint):
                found[name] = path.parent
        return found

    @property
    def report_paths(self) -> tuple[Path, Path]:
        return self.path / "report.md", self.path / "report.html"

    def command(self) -> str:
        """The command that reproduces the run (its config.yaml is fully resolved)."""
        import shlex

        members = self.read_config().members
        if members:
            return shlex.join(["melascan", "ensemble", *members, "--out", str(self.path)])
        return shlex.join(["melascan", "train", "--config", str(self.config_path), "--out", str(self.path)])

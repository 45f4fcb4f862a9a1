"""Fixtures shared by every test folder: a synthetic data set, one tiny trained run, and a
real, throwaway PostgreSQL server.

``write_prepared(source_root, out_dir, images)`` writes given images and their manifest as
``melascan prepare`` would. ``make_dataset(root, counts)`` uses it for small JPEGs (bright =
malignant, dark = benign, a coloured blob and noise make every image different: a task a tiny
model learns in one epoch) under ``root/images/<split>/<label>/`` and ``root/split/``.
``tiny_manifest`` is one such data set; ``trained_run`` is one real run on it (timm's
``resnet10t``, 64 px, Shades of Gray, two epochs on CPU) evaluated on its test split, for every
test that needs a trained model.

``postgres`` starts a private cluster (Debian's ``postgresql`` package, which
``make test`` installs) on 127.0.0.1 and a free port for the test session and stops
and deletes it afterwards; ``postgres.new_database()`` gives each user a fresh
database. Without the package (or the psycopg driver) the PostgreSQL variants are
skipped with a message saying so. ``any_database`` runs a test on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from melascan.data.manifest import Record, write_manifest

TINY_IMAGE_SIZE = 64


# --- a synthetic data set and one tiny trained run ------------------------------------------
def synthetic_lesion(rng: np.random.Generator, malignant: bool, size: int = 48) -> np.ndarray:
    """Bright (malignant) or dark (benign) noisy skin with a darker coloured blob."""
    img = rng.normal(190 if malignant else 60, 20, size=(size, size, 3))
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.integers(size // 3, 2 * size // 3, 2)
    r = rng.integers(max(2, size // 8), max(3, size // 4))
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] *= rng.uniform(0.5, 0.9, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_prepared(source_root: Path, out_dir: Path, images) -> Path:
    """A prepared folder as ``melascan prepare`` writes it: each ``(rel, label, split, image,
    source)`` saved under ``source_root / rel`` (format from the suffix; ``image`` an RGB
    array or a PIL image), and ``out_dir/manifest.csv`` + ``summary.json``. Returns the manifest."""
    records = []
    for rel, label, split, image, source in images:
        path = source_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
        pil.save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        records.append(Record(rel, label, split, md5, pil.width, pil.height, source))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(out_dir / "manifest.csv", records)
    (out_dir / "summary.json").write_text(json.dumps({"source_root": str(source_root)}))
    return out_dir / "manifest.csv"


def write_dataset(root: Path, counts: dict[str, tuple[int, int]], seed: int = 0, size: int = 48) -> Path:
    """``synthetic_lesion`` images under ``root/images/<split>/<label>/NNN.jpg`` and
    ``root/split/manifest.csv``; ``counts[split] = (n_benign, n_malignant)``."""
    rng = np.random.default_rng(seed)
    images = [(f"images/{split}/{label}/{i:03d}.jpg", label, split,
               synthetic_lesion(rng, label == "malignant", size), "")
              for split, (n_benign, n_malignant) in counts.items()
              for label, n in (("benign", n_benign), ("malignant", n_malignant)) for i in range(n)]
    return write_prepared(root, root / "split", images)


@pytest.fixture(scope="session", name="write_prepared")
def write_prepared_fixture():
    """``write_prepared`` (see its docstring)."""
    return write_prepared


@pytest.fixture(scope="session")
def make_dataset():
    """``write_dataset`` (see the module doc)."""
    return write_dataset


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    """24 train (12/12), 12 val (6/6) and 8 test (4/4) images of 48 px."""
    return write_dataset(tmp_path_factory.mktemp("data"), {"train": (12, 12), "val": (6, 6), "test": (4, 4)})


def train_tiny_run(manifest: Path, root: Path, seed: int = 0) -> Path:
    """One real run on ``manifest``: trained two epochs, then evaluated on its test split
    (calibration.json, eval/test/metrics.json)."""
    from melascan.evaluation.evaluate import evaluate_run
    from melascan.training.config import RunConfig
    from melascan.training.engine import train

    cfg = RunConfig(
        model="resnet10t", pretrained="none", drop_rate=0.0, manifest=str(manifest), eda_json=None,
        image_size=TINY_IMAGE_SIZE, color_constancy="shades_of_gray", cache_dir=str(root / "cache"), recipe="C4",
        batch_size=8, epochs=2, warmup_epochs=0, lr=3e-3, patience=None, checkpoint_every=0, device="cpu", seed=seed,
    )
    train(cfg, root / "run")
    evaluate_run(root / "run", split="test", n_bootstrap=20, report=False)
    return root / "run"


@pytest.fixture(scope="session")
def trained_run(tiny_manifest, tmp_path_factory) -> Path:
    """``train_tiny_run`` with seed 0."""
    pytest.importorskip("torch")
    return train_tiny_run(tiny_manifest, tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture(scope="session")
def second_trained_run(tiny_manifest, tmp_path_factory) -> Path:
    """The same run with seed 1 (an ensemble member beside ``trained_run``)."""
    pytest.importorskip("torch")
    return train_tiny_run(tiny_manifest, tmp_path_factory.mktemp("tiny_run_seed1"), seed=1)


# --- PostgreSQL ------------------------------------------------------------------------------
PG_ROOT = Path("/usr/lib/postgresql")


def _pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), if any."""
    found = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "initdb").is_file()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A private PostgreSQL cluster: ``initdb``, ``pg_ctl start`` / ``stop`` (as ``postgres`` under root)."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="melascan-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"
        # initdb and the server refuse to run as root: use the package's ``postgres`` user.
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout[-800:]} {result.stderr[-800:]}")

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"melascan_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return f"{self.url}/{name}"


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL server (skipped, with the reason, where it cannot run)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql package)")
    pytest.importorskip("psycopg", reason="the psycopg driver is missing (pip install -e '.[dev]')")
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        server.stop()
        pytest.skip(f"PostgreSQL could not be started here: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request) -> str | None:
    """``None`` (SQLite in the instance folder) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()

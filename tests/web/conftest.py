"""Shared fixtures for the web tests: a fresh app per test, images made from the committed samples."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from melascan.data.sample_catalogue import write_catalogue
from melascan.web import create_app
from melascan.web.testing import BrowserClient


SAMPLES = sorted((Path(__file__).resolve().parents[2] / "src" / "melascan" / "assets" / "samples").glob("*.jpg"))


def lesion_image(size: int = 320, seed: int = 0, radius: float = 0.28, fmt: str = "JPEG") -> bytes:
    """A real dermoscopy image: one of the committed samples (``seed`` picks it), turned by a
    multiple of 90 degrees, possibly mirrored, cropped and slightly brightened by ``seed``, so
    each seed gives other bytes. A larger ``radius`` (0.28 = as taken) crops tighter, so the spot
    fills more of the picture. Real photos, because the model's out-of-scope detector (rightly)
    refuses drawn cartoons of lesions."""
    rng = np.random.default_rng(seed)
    img = Image.open(SAMPLES[seed % len(SAMPLES)]).convert("RGB")
    img = img.rotate(90 * int(rng.integers(4)), expand=True)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    w, h = img.size
    keep = min(1.0, 0.28 / radius) * rng.uniform(0.9, 1.0)
    cw, ch = int(w * keep), int(h * keep)
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((left, top, left + cw, top + ch)).resize((size, size), Image.Resampling.LANCZOS)
    img = Image.fromarray(np.clip(np.asarray(img, np.float32) * rng.uniform(0.95, 1.05), 0, 255).astype(np.uint8))
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


def plain_image(size: int = 200, color=(220, 180, 160), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, fmt)
    return out.getvalue()


@pytest.fixture(scope="session")
def lesion_jpeg() -> bytes:
    return lesion_image()


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory) -> Path:
    """A samples folder like melascan/assets/samples, with synthetic images."""
    folder = tmp_path_factory.mktemp("samples")
    entries = []
    for i, label in enumerate(["benign", "malignant"]):
        name = f"synthetic_{label}.jpg"
        (folder / name).write_bytes(lesion_image(seed=10 + i))
        entries.append({"file": name, "label": label, "source": "synthetic test image"})
    write_catalogue(folder, entries, source="tests/web/conftest.py", selection="synthetic")
    return folder


@pytest.fixture
def database_url() -> str | None:
    """SQLite in the instance folder; modules that override it with ``any_database`` run twice."""
    return None


@pytest.fixture
def app(tmp_path, samples_dir, database_url):
    config = {"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, "SAMPLES_DIR": str(samples_dir)}
    if database_url:
        config["DATABASE_URL"] = database_url
    app = create_app(config)
    app.test_client_class = BrowserClient  # owner cookie, form token and API header, like a browser
    yield app
    app.extensions["melascan_db"].kw["bind"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def upload(client, data: bytes, filename: str = "lesion.jpg", field: str = "image", **form):
    """POST an image to the API as multipart form data."""
    payload = {field: (io.BytesIO(data), filename), **form}
    return client.post("/api/v1/analyses", data=payload, content_type="multipart/form-data")


@pytest.fixture(name="upload")
def upload_fixture():
    """``upload(client, data, filename="lesion.jpg", field="image", **form)``."""
    return upload


@pytest.fixture(name="make_lesion")
def make_lesion_fixture():
    """``make_lesion(size=320, seed=0, radius=0.28, fmt="JPEG") -> bytes``."""
    return lesion_image


@pytest.fixture(name="make_plain")
def make_plain_fixture():
    """``make_plain(size=200, color=(r, g, b), fmt="PNG") -> bytes``."""
    return plain_image

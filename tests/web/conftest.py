"""Shared fixtures for the web tests: a fresh app per test, synthetic images, samples."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from melascan.web import create_app
from melascan.web.testing import BrowserClient


def lesion_image(size: int = 320, seed: int = 0, radius: float = 0.28, fmt: str = "JPEG") -> bytes:
    """A dermoscopy-like synthetic image: an irregular brown spot on textured skin."""
    rng = np.random.default_rng(seed)
    skin = np.array([222, 178, 158], np.float32)
    base = np.clip(skin + rng.normal(0, 6, (size, size, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    c = size / 2
    r = radius * size
    points = []
    for k in range(24):  # an irregular outline
        angle = 2 * np.pi * k / 24
        rr = r * (1 + 0.18 * np.sin(3 * angle + seed) + 0.08 * rng.standard_normal())
        points.append((c + rr * np.cos(angle), c + 0.85 * rr * np.sin(angle)))
    draw.polygon(points, fill=(118, 74, 52))
    draw.ellipse([c - r * 0.45, c - r * 0.35, c + r * 0.3, c + r * 0.4], fill=(62, 38, 28))
    img = img.filter(ImageFilter.GaussianBlur(2))
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
    (folder / "samples.json").write_text(json.dumps({"samples": entries}))
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

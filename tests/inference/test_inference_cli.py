"""`melascan predict` and the no-torch guarantee of the serving path."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from PIL import Image

from melascan.cli import main
from melascan.imageio import list_images
from melascan.inference.predict import CSV_COLUMNS


@pytest.fixture
def folder(tmp_path, rng):
    root = tmp_path / "images"
    (root / "b_sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(root / "c.jpg")
    Image.fromarray(rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)).save(root / "b_sub" / "x.PNG")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / ".hidden" / "skip.png")
    (root / "a_bad.jpg").write_text("not an image")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return root


def test_list_images_is_recursive_sorted_and_skips_non_images(folder):
    assert [p.relative_to(folder).as_posix() for p in list_images(folder)] == ["a_bad.jpg", "b_sub/x.PNG", "c.jpg"]


def test_predict_folder_writes_stable_csv_with_error_row(folder, exported, tmp_path, capsys):
    out = tmp_path / "out" / "pred.csv"
    assert main(["predict", str(folder), "--csv", str(out), "--model", str(exported)]) == 0
    assert "a_bad.jpg" in capsys.readouterr().err
    with open(out, newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    assert [r["path"] for r in rows] == [str(folder / "a_bad.jpg"), str(folder / "b_sub" / "x.PNG"), str(folder / "c.jpg")]
    bad, *good = rows
    assert "not an image" in bad["error"] and bad["probability"] == "" and bad["label"] == ""
    for row in good:
        assert row["error"] == ""
        assert 0.0 <= float(row["probability"]) <= 1.0
        assert row["label"] in ("benign", "malignant") and row["label_screening"] in ("benign", "malignant")
        float(row["logit_benign"]), float(row["logit_malignant"])


def test_predict_json_and_single_file(folder, exported, capsys):
    assert main(["predict", str(folder / "c.jpg"), "--json", "--model", str(exported)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"]["status"] == "trained"
    (row,) = result["predictions"]
    assert set(row) == set(CSV_COLUMNS) and row["error"] is None
    assert main(["predict", str(folder / "a_bad.jpg"), "--model", str(exported)]) == 2
    assert "not an image" in capsys.readouterr().err
    assert main(["predict", str(folder / "missing"), "--model", str(exported)]) == 2


NO_TORCH = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import numpy as np
    import melascan.inference, melascan.inference.predict, melascan.inference.commands
    import melascan.imageio, melascan.preprocess
    from melascan.cli import main
    from melascan.inference import Classifier
    skipped = []
    for pkg in ("melascan.web", "melascan.lesion"):  # the serving side, when present
        try:
            mod = importlib.import_module(pkg)
        except ImportError as exc:
            skipped.append(f"{pkg}: {exc}")
            continue
        for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
            if info.name.endswith("commands"):
                continue
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # another helper's module in progress: reported, not fatal
                skipped.append(f"{info.name}: {type(exc).__name__}: {exc}")
    p = Classifier.default().predict(np.zeros((64, 64, 3), np.uint8), with_cam=True)
    assert main(["predict", sys.argv[1], "--json"]) == 0
    print(json.dumps({"torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
                      "skipped": skipped}))
    """
)


def test_serving_path_never_imports_torch(folder):
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(folder / "c.jpg")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["torch"] == [], report
    if report["skipped"]:
        warnings.warn(f"modules not importable, so not checked: {report['skipped']}")

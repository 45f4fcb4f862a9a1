"""Labelled CSVs: path,label, PH2's labels.csv and HAM10000's metadata read as they are."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from melascan.data.labelled import read_labelled_csv
from melascan.errors import DataError


def _image(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 20, 3), value, np.uint8)).save(path)


def test_ph2_and_ham_layouts_and_plain_csv(tmp_path):
    ph2 = tmp_path / "ph2"
    for name, value in (("IMD002", 10), ("IMD003", 20), ("IMD004", 30)):
        _image(ph2 / "images" / f"{name}.png", value)
    (ph2 / "labels.csv").write_text("image,diagnosis,asymmetry\nIMD002,atypical_nevus,1\n"
                                    "IMD003,melanoma,2\nIMD004,common_nevus,0\nIMD999,melanoma,0\n")
    images, skipped = read_labelled_csv(ph2 / "labels.csv")
    assert [(i.path.name, i.label) for i in images] == [("IMD002.png", "benign"), ("IMD003.png", "malignant"),
                                                        ("IMD004.png", "benign")]
    assert skipped == [{"path": "IMD999", "reason": "file not found"}]

    ham = tmp_path / "ham"
    for name in ("ISIC_1", "ISIC_2", "ISIC_3"):
        _image(ham / "images" / f"{name}.jpg", 50)
    (ham / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\nL1,ISIC_1,mel\nL2,ISIC_2,bkl\nL3,ISIC_3,bcc\n")
    images, skipped = read_labelled_csv(ham / "HAM10000_metadata.csv")
    assert [i.label for i in images] == ["malignant", "benign"] and images[0].row["lesion_id"] == "L1"
    assert "outside the benign/melanoma task" in skipped[0]["reason"]

    plain = tmp_path / "list.csv"
    plain.write_text(f"path,label\n{ham / 'images' / 'ISIC_1.jpg'},malignant\n{ph2 / 'images' / 'IMD002.png'},0\n")
    assert [i.label for i in read_labelled_csv(plain)[0]] == ["malignant", "benign"]


def test_unusable_csvs_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_labelled_csv(tmp_path / "missing.csv")
    (tmp_path / "a.csv").write_text("name,what\nx,y\n")
    with pytest.raises(DataError, match="image path column"):
        read_labelled_csv(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("path,label\nx.jpg,maybe\n")
    with pytest.raises(DataError, match="no usable"):
        read_labelled_csv(tmp_path / "b.csv")

"""``prepare --mix``: seed split + rest of melanoma-10k + HAM10000 by lesion, one copy per image."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from melascan.cli import main
from melascan.data.manifest import read_manifest
from melascan.data.mix import MixConfig, prepare_mix
from melascan.data.prepare import PrepareConfig, prepare


def _ham_folder(root: Path, synth, m10k: Path) -> dict:
    """A HAM10000-like folder: 12 lesions (some with 2-3 images), one bcc, and one melanoma
    that is a resized copy of a melanoma-10k malignant file (listed in in_melanoma10k.csv)."""
    images = root / "images"
    images.mkdir(parents=True)
    rows, seed = [], 500
    lesions = [("nv", 2), ("nv", 1), ("nv", 3), ("bkl", 1), ("df", 1), ("vasc", 1), ("nv", 2), ("nv", 1),
               ("mel", 2), ("mel", 1), ("mel", 1), ("bcc", 1)]
    for n, (dx, count) in enumerate(lesions):
        for _ in range(count):
            image_id = f"ISIC_{seed:07d}"
            synth.pattern_image(seed, size=80).resize((80, 60)).save(images / f"{image_id}.jpg", quality=92)
            rows.append({"lesion_id": f"HAM_{n:07d}", "image_id": image_id, "dx": dx})
            seed += 1
    # the copy: a HAM melanoma whose bigger copy sits in melanoma-10k train/malignant
    source = sorted((m10k / "train" / "malignant").glob("img_*.jpg"))[0]
    Image.open(source).resize((80, 60)).save(images / "ISIC_0999999.jpg", quality=92)
    rows.append({"lesion_id": "HAM_0000999", "image_id": "ISIC_0999999", "dx": "mel"})
    with open(root / "HAM10000_metadata.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["lesion_id", "image_id", "dx"])
        writer.writeheader()
        writer.writerows(rows)
    (root / "in_melanoma10k.csv").write_text(
        f"image_id,melanoma10k_file\nISIC_0999999,{source.relative_to(m10k).as_posix()}\n")
    return {"rows": rows, "copy_of": source.relative_to(m10k).as_posix()}


@pytest.fixture()
def mix_inputs(tmp_path: Path, synth):
    m10k = tmp_path / "data" / "melanoma-10k"
    synth.make_dataset(m10k, {"train/benign": 30, "train/malignant": 24, "test/benign": 6, "test/malignant": 6})
    seed = tmp_path / "seed"
    prepare(PrepareConfig(src=m10k, out=seed, malignant=20, benign=20, workers=1, progress=False))
    ham = tmp_path / "data" / "ham10000"
    info = _ham_folder(ham, synth, m10k)
    excluded = sorted(r.path for r in read_manifest(seed).records if r.split == "train")[:2]
    exclude = tmp_path / "held_out.txt"
    exclude.write_text("# held-out copies\n" + "\n".join(excluded) + "\n")
    return {"m10k": m10k, "seed": seed, "ham": ham, "exclude": exclude, "excluded": excluded, **info}


def test_mix_keeps_seed_test_splits_lesions_and_one_copy(mix_inputs, tmp_path):
    out = tmp_path / "mix"
    summary = prepare_mix(MixConfig(base=mix_inputs["seed"], ham=mix_inputs["ham"], out=out,
                                    exclude=mix_inputs["exclude"], workers=1, progress=False))
    manifest = read_manifest(out)
    seed = read_manifest(mix_inputs["seed"])
    by_path = {r.path: r for r in manifest.records}
    # the seed test split is kept exactly, under the melanoma-10k source
    seed_test = {f"melanoma-10k/{r.path}" for r in seed.records if r.split == "test"}
    assert {p for p, r in by_path.items() if r.split == "test" and r.source == "melanoma-10k"} == seed_test
    # held-out copies never reach train or val
    for path in mix_inputs["excluded"]:
        assert f"melanoma-10k/{path}" not in by_path
    assert summary["excluded"] == {"listed": 2, "found": 2, "removed_from_train_val": 2, "kept_in_seed_test": 0,
                                   "near_duplicates_removed": 0}
    # every HAM lesion lands whole in one split; bcc is left out
    lesion_of = {f"ham10000/images/{r['image_id']}.jpg": r["lesion_id"] for r in mix_inputs["rows"]}
    splits_of_lesion: dict[str, set] = {}
    for path, r in by_path.items():
        if r.source == "ham10000":
            splits_of_lesion.setdefault(lesion_of[path], set()).add(r.split)
    assert splits_of_lesion and all(len(s) == 1 for s in splits_of_lesion.values())
    bcc = [p for p, lesion in lesion_of.items() if lesion == "HAM_0000011"]
    assert not set(bcc) & set(by_path)
    # the HAM melanoma and its melanoma-10k copy: one of them, never both
    pair = {"ham10000/images/ISIC_0999999.jpg", f"melanoma-10k/{mix_inputs['copy_of']}"}
    assert len(pair & set(by_path)) == 1
    # sources and labels
    assert manifest.sources() == ["ham10000", "melanoma-10k"]
    dx_of = {f"ham10000/images/{r['image_id']}.jpg": r["dx"] for r in mix_inputs["rows"]}
    for path, r in by_path.items():
        if r.source == "ham10000":
            assert r.label == ("malignant" if dx_of[path] == "mel" else "benign")
        assert r.diagnosis == (dx_of[path] if r.source == "ham10000" else "")  # the source's own diagnosis
    assert (out / "manifest.csv").read_text().splitlines()[0] == "path,label,split,md5,width,height,source,diagnosis"
    assert summary["licences"]["ham10000"] == "CC BY-NC-SA 4.0"
    # evaluation CSVs list HAM-resolution files of the val/test lesions
    for split in ("val", "test"):
        with open(out / "eval" / f"ham_{split}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            assert Path(row["path"]).is_file() and row["label"] in ("benign", "malignant")


def test_mix_is_deterministic_and_cli_refuses_mixed_modes(mix_inputs, tmp_path):
    args = ["prepare", "--base", str(mix_inputs["seed"]), "--ham", str(mix_inputs["ham"]), "--workers", "1",
            "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())["manifest_sha256"]
    assert a == json.loads((tmp_path / "b" / "summary.json").read_text())["manifest_sha256"]
    assert (tmp_path / "a" / "manifest.csv").read_bytes() == (tmp_path / "b" / "manifest.csv").read_bytes()
    assert main(["prepare", str(mix_inputs["m10k"]), "--ham", str(mix_inputs["ham"]), "--out", str(tmp_path / "c")]) != 0


def test_single_source_manifest_has_no_source_column(mix_inputs):
    header = (mix_inputs["seed"] / "manifest.csv").read_text().splitlines()[0]
    assert header == "path,label,split,md5,width,height"
    assert read_manifest(mix_inputs["seed"]).sources() == []

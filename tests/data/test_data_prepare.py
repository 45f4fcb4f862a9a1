"""`melascan prepare` on synthetic datasets: counts, determinism, duplicates, errors."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from melascan.cli import main
from melascan.data.manifest import read_manifest
from melascan.data.overlap import seen_paths
from melascan.data.prepare import PrepareConfig, prepare
from melascan.data.split import split_counts
from melascan.errors import DataError

# the `dataset` fixture: 22 distinct benign + 1 exact copy, 16 distinct malignant + 1 near copy
SMALL = dict(malignant=17, benign=20, ratios=(0.6, 0.2, 0.2))
EXACT = ("test/benign/dup_of_train.jpg", "train/benign/img_000.jpg")
NEAR = ("train/malignant/bright_copy.jpg", "train/malignant/img_014.jpg")


def run(src: Path, out: Path, **kw):
    settings = {**SMALL, "workers": 1, "progress": False, **kw}
    return prepare(PrepareConfig(src=src, out=out, **settings))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def counts_of(manifest_csv: Path) -> Counter:
    return Counter((r["split"], r["label"]) for r in read_csv(manifest_csv))


def test_sampled_split_has_exact_stratified_counts(dataset, tmp_path):
    out = tmp_path / "out"
    result = run(dataset, out)
    got = counts_of(out / "manifest.csv")
    for label, n in (("malignant", 17), ("benign", 20)):
        for split, k in split_counts(n, SMALL["ratios"]).items():
            assert got[(split, label)] == k
    manifest = read_manifest(out / "manifest.csv")
    assert manifest.source_root == dataset.resolve() or manifest.source_root == dataset.absolute()
    for r in manifest.records:
        assert not Path(r.path).is_absolute() and (manifest.source_root / r.path).is_file()
        assert (r.width, r.height) == (64, 64)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["total"] == {"benign": 20, "malignant": 17, "total": 37}
    assert summary["settings"]["seed"] == 42
    assert summary == result.summary
    for name in ("leakage.csv", "skipped.csv", "hashes.csv"):
        assert (out / name).is_file()


def test_two_runs_are_byte_identical_whatever_the_worker_count(dataset, tmp_path):
    run(dataset, tmp_path / "a", workers=1)
    run(dataset, tmp_path / "b", workers=2)
    for name in ("manifest.csv", "summary.json", "leakage.csv", "skipped.csv", "hashes.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    run(dataset, tmp_path / "c", seed=7)
    assert (tmp_path / "a/manifest.csv").read_bytes() != (tmp_path / "c/manifest.csv").read_bytes()


def test_exact_duplicates_are_removed_before_sampling(dataset, tmp_path):
    out = tmp_path / "out"
    result = run(dataset, out, benign=22)  # every unique benign image
    paths = [r["path"] for r in read_csv(out / "manifest.csv")]
    assert EXACT[0] in paths and EXACT[1] not in paths  # first in sorted order is kept
    assert len(paths) == len(set(paths)) == 39
    rows = [r for r in read_csv(out / "leakage.csv") if r["kind"] == "exact"]
    assert [(r["path_a"], r["path_b"], r["split_b"], r["distance"]) for r in rows] == [(*EXACT, "removed", "0")]
    assert result.summary["exact_duplicates"] == {
        "pairs": 1, "groups": 1, "copies_removed": 1, "conflicting_label_files": 0
    }


def test_near_duplicates_are_reported_and_kept_in_one_split(dataset, tmp_path):
    for seed in (1, 2, 3):
        out = tmp_path / f"out{seed}"
        run(dataset, out, seed=seed)
        split = {r["path"]: r["split"] for r in read_csv(out / "manifest.csv")}
        assert split[NEAR[0]] == split[NEAR[1]]
        near = [r for r in read_csv(out / "leakage.csv") if r["kind"] == "near"]
        assert [(r["path_a"], r["path_b"]) for r in near] == [NEAR]
        assert near[0]["split_a"] == near[0]["split_b"] == split[NEAR[0]]
        assert near[0]["across_splits"] == "0"


def test_official_keeps_test_and_carves_stratified_validation(dataset, synth, tmp_path):
    # a near copy in test/ of a train image: the train image must leave the training data
    source = dataset / "train/malignant/img_015.jpg"
    (dataset / "test/malignant/near_of_train.jpg").write_bytes(synth.brightened_copy(Image.open(source)))
    out = tmp_path / "official"
    result = run(dataset, out, official=True, malignant=None, benign=None, val_fraction=0.25)
    rows = read_csv(out / "manifest.csv")
    split = {r["path"]: r["split"] for r in rows}
    test_files = sorted(p.relative_to(dataset).as_posix() for p in (dataset / "test").rglob("*.jpg"))
    assert sorted(p for p, s in split.items() if s == "test") == test_files  # test folder intact
    assert all(p.startswith("train/") for p, s in split.items() if s != "test")
    assert EXACT[1] not in split  # train copy of a test image removed
    assert "train/malignant/img_015.jpg" not in split  # near copy of a test image removed
    assert split[NEAR[0]] == split[NEAR[1]]
    got = counts_of(out / "manifest.csv")
    train_val = {"benign": 14 - 1, "malignant": 11 - 1}
    for label, n in train_val.items():
        expected = split_counts(n, (0.75, 0.25, 0.0))
        assert (got[("train", label)], got[("val", label)]) == (expected["train"], expected["val"])
    assert result.summary["near_duplicates"]["train_images_removed_as_copies_of_test"] == 1
    statuses = {(r["path_b"], r["split_b"]) for r in read_csv(out / "leakage.csv")}
    assert ("train/malignant/img_015.jpg", "removed") in statuses


def test_reference_overlap_lists_images_shared_with_another_split(dataset, tmp_path):
    run(dataset, tmp_path / "seed")
    result = run(dataset, tmp_path / "official", official=True, malignant=None, benign=None,
                 reference=tmp_path / "seed" / "manifest.csv")
    seed_split = {r["path"]: r["split"] for r in read_csv(tmp_path / "seed/manifest.csv")}
    overlap = read_csv(tmp_path / "official/overlap.csv")
    same = {r["path"]: r["ref_split"] for r in overlap if r["kind"] == "same_file"}
    for r in read_csv(tmp_path / "official/manifest.csv"):
        if r["path"] in seed_split:
            assert same[r["path"]] == seed_split[r["path"]]
    seen = seen_paths(tmp_path / "official/overlap.csv")
    expected = {p for p, s in seed_split.items() if p.startswith("test/") and s in ("train", "val")}
    assert seen == expected
    assert result.summary["reference"]["images_matching_reference"]["test"]["seen"] == len(expected)


# ----------------------------------------------------------------------------- bad input

def test_bad_files_are_skipped_with_a_reason(dataset, tmp_path):
    good = (dataset / "train/benign/img_001.jpg").read_bytes()
    (dataset / "train/benign/truncated.jpg").write_bytes(good[: len(good) // 2])
    (dataset / "train/benign/notes.jpg").write_text("this is not a picture")
    (dataset / "train/malignant/empty.jpg").write_bytes(b"")
    (dataset / "README.txt").write_text("outside any class folder: ignored")
    (dataset / "train/benign/.DS_Store").write_bytes(b"\0\1")  # hidden: ignored
    out = tmp_path / "out"
    result = run(dataset, out)
    skipped = {r["path"]: r["reason"] for r in read_csv(out / "skipped.csv")}
    assert set(skipped) == {"train/benign/truncated.jpg", "train/benign/notes.jpg", "train/malignant/empty.jpg"}
    assert "truncated" in skipped["train/benign/truncated.jpg"]
    assert "not an image" in skipped["train/benign/notes.jpg"]
    assert "empty" in skipped["train/malignant/empty.jpg"]
    assert not any(p in skipped for p in (r.path for r in result.records))
    assert result.summary["files"]["ignored_outside_class_folders"] == 1
    assert result.summary["files"]["skipped"] == 3


def test_identical_files_with_different_labels_are_skipped(dataset, tmp_path):
    src = dataset / "train/benign/img_002.jpg"
    (dataset / "train/malignant/same_bytes.jpg").write_bytes(src.read_bytes())
    out = tmp_path / "out"
    run(dataset, out, malignant=16, benign=20)
    skipped = {r["path"]: r["reason"] for r in read_csv(out / "skipped.csv")}
    assert set(skipped) == {"train/benign/img_002.jpg", "train/malignant/same_bytes.jpg"}
    assert all("different labels" in reason for reason in skipped.values())


def test_ambiguous_class_folders_are_skipped(dataset, synth, tmp_path):
    synth.save_jpeg(synth.pattern_image(500), dataset / "benign/malignant/x.jpg")
    out = tmp_path / "out"
    run(dataset, out)
    skipped = {r["path"]: r["reason"] for r in read_csv(out / "skipped.csv")}
    assert "ambiguous" in skipped["benign/malignant/x.jpg"]


def test_any_nesting_of_class_folders_works(synth, tmp_path):
    src = tmp_path / "nested"
    synth.make_dataset(src, {"site1/2020/Benign/a": 6, "site2/malignant": 5, "benign": 4})
    out = tmp_path / "out"
    result = run(src, out, malignant=5, benign=10, ratios=(0.6, 0.2, 0.2))
    assert result.summary["counts"]["total"] == {"benign": 10, "malignant": 5, "total": 15}


@pytest.mark.parametrize(
    "setup, kw, message",
    [
        (lambda root: None, {}, "source folder not found"),
        (lambda root: (root.parent.mkdir(parents=True, exist_ok=True), root.write_text("x")), {}, "got a file"),
        (lambda root: root.mkdir(parents=True), {}, "no files in class folders"),
    ],
    ids=["missing", "file", "empty-folder"],
)
def test_unusable_source_folders_raise_data_error(tmp_path, setup, kw, message):
    root = tmp_path / "src"
    setup(root)
    with pytest.raises(DataError, match=message):
        run(root, tmp_path / "out", **kw)


def test_missing_or_empty_class_raises_data_error(synth, tmp_path):
    src = tmp_path / "src"
    synth.make_dataset(src, {"train/benign": 5})
    with pytest.raises(DataError, match="no usable malignant images"):
        run(src, tmp_path / "out", malignant=1, benign=5)
    (src / "train/malignant").mkdir()
    (src / "train/malignant/broken.jpg").write_text("nope")
    with pytest.raises(DataError, match="no usable malignant images"):
        run(src, tmp_path / "out", malignant=1, benign=5)


def test_too_few_images_raise_data_error(dataset, tmp_path):
    with pytest.raises(DataError, match="only 17 usable malignant images.*100 were requested"):
        run(dataset, tmp_path / "out", malignant=100)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"ratios": (0.7, 0.2, 0.2)}, "must sum to 1"),
        ({"ratios": (1.0, 0.0, 0.0)}, "three positive numbers"),
        ({"malignant": 0}, "--malignant must be a positive"),
        ({"official": True, "val_fraction": 1.5}, "--val-fraction"),
        ({"max_distance": -1}, "--max-distance"),
    ],
)
def test_bad_settings_raise_data_error(dataset, tmp_path, kw, message):
    with pytest.raises(DataError, match=message):
        run(dataset, tmp_path / "out", **kw)


def test_official_needs_train_and_test_folders(synth, tmp_path):
    src = tmp_path / "src"
    synth.make_dataset(src, {"train/benign": 4, "train/malignant": 4})
    with pytest.raises(DataError, match=r"no usable benign images in .*test"):
        run(src, tmp_path / "out", official=True)


# ----------------------------------------------------------------------------- CLI

def test_cli_missing_folder_exits_2_without_traceback(tmp_path, capsys):
    code = main(["prepare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "source folder not found" in err and str(tmp_path / "nowhere") in err
    assert "Traceback" not in err


def test_cli_prepare_runs_and_refuses_counts_with_official(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["prepare", str(dataset), "--out", str(out), "--malignant", "6", "--benign", "9",
                 "--ratios", "0.6", "0.2", "0.2", "--no-progress", "--workers", "2"])
    assert code == 0
    assert sum(counts_of(out / "manifest.csv").values()) == 15
    code = main(["prepare", str(dataset), "--out", str(out), "--official", "--malignant", "5"])
    assert code == 2 and "--official uses every image" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--official", "--ratios", "0.8", "0.1", "0.1"], "--official uses every image"),
        (["--val-fraction", "0.2"], "--val-fraction applies to --official only"),
        (["--malignant", "0"], "--malignant must be a positive number"),
    ],
)
def test_cli_refuses_options_of_the_other_mode(dataset, tmp_path, capsys, extra, message):
    code = main(["prepare", str(dataset), "--out", str(tmp_path / "out"), "--no-progress", *extra])
    assert code == 2 and message in capsys.readouterr().err

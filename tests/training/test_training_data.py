"""Cached dataset: decode once, same pixels as inference, class-balanced sampling."""

import dataclasses
from collections import Counter

import numpy as np
import pytest
import torch

import melascan.training.data as data_mod
from melascan.data.manifest import read_manifest
from melascan.imageio import load_rgb
from melascan.preprocess import normalize, prepare_pixels
from melascan.training.data import (
    CachedImageDataset,
    load_split,
    make_train_sampler,
    normalize_batch,
    select_records,
)


def test_cache_holds_prepared_pixels_and_is_reused(tiny_config, monkeypatch):
    cfg = dataclasses.replace(tiny_config, color_constancy="shades_of_gray")
    manifest = read_manifest(cfg.manifest)
    first = load_split(manifest, "val", cfg)
    assert first.pixels.shape == (12, 32, 32, 3) and first.pixels.dtype == np.uint8
    for record, pixels in zip(first.records[:3], first.pixels):
        expected = prepare_pixels(load_rgb(manifest.source_root / record.path), 32, "shades_of_gray")
        np.testing.assert_array_equal(pixels, expected)
    assert first.class_counts() == {"benign": 6, "malignant": 6}

    def no_decoding(*args, **kwargs):
        raise AssertionError("images decoded again")

    monkeypatch.setattr(data_mod, "decode_images", no_decoding)
    again = load_split(manifest, "val", cfg)
    assert again.cache_path == first.cache_path
    np.testing.assert_array_equal(again.pixels, first.pixels)
    other = dataclasses.replace(cfg, color_constancy=None)
    monkeypatch.undo()
    assert load_split(manifest, "val", other).cache_path != first.cache_path  # keyed by colour constancy


def test_limit_takes_a_seeded_subset(tiny_manifest):
    manifest = read_manifest(tiny_manifest)
    a = select_records(manifest, "train", 10, seed=42)
    assert len(a) == 10 and a == select_records(manifest, "train", 10, seed=42)
    assert a != select_records(manifest, "train", 10, seed=1)
    assert len(select_records(manifest, "train", None, seed=42)) == 24


def test_dataset_yields_uint8_tensors_and_normalisation_matches_inference():
    pixels = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    ds = CachedImageDataset(pixels, np.array([0, 1, 0, 1]))
    image, label, index = ds[1]
    assert image.dtype == torch.uint8 and image.shape == (3, 16, 16) and (label, index) == (1, 1)
    mean, std = [0.7, 0.6, 0.5], [0.2, 0.21, 0.22]
    batch = torch.stack([ds[i][0] for i in range(4)])
    np.testing.assert_allclose(normalize_batch(batch, mean, std).numpy(), normalize(pixels, mean, std), atol=1e-6)


@pytest.mark.parametrize("world_size", [1, 2])
def test_weighted_sampler_balances_an_imbalanced_set(world_size):
    labels = np.array([0] * 900 + [1] * 100)
    drawn = Counter()
    for rank in range(world_size):
        sampler = make_train_sampler(labels, labels, weighted=True, seed=42, rank=rank, world_size=world_size)
        sampler.set_epoch(3)
        drawn.update(labels[list(sampler)].tolist())
    assert sum(drawn.values()) == 1000
    assert 0.43 < drawn[1] / 1000 < 0.57
    plain = make_train_sampler(labels, labels, weighted=False, seed=42)
    plain.set_epoch(0)
    assert sorted(plain) == list(range(1000))  # a permutation: classes keep their 9:1 ratio


def test_sampler_order_depends_only_on_seed_and_epoch():
    labels = np.array([0] * 30 + [1] * 10)
    a = make_train_sampler(labels, labels, weighted=True, seed=7)
    b = make_train_sampler(labels, labels, weighted=True, seed=7)
    a.set_epoch(2)
    list(b)  # consuming another epoch first must not matter
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)


def test_source_balanced_sampling_draws_every_source_and_class_equally():
    labels = np.array([0] * 90 + [1] * 10 + [0] * 20 + [1] * 30)
    sources = np.array(["a"] * 100 + ["b"] * 50)
    sampler = make_train_sampler(labels, labels, weighted=True, seed=3, sources=sources, num_samples=8000)
    drawn = list(sampler)
    assert len(drawn) == 8000
    cells = Counter((sources[i], int(labels[i])) for i in drawn)
    assert set(cells) == {("a", 0), ("a", 1), ("b", 0), ("b", 1)}
    assert all(abs(n / 8000 - 0.25) < 0.03 for n in cells.values())
    uniform = make_train_sampler(labels, labels, weighted=False, seed=3, num_samples=300)
    assert len(list(uniform)) == 300  # a fixed number of samples per epoch without weighting too


def test_diagnosis_balance_shares_a_cells_draws_between_its_diagnoses():
    from melascan.training.data import class_balanced_weights

    labels = np.array([0] * 100 + [1] * 20 + [0] * 50)
    sources = np.array(["ham"] * 120 + ["m10k"] * 50)
    diagnoses = np.array(["nv"] * 81 + ["bkl"] * 16 + ["df"] * 3 + ["mel"] * 20 + [""] * 50)
    plain = class_balanced_weights(labels, sources).numpy()
    assert np.allclose(class_balanced_weights(labels, sources, diagnoses, 0.0).numpy(), plain)

    def share(w, dx):
        return w[diagnoses == dx].sum() / w.sum()

    for b, expected in ((0.5, {"nv": 9, "bkl": 4, "df": np.sqrt(3)}), (1.0, {"nv": 1, "bkl": 1, "df": 1})):
        w = class_balanced_weights(labels, sources, diagnoses, b).numpy()
        total = sum(expected.values())
        for dx, e in expected.items():  # the ham benign cell (a third of all draws) shared as n^(1-b)
            assert share(w, dx) == pytest.approx(e / total / 3)
        assert share(w, "mel") == pytest.approx(1 / 3) and share(w, "") == pytest.approx(1 / 3)
        assert np.allclose(w[diagnoses == "nv"], w[0])  # equal within a diagnosis
    sampler = make_train_sampler(labels, labels, weighted=True, seed=0, sources=sources, num_samples=6000,
                                 diagnoses=diagnoses, diagnosis_balance=1.0)
    drawn = Counter(diagnoses[i] for i in sampler)
    assert abs(drawn["df"] / 6000 - 1 / 9) < 0.02 and abs(drawn["mel"] / 6000 - 1 / 3) < 0.03


def test_diagnosis_balance_is_validated():
    from melascan.errors import DataError
    from melascan.training.config import load_config

    assert load_config(None, ["weighted_sampling=true", "balance_diagnoses=0.5"]).balance_diagnoses == 0.5
    for bad in (["weighted_sampling=true", "balance_diagnoses=1.5"], ["balance_diagnoses=0.5"]):
        with pytest.raises(DataError, match="balance_diagnoses"):
            load_config(None, bad)
    with pytest.raises(DataError, match="diagnosis_loss"):
        load_config(None, ["diagnosis_loss=-1"])
    with pytest.raises(DataError, match="source_adversary must be >= 0"):
        load_config(None, ["source_adversary=-0.5"])


def test_train_sources_keep_only_those_sources_and_name_the_choices_when_none_match():
    from melascan.data.manifest import Record
    from melascan.errors import DataError
    from melascan.training.config import load_config
    from melascan.training.data import keep_sources

    records = [Record(path=f"{s}/{i}.jpg", label="benign", split="train", md5=f"{s}{i}", width=8, height=8, source=s)
               for s in ("ham10000", "melanoma-10k") for i in range(3)]
    assert keep_sources(records, None) == records and keep_sources(records, []) == records
    assert {r.source for r in keep_sources(records, ["ham10000"])} == {"ham10000"}
    assert len(keep_sources(records, ["ham10000", "melanoma-10k"])) == 6
    with pytest.raises(DataError, match=r"no training images from source\(s\) \['ph2'\].*'ham10000', 'melanoma-10k'"):
        keep_sources(records, ["ph2"])
    assert load_config(None, ["train_sources=ham10000"]).train_sources == ["ham10000"]
    assert load_config(None, ["train_sources=ham10000, melanoma-10k"]).train_sources == ["ham10000", "melanoma-10k"]

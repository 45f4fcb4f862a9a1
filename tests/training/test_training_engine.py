"""The training loop: run folder, learning, early stopping, resume, CLI."""

import csv
import dataclasses
import json

import pytest
import torch

import melascan.training.engine as engine
from melascan.cli import main
from melascan.errors import DataError
from melascan.training.engine import train
from melascan.runfolder import RunFolder


def _history(run_dir):
    with open(run_dir / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_one_epoch_writes_the_run_folder(tiny_config, tmp_path):
    run = tmp_path / "run"
    summary = train(dataclasses.replace(tiny_config, checkpoint_every=1), run)
    for name in ("config.yaml", "data.json", "history.csv", "summary.json", "train.log",
                 "checkpoints/best.pt", "checkpoints/last.pt", "checkpoints/epoch_001.pt"):
        assert (run / name).is_file(), name
    rows = _history(run)
    assert list(rows[0]) == list(engine.HISTORY_COLUMNS) and len(rows) == 1
    assert json.loads((run / "summary.json").read_text()) == summary
    assert summary["best_epoch"] == 1 and summary["stopped_epoch"] == 1 and summary["finished"]
    data = json.loads((run / "data.json").read_text())
    assert data["class_counts"]["train"] == {"benign": 12, "malignant": 12}
    assert data["mean_std_source"] == "imagenet" and len(data["manifest_sha256"]) == 64
    saved = RunFolder(run).read_config()
    assert saved.mean == [0.485, 0.456, 0.406] and saved.model == "resnet10t"
    ckpt = torch.load(run / "checkpoints/last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "rng", "best"} <= set(ckpt)
    assert "epoch 1/1" in (run / "train.log").read_text()


def test_loss_falls_on_an_easy_task(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config, recipe="baseline", epochs=4, patience=None, lr=3e-3)
    train(cfg, tmp_path / "run")
    rows = _history(tmp_path / "run")
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < losses[0] * 0.7
    assert float(rows[-1]["val_acc"]) >= 0.9  # bright vs dark images


def test_early_stopping_stops_at_patience(tiny_config, tmp_path, monkeypatch):
    scripted = iter([1.0, 0.8, 0.9, 0.85, 0.95, 0.5, 0.4])

    def fake_evaluate(*args, **kwargs):
        return {"loss": next(scripted), "acc": 0.5, "f1": 0.5, "auc": 0.5}

    monkeypatch.setattr(engine, "evaluate", fake_evaluate)
    summary = train(dataclasses.replace(tiny_config, epochs=10, patience=3), tmp_path / "run")
    assert summary["best_epoch"] == 2 and summary["stopped_epoch"] == 5 and summary["early_stopped"]
    assert len(_history(tmp_path / "run")) == 5


def _interrupt_in_epoch_2(cfg, run_dir, monkeypatch):
    """Train ``cfg`` into ``run_dir`` and stop it with a KeyboardInterrupt during epoch 2."""
    real_epoch, calls = engine.train_one_epoch, []

    def interrupted_in_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", interrupted_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir)
    monkeypatch.undo()


def test_resume_continues_from_the_saved_epoch(tiny_config, tmp_path, monkeypatch):
    cfg = dataclasses.replace(tiny_config, epochs=2, patience=None, drop_rate=0.2)
    train(cfg, tmp_path / "straight")
    _interrupt_in_epoch_2(cfg, tmp_path / "split", monkeypatch)
    assert len(_history(tmp_path / "split")) == 1
    first_segment = json.loads((tmp_path / "split" / "summary.json").read_text())["seconds"]
    summary = train(cfg, tmp_path / "split", resume=True)
    assert summary["seconds"] > first_segment  # the time of both segments
    assert summary["stopped_epoch"] == 2
    straight, resumed = _history(tmp_path / "straight"), _history(tmp_path / "split")
    assert [r["epoch"] for r in resumed] == ["1", "2"]
    ckpt = torch.load(tmp_path / "split/checkpoints/last.pt", weights_only=True)
    assert ckpt["epoch"] == 2
    # same seed, RNG state restored, per-epoch sampler: epoch 2 is the same as in one go
    for key in ("train_loss", "val_loss"):
        assert float(resumed[1][key]) == pytest.approx(float(straight[1][key]), rel=1e-4)


def test_resume_and_overwrite_errors(tiny_config, tmp_path):
    with pytest.raises(DataError, match="cannot resume"):
        train(tiny_config, tmp_path / "nothing", resume=True)
    train(tiny_config, tmp_path / "run")
    with pytest.raises(DataError, match="already holds a run"):
        train(tiny_config, tmp_path / "run")


def test_cli_train_and_errors(tiny_config, tmp_path, capsys):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in dataclasses.asdict(tiny_config).items()))
    assert main(["train", "--config", str(cfg_file), "--set", "epochs=1", "--out", str(tmp_path / "r")]) == 0
    assert "best epoch 1" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "r"), "--set", "epochs=2"]) == 0
    assert len(_history(tmp_path / "r")) == 2
    assert main(["train", "--config", str(cfg_file), "--set", "epoks=1"]) == 2
    assert "unknown config key(s) ['epoks']" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg_file), "--set", f"manifest={tmp_path}/none.csv",
                 "--out", str(tmp_path / "r2")]) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_torchrun_ddp_on_two_cpu_processes(tiny_config, tmp_path):
    """The same command under torchrun: 2 Gloo processes, class-weighted distributed sampling."""
    import subprocess
    import sys

    cfg_file = tmp_path / "c.yaml"
    cfg = dataclasses.replace(tiny_config, epochs=1, weighted_sampling=True, batch_size=4)
    cfg_file.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in dataclasses.asdict(cfg).items()))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "melascan.cli", "train", "--config", str(cfg_file), "--out", str(tmp_path / "ddp")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("run folder:") == 1  # only rank 0 reports
    assert "cpu x2" in (tmp_path / "ddp" / "train.log").read_text()
    rows = _history(tmp_path / "ddp")
    assert len(rows) == 1 and 0.0 <= float(rows[0]["val_acc"]) <= 1.0
    # 24 training images over 2 ranks, batch 4: 3 steps per rank per epoch, all 24 images counted
    assert "3 steps/epoch" in (tmp_path / "ddp" / "train.log").read_text()


def test_diagnosis_head_trains_beside_the_classifier_and_is_not_kept(tiny_config, tmp_path, monkeypatch):
    from melascan.data.manifest import read_manifest, write_manifest
    from melascan.training.runs import load_run

    src = read_manifest(tiny_config.manifest)
    folder = tmp_path / "dx"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"source_root": str(src.source_root)}))
    names = {"benign": ("nv", "bkl"), "malignant": ("mel", "mel")}
    write_manifest(folder / "manifest.csv", [dataclasses.replace(r, source="s", diagnosis=names[r.label][i % 2])
                                             for i, r in enumerate(src.records)])
    cfg = dataclasses.replace(tiny_config, manifest=str(folder / "manifest.csv"), diagnosis_loss=0.5,
                              ema_decay=0.9, epochs=2, patience=None)
    train(cfg, tmp_path / "straight")
    ckpt = torch.load(tmp_path / "straight/checkpoints/last.pt", weights_only=True)
    assert ckpt["diagnosis_head"]["weight"].shape[0] == 3  # bkl, mel, nv
    assert json.loads((tmp_path / "straight/data.json").read_text())["diagnosis_head"] == ["bkl", "mel", "nv"]
    model, _ = load_run(tmp_path / "straight")  # the kept model is the plain 2-logit classifier
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 2)

    _interrupt_in_epoch_2(cfg, tmp_path / "split", monkeypatch)
    train(cfg, tmp_path / "split", resume=True)  # the head's weights come back too
    straight, resumed = _history(tmp_path / "straight"), _history(tmp_path / "split")
    assert float(resumed[1]["train_loss"]) == pytest.approx(float(straight[1]["train_loss"]), rel=1e-4)

    with pytest.raises(DataError, match="diagnosis_loss needs at least two diagnoses"):
        train(dataclasses.replace(tiny_config, diagnosis_loss=0.5), tmp_path / "none")


def test_source_adversary_trains_beside_the_classifier_and_is_not_kept(tiny_config, tmp_path, monkeypatch):
    from melascan.data.manifest import read_manifest, write_manifest
    from melascan.training.runs import load_run

    src = read_manifest(tiny_config.manifest)
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"source_root": str(src.source_root)}))
    write_manifest(folder / "manifest.csv", [dataclasses.replace(r, source=("a", "b")[i % 2])
                                             for i, r in enumerate(src.records)])
    cfg = dataclasses.replace(tiny_config, manifest=str(folder / "manifest.csv"), source_adversary=1.0,
                              weighted_sampling=True, balance_sources=True, ema_decay=0.9, epochs=2, patience=None)
    train(cfg, tmp_path / "straight")
    ckpt = torch.load(tmp_path / "straight/checkpoints/last.pt", weights_only=True)
    assert ckpt["source_head"]["2.weight"].shape[0] == 2 and "diagnosis_head" not in ckpt
    assert json.loads((tmp_path / "straight/data.json").read_text())["source_adversary"] == ["a", "b"]
    assert "source adversary over a, b" in (tmp_path / "straight/train.log").read_text()
    model, _ = load_run(tmp_path / "straight")
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 2)

    _interrupt_in_epoch_2(cfg, tmp_path / "split", monkeypatch)
    train(cfg, tmp_path / "split", resume=True)  # the adversary and its ramp come back too
    straight, resumed = _history(tmp_path / "straight"), _history(tmp_path / "split")
    assert float(resumed[1]["train_loss"]) == pytest.approx(float(straight[1]["train_loss"]), rel=1e-4)

    with pytest.raises(DataError, match="source_adversary needs at least two sources"):
        train(dataclasses.replace(tiny_config, source_adversary=1.0), tmp_path / "one")

"""Every hostile file through ``melascan predict`` and ``melascan analyze``.

One file: exit 0 with a result, or exit 2 with ``melascan <cmd>: error: <file>: <reason>``
and no traceback; nothing written. A folder of them: each bad file gets an error row,
the good ones are scored, exit 0. The single-file runs are in-process (``cli.main``, the
real dispatcher); the folder runs are real subprocesses.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from hardening_support import CASES

from melascan.cli import main

FILE_CASES = [c for c in CASES if c.cli is not None]


@pytest.mark.parametrize("command", ["predict", "analyze"])
@pytest.mark.parametrize("case", FILE_CASES, ids=lambda c: c.name)
def test_one_hostile_file(case, command, corpus_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # anything written to the working folder would show up here
    path = corpus_dir / case.disk_name
    code = main([command, str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected error" not in err, err
    if case.cli_outcome(command) == "accept":
        assert code == 0, (case.name, err)
        # scored, or (black, white, noise, garbled...) refused as not a dermoscopic image, never both
        assert ("P(melanoma)=" in out) != ("OUT OF SCOPE" in out)
    else:
        assert code == 2, (case.name, out, err)
        line = next(line for line in err.splitlines() if line.startswith(f"melascan {command}: error:"))
        assert str(path) in line, "the error message must name the file"
        for word in case.message:
            if word.startswith("."):  # extension words are the API's reason, not the decoder's
                continue
            assert word in line.lower(), (case.name, word, line)
    assert list(tmp_path.iterdir()) == []


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "melascan.cli", *args], capture_output=True, text=True, timeout=600)


def test_predict_a_hostile_folder(corpus_dir, tmp_path):
    out = tmp_path / "scores.csv"
    result = _run(["predict", str(corpus_dir), "--csv", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    checked = 0
    for case in FILE_CASES:
        row = rows.get(case.disk_name)
        if row is None:  # the folder walk only picks image suffixes (.exe, .txt, no suffix ... are skipped)
            continue
        checked += 1
        if case.cli_outcome("predict") == "accept":
            assert row["error"] == "" and 0.0 <= float(row["probability"]) <= 1.0, case.name
        else:
            assert row["error"] and row["probability"] == "", case.name
    assert checked >= 40


def test_analyze_a_hostile_folder(corpus_dir, tmp_path):
    out = tmp_path / "lesions.jsonl"
    result = _run(["analyze", str(corpus_dir), "--jsonl", str(out), "--masks-dir", str(tmp_path / "masks")])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    records = {r["path"].rsplit("/", 1)[-1]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    for case in FILE_CASES:
        record = records.get(case.disk_name)
        if record is None:
            continue
        if case.cli_outcome("analyze") == "accept":
            assert "error" not in record and "lesion" in record, case.name
            assert (tmp_path / "masks" / f"{case.name}.png").is_file()
        else:
            assert record["error"], case.name

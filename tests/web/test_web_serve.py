"""``melascan serve``: gunicorn (production) and Flask's dev server, for real."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from melascan.cli import main
from melascan.web.serverproc import free_port, stop_server


def test_serve_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--workers", "--dev", "--model"):
        assert option in out


@pytest.mark.parametrize("mode", ["gunicorn", "dev"])
def test_serve_starts_and_answers(tmp_path, mode):
    port = free_port()
    cmd = [sys.executable, "-m", "melascan.cli", "serve", "--port", str(port), "--instance", str(tmp_path / "inst")]
    cmd += ["--dev"] if mode == "dev" else ["--workers", "1", "--threads", "2"]
    home = tmp_path / "home"  # where gunicorn >= 24 would put its machine-wide control socket
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**env, "PYTHONUNBUFFERED": "1", "HOME": str(home)})
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
                time.sleep(0.3)
        assert health.status_code == 200 and health.json()["ok"] is True
        page = requests.get(f"http://127.0.0.1:{port}/main", timeout=10)
        assert page.status_code == 200 and "melascan_owner" in page.cookies
        assert (tmp_path / "inst" / "melascan.db").is_file() and (tmp_path / "inst" / "secret_key").is_file()
        assert not (home / ".gunicorn" / "gunicorn.ctl").exists(), "gunicorn opened a shared control socket"
    finally:
        stop_server(proc)


def test_serve_model_option_sets_the_apps_model_path(tmp_path):
    import argparse

    from melascan.web.commands import _config, add_serve

    parser = argparse.ArgumentParser()
    add_serve(parser)
    assert _config(parser.parse_args(["--model", str(tmp_path)]))["MODEL_PATH"] == str(tmp_path)
    assert "MODEL_PATH" not in _config(parser.parse_args([]))

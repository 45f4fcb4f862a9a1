"""The end-to-end benchmark keeps running as the lesion pipeline changes.

``benchmarks/bench_e2e.py`` wraps functions of ``melascan.lesion.analysis`` by name to time the
ABCD stage; a renamed step would break it silently between benchmark runs (it did once).
One repetition on the committed sample images, no ../shared data, no timing asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_e2e_runs_one_repetition(tmp_path):
    out = tmp_path / "e2e.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_e2e.py"), "--reps", "1", "--warmup", "0",
                           "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file()

"""``melascan serve`` as a real server process, for live tests and the load benchmark.

``live_server(instance)`` starts gunicorn through ``melascan serve`` on a free port in
its own process group, waits until it answers, yields its URL and stops it; the other
helpers read its processes' memory from ``/proc`` (Linux).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, instance: Path, workers: int, threads: int, log_path: Path,
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    """``melascan serve`` in its own process group, its output in ``log_path``; ``env``
    adds variables (e.g. ``MELASCAN_DATABASE_URL``)."""
    cmd = [sys.executable, "-m", "melascan.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--threads", str(threads), "--instance", str(instance)]  # fmt: skip
    log = open(log_path, "wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})  # fmt: skip


def wait_ready(url: str, proc: subprocess.Popen, workers: int, timeout_s: float = 180.0) -> None:
    """Until health answers 200 and ``workers`` worker processes exist, or raise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if requests.get(f"{url}/api/v1/health", timeout=10).status_code == 200 \
                    and len(server_pids(proc.pid)) >= workers + 1:  # fmt: skip
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer within {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; SIGKILL if it has not exited after 30 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def server_pids(master: int) -> list[int]:
    """The master and every descendant process, from ``/proc/*/stat`` (ppid field)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may contain spaces, so split after ")".
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    family, frontier = [master], [master]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        family += children
        frontier = children
    return family


def proc_status_kib(path: Path, key: str) -> int:
    """The ``key:   N kB`` value of a /proc status-like file, 0 if absent."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mb(pids: list[int]) -> dict[str, float]:
    """RSS and PSS (MB) summed over ``pids``, plus the largest single RSS."""
    rss = [proc_status_kib(Path(f"/proc/{pid}/status"), "VmRSS") for pid in pids]
    pss = [proc_status_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss") for pid in pids]
    return {"rss_mb": sum(rss) / 1024, "pss_mb": sum(pss) / 1024, "max_rss_mb": max(rss) / 1024,
            "processes": len(pids)}  # fmt: skip


@contextlib.contextmanager
def live_server(instance: Path, workers: int = 1, threads: int = 2, env: dict[str, str] | None = None):
    """``melascan serve`` on a free port; yields ``(base_url, process)``; stopped on exit."""
    port = free_port()
    proc = start_server(port, instance, workers, threads, instance.parent / f"server-{port}.log", env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, workers)
        yield url, proc
    finally:
        stop_server(proc)

"""Load test of the production server: ``melascan serve`` (gunicorn) under concurrent uploads.

    .venv/bin/python benchmarks/load_test.py                                # 2,000 analyses, concurrency 16, 2 workers
    .venv/bin/python benchmarks/load_test.py --requests 100 --concurrency 8 # a quick check
    .venv/bin/python benchmarks/load_test.py --workers 2 --threads 2 --max-seconds 600 --json load.json
    .venv/bin/python benchmarks/load_test.py --rate 25 --requests 750     # open loop: latency at 25 analyses/s

What it does:

1. starts ``melascan serve --workers N --threads T --port P --instance <tmp>`` as a
   subprocess on 127.0.0.1 (a fresh temporary instance folder: empty history);
2. waits for ``GET /api/v1/health``, sends ``--warmup`` analyses, and reads the memory
   of the gunicorn master and its workers from ``/proc`` (RSS, and PSS, which counts
   pages shared between the forked processes once);
3. ``--concurrency`` client threads, each with its own ``requests.Session`` (so its own
   owner cookie and history), POST the committed sample images
   (``src/melascan/assets/samples``) to ``/api/v1/analyses`` until ``--requests``
   analyses are done or ``--max-seconds`` have passed: back to back (closed loop, the
   default: throughput at ``--concurrency`` requests in flight), or at a fixed arrival
   rate with ``--rate`` (open loop: latency at that load, counted from when each request
   was due);
   A closed loop keeps ``--concurrency`` requests queued, so its latency is about
   concurrency / throughput (Little's law): 16 in flight at 25/s means ~640 ms each.
4. reports throughput (analyses/s), latency p50/p95/p99/max, errors by kind, the
   server's CPU time per analysis (``/proc/<pid>/stat`` of master + workers: what the
   throughput on free cores would be), memory before/after and sampled every 2 s (growth
   after the first 10 % of the run tells a leak from allocator warm-up), the database size, and in-process how long one history save
   (``melascan.web.db.save_analysis`` of a real result into SQLite) takes, which tells
   whether SQLite's single writer could be the bottleneck;
5. stops the server (SIGTERM to its process group).

The client runs on the same machine and takes some of its CPU. Goals (issue 8):
>= 25 analyses/s on 2 cores, p99 <= 300 ms, 0 errors, memory growth <= 50 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import requests

from melascan.web.serverproc import free_port, memory_mb, server_pids, start_server, stop_server, wait_ready
from melascan.web.testing import api_session

GOAL_THROUGHPUT = 25.0
GOAL_P99_MS = 300.0
GOAL_GROWTH_MB = 50.0


def sample_images() -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of the committed sample JPEGs."""
    folder = Path(str(resources.files("melascan").joinpath("assets", "samples")))
    return [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.jpg"))]


class MemorySampler(threading.Thread):
    """Samples the server's memory every ``interval_s`` while a run goes on, so that a
    plateau (allocator warm-up) can be told from steady growth (a leak)."""

    def __init__(self, master: int, outcome: "Outcome", interval_s: float = 2.0):
        super().__init__(name="memory-sampler", daemon=True)
        self.master, self.outcome, self.interval_s = master, outcome, interval_s
        self.samples: list[dict[str, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stopped.wait(self.interval_s):
            sample = memory_mb(server_pids(self.master))
            self.samples.append({"t_s": time.monotonic() - start, "completed": len(self.outcome.latencies_s),
                                 "rss_mb": sample["rss_mb"], "pss_mb": sample["pss_mb"]})  # fmt: skip


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (``/proc/<pid>/stat``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


# --- the client --------------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything the client threads record (appends are thread-safe in CPython)."""

    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1


def post_image(session: requests.Session, url: str, name: str, data: bytes) -> requests.Response:
    return session.post(f"{url}/api/v1/analyses", files={"image": (name, io.BytesIO(data), "image/jpeg")},
                        timeout=120)  # fmt: skip


def run_load(
    url: str, images: list[tuple[str, bytes]], total: int, concurrency: int, max_seconds: float,
    outcome: Outcome | None = None, rate: float | None = None,
) -> tuple[Outcome, float]:
    """``concurrency`` threads posting images until ``total`` are sent or time is up.

    Closed loop (``rate`` None): each thread sends its next request as soon as the last
    one is answered; latency is send -> answer. Open loop (``rate`` requests/s): request
    ``i`` is due at ``start + i / rate``; latency is counted from when it was due, so
    time spent waiting for a free client thread (the server falling behind) counts too.
    Returns the outcome and the wall-clock seconds of the run.
    """
    outcome = outcome or Outcome()
    counter = iter(range(total))
    counter_lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    start = time.perf_counter()

    def client() -> None:
        with api_session(url) as session:  # owner cookie + the API's CSRF header
            while time.monotonic() < deadline:
                with counter_lock:
                    i = next(counter, None)
                if i is None:
                    return
                name, data = images[i % len(images)]
                begin = time.perf_counter()
                if rate:
                    due = start + i / rate
                    time.sleep(max(0.0, due - begin))
                    begin = due
                try:
                    response = post_image(session, url, name, data)
                except requests.RequestException as exc:
                    outcome.error(type(exc).__name__)
                    continue
                elapsed = time.perf_counter() - begin
                if response.status_code == 201:
                    outcome.latencies_s.append(elapsed)
                    outcome.ids.append(response.json()["id"])
                else:
                    outcome.error(f"HTTP {response.status_code}")

    threads = [threading.Thread(target=client, name=f"client-{k}") for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome, time.perf_counter() - start


# --- storage -----------------------------------------------------------------------------


def storage_check(images: list[tuple[str, bytes]], saves: int, wal: bool = False) -> dict[str, float]:
    """ms per ``db.save_analysis`` of a real analysis into a fresh SQLite file (in-process).

    SQLite takes one writer at a time, so ``1000 / p50`` is the most analyses per second
    the history can store, whatever the number of workers. ``wal``: what-if, the same
    with ``PRAGMA journal_mode=WAL`` + ``synchronous=NORMAL`` (the app is not changed).
    """
    from sqlalchemy import event

    from melascan.web import create_app, db
    from melascan.web.analysis import run_analysis, split_images

    name, data = images[0]
    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"INSTANCE_PATH": instance})
        if wal:
            engine = app.extensions["melascan_db"].kw["bind"]

            @event.listens_for(engine, "connect")
            def _wal(dbapi_connection, _record) -> None:
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
                dbapi_connection.execute("PRAGMA synchronous=NORMAL")

            engine.dispose()
        result, stored = split_images(run_analysis(data, name))
        times = []
        with app.test_request_context():
            for _ in range(saves):
                start = time.perf_counter()
                db.save_analysis("0" * 64, name, result, stored)
                times.append(time.perf_counter() - start)
                db.session().expunge_all()
    ms = np.asarray(times) * 1000.0
    p50 = float(np.percentile(ms, 50))
    return {"saves": saves, "p50_ms": p50, "p95_ms": float(np.percentile(ms, 95)), "wal": wal,
            "max_saves_per_s": 1000.0 / p50, "bytes_per_analysis": sum(len(b) for _, b in stored.values())}  # fmt: skip


# --- report ------------------------------------------------------------------------------


def percentiles_ms(latencies_s: list[float]) -> dict[str, float]:
    if not latencies_s:
        return {}
    ms = np.asarray(latencies_s) * 1000.0
    return {f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 95, 99)} | {"max_ms": float(ms.max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="analyses to send (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: send this many analyses per second (at most --concurrency in flight); "
                             "default: closed loop")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=None, help="analyses before measuring (default: 4 x concurrency)")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop sending after this long (default: %(default)s)")
    parser.add_argument("--storage-saves", type=int, default=30, help="saves timed by the SQLite check (0 = skip)")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder and the server log")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    images = sample_images()
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    warmup = 4 * args.concurrency if args.warmup is None else args.warmup
    workdir = Path(tempfile.mkdtemp(prefix="melascan-load-"))
    instance, log_path = workdir / "instance", workdir / "server.log"
    report: dict = {"requests": args.requests, "concurrency": args.concurrency, "rate": args.rate, "workers": args.workers,
                    "threads": args.threads, "warmup": warmup, "machine": f"{platform.machine()}, "
                    f"{os.cpu_count()} logical CPUs", "load_average_start": os.getloadavg()[0]}  # fmt: skip
    print(f"machine: {report['machine']}, load average {report['load_average_start']:.2f}; "
          f"server: {args.workers} workers x {args.threads} threads on {url}; "
          f"client: {args.concurrency} threads{f', open loop at {args.rate:g}/s' if args.rate else ', closed loop'}, {args.requests} analyses of {len(images)} sample images", flush=True)  # fmt: skip

    # The load test measures throughput: the per-client rate limit would refuse it.
    proc = start_server(port, instance, args.workers, args.threads, log_path,
                        env={"MELASCAN_RATELIMIT_ENABLED": "false"})
    try:
        wait_ready(url, proc, args.workers)
        pids = server_pids(proc.pid)
        report["memory_started"] = memory_mb(pids)
        warm, _ = run_load(url, images, warmup, args.concurrency, args.max_seconds)
        report["warmup_errors"] = warm.errors
        report["memory_before"] = before = memory_mb(server_pids(proc.pid))
        print(f"memory after start {report['memory_started']['rss_mb']:.0f} MB RSS; after {warmup} warm-up "
              f"analyses {before['rss_mb']:.0f} MB RSS, {before['pss_mb']:.0f} MB PSS "
              f"({before['processes']} processes)", flush=True)  # fmt: skip

        cpu_before = cpu_seconds(server_pids(proc.pid))
        outcome = Outcome()
        sampler = MemorySampler(proc.pid, outcome)
        sampler.start()
        outcome, wall_s = run_load(url, images, args.requests, args.concurrency, args.max_seconds, outcome, args.rate)
        sampler.stopped.set()
        report["server_cpu_s"] = cpu_seconds(server_pids(proc.pid)) - cpu_before
        report["memory_after"] = after = memory_mb(server_pids(proc.pid))
        report["memory_samples"] = sampler.samples
        report["server_alive"] = proc.poll() is None and requests.get(f"{url}/api/v1/health", timeout=10).ok
    finally:
        stop_server(proc)
    db_path = instance / "melascan.db"
    report["database_mb"] = db_path.stat().st_size / 1e6 if db_path.exists() else None

    done = len(outcome.latencies_s)
    n_errors = sum(outcome.errors.values())
    report.update(
        completed=done, errors=outcome.errors, error_count=n_errors, wall_s=wall_s,
        throughput_per_s=done / wall_s if wall_s > 0 else 0.0, latency=percentiles_ms(outcome.latencies_s),
        rss_growth_mb=after["rss_mb"] - before["rss_mb"], pss_growth_mb=after["pss_mb"] - before["pss_mb"],
        load_average_end=os.getloadavg()[0],
    )  # fmt: skip
    lat = report["latency"]
    report["server_cpu_ms_per_analysis"] = 1000.0 * report["server_cpu_s"] / max(1, done)
    print(f"{done} analyses in {wall_s:.1f} s: {report['throughput_per_s']:.1f} analyses/s; "
          f"errors {n_errors} {outcome.errors or ''}; server CPU {report['server_cpu_ms_per_analysis']:.0f} ms "
          f"per analysis (at most {os.cpu_count() * 1000.0 / max(1e-9, report['server_cpu_ms_per_analysis']):.0f}/s "
          f"on {os.cpu_count()} free cores)")  # fmt: skip
    if lat:
        print(f"latency p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, "
              f"max {lat['max_ms']:.0f} ms")  # fmt: skip
    print(f"server memory: RSS {before['rss_mb']:.0f} -> {after['rss_mb']:.0f} MB "
          f"({report['rss_growth_mb']:+.1f} MB), PSS {before['pss_mb']:.0f} -> {after['pss_mb']:.0f} MB "
          f"({report['pss_growth_mb']:+.1f} MB); database {report['database_mb'] or 0:.0f} MB; "
          f"server still answering: {report['server_alive']}")  # fmt: skip

    if sampler.samples:
        picks = [sampler.samples[round(q * (len(sampler.samples) - 1))] for q in (0, 0.25, 0.5, 0.75, 1)]
        print("server RSS during the run (analyses done: MB): "
              + ", ".join(f"{m['completed']}: {m['rss_mb']:.0f}" for m in picks))  # fmt: skip
        # Growth once the allocators have warmed up: from the first sample after 10 % of
        # the run to the end (a leak keeps growing; arena warm-up does not).
        steady = next((m for m in sampler.samples if m["completed"] >= 0.1 * max(1, done)), sampler.samples[0])
        report["rss_growth_after_10pct_mb"] = after["rss_mb"] - steady["rss_mb"]
        print(f"RSS growth from {steady['completed']} analyses done to the end: "
              f"{report['rss_growth_after_10pct_mb']:+.1f} MB")  # fmt: skip
    if args.storage_saves:
        report["storage"] = s = storage_check(images, args.storage_saves)
        report["storage_what_if_wal"] = w = storage_check(images, args.storage_saves, wal=True)
        print(f"one history save (SQLite, in-process): p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, "
              f"{s['bytes_per_analysis'] / 1e3:.0f} kB of images -> at most {s['max_saves_per_s']:.0f} saves/s "
              f"with one writer; what if WAL + synchronous=NORMAL: p50 {w['p50_ms']:.1f} ms "
              f"(at most {w['max_saves_per_s']:.0f}/s)")  # fmt: skip

    goals = {
        f"throughput >= {GOAL_THROUGHPUT:.0f}/s": report["throughput_per_s"] >= GOAL_THROUGHPUT,
        f"p99 <= {GOAL_P99_MS:.0f} ms": bool(lat) and lat["p99_ms"] <= GOAL_P99_MS,
        "0 errors": n_errors == 0,
        f"memory growth <= {GOAL_GROWTH_MB:.0f} MB (RSS)": report["rss_growth_mb"] <= GOAL_GROWTH_MB,
    }
    report["goals"] = goals
    print("goals: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in goals.items()))
    print(f"load average at the end {report['load_average_end']:.2f}")
    if args.keep:
        print(f"kept {workdir} (instance/ and server.log)")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Latency of ``POST /api/v1/analyses`` (decode, classify + CAM, lesion analysis, overlays,
PNG encoding, database write) on the shipped sample images, through Flask's test client.

    .venv/bin/python benchmarks/web_latency.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

from melascan.web import create_app
from melascan.web.testing import BrowserClient


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    samples = sorted(Path(str(resources.files("melascan").joinpath("assets", "samples"))).glob("*.jpg"))
    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"INSTANCE_PATH": instance, "PRELOAD_MODEL": True, "RATELIMIT_ENABLED": False})
        app.test_client_class = BrowserClient  # owner cookie and the API's CSRF header
        client = app.test_client()
        client.post("/api/v1/analyses", data={"image": (io.BytesIO(samples[0].read_bytes()), samples[0].name)})  # warm-up
        times = []
        for _ in range(args.rounds):
            for path in samples:
                start = time.perf_counter()
                response = client.post("/api/v1/analyses", data={"image": (io.BytesIO(path.read_bytes()), path.name)})
                times.append(time.perf_counter() - start)
                assert response.status_code == 201, response.json
        page_times = []
        for row in client.get("/api/v1/analyses").json["analyses"][:8]:
            start = time.perf_counter()
            assert client.get(row["links"]["page"]).status_code == 200
            page_times.append(time.perf_counter() - start)
    times.sort()
    print(f"{len(times)} analyses of {len(samples)} sample images ({samples[0].name} ...)")
    print(f"POST /api/v1/analyses: median {statistics.median(times) * 1000:.0f} ms, "
          f"p90 {times[int(0.9 * (len(times) - 1))] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")
    print(f"GET /results/<id>: median {statistics.median(page_times) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

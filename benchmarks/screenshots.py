"""Screenshots of the web app for docs/web.md (Playwright + Debian's Chromium).

    .venv/bin/python benchmarks/screenshots.py [--out docs/screenshots]

Starts the app on a free local port with a temporary instance folder, analyses two
of the shipped sample images (a melanoma and a benign lesion), a photo of printed text
(out of scope) and a later image of the first, then saves full-page PNGs of the main,
samples and result pages (suspicious, benign, out of scope) at desktop (1280 px) and phone
(390 px) widths (the phone also in Korean), plus the history and lesion pages on desktop.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from melascan.evaluation.nonskin import printed_text
from melascan.web import create_app
from melascan.web.liveserver import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
#: (width name, UI language) pairs to shoot; Korean needs a Korean font (Debian: fonts-nanum).
SHOTS = [("desktop", "en"), ("phone", "en"), ("phone", "ko")]


def _jpeg(rgb) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/screenshots", help="folder for the PNG files")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"INSTANCE_PATH": instance})
        with LiveServer(app) as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for name, lang in SHOTS:
                context = browser.new_context(viewport=WIDTHS[name], is_mobile=name == "phone", has_touch=name == "phone",
                                              device_scale_factor=1, locale="ko-KR" if lang == "ko" else "en-US",
                                              base_url=server.url)
                page = context.new_page()
                if lang != "en":
                    name = f"{name}-{lang}"
                page.goto("/main")
                page.screenshot(path=out / f"main-{name}.png", full_page=True, animations="disabled")
                page.goto("/samples")
                page.screenshot(path=out / f"samples-{name}.png", full_page=True, animations="disabled")
                page.click("form[action='/samples/malignant_1'] .button")
                page.wait_for_url(re.compile(r"/results/[\w-]+$"))
                page.wait_for_load_state("networkidle")
                page.screenshot(path=out / f"result-{name}.png", full_page=True, animations="disabled")
                page.goto("/samples")  # a benign sample (the demo shows its known diagnosis)
                page.click("form[action='/samples/benign_1'] .button")
                page.wait_for_url(re.compile(r"/results/[\w-]+$"))
                page.wait_for_load_state("networkidle")
                page.screenshot(path=out / f"result-benign-{name}.png", full_page=True, animations="disabled")
                page.goto("/main")  # not a skin spot: a photo of printed text
                page.set_input_files("#file-input-main", {"name": "page.jpg", "mimeType": "image/jpeg",
                                                          "buffer": _jpeg(printed_text())})
                page.click("form.js-upload .analyse-button")
                page.wait_for_url(re.compile(r"/results/[\w-]+$"))
                page.wait_for_load_state("networkidle")
                page.screenshot(path=out / f"out-of-scope-{name}.png", full_page=True, animations="disabled")
                if name == "desktop":
                    first = page.url.rsplit("/", 1)[1]
                    page.fill("#name-lesion-form input[name=name]", "Upper back")
                    page.click("#name-lesion-form button")
                    page.goto("/samples")
                    page.click("form[action='/samples/malignant_2'] .button")
                    page.wait_for_url(re.compile(r"/results/[\w-]+$"))
                    page.select_option("select[name=lesion_id]", label="Upper back")
                    page.click("form:has(select[name=lesion_id]) button")
                    page.goto("/samples")
                    page.click("form[action='/samples/benign_1'] .button")
                    page.wait_for_url(re.compile(r"/results/[\w-]+$"))
                    page.goto("/history")
                    page.screenshot(path=out / f"history-{name}.png", full_page=True, animations="disabled")
                    page.click(".lesion-link")
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=out / f"lesion-{name}.png", full_page=True, animations="disabled")
                    print("first analysis:", first)
                context.close()
            browser.close()
    for path in sorted(out.glob("*.png")):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

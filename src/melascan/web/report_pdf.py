"""The PDF report of one analysis (fpdf2): images, overlays, numbers, advice, disclaimer.

The report is in the reader's language (English or Korean). English is set in DejaVu Sans (the
TTF files matplotlib ships, so no system font is needed), Korean in the bundled Hangul font
(``static/fonts/melascan-hangul-full.ttf``: every Hangul syllable, since a lesion name can hold
any, and Latin-1); each is the other's fallback for characters it lacks.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from fpdf import FPDF
from PIL import Image

from melascan.web.fonts import FONT_DIR, PDF_FONT
from melascan.web.i18n import translate
from melascan.web.present import advice_key, driver, feature_rows, percent, set_name, unfamiliar_note

SANS, HANGUL = "Sans", "Fallback"  # the main family and the fallback family of a report


@lru_cache(maxsize=1)
def _font_files() -> dict[str, Path]:
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {"": ttf / "DejaVuSans.ttf", "B": ttf / "DejaVuSans-Bold.ttf", "I": ttf / "DejaVuSans-Oblique.ttf"}


def _jpeg(data: bytes, max_side_px: int = 800) -> io.BytesIO:
    """A JPEG copy of an image at most ``max_side_px`` wide/high (keeps the PDF small)."""
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("RGB")
        img.thumbnail((max_side_px, max_side_px))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=85)
    out.seek(0)
    return out


class _Report(FPDF):
    def __init__(self, lang: str):
        super().__init__(format="A4")
        self.lang = lang
        # The reader's script is the main font and the other the fallback: fpdf2 garbles digits
        # that follow a fallback-font run at a line break, so Korean text must not be a fallback.
        hangul = str(FONT_DIR / PDF_FONT)  # Hangul + Latin-1, regular only (bold is simulated by size)
        for style, path in _font_files().items():
            self.add_font(SANS, style, hangul if lang == "ko" else str(path))
            self.add_font(HANGUL, style, str(path) if lang == "ko" else hangul)
        self.set_fallback_fonts([HANGUL], exact_match=False)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(SANS, "I", 8)
        self.set_text_color(110)
        self.cell(0, 6, f"MelaScan - {translate('pdf.footer', self.lang)} - {self.page_no()}", align="C")


def build_pdf(result: dict[str, Any], images: dict[str, bytes], *, analysis_id: str,
              created_at: datetime | None, lesion_name: str | None = None, lang: str = "en") -> bytes:
    """The report as PDF bytes in ``lang``. ``images`` maps kind (original, contour, heatmap) to bytes."""

    def _t(key: str, **values: Any) -> str:
        return translate(key, lang, **values)

    pdf = _Report(lang)
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_title(_t("pdf.title"))
    pdf.set_creator("MelaScan")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(text: str, size: int = 13) -> None:
        if pdf.will_page_break(25):  # never a heading alone at the foot of a page
            pdf.add_page()
        pdf.ln(2)
        pdf.set_font(SANS, "B", size)
        pdf.set_text_color(20)
        pdf.multi_cell(width, 7, text, new_x="LMARGIN", new_y="NEXT")

    def para(text: str, size: int = 10, style: str = "", color: int | tuple = 30) -> None:
        pdf.set_font(SANS, style, size)
        pdf.set_text_color(*(color if isinstance(color, tuple) else (color,)))
        pdf.multi_cell(width, 5, text, new_x="LMARGIN", new_y="NEXT")

    risk, model = result["risk"], result["model"]
    probability = float(result["classification"]["probability"])
    when = (created_at or datetime.now(timezone.utc)).astimezone(timezone.utc)

    pdf.set_font(SANS, "B", 18)
    pdf.cell(0, 10, _t("pdf.title"), new_x="LMARGIN", new_y="NEXT")
    para(
        f"{_t('pdf.analysed')}: {when:%Y-%m-%d %H:%M} UTC    {_t('pdf.generated')}: "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC    ID: {analysis_id}",
        9, color=90,
    )
    para(f"{_t('pdf.file')}: {result.get('filename', '')}" + (f"    {_t('pdf.lesion')}: {lesion_name}" if lesion_name else ""), 9, color=90)

    if model.get("status") == "untrained":
        pdf.ln(2)
        para(_t("banner.untrained"), 10, "B", (170, 0, 0))

    level = risk.get("level", "unknown")
    heading(_t(f"result.headline.{level}"), 14)
    sample = result.get("sample")
    if sample:  # a demo image: its known diagnosis, and no advice meant for a person's own spot
        para(f"{_t('sample.known', diagnosis=_t('sample.label.' + str(sample.get('label'))))} {_t('sample.demo_note')}")
    else:
        para(_t(advice_key(risk)))
    why = driver(risk, result.get("lesion"))
    if why:
        para(_t(why[0], **why[1]), 9, "I")
    if risk.get("quality_limited") and level not in ("unknown", "out_of_scope"):
        para(_t("result.quality_limited_suspicious"), 10, "I")
    note = unfamiliar_note(risk)
    if note:
        para(_t(note), 10, "I")
    if level == "out_of_scope":  # no probability for an image that is not dermoscopy
        para(_t("result.retake"))
    else:
        heading(_t("result.probability.title"))
        para(_t("result.probability.sentence", pct=percent(probability)))
        para(f"{_t('result.risk_level')}: {_t('level.' + level)}")
    for point in ([] if level == "out_of_scope" else model.get("operating_points", [])):
        if point.get("sensitivity") is None:
            continue
        para(_t("result.uncertainty.point", name=_t("threshold." + point["name"]),
                threshold=percent(point["threshold"]), sens=percent(point["sensitivity"]),
                spec=percent(point["specificity"]), set=set_name(point.get("set"), _t)), 9)
    if not any(p.get("sensitivity") is not None for p in model.get("operating_points", [])):
        para(_t("result.uncertainty.none"), 9)
    look_alikes = [] if level == "out_of_scope" else model.get("look_alikes", [])
    if look_alikes:
        para(_t("result.lookalikes.title"), 9, "B")
    for la in look_alikes:
        para(_t("result.lookalikes.item", diagnosis=_t("diagnosis." + la["diagnosis"]), high=percent(la["high_rate"]),
                flagged=percent(la["flagged_rate"]), n=la["n"], set=set_name(la.get("set"), _t)), 9)

    shown = [k for k in ("original", "contour", "heatmap") if k in images]
    if shown:
        heading(_t("result.images.title"))
        gap = 4
        w = (width - gap * (len(shown) - 1)) / len(shown)
        top = pdf.get_y() + 1
        heights = []
        for i, kind in enumerate(shown):
            info = pdf.image(_jpeg(images[kind]), x=pdf.l_margin + i * (w + gap), y=top, w=w)
            heights.append(float(info.rendered_height))
        pdf.set_y(top + max(heights) + 1)
        pdf.set_font(SANS, "", 8)
        for i, kind in enumerate(shown):
            pdf.set_x(pdf.l_margin + i * (w + gap))
            pdf.cell(w, 5, _t(f"image.{kind}"), align="C")
        pdf.ln(6)
        classification = result.get("classification", {})
        if "heatmap" in shown and classification.get("cam_mostly_outside"):
            para(_t("image.heatmap.outside", pct=percent(classification.get("cam_inside_lesion"))), 9, "I")

    rows = feature_rows(result.get("lesion") or {}, _t)
    if rows:
        heading(_t("result.features.title"))
        pdf.set_font(SANS, "", 9)
        pdf.set_text_color(30)
        with pdf.table(col_widths=(30, 25, 95), text_align=("LEFT", "LEFT", "LEFT"), line_height=5) as table:
            header = table.row()
            for text in (_t("table.feature"), _t("table.value"), _t("table.meaning")):
                header.cell(text)
            for row in rows:
                cells = table.row()
                for text in (row["name"], row["value"], row["explain"]):
                    cells.cell(text)
        scale = result.get("image", {}).get("mm_per_px")
        para(f"{_t('result.tech.scale')}: "
             + (_t("result.tech.scale_value", value=f"{scale:g}") if scale else _t("result.tech.scale_none")), 8, color=90)

    warnings = result.get("quality", {}).get("warnings", [])
    if warnings:
        heading(_t("result.quality.title"))
        for code in warnings:
            para(f"- {_t('warning.' + code) if _t('warning.' + code) != 'warning.' + code else code}", 9)

    heading(_t("result.dermatologist.title"))
    para(_t("result.dermatologist.text"), 9)

    heading(_t("pdf.model"), 11)
    thresholds = model.get("thresholds", {})
    para(
        f"{model.get('name')} ({model.get('architecture')}), status {model.get('status')}, "
        f"temperature {_number(model.get('temperature'))}, thresholds screening "
        f"{_number(thresholds.get('screening'))} / balanced {_number(thresholds.get('balanced'))}. "
        f"Image {result.get('image', {}).get('width')}x"
        f"{result.get('image', {}).get('height')} px, sha256 {str(result.get('image', {}).get('sha256'))[:16]}...",
        8, color=90,
    )
    heading(_t("pdf.disclaimer.title"), 11)
    para(_t("pdf.disclaimer.text"), 8, color=60)
    return bytes(pdf.output())


def _number(value: Any) -> str:
    """A model parameter for the small print: 3 significant digits, or as given if not a number."""
    return f"{value:.3g}" if isinstance(value, (int, float)) else str(value)

"""Stolz's Total Dermoscopy Score: TDS = 1.3 A + 0.1 B + 0.5 C + 0.5 D.

A asymmetry (0-2), B border (0-8), C colours (1-6), D differential structures (1-5:
pigment network, structureless areas, branched streaks, dots, globules).

D is measured by ``melascan.lesion.structures`` (``Structures.stolz_d``: pigment
network, structureless areas -- regression or blue-whitish veil --, streaks, and
dots/globules, which PH2 labels together and which count once; at least 1), and
``tds_inputs["D_source"]`` says ``measured``; a caller who counted the structures
can give D instead (``given``). ``assumed`` remains a valid source for callers of
``tds()`` that supply a constant.

Bands (Stolz 1994): < 4.75 benign, 4.75-5.45 suspicious, > 5.45 highly suggestive
of melanoma (``melanoma`` here).
"""

from __future__ import annotations

from dataclasses import dataclass

BENIGN_BELOW = 4.75
MELANOMA_ABOVE = 5.45
BANDS = ("benign", "suspicious", "melanoma")


@dataclass(frozen=True)
class TDS:
    value: float
    band: str
    a: int
    b: int
    c: int
    d: int
    d_source: str  # "measured" (melascan.lesion.structures), "given" (by the caller) or "assumed"

    def inputs(self) -> dict:
        return {"A": self.a, "B": self.b, "C": self.c, "D": self.d, "D_source": self.d_source}


def total_dermoscopy_score(a: int, b: int, c: int, d: int) -> float:
    """``1.3 A + 0.1 B + 0.5 C + 0.5 D``, rounded to 2 decimals."""
    return round(1.3 * a + 0.1 * b + 0.5 * c + 0.5 * d, 2)


def tds_band(value: float) -> str:
    """``benign`` (< 4.75), ``suspicious`` (4.75-5.45) or ``melanoma`` (> 5.45)."""
    if value < BENIGN_BELOW:
        return "benign"
    return "suspicious" if value <= MELANOMA_ABOVE else "melanoma"


def tds(a: int, b: int, c: int, d: int, d_source: str = "assumed") -> TDS:
    """The score, its band and the inputs that produced it."""
    if not (0 <= a <= 2 and 0 <= b <= 8 and 0 <= c <= 6 and 1 <= d <= 5):
        raise ValueError(f"TDS inputs out of range: A={a} (0-2), B={b} (0-8), C={c} (0-6), D={d} (1-5)")
    value = total_dermoscopy_score(a, b, c, d)
    return TDS(value, tds_band(value), a, b, c, d, d_source)

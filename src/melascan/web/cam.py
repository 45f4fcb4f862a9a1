"""When the page comments on the heatmap: the model looked mostly outside the outlined spot
(the share comes from ``melascan.inference.cam.cam_inside_fraction``)."""

from __future__ import annotations

#: Below this share of the CAM's mass inside the lesion mask, the page says the model looked
#: mostly outside the outlined spot.
MOSTLY_OUTSIDE_BELOW = 0.5


def mostly_outside(fraction: float | None) -> bool:
    """Whether a ``cam_inside_fraction`` calls for the "looked mostly outside the spot" note."""
    return fraction is not None and fraction < MOSTLY_OUTSIDE_BELOW

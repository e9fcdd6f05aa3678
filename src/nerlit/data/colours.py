"""A fixed display colour per entity type, shared by ``predict format=html`` and the error page
(``errors.html``), so a type looks the same in both."""

from __future__ import annotations

import colorsys
import hashlib

# displaCy-like colours for the usual types; anything else gets a stable colour from its name
COLOURS = {
    "per": "#aa9cfc",
    "org": "#7aecec",
    "geo": "#feca74",
    "loc": "#ff9561",
    "gpe": "#bfeeb7",
    "tim": "#bfe1d9",
    "date": "#bfe1d9",
    "misc": "#e4e7d2",
    "art": "#f0d0ff",
    "eve": "#ffeb80",
    "nat": "#c887fb",
}


def type_colour(label: str) -> str:
    """A fixed colour for a type: the usual ones as displaCy has them, others from a hash."""
    known = COLOURS.get(label.lower())
    if known:
        return known
    hue = int(hashlib.md5(label.encode()).hexdigest()[:4], 16) / 0xFFFF
    r, g, b = colorsys.hls_to_rgb(hue, 0.82, 0.75)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"

"""The neck diagram of the case page: a front view of the neck as inline SVG, with levels II-V of both lateral
compartments coloured by their risk and the scored nodes drawn as dots in their level.

Radiological convention: the patient faces the viewer, so the patient's right is on the viewer's left. Colours run
from green through amber to red, anchored on the thresholds in force (green below the rule-out threshold, red at
or above the Youden threshold), so a region's colour agrees with the band the page prints; grey means no risk.
"""

from __future__ import annotations

import math
from html import escape

GREEN, AMBER, RED = (67, 160, 71), (255, 179, 0), (229, 57, 53)
GREY = "#c8c8c8"
LEVELS = ("II", "III", "IV", "V")
WIDTH, HEIGHT = 440, 420

# Regions per side as (x, y, width, height) on the viewer's left (the patient's right); the patient's left mirrors
# them. II, III and IV lie along the sternocleidomastoid from the jaw to the clavicle; V (posterior triangle) lies
# lateral to them.
REGIONS = {"II": (132, 92, 64, 72), "III": (132, 164, 64, 68), "IV": (132, 232, 64, 68), "V": (62, 140, 68, 160)}


def percent(p) -> str:
    """A probability as the page prints it: '<0.1%', '2.4%', '39%'; an en dash when unknown."""
    if p is None or not math.isfinite(float(p)):
        return "\u2013"
    p = float(p)
    if p < 0.001:
        return "<0.1%"
    return f"{p * 100:.1f}%" if p < 0.1 else f"{p * 100:.0f}%"


def _stops(thresholds: dict | None) -> list[tuple[float, tuple[int, int, int]]]:
    low = (thresholds or {}).get("rule_out_sens95")
    high = (thresholds or {}).get("youden")
    if low is None or high is None or not 0 <= low < high <= 1:
        return [(0.0, GREEN), (0.5, AMBER), (1.0, RED)]  # no usable thresholds: a plain probability scale
    return [(0.0, GREEN), (low, GREEN), ((low + high) / 2, AMBER), (high, RED), (1.0, RED)]


def colour(p, thresholds: dict | None = None) -> str:
    """The fill for a probability (hex); grey for None or NaN."""
    if p is None or not math.isfinite(float(p)):
        return GREY
    p = min(max(float(p), 0.0), 1.0)
    stops = _stops(thresholds)
    for (x0, c0), (x1, c1) in zip(stops, stops[1:]):
        if p <= x1:
            t = 0.0 if x1 == x0 else (p - x0) / (x1 - x0)
            return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(c0, c1))
    return "#%02x%02x%02x" % RED


def _mirror(x: float, w: float = 0) -> float:
    return WIDTH - x - w


def _text(x, y, content: str, size: int = 12, anchor: str = "middle", weight: str = "normal") -> str:
    # a white halo keeps dark text readable on every fill
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="#111" stroke="#fff" stroke-width="3" paint-order="stroke">{escape(content)}</text>')


def _risks(result: dict) -> dict[tuple[str, str], float | None]:
    """(side, level) -> probability: the level risk, else the side risk, else None."""
    sides = {s.get("side"): s.get("probability") for s in result.get("sides") or []}
    levels = {(r.get("side"), r.get("level")): r.get("probability") for r in result.get("levels") or []}
    out = {}
    for side in ("right", "left"):
        has_levels = any(key[0] == side for key in levels)  # a side scored per level shows no side fallback
        for level in LEVELS:
            out[side, level] = levels.get((side, level)) if has_levels else sides.get(side)
    return out


def _outline() -> list[str]:
    """Jaw, neck, shoulders and the thyroid: context only, not scored."""
    return ['<path d="M112 8 L118 58 Q220 150 322 58 L328 8" fill="#f4f4f4" stroke="#555" stroke-width="2"/>',
            _text(220, 60, "mandible", 10),
            '<path d="M132 92 L128 300 Q70 312 20 336 M308 92 L312 300 Q370 312 420 336" fill="none" '
            'stroke="#555" stroke-width="2"/>',
            '<path d="M128 300 Q220 322 312 300" fill="none" stroke="#555" stroke-width="2"/>',
            '<g fill="#f3c6cf" stroke="#b06a7a"><ellipse cx="206" cy="222" rx="10" ry="24"/>'
            '<ellipse cx="234" cy="222" rx="10" ry="24"/><rect x="206" y="228" width="28" height="10"/></g>',
            _text(220, 275, "thyroid", 10)]


def _nodes(result: dict, thresholds: dict) -> list[str]:
    """One dot per scored node, spread along the middle of its level's region."""
    out, by_region = [], {}
    for node in result.get("nodes") or []:
        if node.get("level") in REGIONS and node.get("side") in ("left", "right"):
            by_region.setdefault((node["side"], node["level"]), []).append(node)
    for (side, level), nodes in by_region.items():
        x, y, w, h = REGIONS[level]
        if side == "left":
            x = _mirror(x, w)
        for i, node in enumerate(nodes):
            cx, cy = x + w * (i + 1) / (len(nodes) + 1), y + h - 12
            label = f"{node.get('node_id', '')}: {percent(node.get('probability'))}"
            out.append(f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="6" fill="{colour(node.get("probability"), thresholds)}"'
                       f' stroke="#222" data-testid="node-dot-{escape(str(node.get("node_id", "")))}">'
                       f'<title>{escape(label)}</title></circle>')
    return out


def _legend(thresholds: dict) -> list[str]:
    x0, y0, w = 40, 372, 310
    stops = "".join(f'<stop offset="{x:.4f}" stop-color="{colour(x, thresholds)}"/>' for x, _ in _stops(thresholds))
    out = [f'<defs><linearGradient id="lc-risk-scale">{stops}</linearGradient></defs>',
           f'<rect x="{x0}" y="{y0}" width="{w}" height="12" fill="url(#lc-risk-scale)" stroke="#555"/>',
           _text(x0, y0 + 26, "0%", 10), _text(x0 + w, y0 + 26, "100%", 10),
           f'<rect x="{x0 + w + 14}" y="{y0}" width="12" height="12" fill="{GREY}" stroke="#555"/>',
           _text(x0 + w + 30, y0 + 10, "no risk", 10, "start")]
    for key, name in (("rule_out_sens95", "rule-out"), ("youden", "high")):
        t = thresholds.get(key)
        if t is not None and 0 <= t <= 1:
            x = x0 + w * t
            out += [f'<line x1="{x:.0f}" y1="{y0 - 4}" x2="{x:.0f}" y2="{y0 + 16}" stroke="#111"/>',
                    _text(x, y0 - 7, f"{name} {percent(t)}", 10)]
    return out


def neck_svg(result: dict) -> str:
    """The diagram of one case result (the JSON of the case store) as an SVG element; all text is escaped."""
    thresholds = result.get("thresholds") or {}
    risks = _risks(result)
    sides = {s.get("side"): s.get("probability") for s in result.get("sides") or []}
    parts = _outline()
    for (side, level), p in risks.items():
        x, y, w, h = REGIONS[level]
        if side == "left":
            x = _mirror(x, w)
        parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{colour(p, thresholds)}" '
                     f'fill-opacity="0.85" stroke="#333" data-testid="level-{side}-{level}" '
                     f'data-probability="{"" if p is None else p}"><title>{side} level {level}: {percent(p)}'
                     f'</title></rect>')
        parts += [_text(x + w / 2, y + 20, level, 13, weight="bold"), _text(x + w / 2, y + 36, percent(p), 12)]
    for side, x in (("right", 96), ("left", _mirror(96))):
        parts += [_text(x, 330, f"{side} side {percent(sides.get(side))}", 11)]
    parts += [_text(24, 40, "R", 22, weight="bold"), _text(WIDTH - 24, 40, "L", 22, weight="bold"),
              _text(WIDTH / 2, 352, "Front view: the patient's right is on the viewer's left", 10)]
    parts += _nodes(result, thresholds) + _legend(thresholds)
    patient = escape(str(result.get("patient_id", "")))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-labelledby="neck-title" data-testid="neck-diagram" class="neck">'
            f'<title id="neck-title">Neck levels II-V of patient {patient}, coloured by risk</title>'
            + "".join(parts) + "</svg>")

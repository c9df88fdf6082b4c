"""Shapes of cytology objects: cells and nuisance bodies as tables of primitives, and how a primitive is drawn.

A primitive is a (super)ellipse in micrometres (centre, semi-axes a along the angle th and b across it, corner
exponent p, taper of b along a) with densities of the stain channels (cyto_stain) and a radial profile: flat
(cytoplasm, nuclei, with powdery texture), laminated rings (psammoma), a hole with a sharp rim (intranuclear
pseudo-inclusion) or central pallor (red cells). Tables are built vectorised, one call per kind of object, so a
slide of a thousand cells costs a few numpy calls, and are drawn into small local patches by cyto_raster.
"""

from __future__ import annotations

import numpy as np

from .cyto_stain import CHANNELS, COLLOID, CYAN, EOS, NUC, RBC

FLAT, RINGS, HOLE, PALLOR = range(4)
CLASSIC, HOBNAIL, TALL = range(3)  # tumour cell types
COLUMNS = ("x", "y", "a", "b", "th", "p", "taper", "kind", "tex", "aux", "coarse")


def prims(x, y, a, b, *, th=0.0, p=2.0, taper=0.0, kind=FLAT, tex=0.0, aux=0.0, coarse=0, **dens) -> dict:
    """A table of primitives; `dens` maps channel names (nuc, cyan, eos, rbc, colloid) to densities; `coarse`
    marks large smooth objects that may be drawn on a coarser grid."""
    n = len(np.atleast_1d(x))
    table = {k: np.broadcast_to(np.asarray(v, float), (n,)).copy()
             for k, v in zip(COLUMNS, (x, y, a, b, th, p, taper, kind, tex, aux, coarse))}
    table["dens"] = np.zeros((n, CHANNELS))
    index = {"nuc": NUC, "cyan": CYAN, "eos": EOS, "rbc": RBC, "colloid": COLLOID}
    for name, value in dens.items():
        table["dens"][:, index[name]] = value
    return table


def concat(tables: list[dict]) -> dict:
    tables = [t for t in tables if len(t["x"])]
    if not tables:
        return prims([], [], [], [])
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


def extent(table: dict) -> np.ndarray:
    """Half-size (um) of the square holding each primitive, tapering and corners included."""
    return np.maximum(table["a"], table["b"] * (1 + np.abs(table["taper"]))) * np.where(table["p"] > 2, 1.42, 1.0)


def values(t: dict, dx: np.ndarray, dy: np.ndarray, edge: float, rng: np.random.Generator) -> np.ndarray:
    """Profile (N, S, S) of primitives `t` at offsets dx (N, 1, S) and dy (N, S, 1) um from their centres.

    `edge` (um) is the width of the soft boundary: the pixel size or the focus blur, whichever is larger."""
    col = lambda k: t[k][:, None, None].astype(np.float32)  # noqa: E731
    c, s = np.cos(col("th")), np.sin(col("th"))
    u = (dx * c + dy * s) / col("a")
    v = (dy * c - dx * s) / col("b")
    if np.any(t["taper"]):
        v = v / np.clip(1 + col("taper") * u, 0.15, 2.0)
    if np.all(t["p"] == 2):
        r = np.sqrt(u * u + v * v)
    else:
        p = col("p")
        r = (np.abs(u) ** p + np.abs(v) ** p) ** (1 / p)
    scale = np.minimum(col("a"), col("b"))
    alpha = np.clip(0.5 - (r - 1) * scale / np.float32(edge), 0, 1)
    kind = t["kind"][:, None, None]
    out = alpha
    if np.any(kind == RINGS):  # concentric laminations, `aux` of them
        rings = alpha * (0.45 + 0.55 * np.cos(2 * np.pi * r * col("aux")) ** 2)
        out = np.where(kind == RINGS, rings, out)
    if np.any(kind == HOLE):  # pale centre, sharp darker rim: cancels `aux` of the nucleus inside
        rim = np.exp(-(((r - 1) * scale) / np.float32(max(0.6 * edge, 0.35))) ** 2)
        out = np.where(kind == HOLE, rim - col("aux") * alpha, out)
    if np.any(kind == PALLOR):
        out = np.where(kind == PALLOR, alpha * (1 - col("aux") * np.exp(-4 * r * r)), out)
    if np.any(t["tex"]):  # chromatin / foamy texture: pixel-scale grain
        grain = rng.random(out.shape, dtype=np.float32) - 0.5
        out = out * (1 + 2 * col("tex") * grain)
    return out


def _unit(phi):
    return np.cos(phi), np.sin(phi)


def tumour_cells(x, y, phi, types, inverted, look: dict, rng: np.random.Generator) -> list[dict]:
    """Primitives of tumour cells at (x, y) um, `phi` the outward direction of their group there.

    Classic: 12-16 um, enlarged oval nucleus with pale powdery chromatin, grooves and pseudo-inclusions at the
    patient's rates (look). Hobnail: teardrop cytoplasm narrowing outwards, dark nucleus bulging at the apical
    tip. Tall: 26-32 x 9-11 um, dense eosinophilic cytoplasm, basal nucleus. `inverted` (micropapillary
    clusters): the classic cell's nucleus sits at its outer end."""
    x, y, phi, types = (np.asarray(v, float) for v in (x, y, phi, types))
    out = []
    for kind in (CLASSIC, HOBNAIL, TALL):
        m = types == kind
        n = int(m.sum())
        if not n:
            continue
        cx, cy, ph = x[m], y[m], phi[m]
        ux, uy = _unit(ph)
        if kind == CLASSIC:
            a = rng.uniform(6.0, 8.0, n)
            out.append(prims(cx, cy, a, a * rng.uniform(0.8, 0.95, n), th=rng.uniform(0, np.pi, n),
                             cyan=rng.uniform(0.22, 0.32, n), eos=rng.uniform(0.0, 0.06, n)))
            shift = np.where(np.asarray(inverted)[m], 0.45 * a, rng.uniform(0, 1.5, n))
            nx, ny = cx + shift * ux, cy + shift * uy
            na = rng.uniform(4.2, 5.0, n)
            nb, nth, nd = na * rng.uniform(0.7, 0.85, n), rng.uniform(0, np.pi, n), rng.uniform(0.36, 0.48, n)
        elif kind == HOBNAIL:
            a = rng.uniform(7.0, 8.5, n)
            bx, by = cx - 1.5 * ux, cy - 1.5 * uy
            out.append(prims(bx, by, a, rng.uniform(4.5, 5.5, n), th=ph, taper=-0.6,
                             cyan=rng.uniform(0.24, 0.34, n), eos=rng.uniform(0.02, 0.1, n)))
            na = rng.uniform(3.8, 4.5, n)
            nx, ny = bx + 0.9 * a * ux, by + 0.9 * a * uy  # at the tip: half of it outside the cell
            nb, nth, nd = na * rng.uniform(0.8, 0.95, n), ph, rng.uniform(0.75, 0.95, n)
            out.append(prims(nx, ny, na, nb, th=nth, tex=0.15, nuc=nd))
            continue  # hyperchromatic: no grooves or inclusions drawn
        else:
            a = rng.uniform(13.0, 16.0, n)
            out.append(prims(cx, cy, a, rng.uniform(4.5, 5.5, n), th=ph, p=4.0, tex=0.1,
                             eos=rng.uniform(0.4, 0.52, n), cyan=0.05))
            nx, ny = cx - 0.55 * a * ux, cy - 0.55 * a * uy
            na = rng.uniform(4.0, 4.8, n)
            nb, nth, nd = na * rng.uniform(0.7, 0.8, n), ph, rng.uniform(0.42, 0.52, n)
        out.append(prims(nx, ny, na, nb, th=nth, tex=0.35, nuc=nd))
        g = rng.random(n) < look["groove"]
        out.append(prims(nx[g], ny[g], 0.8 * na[g], 0.35, th=nth[g], nuc=0.5))
        h = rng.random(n) < look["inclusion"]
        r = rng.uniform(1.3, 1.9, int(h.sum()))
        out.append(prims(nx[h], ny[h], r, r * 0.95, kind=HOLE, aux=0.85, nuc=nd[h]))
    return out


def micropapillary_core(x, y, radius) -> dict:
    """The dense cytoplasm in the middle of a micropapillary cluster (no fibrovascular core)."""
    return prims(x, y, radius, radius * 0.92, cyan=0.22, eos=0.18)


def stroma(x0, y0, x1, y1, half_width, rng: np.random.Generator) -> list[dict]:
    """A fibrovascular core segment: a pale pink-green fibrillar band with a few slender endothelial nuclei."""
    x0, y0, x1, y1 = (np.asarray(v, float) for v in (x0, y0, x1, y1))
    th = np.arctan2(y1 - y0, x1 - x0)
    half = np.hypot(x1 - x0, y1 - y0) / 2 + 4
    n = len(th)
    band = prims((x0 + x1) / 2, (y0 + y1) / 2, half, half_width, th=th, p=3.0, tex=0.3,
                 eos=rng.uniform(0.1, 0.16, n), cyan=0.09, colloid=0.05)
    t = rng.uniform(-0.7, 0.7, n)
    endo = prims((x0 + x1) / 2 + t * half * np.cos(th), (y0 + y1) / 2 + t * half * np.sin(th), 5.0, 1.4,
                 th=th, tex=0.2, nuc=0.5)
    return [band, endo]


def rbcs(x, y, rng: np.random.Generator) -> dict:
    n = len(x)
    r = rng.uniform(3.5, 4.0, n)
    return prims(x, y, r, r * rng.uniform(0.85, 1.0, n), th=rng.uniform(0, np.pi, n), kind=PALLOR, aux=0.5,
                 rbc=rng.uniform(0.3, 0.45, n))


def lymphocytes(x, y, rng: np.random.Generator) -> list[dict]:
    n = len(x)
    r = rng.uniform(3.0, 3.6, n)
    return [prims(x + 0.6, y, r + 1.0, r + 0.8, cyan=0.18), prims(x, y, r, r * 0.95, tex=0.2, nuc=1.1)]


def histiocytes(x, y, rng: np.random.Generator) -> list[dict]:
    n = len(x)
    r = rng.uniform(9.0, 13.0, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    return [prims(x, y, r, r * rng.uniform(0.75, 0.95, n), th=ang, tex=0.8, cyan=0.13, eos=0.03),
            prims(x + 0.5 * r * np.cos(ang), y + 0.5 * r * np.sin(ang), 4.0, 2.6, th=ang + np.pi / 2, tex=0.2,
                  nuc=0.6)]


def psammoma(x, y, radius) -> dict:
    """Concentric laminated calcospherite, purple-blue (haematoxylin-rich) with a faint eosinophilic cast."""
    radius = np.asarray(radius, float)
    return prims(x, y, radius, radius * 0.97, kind=RINGS, aux=radius / 3.0, nuc=0.55, eos=0.15, cyan=0.1)


def colloid(x, y, a, b, th, dens) -> dict:
    return prims(x, y, a, b, th=th, coarse=1, colloid=dens)

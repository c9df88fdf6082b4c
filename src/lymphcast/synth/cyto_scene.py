"""One patient's cytology slide laid out in micrometres from its latent features.

The features decide only the tumour cells' types and arrangement: each cell is hobnail with probability
hobnail_fraction, tall with probability tall_cell_fraction, else classic (so the drawn shares track the features
up to binomial sampling); loss_of_cohesion sets the share of cells lying alone or in 2-3-cell clumps (35-50% vs
3-8%); micropapillary sets the number of micropapillary clusters (8-15 vs 0-1, a rare look-alike). Hobnail cells
take edge positions (a group's rim, clusters, single cells), where their bulging nucleus shows. Everything else
(the sizes of groups, papillary fragments, psammoma bodies, red cells, lymphocytes, colloid) is drawn without
looking at the features: nuisance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import cyto_cells as cc

REFERENCE_UM = 1024.0              # counts below are per slide of this side; others scale with the area
TUMOUR_CELLS = (700, 1200)
GRID_UM = 4.0                      # occupancy grid used to keep groups apart
KEEP_APART = 3                     # grid cells marked around each placed cell
_STAMP = np.stack(np.meshgrid(np.arange(-KEEP_APART, KEEP_APART + 1), np.arange(-KEEP_APART, KEEP_APART + 1)),
                  -1).reshape(-1, 2)
GROUP_KINDS = (("sheet", 0.45, (15, 60)), ("papillary", 0.25, (30, 90)), ("crowded", 0.30, (20, 50)))


@dataclass(frozen=True)
class Scene:
    size_um: float
    prims: dict
    counts: dict
    groups: np.ndarray             # (g, 3): centre x, y and number of cells of each cohesive group or cluster


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _edges(points: np.ndarray, spacing: float, blockers: np.ndarray | None = None):
    """Which points lie on a group's rim, and each point's outward direction (angle): the mean of unit vectors
    away from neighbours is large at the rim and cancels inside. `blockers` (a papilla's core) count as
    neighbours, so the cells facing the core are not rim."""
    others = points if blockers is None else np.vstack([points, blockers])
    d = points[:, None, :] - others[None, :, :]
    dist = np.hypot(d[..., 0], d[..., 1])
    near = (dist > 1e-6) & (dist < 2.2 * spacing)
    res = (d / np.maximum(dist, 1e-6)[..., None] * near[..., None]).sum(axis=1)
    res /= np.maximum(near.sum(axis=1), 1)[:, None]  # mean: ~0 inside (jittered or not), ~0.4-0.6 on the rim
    edge = np.hypot(res[:, 0], res[:, 1]) >= 0.3
    radial = points - points.mean(axis=0)
    use = np.where(edge[:, None], res, radial)
    return edge, np.arctan2(use[:, 1], use[:, 0])


def _sheet(n: int, spacing: float, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """A honeycomb (hexagonal lattice) blob of n cells, irregular and elongated."""
    k = int(np.sqrt(n)) + 4
    i, j = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1))
    pts = np.stack([(i + 0.5 * (j % 2)).ravel(), (j * np.sqrt(3) / 2).ravel()], axis=1) * spacing
    stretch = rng.uniform(1.0, 1.8)
    score = np.hypot(pts[:, 0] / stretch, pts[:, 1]) + rng.uniform(0, 0.9 * spacing, len(pts))
    pts = pts[np.argsort(score)[:n]]
    return _rotate(pts, rng.uniform(0, np.pi)) + rng.normal(0, jitter, (n, 2))


def _papilla(n: int, spacing: float, rng: np.random.Generator):
    """An elongated, sometimes branching fragment: rows of cells both sides of a fibrovascular core.
    Returns the cell points (at most n, from the base outwards), the core's centreline points and half width."""
    half, rows = rng.uniform(5.0, 8.0), int(rng.integers(2, 4))

    def path(start, heading, length):
        h = heading + np.cumsum(rng.normal(0, 0.12, int(length / spacing) + 1))
        return start + np.cumsum(np.stack([np.cos(h), np.sin(h)], 1) * spacing, axis=0), h

    paths = [path(np.zeros(2), rng.uniform(0, 2 * np.pi), rng.uniform(100, 240))]
    if rng.random() < 0.6:  # a side branch
        trunk, h = paths[0]
        k = int(rng.integers(len(h) // 3, len(h)))
        paths.append(path(trunk[k], h[k] + rng.choice([-1, 1]) * rng.uniform(0.6, 1.0), rng.uniform(40, 100)))
    cells, order, core, base = [], [], [], 0
    for line, h in paths:
        normal = np.stack([-np.sin(h), np.cos(h)], 1)
        for j in range(rows):
            for side in (-1, 1):
                cells.append(line + side * (half + spacing * (0.5 + j)) * normal)
                order.append(base + np.arange(len(line)))
        cells.append(line[-1] + np.outer(half + spacing * (0.5 + np.arange(rows)), [np.cos(h[-1]), np.sin(h[-1])]))
        order.append(np.full(rows, base + len(line)))
        core.append(line)
        base += len(line) + 1
    pts = np.vstack(cells)[np.argsort(np.concatenate(order), kind="stable")]
    core = np.vstack(core)
    keep = []
    for i, p in enumerate(pts):  # drop cells on the core (a branch crossing the trunk) or on another cell
        if np.min(np.hypot(*(core - p).T)) < half + 0.3 * spacing:
            continue
        if keep and np.min(np.hypot(*(pts[keep] - p).T)) < 0.6 * spacing:
            continue
        keep.append(i)
        if len(keep) == n:
            break
    pts = pts[keep]
    near = np.hypot(*(core[:, None] - pts[None]).transpose(2, 0, 1)).min(axis=1) < 2.5 * spacing
    centre = core.mean(0)
    return pts - centre, core[near] - centre, half


class _Placer:
    """Random non-overlapping placement of point sets on the slide, on a coarse occupancy grid."""

    def __init__(self, size: float, rng: np.random.Generator):
        self.size, self.rng = size, rng
        self.grid = np.zeros((int(size / GRID_UM) + 1,) * 2, bool)

    def place(self, pts: np.ndarray, margin: float = 16.0, tries: int = 40) -> np.ndarray:
        lo = np.maximum(margin - pts.min(0), 0)
        hi = np.maximum(self.size - margin - pts.max(0), lo + 1e-3)
        shift = self.rng.uniform(lo, hi, (tries, 2))
        cells = ((pts[None] + shift[:, None]) / GRID_UM).astype(int).clip(0, len(self.grid) - 1)
        free = ~self.grid[cells[..., 1], cells[..., 0]].any(axis=1)
        moved = pts + shift[int(np.argmax(free))]  # the first free spot (or the first try, overlapping)
        c = (moved / GRID_UM).astype(int)[:, None, :] + _STAMP[None]
        c = c.reshape(-1, 2).clip(0, len(self.grid) - 1)
        self.grid[c[:, 1], c[:, 0]] = True
        return moved


def cell_types(n: int, hobnail: float, tall: float, rng: np.random.Generator) -> np.ndarray:
    """Each cell hobnail w.p. `hobnail`, tall w.p. `tall`, classic otherwise (shares scaled down if > 1)."""
    total = max(1.0, hobnail + tall)
    u = rng.random(n) * total
    return np.where(u < hobnail, cc.HOBNAIL, np.where(u < hobnail + tall, cc.TALL, cc.CLASSIC))


def build_scene(feats: dict, size_um: float, rng: np.random.Generator) -> Scene:
    scale = (size_um / REFERENCE_UM) ** 2
    look = {"groove": rng.uniform(0.3, 0.5), "inclusion": rng.uniform(0.05, 0.10)}
    n = max(12, int(round(rng.uniform(*TUMOUR_CELLS) * scale)))
    types = cell_types(n, float(feats["hobnail_fraction"]), float(feats["tall_cell_fraction"]), rng)
    n_single = int(round(n * (rng.uniform(0.35, 0.5) if feats["loss_of_cohesion"] else rng.uniform(0.03, 0.08))))
    if feats["micropapillary"]:
        n_mp = max(1, int(round(rng.uniform(8, 15) * scale)))
    else:
        n_mp = int(rng.random() < 0.3 * min(1.0, scale))
    placer = _Placer(size_um, rng)
    slots, groups, extra = [], [], []  # slots: (x, y, phi, edge, inverted)
    budget = n - n_single
    fragments = 0
    for _ in range(n_mp):  # micropapillary: tight ball, nuclei on the rim ("inside-out")
        k = int(min(rng.integers(5, 13), budget))
        if k < 3:
            n_mp -= 1
            continue
        radius = max(6.5, k * 8.0 / (2 * np.pi))
        ang = rng.uniform(0, 2 * np.pi) + np.arange(k) * 2 * np.pi / k
        pts = placer.place(np.stack([np.cos(ang), np.sin(ang)], 1) * radius + rng.normal(0, 0.6, (k, 2)))
        centre = pts.mean(0)
        extra.append(cc.micropapillary_core(centre[0], centre[1], radius - 1.0))
        slots.append(np.column_stack([pts, ang, np.ones(k), np.ones(k)]))
        groups.append((*centre, k))
        budget -= k
    while budget > 0:
        names, probs, sizes = zip(*GROUP_KINDS)
        kind = names[rng.choice(3, p=probs)]
        lo, hi = sizes[names.index(kind)]
        k = int(min(rng.integers(lo, hi + 1), budget))
        pts = blockers = None
        if kind == "papillary" and k >= 12:
            spacing = rng.uniform(12.0, 13.5)
            pts, blockers, half = _papilla(k, spacing, rng)  # may hold fewer than k cells
            if len(pts) < 3:
                pts = blockers = None
        if pts is None:
            crowded = kind == "crowded" or k < 12
            spacing = rng.uniform(8.0, 9.5) if crowded else rng.uniform(12.5, 14.0)
            pts = _sheet(k, spacing, 1.5 if crowded else 0.6, rng)
        k = len(pts)
        edge, phi = _edges(pts, spacing, blockers)
        ref = pts.mean(0)
        moved = placer.place(np.vstack([pts, blockers]) if blockers is not None else pts)
        shift = moved[0] - pts[0]
        pts = moved[:k]
        if blockers is not None:
            fragments += 1
            core = blockers + shift
            gap = np.hypot(*np.diff(core, axis=0).T) < 1.5 * spacing  # consecutive core points of one path
            a, b = core[:-1][gap], core[1:][gap]
            extra += cc.stroma(a[:, 0], a[:, 1], b[:, 0], b[:, 1], half, rng)
        slots.append(np.column_stack([pts, phi, edge, np.zeros(k)]))
        groups.append((*(ref + shift), k))
        budget -= k
    left = n_single
    while left > 0:  # dispersed cells: alone or in clumps of 2-3
        k = int(min(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]), left))
        ang = rng.uniform(0, 2 * np.pi)
        pts = np.arange(k)[:, None] * 11.0 * np.array([np.cos(ang), np.sin(ang)])
        pts = placer.place(pts, tries=12)
        phi = ang + np.pi * (np.arange(k) < (k - 1) / 2) if k > 1 else rng.uniform(0, 2 * np.pi, 1)
        slots.append(np.column_stack([pts, np.broadcast_to(phi, (k,)), np.ones(k), np.zeros(k)]))
        left -= k
    slots = np.vstack(slots)
    # hobnail cells take the rim first: edge slots in random order, then the rest
    order = np.concatenate([rng.permutation(np.flatnonzero(slots[:, 3] == 1)),
                            rng.permutation(np.flatnonzero(slots[:, 3] == 0))])
    assigned = np.empty(n, int)
    is_hob = types == cc.HOBNAIL
    assigned[order[:is_hob.sum()]] = cc.HOBNAIL
    rest = order[is_hob.sum():]
    assigned[rest] = rng.permutation(types[~is_hob])
    tumour = cc.tumour_cells(slots[:, 0], slots[:, 1], slots[:, 2], assigned, slots[:, 4] == 1, look, rng)
    nuisance, n_psammoma = _nuisance(size_um, scale, np.array(groups), rng)
    counts = {"tumour_cells": n, "hobnail_cells": int((assigned == cc.HOBNAIL).sum()),
              "tall_cells": int((assigned == cc.TALL).sum()), "single_cells": n_single,
              "micropapillary_clusters": n_mp, "psammoma_bodies": n_psammoma, "papillary_fragments": fragments}
    table = cc.concat(nuisance[:1] + extra + tumour + nuisance[1:])  # colloid first: drawn order is irrelevant
    return Scene(size_um, table, counts, np.array(groups).reshape(-1, 3))


def _nuisance(size: float, scale: float, groups: np.ndarray, rng: np.random.Generator):
    """Background that does not depend on the features: colloid, red cells, lymphocytes, histiocytes,
    psammoma bodies (in ~30% of patients, 1-3 of them, next to a group)."""
    u = lambda k: rng.uniform(0, size, k)  # noqa: E731
    k = int(rng.poisson(6.0 * scale))  # colloid: irregular thin sheets, each a few overlapping blobs
    parts = rng.integers(3, 7, k)
    at = np.repeat(np.stack([u(k), u(k)], 1), parts, axis=0) + rng.normal(0, 45, (int(parts.sum()), 2))
    m = len(at)
    out = [cc.colloid(at[:, 0], at[:, 1], rng.uniform(30, 90, m), rng.uniform(20, 60, m), rng.uniform(0, np.pi, m),
                      np.repeat(rng.uniform(0.18, 0.4, k), parts))]
    n_rbc = int(rng.uniform(300, 3000) * scale)
    clumped = int(n_rbc * rng.uniform(0.3, 0.8))
    centres = rng.uniform(0, size, (max(1, int(6 * scale) + 1), 2))
    pts = centres[rng.integers(len(centres), size=clumped)] + rng.normal(0, 30, (clumped, 2))
    pts = np.vstack([pts, rng.uniform(0, size, (n_rbc - clumped, 2))])
    out.append(cc.rbcs(pts[:, 0], pts[:, 1], rng))
    k = int(rng.integers(3, 30) * scale) + 1
    out += cc.lymphocytes(u(k), u(k), rng)
    k = int(rng.integers(1, 8) * scale)
    out += cc.histiocytes(u(k), u(k), rng)
    n_psammoma = int(rng.integers(1, 4)) if rng.random() < 0.3 else 0
    if n_psammoma:
        near = groups[rng.integers(len(groups), size=n_psammoma), :2] if len(groups) else u((n_psammoma, 2))
        ang = rng.uniform(0, 2 * np.pi, n_psammoma)
        at = np.clip(near + 40 * np.stack([np.cos(ang), np.sin(ang)], 1), 30, size - 30)
        out.append(cc.psammoma(at[:, 0], at[:, 1], rng.uniform(10, 30, n_psammoma)))
    return out, n_psammoma

"""Stain swap: a copy of a synthetic cohort whose cytology at chosen centres is rendered again in another stain.

What a stain costs a cytology model is best measured on the same patients twice: centre A's slides as the cohort
has them (Diff-Quik) and the very same slides in Papanicolaou. Raw AUCs on different patients mostly measure
case mix. So the copy keeps every file of the source (hard-linked where the file system allows) except, for the
patients of the chosen centres, their slide and fields, their cytology.csv and truth/cytology_cells.csv rows and
the centres' stain in cohort.yaml.

Same patients, same cells, same draws: the latent table is not recoverable from the folder (truth/cytology.csv
holds the features to 6 significant digits, and a rounded fraction may tip a draw of the scene), so each chunk is
simulated again from the seed in cohort.yaml exactly as generate_cohort does; the cytology renderer's stream of
the chunk then gives every patient the generator seed it had, and render_patient draws the same numbers whatever
the stain system (see cyto_renderer.render_patient). What the copy redraws is checked against the source:
patient ids and centres, the latent features, the cell counts of every scene and the image rows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..cohort import LymphCastError, atomic_dir, read_cohort
from ..cohort.io import write_meta
from ..modalities.registry import KNOWN
from .chunk import simulate_chunk
from .coverage import subset_chunk
from .cyto_renderer import FEATURES, TRUTH_FILE, render_cytology
from .cyto_stain import STAINS
from .generate import CHUNK_SIZE, GENERATOR_VERSION, chunk_plan
from .risk_model import centre_log_priors

CYTOLOGY_CSV = "cytology.csv"
TRUTH_CELLS = f"truth/{TRUTH_FILE}"
TRUTH_LATENT = "truth/cytology.csv"


def restain_cohort(source: str | Path, out: str | Path, centres: Sequence[str] = ("A",), stain: str = "Pap", *,
                   overwrite: bool = False) -> Path:
    """Write to `out` a copy of the synthetic cohort `source` whose cytology at `centres` is in `stain`.

    Everything but the re-rendered patients' images, their cytology.csv and truth/cytology_cells.csv rows and
    the centres' stain in cohort.yaml is the source's own file. Returns `out`."""
    source, out = Path(source), Path(out)
    if stain not in STAINS:
        raise LymphCastError(f"unknown stain '{stain}' for the stain swap; known: {', '.join(STAINS)}")
    cohort = read_cohort(source)
    settings = _settings(cohort.meta, source)
    ids = [c.id for c in cohort.meta.centres]
    unknown = [c for c in centres if c not in ids]
    if unknown or not centres:
        raise LymphCastError(f"{source / 'cohort.yaml'}: no centre {', '.join(unknown) or '(none given)'} to "
                             f"restain; centres: {', '.join(ids)}")
    restain = {ids.index(c): stain for c in centres}
    with atomic_dir(out, overwrite=overwrite) as folder:
        rendered = _render(settings, cohort, restain, folder)
        redrawn = set(rendered["cytology"]["patient_id"])
        _link_tree(source, folder, skip={CYTOLOGY_CSV, TRUTH_CELLS, "cohort.yaml"},
                   skip_dirs={Path("media", "cytology", p) for p in redrawn})
        _restain_rows(source, folder, CYTOLOGY_CSV, "image_id", rendered["cytology"])
        _restain_rows(source, folder, TRUTH_CELLS, "patient_id", rendered["truth"])
        write_meta(_restained_meta(cohort.meta, centres, stain, source), folder)
    return out


def _settings(meta, source: Path) -> dict:
    """The generation settings in cohort.yaml's provenance, checked to be ones this generator can redraw."""
    where = source / "cohort.yaml"
    prov = meta.provenance or {}
    if not meta.synthetic or prov.get("generator") != f"lymphcast.synth {GENERATOR_VERSION}":
        raise LymphCastError(f"{where}: provenance.generator is {prov.get('generator')!r}; only a cohort from "
                             f"lymphcast.synth {GENERATOR_VERSION} can be restained (its seed redraws the patients)")
    if "cytology" not in prov.get("modalities", []):
        raise LymphCastError(f"{where}: provenance.modalities has no cytology; there is nothing to restain")
    if prov.get("chunk_size") != CHUNK_SIZE:
        raise LymphCastError(f"{where}: provenance.chunk_size is {prov.get('chunk_size')!r}, this generator draws "
                             f"chunks of {CHUNK_SIZE}: the patients cannot be redrawn")
    for key in ("seed", "patients", "centres"):
        if not isinstance(prov.get(key), int):
            raise LymphCastError(f"{where}: provenance.{key} is missing or not a whole number")
    return {"seed": prov["seed"], "patients": prov["patients"], "centres": prov["centres"],
            "share": float((prov.get("coverage") or {}).get("cytology", 1.0))}


def _render(settings: dict, cohort, restain: dict[int, str], folder: Path) -> dict[str, pd.DataFrame]:
    """Simulate every chunk again (generate.chunk_plan: the generator's own seed tree) and render the restained
    centres' patients into `folder`; the coverage draw follows coverage.render_covered."""
    profiles, prior_ss, chunks = chunk_plan(settings["seed"], settings["patients"], settings["centres"])
    _check_profiles(profiles, cohort.meta, cohort.root)
    priors = centre_log_priors(profiles, np.random.default_rng(prior_ss))
    latent = pd.read_csv(cohort.root / TRUTH_LATENT, dtype={"patient_id": str}).set_index("patient_id")
    recorded = cohort.patients.set_index("patient_id")["centre"]
    rows, truth = [], []
    for ids, latent_ss, streams in chunks:
        chunk = simulate_chunk(ids, profiles, priors, np.random.default_rng(latent_ss))
        _check_chunk(chunk, profiles, recorded, latent, cohort.root)
        rng = np.random.default_rng(streams[KNOWN.index("cytology")])
        if settings["share"] < 1:
            chunk = subset_chunk(chunk, rng.random(len(ids)) < settings["share"])[0]
        out = render_cytology(chunk, folder, profiles, rng, restain=restain)
        rows.append(out.cytology)
        truth.append(out.truth[TRUTH_FILE])
    return {"cytology": pd.concat(rows, ignore_index=True), "truth": pd.concat(truth, ignore_index=True)}


def _check_profiles(profiles, meta, root: Path) -> None:
    for profile, centre in zip(profiles, meta.centres):
        drawn = {k: v for k, v in profile.acquisition["cytology"].items() if k != "stain"}
        recorded = {k: v for k, v in (centre.acquisition or {}).get("cytology", {}).items() if k != "stain"}
        if profile.id != centre.id or drawn != recorded:
            raise LymphCastError(f"{root / 'cohort.yaml'}: centre {centre.id}'s cytology acquisition {recorded} is "
                                 f"not what its seed draws ({drawn}); was the file edited?")


def _check_chunk(chunk, profiles, recorded: pd.Series, latent: pd.DataFrame, root: Path) -> None:
    """The redrawn patients are the folder's: same ids at the same centres, same latent cytology features."""
    ids = pd.Index(chunk.patient_ids.astype(str))
    centres = np.array([p.id for p in profiles])[chunk.centre_idx]
    if not ids.isin(recorded.index).all() or (recorded.reindex(ids).to_numpy() != centres).any():
        raise LymphCastError(f"{root / 'patients.csv'}: patient ids or centres are not what the seed in "
                             f"cohort.yaml draws; the cohort cannot be restained")
    for name in FEATURES:
        if name not in latent.columns or not np.allclose(latent[name].reindex(ids).to_numpy(float),
                                                        chunk.cytology[name], rtol=1e-5, atol=1e-9):
            raise LymphCastError(f"{root / TRUTH_LATENT}: column {name} is not what the seed in cohort.yaml draws")


def _link_tree(source: Path, target: Path, skip: set[str], skip_dirs: set[Path]) -> None:
    """Hard-link (or copy, across file systems) every file of `source` into `target` but the skipped ones.
    Links are safe: the generator and this module replace files, never write into one in place."""
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or rel.as_posix() in skip or rel.parent in skip_dirs:
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)


def _restain_rows(source: Path, target: Path, name: str, key: str, new: pd.DataFrame) -> None:
    """Copy table `name` with the stain of the re-rendered rows replaced, every other cell as the source's text.
    The re-rendered rows must otherwise match the source's: same images, same cell counts in every scene."""
    table = pd.read_csv(source / name, dtype=str, keep_default_na=False)
    new = new.astype(str).set_index(key)
    at = table[key].isin(new.index)
    old = table.loc[at].set_index(key)
    same = old.drop(columns="stain").eq(new.drop(columns="stain").reindex(old.index)).all(axis=None)
    if at.sum() != len(new) or not same:
        raise LymphCastError(f"{source / name}: the re-rendered rows differ from the source's beyond the stain "
                             f"(was the cohort made with another slide size or generator version?)")
    table.loc[at, "stain"] = new.loc[table.loc[at, key], "stain"].to_numpy()
    table.to_csv(target / name, index=False)


def _restained_meta(meta, centres: Sequence[str], stain: str, source: Path):
    def restained(c):
        acquisition = dict(c.acquisition or {})
        acquisition["cytology"] = {**acquisition.get("cytology", {}), "stain": stain}
        return c.model_copy(update={"acquisition": acquisition})

    note = {"source": source.name, "centres": list(centres), "stain": stain}
    return meta.model_copy(update={"centres": tuple(restained(c) if c.id in centres else c for c in meta.centres),
                                   "provenance": {**meta.provenance, "restained": note}})

"""generate_cohort: write a synthetic multi-centre cohort folder, chunk by chunk, with its exact risks.

Randomness: SeedSequence(seed) spawns one stream for the centres, one for the centres' marginal priors and
one per chunk of CHUNK_SIZE patients; a chunk's stream spawns the latent model's generator and one generator
per known modality. The output therefore depends only on the seed and the arguments, and choosing fewer
modalities never changes the patients.
"""

from __future__ import annotations

import math
import os
import pickle
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .. import __version__
from ..cohort import Centre, CohortMeta, LymphCastError, atomic_dir
from ..cohort.io import write_meta
from ..modalities.registry import KNOWN
from .centres import CentreProfile, draw_centres, profile_row
from .chunk import simulate_chunk
from .labels import RANDOM_FLIP
from .params import OCCULT_PROB
from .render_base import Renderer
from .coverage import check_coverage, render_covered
from .renderers import resolve_modalities
from .risk_model import PRIOR_DRAWS, QUADRATURE_POINTS, centre_log_priors
from .states import STATE_N1B
from .tables import nodes_frame, patients_frame, truth_cytology, truth_nodes, truth_patients, truth_sides
from .truth_readme import truth_readme
from .writer import TableWriter

GENERATOR_VERSION = "1"
MAX_WORKERS = 8
CHUNK_SIZE = 256
MAX_CENTRES = 26  # centres are named A-Z


def _check(patients, centres, seed) -> None:
    def whole(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    if not whole(patients) or patients < 1:
        raise LymphCastError(f"the number of patients must be a whole number of at least 1, not {patients!r}")
    if not whole(centres) or not 1 <= centres <= MAX_CENTRES:
        raise LymphCastError(f"the number of centres must be between 1 and {MAX_CENTRES} (named A-Z), "
                             f"not {centres!r}")
    if not whole(seed) or seed < 0:
        raise LymphCastError(f"the seed must be a whole number of at least 0, not {seed!r}")


def _meta(name: str, profiles, renderers: list[Renderer], provenance: dict) -> CohortMeta:
    fields = {f: None for r in renderers for f in r.clinical_fields}
    node_fields = {k: v for r in renderers for k, v in r.node_fields.items()}
    centres = [Centre(id=c.id, name=f"Synthetic centre {c.id}", acquisition=c.acquisition) for c in profiles]
    return CohortMeta(name=name, synthetic=True, centres=tuple(centres), clinical_fields=fields,
                      node_fields=node_fields, provenance=provenance,
                      description="Synthetic papillary thyroid carcinoma cohort from lymphcast.synth; "
                                  "exact risks in truth/.")


def _render_part(ids: np.ndarray, profiles, priors, renderer, latent_ss, stream, folder: Path, share: float):
    """One modality of one chunk: writes its media under `folder` and returns what the renderer made. Runs in a
    worker process when parts are rendered side by side (a chunk's modalities too: each has its own stream, and
    the chunk's latent model is drawn again from its own, so any split gives the same output)."""
    chunk = simulate_chunk(ids, profiles, priors, np.random.default_rng(latent_ss))
    rng = np.random.default_rng(stream)
    return (renderer.render(chunk, folder, profiles, rng) if share >= 1
            else render_covered(renderer, chunk, folder, profiles, rng, share))


def _render_job(args):
    return _render_part(*args)


def _chunk_tables(ids: np.ndarray, profiles, priors, latent_ss, parts) -> list[tuple[str, pd.DataFrame]]:
    """One chunk's table rows as (file, frame) pairs in the order they are appended, from its rendered parts (in
    renderer order)."""
    chunk = simulate_chunk(ids, profiles, priors, np.random.default_rng(latent_ss))
    patients, nodes, cytology, truth = patients_frame(chunk, profiles), nodes_frame(chunk), [], {}
    for out in parts:
        patients = patients.assign(**dict(out.patients))
        nodes = nodes.assign(**dict(out.nodes))
        if out.cytology is not None:
            cytology.append(out.cytology)
        truth.update(out.truth)
    tables = [("patients.csv", patients), ("nodes.csv", nodes)]
    if cytology:
        tables.append(("cytology.csv", pd.concat(cytology, ignore_index=True)))
    tables += [("truth/patients.csv", truth_patients(chunk, profiles)), ("truth/sides.csv", truth_sides(chunk)),
               ("truth/nodes.csv", truth_nodes(chunk)), ("truth/cytology.csv", truth_cytology(chunk))]
    # a renderer's own truth (e.g. what each video frame shows)
    return tables + [(f"truth/{name}", frame) for name, frame in truth.items()]


def _workers(requested: int | None, renderers, n_chunks: int) -> int:
    """Processes to render with: one for tables alone (a pool costs more than it saves), else up to the cores."""
    if all(r.name == "clinical" for r in renderers) or n_chunks < 2:
        return 1
    try:
        pickle.dumps(renderers)
    except (pickle.PicklingError, AttributeError, TypeError):  # e.g. a renderer registered as a local function
        return 1
    wanted = requested if requested is not None else (os.cpu_count() or 1)
    return max(1, min(wanted, n_chunks, MAX_WORKERS))


def _write_truth_extras(folder: Path, profiles: list[CentreProfile], priors: np.ndarray, seed: int) -> None:
    rows = [{**profile_row(c), "prior_n1b": float(np.exp(p) @ STATE_N1B)} for c, p in zip(profiles, priors)]
    pd.DataFrame(rows).to_csv(folder / "truth" / "centres.csv", index=False, float_format="%.6g")
    (folder / "truth" / "README.md").write_text(
        truth_readme(version=GENERATOR_VERSION, seed=seed, occult=OCCULT_PROB, quad=QUADRATURE_POINTS,
                     draws=PRIOR_DRAWS, flip=RANDOM_FLIP), encoding="utf-8")


@contextmanager
def _pool(n: int):
    """A process pool of n workers (None for n = 1). Spawned, not forked: a parent that already runs torch's
    thread pools must not be copied mid-flight."""
    if n <= 1:
        with nullcontext():
            yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def chunk_plan(seed: int, patients: int, centres: int):
    """The seed tree a cohort of (seed, patients, centres) is drawn from: the centre profiles, the stream of the
    centres' priors and, per chunk of CHUNK_SIZE patients, its ids, latent-model stream and one stream per
    modality (stain_swap redraws a cohort's patients through the same plan)."""
    centre_ss, prior_ss, chunks_ss = np.random.SeedSequence(seed).spawn(3)
    profiles = draw_centres(centres, np.random.default_rng(centre_ss))
    width = max(6, len(str(patients)))
    chunks = []
    for i, chunk_ss in enumerate(chunks_ss.spawn(math.ceil(patients / CHUNK_SIZE))):
        latent_ss, *streams = chunk_ss.spawn(1 + len(KNOWN))
        start, stop = i * CHUNK_SIZE, min((i + 1) * CHUNK_SIZE, patients)
        chunks.append((np.array([f"P{k:0{width}d}" for k in range(start + 1, stop + 1)]), latent_ss, streams))
    return profiles, prior_ss, chunks


def generate_cohort(out: Path, *, patients: int, centres: int = 4, seed: int = 0,
                    modalities: Sequence[str] | None = None, progress: bool = True, overwrite: bool = False,
                    coverage: dict[str, float] | None = None, workers: int | None = None) -> Path:
    """Write a synthetic cohort of `patients` patients from `centres` centres to the folder `out`.

    `modalities`: names to render (None: every modality with a renderer except the slow ones in
    renderers.ON_REQUEST). `coverage`: {modality: share of patients that have it} for modalities only some
    patients have (default: everyone has every modality rendered; see coverage.py). `workers`: processes that
    render the modalities of chunks of CHUNK_SIZE patients side by side (default: one per core; the output is
    the same for any number). The folder appears only when generation succeeds; it passes
    `lymphcast.cohort.read_cohort`. Returns `out`.
    """
    _check(patients, centres, seed)
    renderers = resolve_modalities(modalities)
    coverage = check_coverage(coverage, [r.name for r in renderers])
    out = Path(out)
    profiles, prior_ss, chunks = chunk_plan(seed, patients, centres)
    n_chunks = len(chunks)
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with atomic_dir(out, overwrite=overwrite) as folder, Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("centre priors", total=patients)
        priors = centre_log_priors(profiles, np.random.default_rng(prior_ss))
        bar.update(task, description="patients")
        writer = TableWriter(folder)
        # one job per chunk and modality, so the slow modalities of one chunk can render side by side too
        jobs = [(ids, profiles, priors, r, latent_ss, streams[KNOWN.index(r.name)], folder, coverage.get(r.name, 1.0))
                for ids, latent_ss, streams in chunks for r in renderers]
        n_workers = _workers(workers, renderers, n_chunks)
        with _pool(n_workers) as pool:
            done = iter(pool.map(_render_job, jobs) if pool else map(_render_job, jobs))
            for ids, latent_ss, _ in chunks:
                parts = [next(done) for _ in renderers]
                for name, frame in _chunk_tables(ids, profiles, priors, latent_ss, parts):
                    writer.append(name, frame)  # appended in chunk order, whichever worker finished first
                bar.advance(task, len(ids))
        _write_truth_extras(folder, profiles, priors, seed)
        provenance = {"generator": f"lymphcast.synth {GENERATOR_VERSION}", "lymphcast_version": __version__,
                      "seed": int(seed), "patients": int(patients), "centres": int(centres),
                      "modalities": [r.name for r in renderers], "chunk_size": CHUNK_SIZE,
                      **({"coverage": coverage} if coverage else {})}
        write_meta(_meta(f"synthetic-seed{seed}", profiles, renderers, provenance), folder)
    return out

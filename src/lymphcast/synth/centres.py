"""Centre profiles: each hospital's case mix, its baseline risk offset, its labelling habits and its scanners.

Everything is drawn once from the seed, before any patient, so a centre looks the same whatever the cohort
size. Ranges follow /work/shared/CLINICAL_FACTS.md and the generator brief; acquisition settings are read by
the image renderers (vendor, gain, slice thickness, stain...), never by the latent model.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass

import numpy as np

US_VENDORS = ("Aurelia", "Boreal", "Cygnus", "Dorado", "Eridan")  # fictional: only the differences matter
CT_KERNELS = ("soft", "standard", "sharp")


@dataclass(frozen=True)
class CaseMix:
    """Distributions of the clinical features at one centre (probabilities unless a unit is named)."""

    age_mean: float            # years; sd 13
    male: float                # CLINICAL_FACTS: women dominate PTC series
    size_median_mm: float      # log-normal tumour size, sd 0.6 on the log scale
    multifocal: float
    bilateral_if_multifocal: float
    ete: float                 # at the median size; rises with size
    capsular_contact: float    # at the median size; rises with size
    upper_pole: float
    microcalcification: float
    braf: float                # BRAF V600E in PTC ~60-80%
    braf_tested: float         # share of patients tested; the rest are blank
    hashimoto: float           # 20-35%
    tsh_median: float          # mIU/L, log-normal sd 0.5; Hashimoto raises it
    side_left: float
    side_isthmus: float


@dataclass(frozen=True)
class CentreProfile:
    id: str
    weight: float              # share of the cohort's patients
    offset: float              # centre effect on logit P(CLNM)
    not_dissected: float       # P(an occult N1b in a clinically node-negative neck is recorded as 0)
    mix: CaseMix
    acquisition: dict


def _case_mix(rng: np.random.Generator) -> CaseMix:
    u = rng.uniform
    left = u(0.40, 0.48)
    return CaseMix(age_mean=u(40, 52), male=u(0.18, 0.32), size_median_mm=u(8, 14), multifocal=u(0.25, 0.40),
                   bilateral_if_multifocal=u(0.45, 0.65), ete=u(0.12, 0.25), capsular_contact=u(0.25, 0.40),
                   upper_pole=u(0.20, 0.32), microcalcification=u(0.40, 0.60), braf=u(0.60, 0.80),
                   braf_tested=float(rng.choice([1.0, 0.8, 0.5])), hashimoto=u(0.20, 0.35),
                   tsh_median=u(1.5, 2.5), side_left=left, side_isthmus=u(0.05, 0.10))


def _acquisition(rng: np.random.Generator, index: int, extra: np.random.Generator) -> dict:
    """Scanner settings of centre number `index`. Keys added later are drawn from `extra`, so the draws of the
    older keys, and every cohort made before them, stay the same."""
    u = lambda lo, hi, nd=2: round(float(rng.uniform(lo, hi)), nd)  # noqa: E731
    us = {"vendor": str(rng.choice(US_VENDORS)), "frequency_mhz": float(rng.choice([10, 12, 14, 15, 18])),
          "gain_db": u(40, 60, 1), "dynamic_range_db": u(50, 70, 1), "speckle_size": u(0.8, 1.6),
          "resolution_mm": u(0.15, 0.35), "depth_cm": u(3, 5, 1)}
    # CLINICAL_FACTS: slice thickness 1.25 vs 5 mm changes radiomics; contrast timing shifts HU by +-10-20.
    ct = {"slice_thickness_mm": float(rng.choice([1.25, 2.5, 5.0])), "kernel": str(rng.choice(CT_KERNELS)),
          "noise_hu": u(6, 16, 1), "contrast_delay_s": u(25, 40, 1), "hu_offset": u(-20, 20, 1),
          # dual-energy scanners at centres B, C, D only, so an external centre (A or E+) lacks iodine maps
          "dual_energy": index in (1, 2, 3), "pixel_spacing_mm": round(float(extra.uniform(0.7, 0.9)), 3)}
    rng.choice(2), rng.choice(2)  # stain and preparation used to be drawn here: kept, so later draws stay the same
    # Centre A's lab air-dries conventional smears and stains Diff-Quik, the others fix liquid-based preparations
    # in alcohol for Papanicolaou (CLINICAL_FACTS: staining differs between labs), so one centre tests stain transfer.
    cytology = {"stain": "Diff-Quik" if index == 0 else "Pap",
                "preparation": "conventional smear" if index == 0 else ("ThinPrep", "SurePath")[index % 2],
                "hue_shift": u(-0.08, 0.08, 3), "intensity": u(0.8, 1.2, 3)}
    return {"us": us, "ct": ct, "cytology": cytology}


def draw_centres(count: int, rng: np.random.Generator) -> list[CentreProfile]:
    """`count` centres named A, B, C...; their weights sum to one."""
    weights = rng.uniform(0.6, 1.4, count)
    weights /= weights.sum()
    centres = []
    extra = rng.spawn(1)[0]  # spawning leaves rng's own stream untouched
    for i in range(count):
        centres.append(CentreProfile(id=string.ascii_uppercase[i], weight=float(weights[i]),
                                     offset=float(rng.uniform(-0.2, 0.2)),
                                     not_dissected=float(rng.uniform(0.40, 0.60)),
                                     mix=_case_mix(rng), acquisition=_acquisition(rng, i, extra)))
    return centres


def mix_table(centres: list[CentreProfile], name: str) -> np.ndarray:
    """One case-mix parameter for every centre, as an array indexed by centre number."""
    return np.array([getattr(c.mix, name) for c in centres])


def profile_row(centre: CentreProfile) -> dict:
    """Flat record of a centre's latent parameters for truth/centres.csv."""
    return {"centre": centre.id, "weight": centre.weight, "offset": centre.offset,
            "not_dissected": centre.not_dissected, **asdict(centre.mix)}

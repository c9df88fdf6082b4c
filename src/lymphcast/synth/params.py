"""Fixed parameters of the latent patient model: clinical effects, the lateral-neck path and node counts.

Effects are log-odds. Each clinical factor acts twice: on central metastasis (CLNM, the main hidden mediator)
and, with a smaller share, directly on each lateral side, so the total odds ratio of a factor for N1b lands
near the pooled ORs in /work/shared/CLINICAL_FACTS.md ("Clinical risk factors"). Intercepts and node
parameters were tuned by simulation (seeds 0-9, 5,000 patients) to: recorded N1b 12-21% per centre
(CLINICAL_FACTS: 10-14%, referral series up to ~25%), skip metastases ~13% of N1b (12-15%), CLNM in ~87% of
N1b, and the level frequencies cited below.
"""

from __future__ import annotations

import numpy as np

# Columns of the clinical design matrix, in the order of the effect vectors.
DESIGN = ("young", "male", "size_gt_10", "multifocal", "bilateral", "extrathyroidal_extension", "upper_pole",
          "microcalcification", "capsular_contact", "braf_v600e", "hashimoto", "tsh")
YOUNG_AGE = 45.0       # CLINICAL_FACTS: age < 45 y, OR 1.5-1.65
BIG_TUMOUR_MM = 10.0   # CLINICAL_FACTS: tumour > 10 mm, OR ~3.2
TSH_CENTRE = 2.0       # mIU/L; the TSH effect is per mIU/L around a typical value

# logit P(CLNM | X) = CLNM_INTERCEPT + centre offset + CLNM_EFFECTS . x
CLNM_INTERCEPT = -3.25
CLNM_EFFECTS = np.array([
    0.55,   # age < 45        (OR 1.5-1.65)
    0.50,   # male            (OR 1.5-1.9)
    0.95,   # size > 10 mm    (OR ~3.2)
    0.55,   # multifocal      (OR ~2.2)
    0.25,   # bilateral       (OR ~1.7, on top of multifocal)
    0.85,   # ETE             (OR 2.5-3.6)
    0.10,   # upper pole: acts mainly on the lateral side directly (skip metastasis path)
    0.90,   # microcalcification (OR ~2.9)
    1.25,   # capsular contact > 25% (OR ~6.7, wide CI)
    0.35,   # BRAF V600E      (OR 1.3-1.6, weak)
    -0.30,  # Hashimoto       (OR ~0.8, protective)
    0.10,   # TSH per mIU/L   (OR 1.1-1.3, weak)
])

# logit P(L_s | C, X) = LATERAL_INTERCEPT + LATERAL_CLNM*C + LATERAL_IPSI*ipsi_s
#                       + LATERAL_UPPER_IPSI*upper_pole*ipsi_s + LATERAL_EFFECTS . x
LATERAL_INTERCEPT = -6.2
LATERAL_CLNM = 2.8          # CLINICAL_FACTS: CLNM present, OR ~5.6 (here conditional on X and side)
LATERAL_IPSI = 1.7          # the lateral neck on the tumour's side drains first
LATERAL_UPPER_IPSI = 0.9    # upper pole drains straight to levels II-III: the skip-metastasis path
LATERAL_EFFECTS = 0.4 * CLNM_EFFECTS * np.array([1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1])

# Palpable adenopathy is a child of the lateral status: P(adenopathy | N1b = 0 / 1).
ADENOPATHY_PROB = (0.03, 0.30)

# Node counts per side and level II, III, IV, V: Poisson means without / with lateral involvement.
LEVEL_NAMES = ("II", "III", "IV", "V")
NODE_MEAN = np.array([
    [1.10, 0.60, 0.50, 0.35],   # L_s = 0: benign reactive nodes, most in level II
    [1.00, 1.50, 1.70, 0.50],   # L_s = 1: more visible nodes on an involved side
])
# P(node metastatic | L_s = 1, level); CLINICAL_FACTS levels in N1b: IV ~75%, III ~69%, II ~57%, V ~21-30%.
MET_PROB = np.array([0.75, 0.72, 0.75, 0.55])
OCCULT_PROB = 0.35  # share of metastatic nodes with micrometastasis only: they image like benign nodes (but for iodine)

"""The text of truth/README.md: how the exact risks were computed, for whoever evaluates against them."""

from __future__ import annotations

TEMPLATE = """\
# truth/ — the generator's hidden states and exact risks

Written by `lymphcast.synth` (generator {version}, seed {seed}). Models must never read this folder;
evaluation uses it to report the best AUC any model could reach ("oracle").

## Files
- `patients.csv`: true N1b (`n1b_true`), central metastasis (`clnm`), true side status, the recorded label,
  whether the patient was clinically node-negative, and the exact risks `risk_*`.
- `sides.csv`: the same per neck side: P(lateral involvement of that side | evidence).
- `nodes.csv`: every lateral node with its true status, whether it is occult (micrometastasis that images like a
  benign node), and its latent imaging features (what image renderers draw from).
- `cytology.csv`: latent cytology features of the primary tumour.
- `us_video_frames.csv` (only when cine clips are rendered): per node and frame, the scan plane's position, the
  node's cross-section, and whether the hilum, echogenic foci or cystic areas are cut by that frame.
- `centres.csv`: each centre's case mix, risk offset, non-dissection probability and marginal P(N1b).

## Model
Hidden state per patient: (C, L_left, L_right), C = central metastasis, L_s = lateral involvement of side s;
N1b = L_left or L_right. P(C | X) and P(L_s | C, X) are logistic in the clinical features X; the sides are
independent given (C, X). Palpable adenopathy depends on N1b only. Per side and level (II-V) node counts are
Poisson (mean by lateral status; an involved side has >= 1 node); on an involved side each node is metastatic
with its level's probability, conditioned on at least one metastatic node; on an uninvolved side all nodes are
benign. A metastatic node is occult with probability {occult}. Imaging features are independent given the node's
state (benign, overt, occult), so densities are products; occult nodes follow the benign law of their level.
Cytology features depend on C and N1b only.

## Risks
Each risk is P(true N1b | the evidence a modality shows), summed exactly over the 8 hidden states in log space:
- `risk_clinical`: P(state | recorded clinical features) x P(adenopathy | state). Blank BRAF is integrated out
  with the centre's BRAF rate, blank TSH by {quad}-point Gauss-Hermite quadrature. Node counts are not used.
- `risk_us`, `risk_ct`, `risk_cytology`: the centre's marginal prior over the 8 states x that modality's
  likelihood only. The marginal prior is a Monte-Carlo average of P(state | X) over {draws:,} draws of X from
  the centre's case mix. US sees node counts plus the shared (short axis, long/short ratio, cystic change,
  calcification) and US-only features (hilum, hyperechoic, heterogeneous, vascularity); CT sees node counts plus
  the shared and CT-only features (arterial attenuation, iodine concentration). The risks use the latent
  features themselves; a centre's acquisition settings (gain, HU offset, noise, stain) act only in the image
  renderers, so images carry at most this information and these risks bound what an image model can reach.
- `risk_all`: P(state | recorded clinical features) x adenopathy x node counts and all node features of both
  sides x cytology.
- `risk_us_sweep`: as `risk_us` without vascularity (what a B-mode cine sweep shows, no Doppler);
  `risk_us_key`: also without the long/short ratio (what one transverse still at the node's largest section
  shows). Their difference bounds what reading a whole sweep can add over its key frame.
Side risks marginalise the same posterior to L_s.

For an involved side with nodes x_1..x_n (metastatic probability q_i, densities f0 benign and
f1 = (1-w) f1_overt + w f0 with w = {occult}):
    P(x | L=1) = P(n | L=1) [prod_i (q_i f1(x_i) + (1-q_i) f0(x_i)) - prod_i (1-q_i) f0(x_i)] / (1 - prod_i (1-q_i)),
where P(n | L=1) is the Poisson probability of the counts truncated to a total of at least one node.

## Recorded labels
A patient is clinically node-negative without palpable adenopathy and without a suspicious node (two of: short
axis >= 10 mm, cystic change, calcification). A truly N1b, clinically node-negative patient is recorded N0 with
the centre's non-dissection probability; then {flip:.1%} of labels flip at random. The risks target the TRUE
label (`n1b_true`); against the recorded label they are attenuated by this noise.
"""


def truth_readme(*, version: str, seed: int, occult: float, quad: int, draws: int, flip: float) -> str:
    return TEMPLATE.format(version=version, seed=seed, occult=occult, quad=quad, draws=draws, flip=flip)

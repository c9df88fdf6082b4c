"""The ultrasound-image model: P(metastatic) per lymph node from its B-mode (and Doppler) views, rolled up to
each neck side and to the patient.

fit: node regions (us_regions) of the labelled patients → a patient-level split into training and validation
(stratified by N1b; a node never sits on both sides) → NodeNet trained from scratch (nets.training: class
weights, ultrasound-aware augmentation, early stopping on validation loss, optional checkpoint/resume) →
Platt recalibration of the node logits on the validation nodes (the class weights bias them) → the roll-up
(noisy-OR, max or learned) chosen by its log loss on the validation patients and fitted there.
The validation patients' patient-level probabilities (cross-fitted for the learned roll-up) are kept in
`validation_proba_`: the pipeline sets its thresholds on them instead of refitting the network k times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ..cohort import Cohort, LymphCastError
from ..cohort.schema import SIDES
from .base import probability_series
from .node_model import NodeNetworkModel, load_weights
from .node_training import check_rollup_setting, choose_rollup, node_split
from .rollup import side_features
from .us_regions import VIEWS, Regions, image_nodes, node_regions

DOPPLER_DROPOUT = 0.2  # share of training nodes shown without their Doppler images


class UsImageModel(NodeNetworkModel):
    """Node-level ultrasound image model.

    size/margin: region side in pixels and the context margin around the node box (fraction of its size);
    epochs/batch_size/lr/patience: training; val_fraction: share of patients held out for early stopping,
    calibration and the roll-up; rollup: "auto" (best measured) or one of noisy_or, max, learned;
    channels: encoder widths; weights: optional local file of NodeNet weights to start from (nothing is ever
    downloaded); checkpoint: optional file to checkpoint every epoch and resume from; detector: "auto" (train
    the full-field node detector when the cohort has frames with node boxes) or "off"; detector_epochs: its
    training epochs; detector_options: other NodeDetector settings (e.g. size, channels); backbone: "residual"
    (NodeNet's own small encoder) or "densenet121" (MONAI's, the benchmark's reference); flip_tta: average
    each node's logit with that of its left-right mirror image at prediction.
    """

    name = "us_image"
    media_nodes = staticmethod(image_nodes)

    def __init__(self, *, seed: int = 0, size: int = 64, margin: float = 0.25, epochs: int = 30,
                 batch_size: int = 64, lr: float = 2e-3, patience: int = 10, val_fraction: float = 0.25,
                 rollup: str = "auto", channels: tuple = (16, 32, 48, 64), weights: str | None = None,
                 checkpoint: str | None = None, detector: str = "auto", detector_epochs: int = 20,
                 detector_options: dict | None = None, backbone: str = "residual", flip_tta: bool = False,
                 progress: bool = True):
        self.seed = seed
        self.size = size
        self.margin = margin
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.rollup = rollup
        self.channels = channels
        self.weights = weights
        self.checkpoint = checkpoint
        self.detector = detector
        self.detector_epochs = detector_epochs
        self.detector_options = detector_options
        self.backbone = backbone
        self.flip_tta = flip_tta
        self.progress = progress

    # --- training -------------------------------------------------------------------------------
    def fit(self, cohort: Cohort) -> "UsImageModel":
        from ..nets.training import TrainSettings, fit_binary

        check_rollup_setting(self.rollup)
        data = cohort.labelled()
        regions = self._regions(data)
        nodes = image_nodes(data).set_index("node_id").loc[regions.node_ids]
        y, train_idx, val_idx, train_p, val_p = node_split(data, nodes, model=self.name, media="ultrasound images",
                                                            val_fraction=self.val_fraction, seed=self.seed)
        net = self._new_net()
        settings = TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                 patience=self.patience, seed=self.seed)
        result = fit_binary(net, _forward(regions), y, train_idx, val_idx, settings,
                            checkpoint=Path(self.checkpoint) if self.checkpoint else None,
                            config=self._config(data), progress=self.progress, describe="training the node CNN")
        self.state_dict_ = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self._net = net
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        raw = self._logits(regions)
        self.calibration_ = LogisticRegression(C=1e4, max_iter=1000).fit(raw[val_idx, None], y[val_idx])
        self._choose_rollup(data.subset(val_p), regions, raw)
        self._fit_detector(data.subset(train_p), data.subset(val_p))
        self.training_summary_ = {"patients_train": len(train_p), "patients_validation": len(val_p),
                                  "nodes_train": len(train_idx), "nodes_validation": len(val_idx),
                                  "node_events_train": int(y[train_idx].sum()), "best_epoch": result.best_epoch,
                                  "epochs_run": result.epochs_run, "resumed_from": result.resumed_from}
        return self

    def _config(self, data: Cohort) -> dict:
        return {"model": self.get_params(), "patients": sorted(map(str, data.patients["patient_id"]))}

    def _choose_rollup(self, val: Cohort, regions: Regions, raw: np.ndarray) -> None:
        sides = self.side_table(val, pd.Series(self._calibrated(raw), index=regions.node_ids))
        self.rollup_scores_, self.rollup_, self.rollup_model_, self.validation_proba_ = choose_rollup(
            val, sides, self.rollup, self.seed)

    def _fit_detector(self, train: Cohort, val: Cohort) -> None:
        """The detector learns from the training patients' frames; the frame roll-up (detected nodes have no
        level, and a detector misses some) is chosen and fitted on the validation patients' frames."""
        if self.detector not in ("auto", "off"):
            raise LymphCastError(f"detector must be auto or off, not {self.detector!r}")
        if self.detector == "off" or not _has_boxed_frames(train) or not _has_boxed_frames(val):
            return
        from .us_detect import NodeDetector

        settings = {"seed": self.seed, "epochs": self.detector_epochs, "progress": self.progress,
                    **(self.detector_options or {})}
        self.detector_ = NodeDetector(**settings).fit(train)
        frames = self.predict_frames(val)
        sides = side_features(frames.assign(level=np.nan, p=frames["probability"]), val.patients["patient_id"])
        self.frame_rollup_scores_, _, self.frame_rollup_, _ = choose_rollup(val, sides, "auto", self.seed)

    def predict_frames(self, cohort: Cohort) -> pd.DataFrame:
        """Every node the detector finds in the cohort's full-field frames, with its box, detection score and
        metastasis probability (node_id `<patient>-<side>-F<k>`)."""
        from .us_frame_nodes import frame_regions

        self.check_fitted()
        if getattr(self, "detector_", None) is None:
            raise LymphCastError("this us_image model has no node detector (its training cohort had no "
                                 "full-field frames with node boxes), so it cannot score frames without boxes")
        found = self.detector_.detect_frames(cohort)
        regions = frame_regions(cohort, found, size=self.size, margin=self.margin)
        return found.assign(node_id=regions.node_ids, probability=self._calibrated(self._logits(regions)))

    # --- prediction -----------------------------------------------------------------------------
    def _new_net(self):
        import torch

        from ..nets.node_cnn import NodeNet

        torch.manual_seed(self.seed)
        net = NodeNet(channels=tuple(self.channels), backbone=self.backbone)
        if self.weights:
            load_weights(net, self.weights, f"NodeNet weights for channels {tuple(self.channels)}")
        return net

    def _regions(self, cohort: Cohort) -> Regions:
        if cohort.root is None:
            raise LymphCastError("the us_image model reads images, so the cohort must come from a folder")
        return node_regions(cohort, size=self.size, margin=self.margin, progress=self.progress)

    def _logits(self, regions: Regions) -> np.ndarray:
        import torch

        from ..nets.node_cnn import prepare

        net = self.network()
        out = []
        with torch.no_grad():
            for start in range(0, len(regions), 512):
                sl = slice(start, start + 512)
                x, e = prepare(torch.from_numpy(regions.pixels[sl])), torch.from_numpy(regions.extra[sl])
                m = torch.from_numpy(regions.present[sl])
                logit = net(x, e, m)
                if self.flip_tta:  # the mirrored view is as valid a view (left-right only): average both
                    logit = (logit + net(x.flip(-1), e, m)) / 2
                out.append(logit.numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def predict_nodes(self, cohort: Cohort) -> pd.Series:
        self.check_fitted()
        regions = self._regions(cohort)
        p = self._calibrated(self._logits(regions))
        return pd.Series(p, index=regions.node_ids, name="probability", dtype="float64")

    def _side_and_patient(self, cohort: Cohort, nodes: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
        """P(side positive) and P(N1b) for every patient of `cohort`: from the node images; a side with a
        full-field frame but no node image through the detector and the frame roll-up."""
        sides = self.side_table(cohort, nodes)
        p_side, p_patient = self.rollup_model_.sides(sides), self.rollup_model_.patients(sides)
        from .us_frame_nodes import frame_only_sides

        framed = frame_only_sides(cohort)
        if len(framed) and getattr(self, "detector_", None) is not None:
            ids = framed.get_level_values("patient_id").unique()
            found = self.predict_frames(cohort.subset(ids))
            f_sides = side_features(found.assign(level=np.nan, p=found["probability"]), ids)
            p_side.loc[framed] = self.frame_rollup_.sides(f_sides).loc[framed]
            imaged = set(image_nodes(cohort)["patient_id"])
            p_frame = self.frame_rollup_.patients(f_sides)
            mixed = 1 - (1 - p_side.loc[list(ids)]).groupby(level="patient_id").prod()  # both kinds of side
            p_patient.loc[ids] = [mixed[i] if i in imaged else p_frame[i] for i in ids]
        return p_side, p_patient

    def predict_levels(self, cohort: Cohort) -> dict[str, pd.Series]:
        """Patient, side and node probabilities from one pass over the images."""
        self.check_fitted()
        ids = cohort.patients["patient_id"]
        from .us_frame_nodes import frame_only_sides

        nodes = self.predict_nodes(cohort)
        if not len(nodes) and not (len(frame_only_sides(cohort)) and hasattr(self, "detector_")):
            sides = pd.Series(np.nan, pd.MultiIndex.from_product([ids, SIDES], names=["patient_id", "side"]))
            # no ultrasound images at all: NaN, which fusion masks
            return {"patients": probability_series(np.nan, ids), "sides": sides.rename("probability"), "nodes": nodes}
        p_side, p_patient = self._side_and_patient(cohort, nodes)
        return {"patients": probability_series(p_patient.reindex(ids).to_numpy(), ids), "sides": p_side,
                "nodes": nodes}

    def figures(self) -> dict:
        from .us_image_figures import rollup_comparison

        figs = super().figures()
        if hasattr(self, "frame_rollup_"):
            figs["frame_rollup"] = rollup_comparison(self.frame_rollup_scores_, self.frame_rollup_.method,
                                                     "Detected nodes → patient roll-up")
        return figs


def _has_boxed_frames(cohort: Cohort) -> bool:
    from .us_detect_data import BOX_COLUMNS, FRAME_COLUMN

    nodes = cohort.nodes
    if not len(nodes) or not {FRAME_COLUMN, *BOX_COLUMNS} <= set(nodes.columns):
        return False
    return bool(nodes[list(BOX_COLUMNS)].notna().all(axis=1).any())


def _forward(regions: Regions):
    """The training loop's forward: augments training batches, drops one of two views at random (so
    single-view nodes, as in most hospital exports, are scored as well) and the Doppler images of some nodes
    (so B-mode-only views, such as nodes cut from a full-field frame, are scored as well)."""
    import torch

    from ..nets.node_cnn import prepare
    from ..nets.us_augment import augment

    pixels, extra = torch.from_numpy(regions.pixels), torch.from_numpy(regions.extra)
    present = torch.from_numpy(regions.present)

    def forward(net, idx, train, gen):
        x, e, m = pixels[idx].float(), extra[idx], present[idx]
        if train:
            b = x.shape[0]
            xa, ea = augment(x.flatten(0, 1), e.flatten(0, 1), gen)
            x, e = xa.view(x.shape), ea.view(e.shape)
            if VIEWS > 1:
                drop = (torch.rand(b, generator=gen) < 0.25) & m.all(1)
                which = torch.randint(0, VIEWS, (b,), generator=gen)
                m = m.clone()
                m[drop, which[drop]] = False
            no_flow = torch.rand(b, generator=gen) < DOPPLER_DROPOUT
            x[no_flow, :, 1] = 0
            e = e.clone()
            e[no_flow, :, 3] = 0
        return net(prepare(x), e, m)

    return forward

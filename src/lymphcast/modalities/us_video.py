"""The ultrasound-video model: P(metastatic) per lymph node from its cine sweep, rolled up to each neck side and
to the patient (as the us_image model).

fit: node clips (us_video_clips: T frames, two scales) of the labelled patients → a patient-level split into
training and validation (stratified by N1b) → ClipNet trained from scratch in two stages (us_video_training: the
whole network on augmented sub-clips, then its temporal part on the frozen frame features of whole clips; the
size numbers standardised on the training nodes (ClipNet.set_extra_scale); class weights, early stopping on
validation loss, optional checkpoint/resume) → Platt recalibration of the node logits on the validation nodes →
the roll-up (noisy-OR, max or learned) chosen by its log loss on the validation patients and fitted there; their
patient probabilities are kept in `validation_proba_`.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ..cohort import Cohort, LymphCastError
from .node_model import NodeNetworkModel
from .node_training import check_rollup_setting, choose_rollup, node_split
from .us_video_clips import CLIP_EXTRA, SCALES, Clips, node_clips, video_nodes


class UsVideoModel(NodeNetworkModel):
    """Node-level ultrasound cine-clip model.

    frames: frames sampled evenly over each sweep; size: side in pixels of each crop (node region and
    context); epochs/batch_size/lr/patience: training of the whole network, on sub-clips of `train_frames`
    frames; head_epochs: training of the temporal part on whole clips (0: none); val_fraction: share of
    patients held out for early stopping, calibration and the roll-up; rollup: "auto" (best measured) or one of
    noisy_or, max, learned; channels: encoder widths; sampling: "sweep" (frames over the whole clip) or "key"
    (the annotated key frame only: the single-frame comparison, with frames=1 and train_frames=1);
    checkpoint: optional file to checkpoint every epoch and resume from.
    """

    name = "us_video"
    media_nodes = staticmethod(video_nodes)

    def __init__(self, *, seed: int = 0, frames: int = 16, size: int = 48, epochs: int = 20, batch_size: int = 32,
                 lr: float = 1e-3, patience: int = 20, train_frames: int = 4, head_epochs: int = 40,
                 val_fraction: float = 0.25, rollup: str = "auto", channels: tuple = (16, 32, 48),
                 sampling: str = "sweep", checkpoint: str | None = None, progress: bool = True):
        self.seed = seed
        self.frames = frames
        self.size = size
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.train_frames = train_frames
        self.head_epochs = head_epochs
        self.val_fraction = val_fraction
        self.rollup = rollup
        self.channels = channels
        self.sampling = sampling
        self.checkpoint = checkpoint
        self.progress = progress

    # --- training -------------------------------------------------------------------------------
    def fit(self, cohort: Cohort) -> "UsVideoModel":
        from ..nets.training import TrainSettings

        from .us_video_training import train_clip_net

        check_rollup_setting(self.rollup)
        data = cohort.labelled()
        data = data.subset(self.covered_patients(data))  # patients without recorded clips teach nothing here
        clips = self._clips(data)
        nodes = video_nodes(data).set_index("node_id").loc[clips.node_ids]
        y, train_idx, val_idx, train_p, val_p = node_split(data, nodes, model=self.name, media="ultrasound clips",
                                                            val_fraction=self.val_fraction, seed=self.seed)
        net = self._new_net()
        net.set_extra_scale(clips.extra[train_idx])
        settings = TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                 patience=self.patience, seed=self.seed)
        config = {"model": self.get_params(), "patients": sorted(map(str, data.patients["patient_id"]))}
        result, temporal = train_clip_net(net, clips, y, train_idx, val_idx, settings,
                                          train_frames=self.train_frames, head_epochs=self.head_epochs,
                                          checkpoint=self.checkpoint, config=config, progress=self.progress)
        self.state_dict_ = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self._net = net
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.temporal_history_ = temporal.history if temporal else []
        raw, _ = self._run(clips)
        self.calibration_ = LogisticRegression(C=1e4, max_iter=1000).fit(raw[val_idx, None], y[val_idx])
        val = data.subset(val_p)
        sides = self.side_table(val, pd.Series(self._calibrated(raw), index=clips.node_ids))
        self.rollup_scores_, self.rollup_, self.rollup_model_, self.validation_proba_ = choose_rollup(
            val, sides, self.rollup, self.seed)
        self.training_summary_ = {"patients_train": len(train_p), "patients_validation": len(val_p),
                                  "nodes_train": len(train_idx), "nodes_validation": len(val_idx),
                                  "node_events_train": int(y[train_idx].sum()), "best_epoch": result.best_epoch,
                                  "epochs_run": result.epochs_run, "resumed_from": result.resumed_from,
                                  "temporal_best_epoch": temporal.best_epoch if temporal else 0}
        return self

    # --- prediction -----------------------------------------------------------------------------
    def _new_net(self):
        import torch

        from ..nets.clip_net import ClipNet

        torch.manual_seed(self.seed)
        return ClipNet(scales=SCALES, channels=tuple(self.channels), extra=CLIP_EXTRA)

    def _clips(self, cohort: Cohort) -> Clips:
        return node_clips(cohort, frames=self.frames, size=self.size, sampling=self.sampling, progress=self.progress)

    def _run(self, clips: Clips) -> tuple[np.ndarray, np.ndarray]:
        """Node logits (n,) and per-frame attention (n, T)."""
        import torch

        from ..nets.clip_net import prepare

        net = self.network()
        logits, attention = [], []
        with torch.no_grad():
            for start in range(0, len(clips), 128):
                sl = slice(start, start + 128)
                x, e = prepare(torch.from_numpy(clips.pixels[sl])), torch.from_numpy(clips.extra[sl])
                logit, att = net(x, e)
                logits.append(logit.numpy())
                attention.append(att.numpy())
        if not logits:
            return np.zeros(0), np.zeros((0, self.frames))
        return np.concatenate(logits).astype(float), np.concatenate(attention).astype(float)

    def predict_nodes(self, cohort: Cohort) -> pd.Series:
        self.check_fitted()
        clips = self._clips(cohort)
        p = self._calibrated(self._run(clips)[0])
        return pd.Series(p, index=clips.node_ids, name="probability", dtype="float64")

    def key_frames(self, cohort: Cohort, node_ids=None) -> pd.DataFrame:
        """Per node and sampled frame: its index in the source clip and its attention weight (the weights of a
        node sum to 1; the largest are the key frames). Columns node_id, position, frame, attention."""
        self.check_fitted()
        clips = self._clips(cohort)
        keep = np.ones(len(clips), bool) if node_ids is None else clips.node_ids.isin(list(node_ids))
        missing = set([] if node_ids is None else node_ids) - set(clips.node_ids)
        if missing:
            raise LymphCastError(f"no ultrasound clip for node(s) {', '.join(map(str, sorted(missing)))}")
        sub = Clips(clips.node_ids[keep], clips.pixels[keep], clips.extra[keep], clips.frames[keep])
        _, att = self._run(sub)
        t = att.shape[1]
        return pd.DataFrame({"node_id": np.repeat(sub.node_ids.to_numpy(), t),
                             "position": np.tile(np.arange(t), len(sub)), "frame": sub.frames.reshape(-1),
                             "attention": att.reshape(-1)})

"""What every model built around one trained network shares: the network rebuilt from its weights after loading,
Platt recalibration of its logits, and pickling without the live network (its weights travel in state_dict_)."""

from __future__ import annotations

import numpy as np

from ..cohort import LymphCastError


class FittedNetwork:
    """Mixin for a ModalityModel that sets state_dict_ and calibration_ in fit and builds its network in _new_net."""

    def _new_net(self):
        raise NotImplementedError

    def network(self):
        """The fitted network (rebuilt from state_dict_ after loading a saved model), in evaluation mode."""
        self.check_fitted()
        if getattr(self, "_net", None) is None:
            net = self._new_net()
            what = f"the saved {getattr(self, 'name', 'model')} weights do not fit this version's network"
            try:
                mismatch = net.load_state_dict(self.state_dict_, strict=False)
            except RuntimeError:  # a layer of another shape
                raise LymphCastError(f"{what} (layer shapes differ); train the model again with this version") from None
            if mismatch.missing_keys or mismatch.unexpected_keys:  # weights saved by another version's network
                names = sorted({k.split(".")[0] for k in mismatch.missing_keys + mismatch.unexpected_keys})
                raise LymphCastError(f"{what} (parts {', '.join(names)} differ); train the model again with this "
                                     "version")
            self._net = net
        self._net.eval()
        return self._net

    def _calibrated(self, raw: np.ndarray) -> np.ndarray:
        return self.calibration_.predict_proba(raw[:, None])[:, 1] if len(raw) else raw

    def __getstate__(self):
        state = dict(vars(self))
        state.pop("_net", None)  # rebuilt from state_dict_ on first use
        return state

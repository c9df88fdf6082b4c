"""Fusion of the modality models: stacking over their probabilities with explicit missing-modality masks."""

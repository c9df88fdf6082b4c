"""Small torch networks and the one training loop the image modalities share (below the modalities)."""

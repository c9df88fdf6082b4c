"""Modality models, all following the contract in base.py, and the registry that names them."""

"""The streaming tests use the tiny cine-clip model and bundle of tests/conftest.py (shared with the service)."""

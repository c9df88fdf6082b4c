"""One torch thread for the folders that train tiny networks: a second intra-op thread only adds
synchronisation, which on a busy 2-core machine made one tiny training run 10-100 times slower."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)

from __future__ import annotations

import pytest

from tests.torch_threads import one_torch_thread


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield

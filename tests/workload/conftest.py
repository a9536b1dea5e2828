import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small models on a shared 2-core machine: extra intra-op threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

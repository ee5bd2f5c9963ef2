"""luatorch_port.util.threads.torch_threads: set, then restore torch's intra-op thread count."""

from __future__ import annotations

import pytest
import torch

from luatorch_port.util.threads import torch_threads


def test_torch_threads_sets_and_restores_also_on_error():
    before = torch.get_num_threads()
    with torch_threads(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(2):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("n", [None, 0])
def test_torch_threads_none_or_zero_leaves_the_count(n):
    before = torch.get_num_threads()
    with torch_threads(n):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before

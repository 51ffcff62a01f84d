"""Shared test settings: hypothesis is deterministic unless HYPOTHESIS_PROFILE=dev is set."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=40, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """The CLI's commands set torch's thread count (the free cores, fgvc_ref/threads.py); a test that calls main() must
    not leave its count to the tests after it, whose results would then depend on the machine's load and the order."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A tiny prepared Stanford-Cars-like cache (4 classes x 6 images per split)."""
    from runs import make_cache

    return make_cache(tmp_path_factory.mktemp("data"))

"""fgvc_ref.threads: the free-core count, literally, and who sets the thread count of torch and ONNX Runtime."""

import os

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref import threads


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)), min_size=1, max_size=8))
def test_free_cores_is_the_summed_idle_share_rounded_and_at_least_one(cpus):
    """free_between, literally: sum over CPUs of idle delta / total delta, rounded, clamped to [1, CPUs]."""
    before = {c: (0, 0) for c in range(len(cpus))}
    after = {c: (min(idle, total), total) for c, (idle, total) in enumerate(cpus)}
    expected = sum(i / t for i, t in after.values())
    got = threads.free_between(before, after)
    assert 1 <= got <= len(cpus) and (got == max(1, round(expected)))


def test_free_cores_measures_this_machine_within_its_allowed_cpus():
    assert 1 <= threads.free_cores(0.05) <= len(os.sched_getaffinity(0))


def test_torch_threads_default_to_the_free_cores_and_follow_threads_or_omp_num_threads(monkeypatch):
    default = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(threads, "free_cores", lambda window=0.25: 1)
        torch.set_num_threads(2)
        assert threads.torch_threads(None) == 1  # one core free: one compute thread, not torch's 2
        monkeypatch.setattr(threads, "free_cores", lambda window=0.25: 64)
        torch.set_num_threads(2)
        assert threads.torch_threads(None) == 2  # never more than torch's own choice
        assert threads.torch_threads(1) == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        monkeypatch.setattr(threads, "free_cores", lambda window=0.25: 1)
        torch.set_num_threads(1)
        assert threads.torch_threads(None) == 2  # the caller's OMP_NUM_THREADS wins over the free cores
        assert threads.chosen_threads(None) == (2, "OMP_NUM_THREADS") and threads.chosen_threads(3)[0] == 3
        monkeypatch.setenv("OMP_NUM_THREADS", "")
        assert threads.chosen_threads(None)[0] is None  # an empty OMP_NUM_THREADS chooses nothing
    finally:
        torch.set_num_threads(default)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_onnxruntime_threads_go_to_the_intra_op_pool_with_one_inter_op_thread(n):
    """The count is the intra-op pool (one operator's work split n ways); the inter-op pool stays at 1 (a chain graph)."""
    pytest.importorskip("onnxruntime")
    options = threads.onnxruntime_options(n)
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (n, 1)
    default = threads.onnxruntime_options(None)
    assert (default.intra_op_num_threads, default.inter_op_num_threads) == (0, 0)  # ONNX Runtime's own choice

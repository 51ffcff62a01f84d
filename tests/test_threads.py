"""fgvc_ref.threads: the free-core count, literally, and who sets the thread count of torch and ONNX Runtime."""

import json
import os

import numpy as np
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


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    """A minimal file OnnxClassifier accepts: uint8 N x 8 x 8 x 3 pixels -> their per-channel mean as 3 "logits", with
    the fgvc_ref metadata (written with onnx.helper: no export needed to test the session's settings)."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Cast", ["pixels"], ["x"], to=TensorProto.FLOAT),
                               helper.make_node("ReduceMean", ["x"], ["logits"], axes=[1, 2], keepdims=0)], "tiny",
                              [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["N", 8, 8, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    meta = {"format": "fgvc_ref-onnx", "model": "mean", "data": None, "input": {"layout": "NHWC", "shape": ["N", 8, 8, 3]}}
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"fgvc_ref.{key}", json.dumps(value)
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("n", [1, 2, 3])
def test_an_onnx_session_computes_with_the_threads_asked_for_in_its_intra_op_pool(onnx_file, n):
    """What the session ONNX Runtime built holds (not only the options object): n intra-op threads, 1 inter-op thread,
    sequential execution; without a count, ONNX Runtime's own defaults."""
    import onnxruntime as ort

    from fgvc_ref.deploy import OnnxClassifier

    model = OnnxClassifier(onnx_file, threads=n)
    held = model.session.get_session_options()
    assert (held.intra_op_num_threads, held.inter_op_num_threads) == (n, 1)
    assert held.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert model(np.full((2, 8, 8, 3), 7, dtype=np.uint8)).tolist() == [[7.0] * 3] * 2  # the session runs
    default = OnnxClassifier(onnx_file).session.get_session_options()
    assert (default.intra_op_num_threads, default.inter_op_num_threads) == (0, 0)


def test_bench_times_one_thread_and_all_cores_with_sessions_holding_those_counts(onnx_file, monkeypatch):
    """bench --only latency's "1 thread" and "all cores" figures come from sessions built with 1 and with every core."""
    import fgvc_ref.deploy as deploy
    from fgvc_ref import bench

    real, built = deploy.OnnxClassifier, []

    class Recorded(real):
        def __init__(self, path, **kw):
            super().__init__(path, **kw)
            built.append(self)
    monkeypatch.setattr(deploy, "OnnxClassifier", Recorded)
    (row,) = bench.bench_latency(repeats=1, models=[str(onnx_file)], batches=(1,), warmup=0)
    cores = len(os.sched_getaffinity(0))
    assert {t["threads"] for t in row["timings"]} == {1, cores}
    assert sorted(m.session.get_session_options().intra_op_num_threads for m in built) == sorted({1, cores})

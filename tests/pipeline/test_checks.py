"""The grading dispatch: every check of the catalogue has its probe and score, and a failure
of the grader's own on one item is reported against that item and marks the result for retry
(a resumed batch grades it again) instead of stopping the submission."""

from __future__ import annotations

import builtins
import json
import sys
import types

import numpy as np
import pytest

from grader import items
from grader.frameworks.tf2.framework import TF2Framework
from grader.kernel import loader, wire
from grader.pipeline import checks, score
from grader.pipeline.grade_one import Options, failed_result
from grader.pipeline.response import read_response
from grader.rubric import load_rubric


def test_every_probed_check_of_the_catalogue_has_a_dispatch_entry():
    not_probed = {items.RUNS_CLEAN, items.CONVERGENCE, items.MANUAL}
    assert set(checks.CHECKS) == set(items.CHECKS) - not_probed
    for spec in items.CATALOGUE:
        if spec.check in checks.CHECKS:
            assert spec.function, f"{spec.id} is probed but names no notebook function"


class ExchangeGone:
    """A prober whose exchange folder has vanished: the grader's side fails."""

    framework = TF2Framework()

    def request(self, calls, inputs, timeout=None):
        raise OSError("the exchange folder is gone")


def test_a_grader_fault_is_reported_on_its_item_and_marks_a_retry():
    rubric = load_rubric()
    graded = [checks.grade_unit(rubric.item(item_id), ExchangeGone(),
                                np.random.default_rng(3), oracle=None)
              for item_id in ("leaky_relu", "gan_loss", "dc_generator", "vae_kl")]
    for result in graded:
        assert result.status == "error" and result.points == 0
        assert f"the grader could not check {result.id}" in result.message
        assert "exchange folder" in result.message
    assert score.grader_faulted(graded)
    student_error = failed_result("a.ipynb", Options(rubric=rubric), None, "not JSON")
    assert not score.grader_faulted(student_error.items)  # the student's fault: no retry


# -- the student's wrong return types are the student's -------------------------------------------

E_NAME = "E" * 20_000_000  # a class name of 20 MB


def _raise_hostile(*args, **kwargs):
    raise type(E_NAME, (Exception,), {})("\x1b[2J\x07 and a lone \udcff")


WRONG_RETURNS = {  # what the graded function does -> words the result must name
    "text": (lambda *a, **k: "abc", "text"),
    "an array of text": (lambda *a, **k: np.array(["a", "b"]), "text"),
    "an object array": (lambda *a, **k: np.array([object(), None]), "Python objects"),
    "None": (lambda *a, **k: None, "None"),
    "a ragged list": (lambda *a, **k: [[1.0, [2.0, 3.0]], [4.0]], "list"),
    "a generator": (lambda *a, **k: (x for x in range(3)), "generator"),
    "a dict": (lambda *a, **k: {"a": 1}, "dict"),
    "an oversized array": (lambda *a, **k: np.zeros(wire.MAX_ARRAY_BYTES // 8 + 1), "larger"),
    "a hostile exception": (_raise_hostile, "raised"),
}


class InProcessProber:
    """The prober's exchange without a kernel: the kernel's real probe serves each request
    in this process over a stand-in namespace, and the grader's parser reads the answer."""

    framework = TF2Framework()

    def __init__(self, probe, folder):
        self.probe, self.folder, self.count = probe, folder, 0

    def request(self, calls, inputs, timeout=None):
        self.count += 1
        token = f"t{self.count}"
        inputs_path = self.folder / wire.inputs_file(token)
        np.savez(inputs_path, **inputs)
        request_path = self.folder / wire.request_file(token)
        request_path.write_text(json.dumps(wire.request(str(inputs_path), calls)))
        stem = str(self.folder / wire.response_stem(token))
        self.probe.serve(str(request_path), stem)
        return read_response(stem, len(calls)).outcomes


@pytest.fixture()
def in_process(monkeypatch, tmp_path):
    """The kernel's wire and probe installed as in a kernel, with tensors as numpy arrays
    (no framework in this process: the probe's tensor inputs become plain arrays)."""
    namespace: dict = {}
    shell = types.SimpleNamespace(user_ns=namespace)
    monkeypatch.setattr(builtins, "get_ipython", lambda: shell, raising=False)
    for file in ("wire", "probe"):
        monkeypatch.delitem(sys.modules, loader.module_name(file), raising=False)
        exec(loader.install_code(loader.module_name(file), loader.read_source(file)), {})
    sys.modules[loader.module_name("probe")].register(as_tensor=np.asarray)
    yield InProcessProber(sys.modules[loader.module_name("probe")], tmp_path), namespace
    for file in ("wire", "probe"):
        sys.modules.pop(loader.module_name(file), None)


@pytest.mark.parametrize("item_id", ["leaky_relu", "sample_noise", "gan_loss", "vae_kl"])
@pytest.mark.parametrize("case", WRONG_RETURNS)
def test_a_wrong_return_is_a_failed_check_naming_it(in_process, item_id, case):
    prober, namespace = in_process
    function, words = WRONG_RETURNS[case]
    namespace[items.spec(item_id).function] = function
    result = checks.grade_unit(load_rubric().item(item_id), prober, np.random.default_rng(1),
                               oracle=None)
    assert result.points == 0 and result.status in ("failed", "error"), result
    assert not score.grader_faulted([result]), result.message  # no retry: the student's
    assert words in result.message, result.message
    assert len(result.message) < 6000 and "\x1b" not in result.message
    result.message.encode("utf-8")  # no lone surrogate left

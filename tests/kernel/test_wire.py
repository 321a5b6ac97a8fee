"""The grader-kernel exchange without a kernel: the wire format, the loader's name table,
and the kernel's probe run in this process on a stand-in for the notebook's namespace."""

from __future__ import annotations

import ast
import builtins
import json
import sys
import types

import numpy as np
import pytest

from grader.kernel import loader, wire
from grader.pipeline.response import read_response

KERNEL_FILES = sorted(loader.MODULES)


def test_split_and_attach_are_inverse_on_nested_outcomes():
    outcome = {"kind": wire.Kind.MODEL, "type": "M", "variables": [{"shape": [2]}],
               "output": {"kind": wire.Kind.SEQUENCE, "items": [
                   {"kind": wire.Kind.ARRAY, "array": np.arange(6.0).reshape(2, 3)},
                   {"kind": wire.Kind.NONE},
                   {"kind": wire.Kind.ARRAY, "array": np.int32(4)}]}}
    arrays: dict = {}
    sent = json.loads(json.dumps(wire.split_arrays(outcome, arrays)))
    first, _, last = sent["output"]["items"]
    assert (first["key"], first["dtype"], first["shape"]) == ("a0", "float64", [2, 3])
    assert (last["key"], last["shape"]) == ("a1", [])
    assert set(arrays) == {"a0", "a1"} and arrays["a1"] == 4


def test_specs_and_references():
    assert wire.input_reference(wire.tensor_input("x")) == ("x", True)
    assert wire.input_reference(wire.array_input("y")) == ("y", False)
    assert wire.input_reference({"other": 1}) is None and wire.input_reference(3) is None
    assert wire.call_spec("f", args=[1]) == {"action": "call", "function": "f", "args": [1]}
    for spec in (wire.call_spec("f"), wire.solvers_spec("g", {}),
                 wire.build_model_spec("h", {}, "x", "s"), wire.run_model_spec("s", [], "x"),
                 wire.train_start_spec({}, 0, 96, 128, "m.npz", "t"),
                 wire.train_steps_spec("t", {}, 1.0)):
        assert spec["action"] in wire.ACTIONS
    assert wire.error_outcome("E: m") == {"kind": "error", "error": "E: m"}
    assert wire.read_request(wire.request("in.npz", [{}])) == ("in.npz", [{}])


@pytest.mark.parametrize("file", KERNEL_FILES)
def test_kernel_files_take_module_names_from_the_loader(file):
    raw = loader.source_path(file).read_text(encoding="utf-8")
    for name in (*loader.MODULES.values(), loader.REFERENCE_MODULE):
        assert name not in raw, f"{file}.py spells out {name}"
    source = loader.read_source(file)
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name and name.split(".")[0] == "grader" for name in imported)
    uses_names = any(isinstance(node, ast.Name) and node.id == "MODULES"
                     for node in ast.walk(tree))
    if uses_names:  # filled in, on its own line
        assert f"\nMODULES: dict = {loader.kernel_names()!r}  # " in source


def test_config_and_modules_lines_are_filled_once():
    source = loader.read_source("tf1/setup", {"cell_parts": ["gan"]})
    assert "CONFIG: dict = {'cell_parts': ['gan']}  # replaced" in source
    assert source.count(repr(loader.MODULES["prelude"])) == 1
    with pytest.raises(ValueError):
        loader.read_source("probe", {"x": 1})


def test_any_config_value_reaches_the_kernel_as_written():
    config = {"seed": 5, "training_steps": None, "budget": True, "path": "a 'b' \\ \"c\"",
              "parts": ["gan", "dcgan"]}
    namespace: dict = {}
    exec(compile(loader.read_source("prelude", config), "<prelude>", "exec"), namespace)
    assert namespace["CONFIG"] == config


@pytest.fixture()
def kernel_probe(monkeypatch):
    """The wire and probe modules installed as in a kernel, over a stand-in namespace."""
    namespace: dict = {}
    shell = types.SimpleNamespace(user_ns=namespace)
    monkeypatch.setattr(builtins, "get_ipython", lambda: shell, raising=False)
    names = [loader.module_name(file) for file in ("wire", "probe")]
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        for file in ("wire", "probe"):
            exec(loader.install_code(loader.module_name(file), loader.read_source(file)), {})
        yield sys.modules[loader.module_name("probe")], namespace
    finally:
        for name in names:
            sys.modules.pop(name, None)


def _exchange(probe, tmp_path, calls, inputs):
    token = "t0"
    inputs_path = tmp_path / wire.inputs_file(token)
    np.savez(inputs_path, **inputs)
    request_path = tmp_path / wire.request_file(token)
    request_path.write_text(json.dumps(wire.request(str(inputs_path), calls)))
    stem = str(tmp_path / wire.response_stem(token))
    probe.serve(str(request_path), stem)
    answer = read_response(stem, len(calls))  # the grader's reader, rules and all
    return answer.outcomes, answer.patched


def test_the_probe_serves_a_request_in_the_wire_format(kernel_probe, tmp_path):
    probe, namespace = kernel_probe
    namespace.update(double=lambda x: x * 2, pair=lambda x: (x, None), nothing=lambda: None)
    x = np.arange(3.0)
    calls = [wire.call_spec("double", args=[wire.array_input("x")]),
             wire.call_spec("pair", kwargs={"x": wire.array_input("x")}),
             wire.call_spec("nothing"), wire.call_spec("missing"),
             {"action": "no-such-action"}]
    results, patched = _exchange(probe, tmp_path, calls, {"x": x})
    assert patched == []
    np.testing.assert_array_equal(results[0]["array"], 2 * x)
    assert results[1]["kind"] == wire.Kind.SEQUENCE
    np.testing.assert_array_equal(results[1]["items"][0]["array"], x)
    assert results[1]["items"][1] == {"kind": wire.Kind.NONE}
    assert results[2] == {"kind": wire.Kind.NONE}
    assert results[3]["kind"] == wire.Kind.ERROR and "LookupError" in results[3]["error"]
    assert results[4]["kind"] == wire.Kind.ERROR and "KeyError" in results[4]["error"]


def test_a_profile_registers_actions_and_name_resolution(kernel_probe, tmp_path):
    probe, namespace = kernel_probe
    namespace["f"] = lambda: 1.0
    eager_call = probe.default_action(wire.Action.CALL)

    def call(spec, inputs):
        outcome = eager_call(spec, inputs)
        outcome["array"] = outcome["array"] * 10  # the profile's handler answers
        return outcome

    probe.register(actions={wire.Action.CALL: call},
                   resolve=lambda name: (lambda: 5.0) if name == "g" else None)
    results, _ = _exchange(probe, tmp_path, [wire.call_spec("g"), wire.call_spec("f")], {})
    assert results[0]["array"] == 50.0
    assert results[1]["kind"] == wire.Kind.ERROR  # the resolver, not the namespace, decides
    assert probe.default_action(wire.Action.CALL) is eager_call
    with pytest.raises(ValueError):
        probe.register(actions={"bogus": call})

"""The response parser, the one way a kernel's answer enters the grader: it returns checked,
cleaned outcomes or raises UnreadableResponse, never anything else; it reads only the
arrays the outcomes name, checks each one's header before its data, and holds every cap.
Then the student's wrong return types, turned into failed checks of the student's."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.exceptions import UnreadableResponse
from grader.kernel import wire
from grader.pipeline import response
from grader.pipeline.response import Failure, as_array, parse_response, to_value
from grader.pipeline.sandbox import bubblewrap_problem
from grader.untrusted import MESSAGE_LIMIT, NAME_LIMIT, OUTPUT_LIMIT

CONTROLS = {chr(code) for code in range(32) if chr(code) not in "\n\t"} | {"\x7f"}


def _npz(**arrays) -> bytes:
    stream = io.BytesIO()
    np.savez(stream, **arrays)
    return stream.getvalue()


def _send(*outcomes: dict, patched: list[str] | None = None) -> tuple[bytes, bytes]:
    """A response as the kernel's probe writes it: arrays split out into an .npz."""
    arrays: dict = {}
    results = [wire.split_arrays(outcome, arrays) for outcome in outcomes]
    meta = json.dumps(wire.response(results, patched or [])).encode()
    return meta, _npz(**arrays)


def _array(value) -> dict:
    return {"kind": wire.Kind.ARRAY, "array": np.asarray(value)}


def well_typed(outcome: dict) -> None:
    """Fail unless ``outcome`` is of a known kind with fields of the right types, every
    string clean and bounded, every array numeric."""
    assert outcome["kind"] in wire.KINDS
    for key, value in outcome.items():
        if isinstance(value, str):
            assert len(value) <= OUTPUT_LIMIT + 64 and not CONTROLS & set(value), key
            value.encode("utf-8")  # no lone surrogate
    if outcome["kind"] == wire.Kind.ARRAY:
        array = outcome["array"]
        assert isinstance(array, np.ndarray) and response.numeric(array.dtype)
        assert array.shape == tuple(outcome["shape"]) and array.nbytes <= wire.MAX_ARRAY_BYTES
    for name in ("type", "mode"):
        if name in outcome:
            assert len(outcome[name]) <= NAME_LIMIT + 64
    if outcome["kind"] == wire.Kind.ERROR:
        assert len(outcome["error"]) <= NAME_LIMIT + MESSAGE_LIMIT + 128
    for inner in wire.nested(outcome):
        if outcome["kind"] != wire.Kind.OPTIMIZERS:
            well_typed(inner)


# -- what a response may hold ------------------------------------------------------------------


def test_a_response_comes_back_checked_and_clean():
    meta, arrays = _send(_array(np.arange(3)), {"kind": "none"},
                         {"kind": "sequence", "items": [_array(1.5), {"kind": "none"}]},
                         patched=["numpy.load", "NOTE FROM THE COURSE STAFF: full marks"])
    answer = parse_response(meta, arrays, 3)
    assert answer.outcomes[0]["array"].tolist() == [0, 1, 2]
    assert answer.outcomes[1] == {"kind": "none"}
    assert answer.outcomes[2]["items"][0]["array"] == 1.5
    assert answer.patched == ["numpy.load"]  # a name outside wire.WATCHED is no report
    for outcome in answer.outcomes:
        well_typed(outcome)


def test_kernel_text_is_cut_and_escaped():
    error = {"kind": "error", "error": "E" * 20_000_000 + ": \x1b[2J\x07 bad \udcff",
             "where": "\x1b]0;title\x07" * 10_000}
    other = {"kind": "other", "type": "\x1b[31m" + "T" * 5000}
    meta = json.dumps({"results": [error, other], "patched": []}).encode()
    with pytest.raises(UnreadableResponse, match="over 1024 KiB"):
        parse_response(meta, _npz(), 2)  # 20 MB: over the JSON cap
    error["error"] = "E" * 500_000 + ": \x1b[2J\x07 bad \udcff"
    meta = json.dumps({"results": [error, other], "patched": []}).encode()
    cleaned = parse_response(meta, _npz(), 2).outcomes
    name, message = cleaned[0]["error"].split(": ", 1)
    assert len(name) < NAME_LIMIT + 64 and "\x1b" not in message and "\\x1b[2J\\x07" in message
    assert "\\xff" in message  # the lone surrogate, shown as the byte it stood for
    assert "\x1b" not in cleaned[0]["where"] and "\x1b" not in cleaned[1]["type"]
    for outcome in cleaned:
        well_typed(outcome)


FORGED = {
    "not JSON": (b"not json", _npz()),
    "not UTF-8": (b"\xff\xfe{}", _npz()),
    "no results": (json.dumps({"nothing": 1}).encode(), _npz()),
    "results are text": (json.dumps({"results": "everything passed"}).encode(), _npz()),
    "too few results": (json.dumps({"results": [{"kind": "none"}]}).encode(), _npz()),
    "an unknown kind": (json.dumps({"results": [{"kind": "full_marks"}] * 2}).encode(), _npz()),
    "a missing member": (json.dumps({"results": [
        {"kind": "array", "key": "a9", "dtype": "float32", "shape": [2]},
        {"kind": "none"}]}).encode(), _npz()),
    "not a zip": (_send(_array([1.0]), {"kind": "none"})[0], b"PK\x03\x04 not a zip"),
    "a pickled object array": (json.dumps({"results": [
        {"kind": "array", "key": "a0", "dtype": "object", "shape": [1]},
        {"kind": "none"}]}).encode(), _npz(a0=np.array([{"x": 1}], dtype=object))),
    "an object array declared as numbers": (json.dumps({"results": [
        {"kind": "array", "key": "a0", "dtype": "float64", "shape": [1]},
        {"kind": "none"}]}).encode(), _npz(a0=np.array([{"x": 1}], dtype=object))),
    "a structured array": (json.dumps({"results": [
        {"kind": "array", "key": "a0", "dtype": "float64", "shape": [2]},
        {"kind": "none"}]}).encode(), _npz(a0=np.zeros(2, dtype=[("a", "f4"), ("b", "f4")]))),
    "text declared as numbers": (json.dumps({"results": [
        {"kind": "array", "key": "a0", "dtype": "float32", "shape": [2]},
        {"kind": "none"}]}).encode(), _npz(a0=np.array(["ab", "cd"]))),
    "another shape than declared": (json.dumps({"results": [
        {"kind": "array", "key": "a0", "dtype": "float64", "shape": [2]},
        {"kind": "none"}]}).encode(), _npz(a0=np.zeros(3))),
    "another dtype than declared": (json.dumps({"results": [
        {"kind": "array", "key": "a0", "dtype": "float32", "shape": [2]},
        {"kind": "none"}]}).encode(), _npz(a0=np.zeros(2))),
    "an array over the cap": (json.dumps({"results": [
        {"kind": "array", "key": "a0", "dtype": "float64", "shape": [2**24]},
        {"kind": "none"}]}).encode(), _npz()),
    "arrays over the total": (json.dumps({"results": [
        {"kind": "array", "key": f"a{i}", "dtype": "float32", "shape": [2**24 - 1]}
        for i in range(2)]}).encode(), _npz()),
    "the same key twice": (json.dumps({"results": [
        {"kind": "array", "key": "a0", "dtype": "float64", "shape": [2]}] * 2}).encode(),
        _npz(a0=np.zeros(2))),
    "a shape of text": (json.dumps({"results": [
        {"kind": "array", "key": "a0", "dtype": "float64", "shape": "2"},
        {"kind": "none"}]}).encode(), _npz(a0=np.zeros(2))),
    "nested too deeply": (json.dumps({"results": [
        json.loads('{"kind": "sequence", "items": [' * 40 + ']}' * 40), {"kind": "none"}]}
    ).encode(), _npz()),
    "a list too long": (json.dumps({"results": [
        {"kind": "sequence", "items": [{"kind": "none"}] * 2000}, {"kind": "none"}]}).encode(),
        _npz()),
    "too many values": (json.dumps({"results": [
        {"kind": "sequence", "items": [{"kind": "sequence", "items": [{"kind": "none"}] * 1000}]
         * 5}, {"kind": "none"}]}).encode(), _npz()),
    "deep JSON": (b'{"results": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", _npz()),
    "a model of numbers": (json.dumps({"results": [
        {"kind": "model", "type": "M", "variables": 7, "output": {"kind": "none"}},
        {"kind": "none"}]}).encode(), _npz()),
    "an optimizer id of text": (json.dumps({"results": [
        {"kind": "optimizers", "items": [{"type": "Adam", "mro": ["Adam"], "id": "1"}]},
        {"kind": "none"}]}).encode(), _npz()),
    "a training without samples": (json.dumps({"results": [
        {"kind": "training", "steps": 1, "seconds": 1.0, "mode": "eager",
         "items": [{"kind": "none"}, {"kind": "none"}]}, {"kind": "none"}]}).encode(), _npz()),
    "a training without its networks' weights": (json.dumps({"results": [
        {"kind": "training", "steps": 1, "seconds": 1.0, "mode": "eager",
         "items": [{"kind": "none"}] * 4}, {"kind": "none"}]}).encode(), _npz()),
    "a session of one network": (json.dumps({"results": [
        {"kind": "session", "variables": {"generator": []}}, {"kind": "none"}]}).encode(),
        _npz()),
    "a session of three networks": (json.dumps({"results": [
        {"kind": "session", "variables": {"generator": [], "discriminator": [], "critic": []}},
        {"kind": "none"}]}).encode(), _npz()),
}


def test_a_training_chunk_comes_back_with_its_weights():
    """What the probe's train_steps sends: losses, both networks' weights, no samples."""
    arrays: dict = {}
    outcome = wire.split_arrays({"kind": "training", "steps": 3, "seconds": 0.5,
                                 "mode": "compiled", "items": [
                                     {"kind": "array", "array": np.ones((3, 2))},
                                     {"kind": "sequence", "items": [
                                         {"kind": "array", "array": np.zeros((4, 5), "f4")}]},
                                     {"kind": "sequence", "items": []},
                                     {"kind": "none"}]}, arrays)
    stream = io.BytesIO()
    np.savez(stream, **arrays)
    meta = json.dumps(wire.response([outcome], [])).encode()
    parsed = parse_response(meta, stream.getvalue(), 1).outcomes[0]
    losses, generator, discriminator, samples = parsed["items"]
    assert parsed["steps"] == 3 and losses["array"].shape == (3, 2)
    assert generator["items"][0]["array"].shape == (4, 5) and discriminator["items"] == []
    assert samples == {"kind": "none"}


@pytest.mark.parametrize("case", FORGED)
def test_a_forged_response_is_refused_as_the_submissions(case):
    meta, arrays = FORGED[case]
    with pytest.raises(UnreadableResponse, match="the notebook's kernel sent back"):
        parse_response(meta, arrays, 2)


def _directory_of(count: int) -> bytes:
    """An archive whose directory lists ``count`` members (written by zipfile itself)."""
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        archive.writestr("a0.npy", _npz_member(np.zeros(2)))
        for index in range(count - 1):
            archive.writestr(f"x{index}", b"")
    return stream.getvalue()


def _npz_member(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def test_the_archive_directory_is_bounded_before_the_zip_reader_sees_it():
    meta = json.dumps({"results": [{"kind": "array", "key": "a0", "dtype": "float64",
                                    "shape": [2]}]}).encode()
    assert parse_response(meta, _directory_of(10), 1).outcomes[0]["array"].tolist() == [0, 0]
    with pytest.raises(UnreadableResponse, match="members for 1 arrays"):
        parse_response(meta, _directory_of(1000), 1)
    forged = bytearray(_directory_of(1))  # a zip64 locator would override the counts
    end = len(forged) - 22
    forged[end:end] = struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1)
    with pytest.raises(UnreadableResponse, match="zip64"):
        parse_response(meta, bytes(forged), 1)


# -- zip bombs: only named members, and only their declared size ---------------------------------

BOMB_BYTES = 256 * 2**20


@pytest.fixture(scope="module")
def bomb_archive(tmp_path_factory):
    """An .npz with a small named array and a 256 MiB member of zeros (about 250 KB)."""
    path = tmp_path_factory.mktemp("bomb") / "out.npz"
    header = _npz_member(np.zeros((4, 64), dtype=np.float32))[:128]  # an .npy header
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a0.npy", _npz_member(np.arange(4, dtype=np.float32)))
        with archive.open("bomb.npy", "w") as member:
            member.write(header)
            chunk = bytes(2**20)
            for _ in range(BOMB_BYTES // len(chunk)):
                member.write(chunk)
    return path


def _peak_mib(function) -> float:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_an_unnamed_member_is_never_decompressed(bomb_archive):
    meta = json.dumps({"results": [{"kind": "array", "key": "a0", "dtype": "float32",
                                    "shape": [4]}]}).encode()

    def parse():
        with open(bomb_archive, "rb") as archive:
            assert parse_response(meta, archive, 1).outcomes[0]["array"].tolist() == [0, 1, 2, 3]

    assert _peak_mib(parse) < 8


def test_a_named_bomb_is_refused_before_its_data_is_read(bomb_archive):
    for shape in ([4, 64], [2**20, 64]):  # its header's shape, or one as large as it claims
        meta = json.dumps({"results": [{"kind": "array", "key": "bomb", "dtype": "float32",
                                        "shape": shape}]}).encode()

        def parse(meta=meta):
            with open(bomb_archive, "rb") as archive, pytest.raises(UnreadableResponse):
                parse_response(meta, archive, 1)

        assert _peak_mib(parse) < 8


def test_a_member_larger_than_its_declared_array_is_not_read(tmp_path):
    """A small array followed by 64 MiB of zeros in the same member: refused from the
    member's recorded size, before anything is inflated."""
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a0.npy", _npz_member(np.zeros(4, dtype=np.float32))
                         + bytes(64 * 2**20))
    meta = json.dumps({"results": [{"kind": "array", "key": "a0", "dtype": "float32",
                                    "shape": [4]}]}).encode()

    def parse():
        with open(path, "rb") as archive, pytest.raises(UnreadableResponse, match="larger"):
            parse_response(meta, archive, 1)

    assert _peak_mib(parse) < 8


# -- properties: anything in, a checked response or UnreadableResponse out ------------------------

FIELDS = ("kind", "key", "dtype", "shape", "items", "type", "error", "where", "output",
          "variables", "name", "trainable", "mro", "id", "steps", "seconds", "mode",
          "learning_rate")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
    | st.text(max_size=30) | st.sampled_from(wire.KINDS) | st.sampled_from(["float32", "O", "<U3"]),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), children, max_size=6),
    max_leaves=40)


def _parse_or_refuse(meta: bytes, archive: bytes, count: int):
    try:
        answer = parse_response(meta, archive, count)
    except UnreadableResponse as error:
        assert "the notebook's kernel sent back" in str(error)
        return None
    assert len(answer.outcomes) == count and set(answer.patched) <= set(wire.WATCHED)
    for outcome in answer.outcomes:
        well_typed(outcome)
    return answer


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300), st.integers(0, 3))
def test_arbitrary_bytes_are_a_response_or_refused(meta, archive, count):
    _parse_or_refuse(meta, archive, count)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_values, max_size=3), json_values)
def test_arbitrary_json_is_a_response_or_refused(results, patched):
    meta = json.dumps({"results": results, "patched": patched}).encode()
    _parse_or_refuse(meta, _npz(a0=np.zeros(2), a1=np.array(["x"])), len(results))


dtypes = (hnp.scalar_dtypes() | hnp.array_dtypes(max_size=2)
          | st.sampled_from([np.dtype(object), np.dtype("U3"), np.dtype("S2")]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtypes.flatmap(lambda dtype: st.tuples(
    st.just(dtype), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))),
    st.booleans(), st.booleans(), st.booleans())
def test_an_array_is_accepted_only_if_numeric_and_as_declared(dtype_shape, declare_true,
                                                              fortran, extra):
    dtype, shape = dtype_shape
    array = np.zeros(shape, dtype=dtype)
    if fortran:
        array = np.asfortranarray(array)
    declared_dtype = str(dtype) if declare_true else "float32"
    declared = {"kind": "array", "key": "a0", "dtype": declared_dtype,
                "shape": list(array.shape)}
    members = {"a0": array, **({"junk": np.array([object()])} if extra else {})}
    stream = io.BytesIO()
    np.savez(stream, **members) if not any(m.dtype.hasobject for m in members.values()) \
        else _savez_with_pickles(stream, members)
    answer = _parse_or_refuse(json.dumps({"results": [declared]}).encode(),
                              stream.getvalue(), 1)
    acceptable = response.numeric(dtype) and np.dtype(declared_dtype) == dtype
    assert (answer is not None) == acceptable
    if answer is not None:
        np.testing.assert_array_equal(answer.outcomes[0]["array"], array)


def _savez_with_pickles(stream, members):
    with zipfile.ZipFile(stream, "w") as archive:
        for key, value in members.items():
            member = io.BytesIO()
            np.save(member, value, allow_pickle=True)
            archive.writestr(f"{key}.npy", member.getvalue())


# -- values: what the student's function returned, for the scorers -----------------------------


def test_values_are_numeric_arrays_or_failures():
    assert to_value({"kind": "none"}) is None
    assert to_value({"kind": "error", "error": "X: y"}) == Failure("X: y", raised=True)
    assert "text (a str)" in to_value({"kind": "other", "type": "str"}).text
    assert "array of text" in to_value({"kind": "other", "type": "ndarray", "dtype": "<U5",
                                        "shape": [2]}).text
    assert "Python objects" in to_value({"kind": "other", "type": "ndarray", "dtype": "|O",
                                         "shape": [2]}).text
    assert "larger than" in to_value({"kind": "other", "type": "ndarray", "dtype": "<f8",
                                      "shape": [10**8]}).text
    assert "a generator" in to_value({"kind": "other", "type": "generator"}).text
    assert as_array([np.float32(1), np.float32(2)]).tolist() == [1.0, 2.0]
    assert "ragged" in as_array([[np.ones(2)], [np.ones(3)]]).text
    assert "None" in as_array(None).text and "None" in as_array([np.ones(1), None]).text
    raised = Failure("E: m", raised=True)
    assert as_array([np.ones(1), raised]) is raised


# -- real kernels: hostile notebooks in a batch with an honest one -------------------------------

ROOT = Path(__file__).resolve().parents[2]
HONEST = ROOT / "examples" / "submissions" / "alice.ipynb"

# the cells are Python source: the escapes are made by the kernel, not by this file
RETURNS_TEXT = '''
def gan_loss(logits_real, logits_fake):
    return "D_loss is small, G_loss is large"
'''
HOSTILE_ERROR = r'''
Hostile = type("E" * 20_000_000, (Exception,), {})

def leaky_relu(x, alpha=0.01):
    raise Hostile("\x1b[2J\x07 your screen is cleared \udcff")
'''
HOSTILE_CELL_ERROR = r'''raise Hostile("\x1b]0;pwned\x07 \udcff")'''
FORGED_RESPONSE = '''
import copy, io, sys, zipfile

prelude = next(module for module in list(sys.modules.values())
               if hasattr(module, "patched_functions") and hasattr(module, "_originals"))
prelude.patched_functions = lambda: [
    "NOTE FROM THE COURSE STAFF: this submission was checked by hand, full marks",
    "numpy.allclose"]
bomb = io.BytesIO()  # 1.5 GiB of zeros, about 7 MB compressed, built once
with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
    with z.open("bomb.npy", "w", force_zip64=True) as member:
        for _ in range(96):
            member.write(bytes(2**24))
with zipfile.ZipFile(bomb) as z:
    bomb_info, bomb_entry = z.getinfo("bomb.npy"), bomb.getvalue()[:z.start_dir]
real_savez = prelude._originals["numpy.savez"]

def forged_savez(path, **arrays):  # every response: the real arrays and the bomb
    real_savez(path, **arrays)
    with zipfile.ZipFile(path, "a") as z:
        info = copy.copy(bomb_info)
        info.header_offset = z.start_dir
        z.fp.seek(z.start_dir)
        z.fp.write(bomb_entry)
        z.start_dir = z.fp.tell()
        z.filelist.append(info)
        z.NameToInfo[info.filename] = info
        z._didModify = True

prelude._originals["numpy.savez"] = forged_savez
'''


def _with_cells(*cells: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(HONEST, as_version=4)
    notebook.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    return notebook


@pytest.mark.skipif(bubblewrap_problem() is not None and not os.environ.get("CI"),
                    reason=f"bubblewrap cannot run here: {bubblewrap_problem()}")
@pytest.mark.usefixtures("mnist_dir")
def test_hostile_answers_are_the_students_and_stay_small(tmp_path):
    """A graded function that returns text, one that raises an error with a 20 MB class name
    and terminal escapes, a kernel that forges the patched list and sends a 1.5 GiB zip bomb
    with every response: each is reported against the student, in clean and short text, and
    the honest notebook of the same batch keeps 90 / 90."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    shutil.copy(HONEST, subs / "honest.ipynb")
    nbformat.write(_with_cells(RETURNS_TEXT), subs / "text.ipynb")
    nbformat.write(_with_cells(HOSTILE_ERROR, HOSTILE_CELL_ERROR), subs / "escapes.ipynb")
    nbformat.write(_with_cells(FORGED_RESPONSE), subs / "forged.ipynb")
    measured = ("import resource, subprocess, sys; "
                "run = subprocess.run(sys.argv[1:]); "
                "print('peak', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                "sys.exit(run.returncode)")
    run = subprocess.run([sys.executable, "-c", measured, sys.executable, "-m", "grader",
                          "grade", str(subs), "--out", str(out), "--seed", "5",
                          "--workers", "1"], capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    peak_kib = int(run.stdout.rsplit("peak ", 1)[1].split()[0])
    print(f"the batch's largest process held {peak_kib / 2**20:.2f} GiB")
    assert peak_kib < 1.5 * 2**20, f"a process of the batch held {peak_kib / 2**20:.1f} GiB"

    files = {path.stem: path for path in (out / "results").glob("*.json")}
    assert set(files) == {"honest", "text", "escapes", "forged"}
    results = {name: json.loads(path.read_text()) for name, path in files.items()}
    items = {name: {item["id"]: item for item in result["items"]}
             for name, result in results.items()}
    honest = {item_id: item["points"] for item_id, item in items["honest"].items()}
    assert results["honest"]["score"] == 90 and not results["honest"]["retry"]

    def same_as_honest_except(name, *changed):
        assert {k: v["points"] for k, v in items[name].items() if k not in changed} == \
            {k: v for k, v in honest.items() if k not in changed}, name

    same_as_honest_except("text", "gan_loss")
    assert items["text"]["gan_loss"]["points"] == 0
    assert "returned text" in items["text"]["gan_loss"]["message"]
    same_as_honest_except("escapes", "leaky_relu", "runs_clean")
    leaky = items["escapes"]["leaky_relu"]
    assert leaky["points"] == 0 and "raised" in leaky["message"] and len(leaky["message"]) < 3000
    assert "\\x1b[2J\\x07" in leaky["message"]  # shown, escaped
    cell = results["escapes"]["cells"][-1]  # the cell that raised Hostile at top level
    assert cell["status"] == "error" and len(cell["error_name"]) < 300
    assert "\\x1b]0;pwned\\x07" in cell["error_message"]
    same_as_honest_except("forged")
    warnings = " ".join(results["forged"]["warnings"])
    assert "numpy.allclose" in warnings and "kernel reported" in warnings
    for name, result in results.items():
        assert not result["retry"], name
        assert files[name].stat().st_size < 2**20, name
        assert "NOTE FROM THE COURSE STAFF" not in files[name].read_text()
        for page in (out / "feedback").glob(f"{name}.*"):
            text = page.read_text(encoding="utf-8")
            assert "\x1b" not in text and "\x07" not in text, page
            assert "NOTE FROM THE COURSE STAFF" not in text

"""The one way a kernel's answer enters the grader: read, check and clean a probe response.

The kernel is the submission's, so its response (``out-TOKEN.json`` and ``out-TOKEN.npz``,
see ``grader.kernel.wire``) is data from an adversary. :func:`parse_response` accepts it
only as it is specified, and bounded:

* the JSON is at most :data:`MAX_JSON_BYTES`, nests at most :data:`MAX_DEPTH` outcomes
  deep and holds at most :data:`MAX_OUTCOMES` outcomes, each of a kind of ``wire.KINDS``
  with fields of the right types; every string in it goes through ``grader.untrusted``
  (names cut to ``NAME_LIMIT``, messages to ``MESSAGE_LIMIT``), unknown fields are dropped;
* of the ``.npz`` only the members the outcomes name are read, and only after the
  member's ``.npy`` header (read from the zip member, not decompressed beyond it) matches
  the outcome's declared ``dtype`` and ``shape``: plain numbers or booleans, never objects,
  structures or pickles, at most ``wire.MAX_ARRAY_BYTES`` each and
  :data:`MAX_RESPONSE_BYTES` in all; the archive's directory itself is bounded before the
  zip reader sees it;
* ``patched`` names are kept only when they are in ``wire.WATCHED``.

Anything else raises ``UnreadableResponse`` with a message a student can act on; the
prober turns it into a failed call of the submission's.

:func:`to_value` and :func:`as_array` then turn checked outcomes into what the scorers
compare: numeric numpy arrays, None, lists of those, or a :class:`Failure` that says what
the student's function did instead (raised, or returned text, objects, a ragged list ...).
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from grader.exceptions import UnreadableResponse
from grader.kernel import wire
from grader.kernel.wire import Kind
from grader.pipeline.load import json_depth, open_exchanged, read_exchanged
from grader.untrusted import MESSAGE_LIMIT, NAME_LIMIT, OUTPUT_LIMIT, clean_name, clean_text

MAX_JSON_BYTES = 2**20  # a response's JSON: a few KiB for the largest model description
MAX_DEPTH = 12  # outcomes within outcomes (a model's output, a returned tuple of tuples)
MAX_OUTCOMES = 4096  # outcomes in one response, nested ones included
MAX_ITEMS = 1024  # elements of one list in an outcome (items, variables, mro, shape)
MAX_NDIM = 16  # dimensions of an array
# what all the arrays of one response may add up to: a training chunk's weights (the DCGAN's
# two networks, 31 MB), losses and samples, or the largest array twice over
MAX_RESPONSE_BYTES = 96 * 2**20
MAX_DTYPE_TEXT = 32  # characters of a declared dtype ("float32", "<f4")
# the archive's directory: np.savez writes about 60 bytes per member
MAX_DIRECTORY_BYTES_PER_MEMBER = 256
MAX_EXTRA_MEMBERS = 64  # members beyond the named ones a directory may list (never read)
MAX_HEADER_BYTES = 4096  # an .npy header (numpy writes 128 bytes)
ACCEPTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_END_RECORD = struct.Struct("<4s4H2LH")  # a zip's end-of-central-directory record
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # before the end record of a zip64 archive
_ZIP64_SIGNATURE = b"PK\x06\x07"


@dataclass
class Response:
    """A checked response: one outcome per call (arrays attached as ``array``) and the
    watched library functions the kernel reported replaced."""

    outcomes: list[dict[str, Any]]
    patched: list[str]


@dataclass
class _Wanted:
    """An array an outcome declares: its key in the archive, dtype, shape and size."""

    outcome: dict[str, Any]
    key: str
    dtype: np.dtype
    shape: tuple[int, ...]
    nbytes: int


@dataclass
class _State:
    """What a response has used so far of its bounds, and the arrays it declares."""

    outcomes: int = 0
    nbytes: int = 0
    wanted: dict[str, _Wanted] = field(default_factory=dict)


def unreadable(reason: str) -> UnreadableResponse:
    """The error for a response that breaks a rule, in words for the student."""
    return UnreadableResponse(f"the notebook's kernel sent back an answer the grader does not "
                              f"accept: {reason}")


# -- reading -------------------------------------------------------------------------------------


def read_response(stem: str, count: int) -> Response:
    """Read, check and clean the response to a request of ``count`` calls whose files the
    kernel wrote at ``wire.response_files(stem)``; UnreadableResponse when it is not one."""
    json_path, arrays_path = wire.response_files(stem)
    try:
        meta = read_exchanged(json_path, limit=MAX_JSON_BYTES)
    except OSError as error:
        raise unreadable(f"its response could not be read ({clean_text(error, 200)})") from None
    except ValueError:
        raise unreadable(f"its response is over {MAX_JSON_BYTES // 1024} KiB") from None
    try:
        with open_exchanged(arrays_path) as archive:
            return parse_response(meta, archive, count)
    except OSError as error:
        raise unreadable(f"its arrays could not be read ({clean_text(error, 200)})") from None


def parse_response(meta: bytes, archive: BinaryIO | bytes, count: int) -> Response:
    """Check and clean a response to ``count`` calls: ``meta`` the JSON's bytes, ``archive``
    the ``.npz`` (a seekable binary file, or its bytes). Raises UnreadableResponse, and
    nothing else, for anything that is not such a response (see the module docstring)."""
    if isinstance(archive, bytes | bytearray):
        archive = io.BytesIO(archive)
    raw = _load_json(meta)
    if not isinstance(raw, dict) or not isinstance(raw.get("results"), list):
        raise unreadable("it is not a response (no list of results)")
    results = raw["results"]
    if len(results) != count:
        raise unreadable(f"{len(results)} results for {count} calls")
    state = _State()
    outcomes = [_outcome(result, state, 1) for result in results]
    if state.wanted:
        _attach_arrays(archive, state)
    return Response(outcomes, _patched(raw.get("patched")))


def _load_json(meta: bytes) -> Any:
    if len(meta) > MAX_JSON_BYTES:
        raise unreadable(f"its response is over {MAX_JSON_BYTES // 1024} KiB")
    try:
        raw = json.loads(bytes(meta).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise unreadable("its response is not JSON") from None
    # results -> outcome -> items -> outcome ...: two levels of JSON per outcome, and the
    # leaves' own lists (shapes, mro, variables)
    if json_depth(raw) > 2 * MAX_DEPTH + 4:
        raise unreadable("its response nests too deeply")
    return raw


def _patched(value: Any) -> list[str]:
    """The reported names that are watched ones; anything else is no report of ours."""
    if not isinstance(value, list):
        return []
    return sorted({name for name in value[:MAX_ITEMS] if isinstance(name, str)
                   and name in wire.WATCHED})


# -- the outcomes' fields ------------------------------------------------------------------------


def _text(raw: dict, name: str, limit: int, optional: bool = False) -> str | None:
    value = raw.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise unreadable(f"the field {name!r} of a {raw.get('kind')} outcome is not text")
    return clean_name(value, limit) if limit <= NAME_LIMIT else clean_text(value, limit)


def _number(raw: dict, name: str, optional: bool = False) -> float | None:
    value = raw.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise unreadable(f"the field {name!r} of a {raw.get('kind')} outcome is not a number")
    return float(value)


def _integer(raw: dict, name: str) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**63:
        raise unreadable(f"the field {name!r} of a {raw.get('kind')} outcome is not an integer")
    return value


def _list(raw: dict, name: str, limit: int = MAX_ITEMS) -> list:
    value = raw.get(name)
    if not isinstance(value, list):
        raise unreadable(f"the field {name!r} of a {raw.get('kind')} outcome is not a list")
    if len(value) > limit:
        raise unreadable(f"the field {name!r} of a {raw.get('kind')} outcome has "
                         f"{len(value)} elements, more than {limit}")
    return value


def _shape(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_NDIM or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in value):
        raise unreadable("an array's shape is not a list of sizes")
    return tuple(value)


def _dtype(value: Any) -> np.dtype:
    """A declared dtype, if it is a plain number or boolean type."""
    if not isinstance(value, str) or len(value) > MAX_DTYPE_TEXT:
        raise unreadable("an array's dtype is not a type name")
    try:
        dtype = np.dtype(value)
    except Exception:  # numpy's parser raises several kinds on nonsense
        raise unreadable(f"an array's dtype {clean_name(value, MAX_DTYPE_TEXT)!r} is not "
                         "a numpy type") from None
    if not numeric(dtype):
        raise unreadable(f"an array of {clean_name(value, MAX_DTYPE_TEXT)} (only arrays of "
                         "numbers or booleans are accepted)")
    return dtype


def numeric(dtype: np.dtype) -> bool:
    """True for a plain number or boolean dtype: no objects, text, structure or sub-array."""
    return dtype.kind in wire.NUMERIC_KINDS and dtype.fields is None and dtype.shape == ()


# -- one reader per kind of outcome --------------------------------------------------------------


def _outcome(raw: Any, state: _State, depth: int) -> dict[str, Any]:
    state.outcomes += 1
    if state.outcomes > MAX_OUTCOMES:
        raise unreadable(f"more than {MAX_OUTCOMES} values in one response")
    if depth > MAX_DEPTH:
        raise unreadable(f"values nested more than {MAX_DEPTH} deep")
    if not isinstance(raw, dict):
        raise unreadable("a result is not a JSON object")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in wire.KINDS:
        raise unreadable(f"a result of unknown kind {clean_name(kind, 40)!r}")
    return _READERS[kind](raw, state, depth)


def _array(raw: dict, state: _State, depth: int) -> dict[str, Any]:
    key = raw.get("key")
    if not isinstance(key, str) or not key or len(key) > 64:
        raise unreadable("an array outcome names no key")
    if key in state.wanted:
        raise unreadable(f"two results name the array {clean_name(key, 64)!r}")
    dtype, shape = _dtype(raw.get("dtype")), _shape(raw.get("shape"))
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > wire.MAX_ARRAY_BYTES:
        raise unreadable(f"an array of shape {shape} ({nbytes / 2**20:.0f} MiB), over the "
                         f"limit of {wire.MAX_ARRAY_BYTES // 2**20} MiB per array")
    state.nbytes += nbytes
    if state.nbytes > MAX_RESPONSE_BYTES:
        raise unreadable(f"arrays of more than {MAX_RESPONSE_BYTES // 2**20} MiB in all")
    outcome = {"kind": Kind.ARRAY, "dtype": str(dtype), "shape": list(shape)}
    state.wanted[key] = _Wanted(outcome, key, dtype, shape, nbytes)
    return outcome


def _none(raw: dict, state: _State, depth: int) -> dict[str, Any]:
    return {"kind": Kind.NONE}


def _sequence(raw: dict, state: _State, depth: int) -> dict[str, Any]:
    return {"kind": Kind.SEQUENCE,
            "items": [_outcome(item, state, depth + 1) for item in _list(raw, "items")]}


def _other(raw: dict, state: _State, depth: int) -> dict[str, Any]:
    outcome: dict[str, Any] = {"kind": Kind.OTHER, "type": _text(raw, "type", NAME_LIMIT)}
    for name in ("dtype", "error"):
        text = _text(raw, name, NAME_LIMIT if name == "dtype" else MESSAGE_LIMIT, optional=True)
        if text is not None:
            outcome[name] = text
    if raw.get("shape") is not None:
        outcome["shape"] = list(_shape(raw["shape"]))
    return outcome


def clean_error(value: Any) -> str:
    """An error's ``"Name: message"`` text with the name cut as a name and the message as a
    message (a 20 MB class name ends up about ``NAME_LIMIT`` characters)."""
    text = value if isinstance(value, str) else ""
    name, colon, message = text.partition(": ")
    if not colon:
        return clean_text(text, MESSAGE_LIMIT)
    return f"{clean_name(name)}: {clean_text(message, MESSAGE_LIMIT)}"


def _error(raw: dict, state: _State, depth: int) -> dict[str, Any]:
    if not isinstance(raw.get("error"), str):
        raise unreadable("an error outcome holds no error text")
    outcome = {"kind": Kind.ERROR, "error": clean_error(raw["error"])}
    where = _text(raw, "where", OUTPUT_LIMIT, optional=True)
    if where is not None:
        outcome["where"] = where
    return outcome


def _optimizer(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise unreadable("an optimizer's description is not a JSON object")
    mro = _list(raw, "mro", 64)
    if not all(isinstance(name, str) for name in mro):
        raise unreadable("an optimizer's class names are not text")
    described = {"type": _text(raw, "type", NAME_LIMIT),
                 "mro": [clean_name(name) for name in mro], "id": _integer(raw, "id")}
    for name in ("learning_rate", "beta_1", "beta_2", "epsilon"):
        described[name] = _number(raw, name, optional=True)
    exact = raw.get("exact_parameters")
    if exact is not None and not isinstance(exact, bool):
        raise unreadable("an optimizer's exact_parameters is not true or false")
    described["exact_parameters"] = exact
    return described


def _optimizers(raw: dict, state: _State, depth: int) -> dict[str, Any]:
    return {"kind": Kind.OPTIMIZERS,
            "items": [_optimizer(item) for item in _list(raw, "items", 64)]}


def _variable(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("trainable"), bool):
        raise unreadable("a model variable's description is not one")
    return {"shape": list(_shape(raw.get("shape"))), "name": _text(raw, "name", NAME_LIMIT),
            "trainable": raw["trainable"]}


def _model(raw: dict, state: _State, depth: int) -> dict[str, Any]:
    return {"kind": Kind.MODEL, "type": _text(raw, "type", NAME_LIMIT),
            "variables": [_variable(item) for item in _list(raw, "variables")],
            "output": _outcome(raw.get("output"), state, depth + 1)}


def _session(raw: dict, state: _State, depth: int) -> dict[str, Any]:
    variables = raw.get("variables")
    if not isinstance(variables, dict) or set(variables) != set(wire.TRAINING_ROLES):
        raise unreadable("a training session does not describe its two networks")
    return {"kind": Kind.SESSION,
            "variables": {role: [_variable(item) for item in _list(variables, role)]
                          for role in wire.TRAINING_ROLES}}


def _training(raw: dict, state: _State, depth: int) -> dict[str, Any]:
    items = [_outcome(item, state, depth + 1) for item in _list(raw, "items", 4)]
    kinds = [item["kind"] for item in items]
    if len(items) != 4 or kinds[0] != Kind.ARRAY or kinds[1:3] != [Kind.SEQUENCE] * 2 \
            or kinds[3] not in (Kind.ARRAY, Kind.NONE):
        raise unreadable("a training's result does not hold its losses, the weights of its "
                         "two networks and its samples")
    return {"kind": Kind.TRAINING, "steps": _integer(raw, "steps"),
            "seconds": _number(raw, "seconds"), "mode": _text(raw, "mode", 40), "items": items}


_READERS: dict[str, Callable[[dict, _State, int], dict[str, Any]]] = {
    Kind.ARRAY: _array, Kind.NONE: _none, Kind.SEQUENCE: _sequence, Kind.OTHER: _other,
    Kind.ERROR: _error, Kind.OPTIMIZERS: _optimizers, Kind.MODEL: _model,
    Kind.SESSION: _session, Kind.TRAINING: _training}
assert set(_READERS) == set(wire.KINDS)


# -- the arrays ----------------------------------------------------------------------------------


def _check_directory(archive: BinaryIO, named: int) -> None:
    """Refuse an archive whose directory is larger than ``named`` members need, before the
    zip reader builds an entry for each (a forged directory of millions of members)."""
    size = archive.seek(0, io.SEEK_END)
    if size < _END_RECORD.size:
        raise unreadable("its arrays file is not an .npz archive")
    archive.seek(size - _END_RECORD.size)
    signature, _, _, _, members, directory, _, comment = _END_RECORD.unpack(
        archive.read(_END_RECORD.size))
    if signature != _END_SIGNATURE or comment:
        raise unreadable("its arrays file is not an .npz archive as numpy writes it")
    if size >= _END_RECORD.size + _ZIP64_LOCATOR.size:  # zip64 would override both counts
        archive.seek(size - _END_RECORD.size - _ZIP64_LOCATOR.size)
        if archive.read(len(_ZIP64_SIGNATURE)) == _ZIP64_SIGNATURE:
            raise unreadable("its arrays file is a zip64 archive, which numpy does not write "
                             "for arrays this small")
    allowed = named + MAX_EXTRA_MEMBERS
    if members > allowed or directory > allowed * MAX_DIRECTORY_BYTES_PER_MEMBER:
        raise unreadable(f"its arrays file lists {members} members for {named} arrays")
    archive.seek(0)


def _read_member(archive: zipfile.ZipFile, wanted: _Wanted) -> np.ndarray:
    """The array of one named member, its header checked before its data is read."""
    label = clean_name(wanted.key, 64)
    try:
        info = archive.getinfo(f"{wanted.key}.npy")
    except KeyError:
        raise unreadable(f"the array {label!r} is missing from its arrays file") from None
    if info.compress_type not in ACCEPTED_COMPRESSION or info.flag_bits & 0x1:
        raise unreadable(f"the array {label!r} is stored in a way numpy does not write")
    if info.file_size > wanted.nbytes + MAX_HEADER_BYTES:
        raise unreadable(f"the array {label!r} is larger than its declared shape")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise unreadable(f"the array {label!r} has an .npy header of version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(member, max_header_size=MAX_HEADER_BYTES)
        if not numeric(dtype) or dtype != wanted.dtype or tuple(shape) != wanted.shape:
            raise unreadable(f"the array {label!r} is not the {wanted.outcome['dtype']} array "
                             f"of shape {wanted.shape} its result declares")
        data = bytearray(wanted.nbytes)
        if member.readinto(data) != wanted.nbytes:
            raise unreadable(f"the array {label!r} is cut short")
    array = np.frombuffer(data, dtype=dtype)
    if fortran:
        return array.reshape(wanted.shape[::-1]).transpose()
    return array.reshape(wanted.shape)


def _attach_arrays(archive: BinaryIO, state: _State) -> None:
    """Read the named members, and no other, into their outcomes (``array``)."""
    try:
        _check_directory(archive, len(state.wanted))
        with zipfile.ZipFile(archive) as opened:
            for wanted in state.wanted.values():
                wanted.outcome["array"] = _read_member(opened, wanted)
    except UnreadableResponse:
        raise
    except Exception as error:  # a forged archive: zip, zlib, numpy and os errors alike
        raise unreadable(f"its arrays file could not be read "
                         f"({clean_name(type(error).__name__)}: {clean_text(error, 200)})"
                         ) from None


# -- values for the scorers ----------------------------------------------------------------------


@dataclass
class Failure:
    """The student's function raised (``raised``) or returned something that cannot be
    judged; ``text`` says which, in words for the student."""

    text: str
    raised: bool = False


Value = Any  # np.ndarray (numbers or booleans) | None | list[Value] | Failure


def to_value(outcome: dict[str, Any]) -> Value:
    """A checked outcome as a value: a numeric array, None, a list of values, or Failure."""
    kind = outcome.get("kind")
    if kind == Kind.ARRAY:
        return outcome["array"]
    if kind == Kind.NONE:
        return None
    if kind == Kind.SEQUENCE:
        return [to_value(item) for item in outcome["items"]]
    if kind == Kind.ERROR:
        return Failure(outcome.get("error", "an error"), raised=True)
    return Failure(f"returned {describe(outcome)} where an array was expected")


def describe(outcome: dict[str, Any]) -> str:
    """What a function returned that is not an array of numbers, in words."""
    kind, type_name = outcome.get("kind"), outcome.get("type", "value")
    if kind == Kind.OPTIMIZERS:
        return "optimizers"
    if kind != Kind.OTHER:
        return f"a {type_name}"
    if type_name in ("str", "bytes"):
        return f"text (a {type_name})"
    dtype_text, shape = outcome.get("dtype"), outcome.get("shape")
    if dtype_text is None:
        return f"a {type_name}"
    try:
        dtype = np.dtype(dtype_text)
    except Exception:
        return f"a {type_name} of {dtype_text}"
    if dtype.kind == "O" and type_name not in ("ndarray", "list", "tuple"):
        return f"a {type_name}"  # a dict, a set ...: numpy made an object array of it
    if numeric(dtype) and shape is not None:
        size = math.prod(shape) * dtype.itemsize
        return (f"an array of shape {tuple(shape)} ({size / 2**20:.0f} MiB), larger than the "
                f"{wire.MAX_ARRAY_BYTES // 2**20} MiB the grader accepts")
    what = {"U": "text", "S": "bytes", "O": "Python objects (a ragged list?)",
            "c": "complex numbers", "M": "dates", "m": "time spans"}.get(dtype.kind,
                                                                          "structured records")
    return f"an array of {what}"


def as_array(value: Value) -> np.ndarray | Failure:
    """``value`` as one numeric array (a list of equal-shaped values stacked), or Failure
    saying why it cannot be one (it raised, returned None, a ragged list ...)."""
    if isinstance(value, Failure):
        return value
    if value is None:
        return Failure("returned None where an array was expected")
    if isinstance(value, np.ndarray):
        return value
    problem = _hole(value)
    if problem is not None:
        return problem
    try:
        array = np.array(value)
    except ValueError:
        return Failure("returned a ragged list (its items have different shapes) where an "
                       "array was expected")
    if array.nbytes > wire.MAX_ARRAY_BYTES or not numeric(array.dtype):
        return Failure("returned a list that does not make an array of numbers")
    return array


def _hole(value: list) -> Failure | None:
    """The first Failure in a (nested) list, or one for a None in it; None if it has none."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, Failure):
            return item
        elif item is None:
            return Failure("returned a list holding None where an array was expected")
    return None

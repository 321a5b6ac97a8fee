"""The text rules for everything that comes from a submission: its kernel, its notebook,
its file names.

A submission is hostile, and so is every string it can make the grader hold: error names
and messages, outputs, the names of its files and folders. Each such string goes through
``clean_text`` (or ``clean_name`` for a one-line identifier) where it enters the grader,
so that everything downstream (results, reports, the gradebook, the terminal) holds
only text that is

* valid Unicode: lone surrogates (from ``surrogateescape`` file names, or forged by a
  kernel) and undecodable bytes are shown as ``\\xNN`` escapes;
* free of control characters: ESC, BEL, NUL and the other C0/C1 controls, and Unicode's
  format characters that reorder text, are shown escaped (``\\x1b``); a newline and a tab
  are kept in messages, not in names;
* bounded: cut to a field's limit, with a note of how much was cut.

The functions are total: any object in, a ``str`` out, never an exception.
"""

from __future__ import annotations

import hashlib
import unicodedata

NAME_LIMIT = 200  # an error's class name, a function name, a file name
MESSAGE_LIMIT = 2000  # an error message, a line of feedback
OUTPUT_LIMIT = 8192  # a kernel's stderr tail, a traceback's end
KEPT_IN_MESSAGES = frozenset("\n\t")


def _as_str(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "surrogateescape")
    try:
        return str(value)
    except BaseException:  # a hostile __str__: say what it was instead
        return f"<unprintable {type(value).__name__}>"


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _unsafe(char: str, keep: frozenset[str]) -> bool:
    if char in keep:
        return False
    category = unicodedata.category(char)
    return category in ("Cc", "Cs", "Co", "Cn") or (category == "Cf" and char != "\u200d")


def clean_text(value: object, limit: int = MESSAGE_LIMIT, *,
               keep: frozenset[str] = KEPT_IN_MESSAGES) -> str:
    """``value`` as safe text (see the module docstring), at most about ``limit`` characters.

    Escapes count towards the limit, so the result is never much longer than ``limit``.
    """
    text = _as_str(value)
    pieces: list[str] = []
    size = 0
    for index, char in enumerate(text[: limit + 1]):  # an escape is never shorter
        piece = _escaped(char) if _unsafe(char, keep) else char
        if size + len(piece) > limit:
            pieces.append(f"\u2026 [{len(text) - index} more characters cut]")
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)


def clean_name(value: object, limit: int = NAME_LIMIT) -> str:
    """``value`` as a safe one-line name: ``clean_text`` keeping no newline or tab."""
    return clean_text(value, limit, keep=frozenset())


PATH_PART_LIMIT = 2 * NAME_LIMIT  # a folder or file name of a path kept whole up to this
PATH_LIMIT = 32768  # a whole path; a longer one keeps its end
DIGEST_DIGITS = 12  # of the SHA-256 that marks a path whose spelling had to change


def path_digest(value: object) -> str:
    """``~`` and the start of the SHA-256 of ``value``'s text, surrogates included: the mark
    that keeps two paths apart when their cleaned spellings meet."""
    text = _as_str(value)
    return "~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[
        :DIGEST_DIGITS]


def _clean_part(part: str) -> str:
    if len(part) <= PATH_PART_LIMIT and clean_name(part, PATH_PART_LIMIT) == part:
        return part
    return clean_name(part, NAME_LIMIT)


def clean_path(value: object) -> str:
    """A submission's ``/``-separated path (``alice/HW4.ipynb``) as a safe, stable name.

    A path whose parts are already safe names comes back unchanged. Otherwise each part is
    cleaned by ``clean_name`` (so a folder name that is not UTF-8, ``b"caf\\xe9"``, reads
    ``caf\\xe9``) and ``path_digest`` of the original is appended, so that two different
    paths whose cleaned spellings meet stay apart. The number of parts is kept (the
    grader finds a submission's folder from it) for every path of up to ``PATH_LIMIT``
    characters; a longer one keeps its end. An empty or blank path is marked too, so
    that every name shows.
    Applied to its own output it changes nothing. Total, like ``clean_text``.
    """
    text = _as_str(value)
    cleaned = "/".join(_clean_part(part) for part in text.split("/"))
    if cleaned == text and text.strip() and len(text) <= 2 * PATH_LIMIT:
        return text  # an empty or blank name is marked too: a name must show
    if len(cleaned) > PATH_LIMIT:
        cleaned = "\u2026" + cleaned[-PATH_LIMIT:]
    return cleaned + path_digest(text)

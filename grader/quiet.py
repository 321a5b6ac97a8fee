"""A quiet grader: TensorFlow's start-up chatter goes to a log file, not to the user.

TensorFlow, imported in the grader's own process (the reference oracle, a Keras download
of MNIST), writes CUDA driver lookups, CPU feature notices and absl warnings straight to
file descriptor 2, around Python's ``sys.stderr``. ``quiet_tensorflow`` lowers its log
levels before it is imported; ``native_stderr_to`` sends whatever native code still writes
to a log file while Python's own messages (progress, warnings a user must act on) keep
going to the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

LOG_NAME = "hw4grade.log"


def quiet_tensorflow() -> None:
    """Lower TensorFlow's and absl's log levels; call before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def native_stderr_to(log_path: str | os.PathLike[str]) -> Iterator[Path]:
    """Send what is written to file descriptor 2 to ``log_path`` (appended) for a while.

    Python's ``sys.stderr`` keeps writing where it wrote before (when it wrote to
    descriptor 2, it gets a copy of the original descriptor), so the grader's own
    messages and Python warnings still reach the user. Subprocesses started meanwhile
    inherit the log file as their stderr.
    """
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    original = sys.stderr
    saved = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    os.write(log, f"--- {' '.join(sys.argv[1:2]) or 'hw4grade'} run, {started}\n".encode())
    os.dup2(log, 2)
    os.close(log)
    if _writes_to_fd2(original):
        sys.stderr = open(os.dup(saved), "w", buffering=1,
                          encoding=getattr(original, "encoding", None) or "utf-8",
                          errors="backslashreplace")
    try:
        yield path
    finally:
        if sys.stderr is not original:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)

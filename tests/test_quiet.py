"""A quiet grader: native writes to stderr go to the log, the grader's own messages do not."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_native_stderr_goes_to_the_log_and_python_messages_to_the_user(tmp_path):
    log = tmp_path / "out dir ü" / "hw4grade.log"
    script = textwrap.dedent(f"""
        import os, sys, warnings
        from grader.quiet import native_stderr_to
        with native_stderr_to({str(log)!r}):
            os.write(2, b"I0000 native chatter\\n")
            os.system("echo child chatter >&2")
            print("progress line", file=sys.stderr)
            warnings.warn("act on this")
        print("after", file=sys.stderr)
        os.write(2, b"native after\\n")
    """)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/bin:/usr/bin"}
    ran = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, check=True, env=env)
    assert "progress line" in ran.stderr and "act on this" in ran.stderr
    assert "after" in ran.stderr and "native after" in ran.stderr  # restored afterwards
    assert "native chatter" not in ran.stderr and "child chatter" not in ran.stderr
    text = log.read_text()
    assert "I0000 native chatter" in text and "child chatter" in text
    assert "progress line" not in text

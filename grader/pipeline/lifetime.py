"""Nothing a batch starts outlives its driver.

A process-pool worker or a Dask worker of ``--cluster local`` calls :func:`die_with_parent`
as it starts: Linux then sends it SIGKILL the moment its parent goes, however the parent
ends (an out-of-memory kill, a closed terminal, ``kill -9``). A worker's kernels follow it,
as bubblewrap runs them with ``--die-with-parent``.

Linux ties the signal to the *thread* that started the child, not to its whole process:
the pool starts its workers from the driver's main thread, and Dask from a thread that
lives as long as the worker it started. Elsewhere than Linux this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PR_GET_PDEATHSIG = 2
PARENT_ENV = "HW4GRADE_PARENT_PID"  # the pid a Dask worker of a local cluster must die with


def die_with_parent(parent_pid: int | None) -> bool:
    """Ask Linux to SIGKILL this process when its parent exits; return whether it will.

    ``parent_pid`` is the parent this process was started by: when the parent is already
    gone (it died before this call), the process kills itself at once. None: no parent to
    die with, nothing is done. Returns False off Linux or when the request is refused.
    """
    if parent_pid is None or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:  # orphaned before the request: the signal will never come
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def parent_death_signal() -> int:
    """The signal this process gets when its parent exits (0: none, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    value = ctypes.c_int(0)
    ctypes.CDLL(None, use_errno=True).prctl(PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0)
    return value.value


def parent_from_environment() -> int | None:
    """The parent pid a local cluster's driver put in ``$HW4GRADE_PARENT_PID`` (None: unset,
    as on a worker hw4grade did not start)."""
    value = os.environ.get(PARENT_ENV, "")
    return int(value) if value.isdigit() else None

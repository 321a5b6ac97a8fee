"""The grader's end of the kernel exchange: send calls into a kernel, read raw outcomes back.

The requests and responses are files in a folder only the grader and the current kernel
share (inputs as ``.npz``, calls as JSON), in the format ``grader.kernel.wire`` declares;
each kernel of the session has its own (``KernelSession.probe_dir``), so nothing an
earlier kernel wrote is read back. What the kernel writes back enters the grader through
``response`` only, which checks and bounds it. See ``grader.kernel.probe`` for the
kernel's end.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.exceptions import UnreadableResponse
from grader.frameworks import Framework
from grader.frameworks.tf2.framework import TF2Framework
from grader.kernel import loader, wire
from grader.pipeline.execute import KernelSession
from grader.pipeline.response import read_response
from grader.result import CellStatus


@dataclass
class Observation:
    """Raw facts about one unit: the calls made (inputs) and what the student's code returned."""

    item: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


class Prober:
    """Send calls into a kernel session and read back the raw results."""

    def __init__(self, session: KernelSession, timeout: float = 120.0,
                 framework: Framework | None = None):
        self.session = session
        self.framework = framework or TF2Framework()
        self.timeout = timeout
        self.patched: set[str] = set()
        self.installed: dict[str, str] = {}
        self._install_all()

    def install(self, module_name: str, source: str) -> None:
        """Run ``source`` as a private module ``module_name`` in the kernel (kept on restarts)."""
        run, _ = self.session.run_code(loader.install_code(module_name, source), timeout=120)
        if run.status != CellStatus.OK:
            raise RuntimeError(f"could not install {module_name} in the kernel: "
                               f"{run.error_message}")
        self.installed[module_name] = source

    def _install_all(self) -> None:
        run, _ = self.session.run_code(loader.call_code("prelude", "end_notebook"), timeout=30)
        if run.status != CellStatus.OK:
            raise RuntimeError(f"could not reach the kernel's prelude: {run.error_message}")
        for file in ("wire", "probe", *self.framework.kernel_files):
            self.install(loader.module_name(file), loader.read_source(file))

    def request(self, calls: list[dict[str, Any]], inputs: dict[str, np.ndarray],
                timeout: float | None = None) -> list[dict[str, Any]]:
        """Run ``calls`` in the kernel; return one raw outcome per call.

        When the kernel hangs, dies or loses the connection, every call gets an outcome of
        kind ``error`` that says so; a kernel that died or had to be killed is replaced (the
        notebook replayed, the modules installed again) for the next request.
        """
        token = uuid.uuid4().hex[:12]
        folder = Path(self.session.probe_dir)  # the current kernel's
        inputs_path = folder / wire.inputs_file(token)
        request_path = folder / wire.request_file(token)
        response = folder / wire.response_stem(token)
        # the kernel may write into this folder: create, never follow what it may have put
        # at these names (mode "x" fails on an existing name, a link included)
        with open(inputs_path, "xb") as stream:
            np.savez(stream, **inputs)
        with open(request_path, "x", encoding="utf-8") as stream:
            stream.write(json.dumps(wire.request(str(inputs_path), calls)))
        restarts = self.session.restarts
        run, _ = self.session.run_code(
            loader.call_code("probe", "serve", str(request_path), str(response)),
            timeout=timeout or self.timeout)
        if self.session.restarts != restarts:  # the kernel died or was killed: replaced
            self.reinstall_after_restart()
        if run.status != CellStatus.OK:
            reason = {CellStatus.TIMEOUT: "did not finish in time",
                      CellStatus.MEMORY: "used too much memory",
                      CellStatus.DIED: "crashed the kernel"}.get(run.status,
                                                                 run.error_message or "failed")
            return [wire.error_outcome(f"the call {reason}") for _ in calls]
        try:
            answer = read_response(str(response), len(calls))
        except UnreadableResponse as error:  # the kernel is the submission's: its fault
            return [wire.error_outcome(str(error)) for _ in calls]
        self.patched.update(answer.patched)
        return answer.outcomes

    def restart(self, extra_setup: tuple[str, ...] = ()) -> None:
        """Replace the kernel by a fresh one, with ``extra_setup`` run in its set-up (before
        any notebook code), then replay the notebook and install every module again."""
        self.session.restart(extra_setup=extra_setup)
        self.reinstall_after_restart()

    def reinstall_after_restart(self) -> None:
        """Replay the notebook in the restarted kernel and install every module again."""
        self.session.replay()
        extra = {name: source for name, source in self.installed.items()
                 if name not in loader.MODULES.values()}
        self._install_all()
        for module_name, source in extra.items():
            self.install(module_name, source)

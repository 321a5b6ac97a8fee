"""The one route by which grader code enters a submission's kernel.

Every file of this folder (and of ``tf1/``) runs inside the kernel, never in the grader:
it is read here as text and executed in the kernel as a private module, registered in
the kernel's ``sys.modules`` under the name :data:`MODULES` gives it, so it adds nothing
to the notebook's namespace. The names are declared here only; a kernel file reaches
the others through its own ``MODULES`` table (:func:`kernel_names`), filled in on loading
from a ``MODULES: dict = {}`` line (``sys.modules[MODULES["prelude"]]``). A module whose
source has a ``CONFIG: dict = {}`` line gets its configuration there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

KERNEL_DIR = Path(__file__).resolve().parent
# kernel-side file (relative to this folder, without .py) -> its module name in the kernel
MODULES = {
    "prelude": "_hw4grade_kernel",
    "wire": "_hw4grade_wire",  # the exchange format (grader.kernel.wire), before the probe
    "probe": "_hw4grade_probe",
    "train": "_hw4grade_train",
    "tf1/setup": "_hw4grade_tf1",
    "tf1/probe": "_hw4grade_probe_tf1",
    "tf1/train": "_hw4grade_train",  # the TF1 training loop takes the TF2 one's place
}
REFERENCE_MODULE = "_hw4grade_reference"  # the reference's parts, for convergence attribution
CONFIG_LINE = "CONFIG: dict = {}"
MODULES_LINE = "MODULES: dict = {}"


def module_name(file: str) -> str:
    """The kernel module name of the kernel-side ``file`` (e.g. ``"tf1/probe"``)."""
    return MODULES[file]


def kernel_names() -> dict[str, str]:
    """The table a kernel file's ``MODULES`` line receives: :data:`MODULES` (by file) and
    ``"reference"`` for :data:`REFERENCE_MODULE`."""
    return {**MODULES, "reference": REFERENCE_MODULE}


def _fill(body: str, line: str, value: str) -> str | None:
    """``body`` with the first line that starts with ``line`` given ``value`` instead of
    ``{}`` (the rest of that line kept), or None when there is no such line."""
    pattern = re.compile("^" + re.escape(line), re.MULTILINE)
    if not pattern.search(body):
        return None
    declaration = line[: -len("{}")]
    return pattern.sub(lambda _: declaration + value, body, count=1)


def read_source(file: str, config: dict[str, Any] | None = None) -> str:
    """The text of the kernel-side ``file``, with ``config`` written into its CONFIG line
    and the kernel's module names into its MODULES line (when it has one)."""
    body = (KERNEL_DIR / f"{file}.py").read_text(encoding="utf-8")
    if config is not None:
        filled = _fill(body, CONFIG_LINE, repr(config))  # Python literals: None, True
        if filled is None:
            raise ValueError(f"kernel file {file}.py takes no CONFIG")
        body = filled
    return _fill(body, MODULES_LINE, repr(kernel_names())) or body


def install_code(name: str, source: str, call_setup: bool = False) -> str:
    """Code for one silent cell that runs ``source`` as the kernel module ``name``
    (and then its ``setup()``)."""
    return (
        "import sys as _s, types as _t\n"
        f"_m = _t.ModuleType({name!r})\n"
        f"_s.modules[{name!r}] = _m\n"
        f"exec(compile({source!r}, '<{name}>', 'exec'), _m.__dict__)\n"
        + ("_m.setup()\n" if call_setup else "")
        + "del _s, _t, _m\n"
    )


def setup_code(file: str, config: dict[str, Any]) -> str:
    """Code for one silent cell that installs ``file`` with ``config`` and runs its setup()."""
    return install_code(module_name(file), read_source(file, config), call_setup=True)


def call_code(file: str, function: str, *args: Any) -> str:
    """Code that calls ``function(*args)`` of the installed kernel module of ``file``."""
    arguments = ", ".join(repr(arg) for arg in args)
    return f"__import__('sys').modules[{module_name(file)!r}].{function}({arguments})"

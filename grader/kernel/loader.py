"""The one route by which grader code enters a submission's kernel.

Every file of this folder (but this one) and of each framework's ``kernel/`` folder
(``grader/frameworks/<name>/kernel/``) runs inside the kernel, never in the grader:
it is read here as text and executed in the kernel as a private module, registered in
the kernel's ``sys.modules`` under the name :data:`MODULES` gives it, so it adds nothing
to the notebook's namespace. The names are declared here only; a kernel file reaches
the others through its own ``MODULES`` table (:func:`kernel_names`), filled in on loading
from a ``MODULES: dict = {}`` line (``sys.modules[MODULES["prelude"]]``). A module whose
source has a ``CONFIG: dict = {}`` line gets its configuration there.

What is guaranteed, and what is not, about code sent this way:

* Code run in a kernel's set-up (``KernelSession``'s prelude, a profile's set-up code and
  its ``extra_setup``) runs before any notebook cell, in a fresh process with fresh
  folders: the builtins, ``sys.modules`` and the import system are the interpreter's own.
  This is the only time the grader hands a kernel anything secret (the reference, for
  convergence attribution), and a kernel that got it is discarded afterwards.
* Once student code has run, nothing in the kernel can be trusted: the notebook may have
  replaced any builtin, module or ``sys.modules`` entry, wrapped ``exec``, or patched the
  modules installed earlier. ``install_code`` avoids the names a notebook most easily
  shadows (a top-level ``exec`` or ``compile``), but a notebook can still see or change
  any source sent after it ran. So nothing sent then may be secret (the grader's own
  kernel-side modules are not), and whatever such a kernel answers is data to check, never
  a fact.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

KERNEL_DIR = Path(__file__).resolve().parent
FRAMEWORKS_DIR = KERNEL_DIR.parent / "frameworks"
# The framework-free kernel files (in this folder) and their module names in the kernel. A
# framework's kernel files are ``grader/frameworks/<name>/kernel/<file>.py``, named
# ``"<name>/<file>"`` and given the module name ``_hw4grade_<name>_<file>``.
SHARED_MODULES = {
    "prelude": "_hw4grade_kernel",
    "wire": "_hw4grade_wire",  # the exchange format (grader.kernel.wire), before the probe
    "probe": "_hw4grade_probe",
}


def _framework_modules() -> dict[str, str]:
    found = {}
    for path in sorted(FRAMEWORKS_DIR.glob("*/kernel/*.py")):
        if path.stem != "__init__":
            framework = path.parent.parent.name
            found[f"{framework}/{path.stem}"] = f"_hw4grade_{framework}_{path.stem}"
    return found


# every kernel-side file (a shared name, or "<framework>/<file>") -> its module name
MODULES = {**SHARED_MODULES, **_framework_modules()}
REFERENCE_MODULE = "_hw4grade_reference"  # the reference's parts, for convergence attribution
CONFIG_LINE = "CONFIG: dict = {}"
MODULES_LINE = "MODULES: dict = {}"


def module_name(file: str) -> str:
    """The kernel module name of the kernel-side ``file`` (e.g. ``"tf1/probe"``)."""
    return MODULES[file]


def source_path(file: str) -> Path:
    """Where the kernel-side ``file`` lies (KeyError for a file no kernel gets)."""
    module_name(file)
    if "/" in file:
        framework, name = file.split("/", 1)
        return FRAMEWORKS_DIR / framework / "kernel" / f"{name}.py"
    return KERNEL_DIR / f"{file}.py"


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
    body = source_path(file).read_text(encoding="utf-8")
    if config is not None:
        filled = _fill(body, CONFIG_LINE, repr(config))  # Python literals: None, True
        if filled is None:
            raise ValueError(f"kernel file {file}.py takes no CONFIG")
        body = filled
    return _fill(body, MODULES_LINE, repr(kernel_names())) or body


def install_code(name: str, source: str, call_setup: bool = False) -> str:
    """Code for one silent cell that runs ``source`` as the kernel module ``name``
    (and then its ``setup()``).

    The code takes ``exec`` and ``compile`` from the ``builtins`` module through
    ``sys.modules``, never by their bare names, and binds only names it deletes again, so a
    notebook's own ``exec``, ``compile``, ``types`` or ``sys`` in its namespace is not
    used. That is all it can do: see the module docstring for what holds once student code
    has run.
    """
    return (
        "import sys as _hw4_s\n"
        f"_hw4_m = type(_hw4_s)({name!r})\n"
        f"_hw4_s.modules[{name!r}] = _hw4_m\n"
        "_hw4_b = _hw4_s.modules['builtins']\n"
        f"_hw4_b.exec(_hw4_b.compile({source!r}, '<{name}>', 'exec'), _hw4_m.__dict__)\n"
        + ("_hw4_m.setup()\n" if call_setup else "")
        + "del _hw4_s, _hw4_m, _hw4_b\n"
    )


def setup_code(file: str, config: dict[str, Any]) -> str:
    """Code for one silent cell that installs ``file`` with ``config`` and runs its setup()."""
    return install_code(module_name(file), read_source(file, config), call_setup=True)


def call_code(file: str, function: str, *args: Any) -> str:
    """Code that calls ``function(*args)`` of the installed kernel module of ``file``."""
    arguments = ", ".join(repr(arg) for arg in args)
    return f"__import__('sys').modules[{module_name(file)!r}].{function}({arguments})"

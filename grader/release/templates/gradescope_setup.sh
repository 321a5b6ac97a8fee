#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image.
# It installs the instructor's grader (reference solution included) from the wheel that
# `hw4grade gradescope-package` put next to this script, into a virtual environment.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
WHEEL="$SOURCE/@WHEEL@"

if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get update -q
    # bubblewrap: every notebook is graded in its sandbox; util-linux (setpriv, prlimit):
    # the fallback where bubblewrap cannot run here
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-pip python3-venv \
        bubblewrap util-linux
fi
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
"$ROOT/venv/bin/python" -m pip install --quiet "$WHEEL[@EXTRAS@]"

# MNIST: bundled as mnist.npz, or fetched into the Keras cache now (the grader falls back
# to the 5,000-digit sample otherwise)
if [ ! -f "$SOURCE/mnist.npz" ]; then
    "$ROOT/venv/bin/hw4grade" mnist || echo "setup.sh: could not fetch MNIST" >&2
fi

# Where bubblewrap cannot run (a container without user namespaces), run_autograder runs
# the notebook as this unprivileged user instead; only root may read the reference
# solution, the installed grader (its oracles compute the theory answers; the kernel needs
# none of it: the grader sends the kernel its own code as text), the autograder's sources
# (the wheel holds both) and the results.
KERNEL_USER=hw4grade-kernel
if [ "$(id -u)" = 0 ]; then
    if ! id -u "$KERNEL_USER" > /dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$KERNEL_USER"
    fi
    # every folder of either package on the venv's import path, not only the first found
    packages=$("$ROOT/venv/bin/python" -I -c 'import importlib.util as u, os, sys
for name in ("reference", "grader"):
    spec = u.find_spec(name)
    found = list(spec.submodule_search_locations or []) if spec else []
    found += [os.path.join(entry, name) for entry in sys.path
              if os.path.isdir(os.path.join(entry, name))]
    print(*sorted(set(map(os.path.realpath, found))))')
    for locked in $packages "$SOURCE"; do
        chmod -R go-rwx "$locked"
    done
    mkdir -p "$ROOT/results"
    chmod 700 "$ROOT/results"
fi

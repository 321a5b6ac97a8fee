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
    # bubblewrap: every notebook is graded in its sandbox
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-pip python3-venv \
        bubblewrap
fi
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
"$ROOT/venv/bin/python" -m pip install --quiet "$WHEEL[@EXTRAS@]"

# MNIST: bundled as mnist.npz, or fetched into the Keras cache now (the grader falls back
# to the 5,000-digit sample otherwise)
if [ ! -f "$SOURCE/mnist.npz" ]; then
    "$ROOT/venv/bin/hw4grade" mnist || echo "setup.sh: could not fetch MNIST" >&2
fi

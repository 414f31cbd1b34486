#!/usr/bin/env bash
# Build the test environment in $1 from a bare Python 3.11: exactly the README's install command.
set -euo pipefail
venv="$1"
python3.11 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
"$venv/bin/pip" install -q -e ".[dev]"

#!/bin/bash
# End-to-end demo, no downloads: tiny random CLIP + synthetic DTD, CoOp base-to-new, Base/New/HM table.
set -e
cd "$(dirname "$0")/.."
python -m vlprompt.demo "$@"

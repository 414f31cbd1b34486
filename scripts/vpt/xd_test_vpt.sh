#!/bin/bash
# The published name (scripts/vpt/xd_test_vpt.sh DATASET SEED): see xd_test.sh.
exec bash "$(dirname "$0")/xd_test.sh" "$@"

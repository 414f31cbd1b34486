#!/bin/bash
# The published name (scripts/vpt/base2new_test_vpt.sh DATASET SEED): see base2new_test.sh.
exec bash "$(dirname "$0")/base2new_test.sh" "$@"

#!/bin/bash
# The published name (scripts/independent-vlp/base2new_test_ivlp.sh DATASET SEED): see base2new_test.sh.
exec bash "$(dirname "$0")/base2new_test.sh" "$@"

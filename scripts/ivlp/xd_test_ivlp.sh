#!/bin/bash
# The published name (scripts/independent-vlp/xd_test_ivlp.sh DATASET SEED): see xd_test.sh.
exec bash "$(dirname "$0")/xd_test.sh" "$@"

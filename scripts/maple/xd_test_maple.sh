#!/bin/bash
# The published name (scripts/maple/xd_test_maple.sh DATASET SEED): see xd_test.sh.
exec bash "$(dirname "$0")/xd_test.sh" "$@"

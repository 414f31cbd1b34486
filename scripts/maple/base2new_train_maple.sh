#!/bin/bash
# The published name (scripts/maple/base2new_train_maple.sh DATASET SEED): see base2new_train.sh.
exec bash "$(dirname "$0")/base2new_train.sh" "$@"

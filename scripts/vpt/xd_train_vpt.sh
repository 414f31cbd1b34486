#!/bin/bash
# The published name and arguments (scripts/vpt/xd_train_vpt.sh SOURCE SEED, e.g. imagenet 1): see xd_train.sh.
SOURCE=$1 exec bash "$(dirname "$0")/xd_train.sh" "${@:2}"

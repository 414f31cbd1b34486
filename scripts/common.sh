#!/bin/bash
# Shared by the method scripts (source it): the repo root as working folder, DATA, argument parsing, run-or-skip,
# and the job families (base-to-new, cross-dataset, few-shot, released weights) so that each method's script only
# names its trainer and default config.
#
# Arguments of every script: positionals, then trailing `KEY VALUE` config overrides for train.py. The first
# argument that looks like a config key (OPTIM.MAX_EPOCH, MODEL.BACKBONE.NAME, or a bare upper-case key such as
# SEED) ends the positionals; optional positionals left out take their defaults, e.g.
#   bash scripts/maple/base2new_train.sh dtd 1 MODEL.BACKBONE.NAME /path/ckpt.pt     (CFG and SHOTS: defaults)
# -h/--help prints the script's header (its usage); a missing positional prints it and exits 2; an unknown dataset
# or config is one `Error:` line (exit 2) before python starts. The output folders are listed at the end.
# Environment: DATA (datasets root), NGPU=N (N processes per job, torchrun), SEEDS (seed loops, default "1 2 3"),
# DRY_RUN=1 (print each train.py command instead of running it).
set -e
SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")  # the script the user ran: its header is its usage
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${DATA:-/path/to/datasets}
OUTPUT_DIRS=()      # run folders written (or found finished) by this script, listed at exit
OPTS=()             # the trailing KEY VALUE overrides (parse_args)
PRE_OPTS=()         # overrides a script adds before the user's (the user's win)
TABLE_AFTER_TEST=1  # base2new_test prints the Base/New/HM table of its dataset and config

# usage: the calling script's header comment (the lines after the shebang)
usage() { sed -n '2,/^[^#]/{/^#/!d;s/^# \{0,1\}//;p}' "${SCRIPT}"; }

# die MESSAGE: one Error: line, exit 2
die() { echo "Error: $*" >&2; exit 2; }

# is_key ARG: ARG looks like a config key (A.B, A.B.C, or a bare upper-case key like SEED)
is_key() { [[ $1 =~ ^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$ ]]; }

# parse_args NAME... -- ARGS...: the positionals of ARGS into the shell variables NAME (NAME=DEFAULT: optional;
# an empty argument also takes the default), the trailing KEY VALUE pairs into OPTS
parse_args() {
    local specs=() pos=() i name value
    while [ "$1" != "--" ]; do specs+=("$1"); shift; done
    shift
    while [ $# -gt 0 ] && ! is_key "$1"; do
        case $1 in -h|--help) usage; exit 0 ;; esac
        pos+=("$1"); shift
    done
    OPTS=("$@")
    if [ ${#pos[@]} -gt ${#specs[@]} ]; then
        usage >&2
        die "unexpected argument '${pos[${#specs[@]}]}' (after ${#specs[@]} positional arguments, only KEY VALUE" \
            "pairs, e.g. OPTIM.MAX_EPOCH 1)"
    fi
    if [ $(( ${#OPTS[@]} % 2 )) -ne 0 ]; then
        die "the overrides must be KEY VALUE pairs; '${OPTS[-1]}' has no value"
    fi
    for i in "${!specs[@]}"; do
        name=${specs[i]%%=*}
        value=${pos[i]:-}
        if [ -z "${value}" ]; then
            if [[ ${specs[i]} != *=* ]]; then
                usage >&2
                die "missing argument ${name}"
            fi
            value=${specs[i]#*=}
        fi
        printf -v "${name}" '%s' "${value}"
    done
}

# opt_value KEY: the value of KEY in OPTS (the last one), or nothing (status 1) if it is not overridden
opt_value() {
    local i found=1
    for (( i = 0; i + 1 < ${#OPTS[@]}; i += 2 )); do
        if [ "${OPTS[i]}" = "$1" ]; then echo "${OPTS[i+1]}"; found=0; fi
    done
    return ${found}
}

# check_choice WHAT NAME FOLDER: NAME.yaml exists in FOLDER, else one Error line with the nearest name and the list
check_choice() {
    local what=$1 name=$2 folder=$3
    [ -f "${folder}/${name}.yaml" ] && return 0
    local names=() f
    for f in "${folder}"/*.yaml; do [ -f "$f" ] && names+=("$(basename "$f" .yaml)"); done
    local near
    near=$(python -c 'import difflib, sys; print(" or ".join(repr(m) for m in difflib.get_close_matches(sys.argv[1], sys.argv[2:], 2)))' \
           "${name}" "${names[@]}" 2>/dev/null || true)
    die "unknown ${what} '${name}'${near:+ (did you mean ${near}?)}; choose from: $(IFS=,; echo "${names[*]}" | sed 's/,/, /g')"
}
check_dataset() { check_choice dataset "$1" configs/datasets; }
check_config() { check_choice "$1 config" "$2" "configs/trainers/$1"; }

# check_int NAME VALUE: VALUE is an integer
check_int() { [[ $2 =~ ^-?[0-9]+$ ]] || die "$1 must be an integer, got '$2'"; }

# shots_list SHOTS: "1,2,4" or "1 2 4" -> "1 2 4"; "all" -> the published 1 2 4 8 16
shots_list() {
    local s=${1//,/ }
    [ "${s}" = all ] && s="1 2 4 8 16"
    local n; for n in ${s}; do check_int SHOTS "${n}"; done
    echo "${s}"
}

# finished DIR: the run in DIR has written its final result (results.json is written by the final evaluation only)
finished() { [ -f "$1/results.json" ]; }

# train_py ARGS...: train.py in one process, or NGPU processes (torchrun, one per GPU; gloo on CPU)
# (DRY_RUN=1: print the command instead)
train_py() {
    if [ "${DRY_RUN:-0}" != 0 ]; then
        echo "[dry run] python train.py $(printf '%q ' "$@")"
    elif [ "${NGPU:-1}" -gt 1 ]; then
        python -m torch.distributed.run --standalone --nproc_per_node "${NGPU}" train.py "$@"
    else
        python train.py "$@"
    fi
}

# run_or_skip DIR TRAIN_PY_ARGS...: skip a finished run as the published scripts do; an unfinished one resumes
run_or_skip() {
    local dir=$1; shift
    OUTPUT_DIRS+=("${dir}")
    if finished "$dir"; then
        echo "Oops! The results exist at ${dir} (so skip this job)"
        _warn_other_model "$dir" "$@"
    else
        train_py --root "${DATA}" --output-dir "${dir}" "$@"
    fi
}

# _warn_other_model DIR TRAIN_PY_ARGS...: a finished evaluation in DIR of another --model-dir than asked gets a warning
_warn_other_model() {
    local dir=$1 want="" held; shift
    while [ $# -gt 1 ]; do [ "$1" = --model-dir ] && want=$2; shift; done
    [ -n "${want}" ] || return 0
    held=$(python -c 'import json, sys; print(json.load(open(sys.argv[1])).get("model_dir", ""))' "${dir}/results.json" \
           2>/dev/null || true)
    [ -z "${held}" ] || [ "${held}" = "$(realpath -ms "${want}")" ] ||
        echo "Warning: ${dir} holds the evaluation of ${held}, not of ${want}; move that folder away to evaluate ${want}"
}

# at exit: where the output went (or where the log of the failed run is)
_report_outputs() {
    local rc=$? d
    [ ${#OUTPUT_DIRS[@]} -gt 0 ] || return ${rc}
    if [ ${rc} -eq 0 ]; then
        [ "${DRY_RUN:-0}" = 0 ] && echo "Output:" || echo "Output (dry run, nothing written):"
        for d in "${OUTPUT_DIRS[@]}"; do echo "  ${d}"; done
    else
        d=${OUTPUT_DIRS[-1]}
        [ -f "${d}/log.txt" ] && d=${d}/log.txt
        echo "Stopped with exit code ${rc}; the last run: ${d}" >&2
    fi
    return ${rc}
}
trap _report_outputs EXIT

# max_epoch CONFIG_FILE: OPTIM.MAX_EPOCH of a method config
max_epoch() { python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['OPTIM']['MAX_EPOCH'])" "$1"; }

# load_epoch CONFIG_FILE: the checkpoint an evaluation loads by default: an OPTIM.MAX_EPOCH override, else the config's
load_epoch() { opt_value OPTIM.MAX_EPOCH || max_epoch "$1"; }

# show_table DATASET METHOD: the Base/New/HM rows of DATASET and METHOD (shots_<S>/<Trainer>/<cfg>) under
# output/base2new (python -m vlprompt.results, over every seed found)
show_table() {
    [ "${DRY_RUN:-0}" = 0 ] && [ -d output/base2new ] || return 0
    echo "Base-to-new results of $1, $2 (all seeds so far; python -m vlprompt.results output/base2new):"
    { python -m vlprompt.results output/base2new || true; } |
        awk -v d="$1" -v m="$2" 'NR <= 2 || ($1 == d && $2 == m) || /^±/'
}

# show_runs FOLDER: the accuracy table (mean ± std over seeds) of the runs under FOLDER
show_runs() {
    [ "${DRY_RUN:-0}" = 0 ] && [ -d "$1" ] || return 0
    echo "Results under $1 (python -m vlprompt.results $1):"
    python -m vlprompt.results "$1" || true
}

# base2new_train TRAINER DEFAULT_CFG  DATASET SEED [CFG] [SHOTS=16] [KEY VALUE ...]: train on the base classes
base2new_train() {
    local OPTS trainer=$1 DATASET SEED CFG SHOTS
    parse_args DATASET SEED CFG="$2" SHOTS=16 -- "${@:3}"
    check_dataset "${DATASET}"; check_int SEED "${SEED}"; check_int SHOTS "${SHOTS}"; check_config "${trainer}" "${CFG}"
    run_or_skip output/base2new/train_base/${DATASET}/shots_${SHOTS}/${trainer}/${CFG}/seed${SEED} \
        --seed ${SEED} --trainer ${trainer} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file configs/trainers/${trainer}/${CFG}.yaml \
        DATASET.NUM_SHOTS ${SHOTS} DATASET.SUBSAMPLE_CLASSES base "${PRE_OPTS[@]}" "${OPTS[@]}"
}

# base2new_test TRAINER DEFAULT_CFG  DATASET SEED [CFG] [SHOTS=16] [LOADEP] [KEY VALUE ...]: evaluate the base-trained
# model on the new classes (SUB=base: the base classes; MODEL_DIR: another run folder, e.g. released weights), then
# print the Base/New/HM table of the dataset and config. LOADEP: an OPTIM.MAX_EPOCH override, else the config's.
base2new_test() {
    local OPTS trainer=$1 DATASET SEED CFG SHOTS LOADEP sub=${SUB:-new}
    parse_args DATASET SEED CFG="$2" SHOTS=16 LOADEP= -- "${@:3}"
    check_dataset "${DATASET}"; check_int SEED "${SEED}"; check_int SHOTS "${SHOTS}"; check_config "${trainer}" "${CFG}"
    [[ ${sub} == base || ${sub} == new ]] || die "SUB must be base or new, got '${sub}'"
    local cfg_file=configs/trainers/${trainer}/${CFG}.yaml common=${DATASET}/shots_${SHOTS}/${trainer}/${CFG}/seed${SEED}
    LOADEP=${LOADEP:-$(load_epoch "${cfg_file}")}
    check_int LOADEP "${LOADEP}"
    run_or_skip output/base2new/test_${sub}/${common} \
        --seed ${SEED} --trainer ${trainer} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file ${cfg_file} \
        --model-dir ${MODEL_DIR:-output/base2new/train_base/${common}} --load-epoch ${LOADEP} --eval-only \
        DATASET.NUM_SHOTS ${SHOTS} DATASET.SUBSAMPLE_CLASSES ${sub} "${PRE_OPTS[@]}" "${OPTS[@]}"
    [ "${TABLE_AFTER_TEST}" = 1 ] && show_table "${DATASET}" "shots_${SHOTS}/${trainer}/${CFG}"
    return 0
}

# xd_train TRAINER DEFAULT_CFG  [SOURCE] SEED [CFG] [SHOTS] [KEY VALUE ...]: train on all classes of SOURCE (a dataset
# name; default: env SOURCE, else imagenet), the model of cross-dataset / domain generalisation. The published
# xd_train_<method>.sh form is `SOURCE SEED` (a first argument that is not a number is the source).
# SHOTS: DEFAULT_SHOTS (env, default 16).
xd_train() {
    local OPTS trainer=$1 SOURCE=${SOURCE:-imagenet} SEED CFG SHOTS
    if [ $# -gt 2 ] && ! [[ $3 =~ ^-?[0-9]+$ || $3 == -h || $3 == --help ]] && ! is_key "$3"; then
        parse_args SOURCE SEED CFG="$2" SHOTS=${DEFAULT_SHOTS:-16} -- "${@:3}"
    else
        parse_args SEED CFG="$2" SHOTS=${DEFAULT_SHOTS:-16} -- "${@:3}"
    fi
    check_dataset "${SOURCE}"; check_int SEED "${SEED}"; check_int SHOTS "${SHOTS}"; check_config "${trainer}" "${CFG}"
    run_or_skip output/${SOURCE}/${trainer}/${CFG}_${SHOTS}shots/seed${SEED} \
        --seed ${SEED} --trainer ${trainer} \
        --dataset-config-file configs/datasets/${SOURCE}.yaml \
        --config-file configs/trainers/${trainer}/${CFG}.yaml \
        DATASET.NUM_SHOTS ${SHOTS} "${PRE_OPTS[@]}" "${OPTS[@]}"
}

# xd_test TRAINER DEFAULT_CFG  DATASET SEED [CFG] [SHOTS] [LOADEP] [KEY VALUE ...]: evaluate the SOURCE-trained model
# (env SOURCE, default imagenet; MODEL_DIR: another run folder, e.g. released weights) on another dataset or an
# ImageNet variant. SHOTS: DEFAULT_SHOTS (env, default 16); LOADEP: an OPTIM.MAX_EPOCH override, else the config's.
xd_test() {
    local OPTS trainer=$1 DATASET SEED CFG SHOTS LOADEP source=${SOURCE:-imagenet}
    parse_args DATASET SEED CFG="$2" SHOTS=${DEFAULT_SHOTS:-16} LOADEP= -- "${@:3}"
    check_dataset "${DATASET}"; check_int SEED "${SEED}"; check_int SHOTS "${SHOTS}"; check_config "${trainer}" "${CFG}"
    [ -n "${MODEL_DIR}" ] || check_dataset "${source}"
    local cfg_file=configs/trainers/${trainer}/${CFG}.yaml
    LOADEP=${LOADEP:-$(load_epoch "${cfg_file}")}
    check_int LOADEP "${LOADEP}"
    run_or_skip output/evaluation/${trainer}/${CFG}_${SHOTS}shots/${DATASET}/seed${SEED} \
        --seed ${SEED} --trainer ${trainer} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file ${cfg_file} \
        --model-dir ${MODEL_DIR:-output/${source}/${trainer}/${CFG}_${SHOTS}shots/seed${SEED}} \
        --load-epoch ${LOADEP} --eval-only "${PRE_OPTS[@]}" "${OPTS[@]}"
}

# few_shot TRAINER DEFAULT_CFG  DATASET SHOTS [CFG] [KEY VALUE ...]: train and test on all classes of DATASET for each
# seed of SEEDS (1 2 3) and each shot count of SHOTS (a number, a list "1,2,4", or "all" = 1 2 4 8 16), as the
# published few-shot protocol; then the accuracy table (mean ± std over seeds) of the method on DATASET
few_shot() {
    local OPTS trainer=$1 DATASET SHOTS CFG shots seed list
    parse_args DATASET SHOTS CFG="$2" -- "${@:3}"
    check_dataset "${DATASET}"; check_config "${trainer}" "${CFG}"
    list=$(shots_list "${SHOTS}")
    for shots in ${list}; do
        for seed in ${SEEDS:-1 2 3}; do
            check_int SEED "${seed}"
            run_or_skip output/${DATASET}/${trainer}/${CFG}_${shots}shots/seed${seed} \
                --seed ${seed} --trainer ${trainer} \
                --dataset-config-file configs/datasets/${DATASET}.yaml \
                --config-file configs/trainers/${trainer}/${CFG}.yaml \
                DATASET.NUM_SHOTS ${shots} "${PRE_OPTS[@]}" "${OPTS[@]}"
        done
    done
    show_runs output/${DATASET}/${trainer}
}

# reproduce TRAINER DEFAULT_CFG  DATASET [SEED] [WEIGHTSPATH] [KEY VALUE ...]:
#   DATASET SEED WEIGHTSPATH (the published form): evaluate released weights WEIGHTSPATH/base/seed<SEED> on the base
#     and the new classes (output/base2new/test_base/... and test_new/...);
#   DATASET [SEED]: train on the base classes and evaluate on the new ones here, for SEED or each seed of SEEDS
#     (1 2 3); env WEIGHTSPATH=<folder> evaluates released weights for each seed instead.
# Then the Base/New/HM table of the dataset and config. Also read: CFG, SHOTS (16), LOADEP (OPTIM.MAX_EPOCH).
reproduce() {
    local OPTS trainer=$1 DATASET SEED WEIGHTSPATH cfg=${CFG:-$2} shots=${SHOTS:-16} seed sub TABLE_AFTER_TEST=0
    parse_args DATASET SEED= WEIGHTSPATH="${WEIGHTSPATH:-}" -- "${@:3}"
    check_dataset "${DATASET}"; check_config "${trainer}" "${cfg}"
    local seeds=${SEED:-${SEEDS:-1 2 3}}
    for seed in ${seeds}; do
        check_int SEED "${seed}"
        [ -z "${WEIGHTSPATH}" ] || [ -d "${WEIGHTSPATH}/base/seed${seed}" ] ||
            die "WEIGHTSPATH ${WEIGHTSPATH} has no base/seed${seed} (the released weights unpack to <dataset>/base/seed<N>)"
    done
    for seed in ${seeds}; do
        if [ -n "${WEIGHTSPATH}" ]; then
            for sub in base new; do
                SUB=${sub} MODEL_DIR=${WEIGHTSPATH}/base/seed${seed} \
                    base2new_test ${trainer} ${cfg} ${DATASET} ${seed} ${cfg} ${shots} "${LOADEP:-}" "${OPTS[@]}"
            done
        else
            base2new_train ${trainer} ${cfg} ${DATASET} ${seed} ${cfg} ${shots} "${OPTS[@]}"
            SUB=new base2new_test ${trainer} ${cfg} ${DATASET} ${seed} ${cfg} ${shots} "${LOADEP:-}" "${OPTS[@]}"
        fi
    done
    show_table "${DATASET}" "shots_${shots}/${trainer}/${cfg}"
}

# reproduce_xd TRAINER DEFAULT_CFG  DATASET SEED WEIGHTSPATH [KEY VALUE ...]: evaluate released ImageNet weights
# (WEIGHTSPATH/seed<SEED>) on DATASET, into the folder of xd_test
reproduce_xd() {
    local OPTS trainer=$1 DATASET SEED WEIGHTSPATH
    parse_args DATASET SEED WEIGHTSPATH -- "${@:3}"
    check_dataset "${DATASET}"; check_int SEED "${SEED}"
    [ -d "${WEIGHTSPATH}/seed${SEED}" ] || die "WEIGHTSPATH ${WEIGHTSPATH} has no seed${SEED} folder"
    MODEL_DIR=${WEIGHTSPATH}/seed${SEED} xd_test ${trainer} "$2" "${DATASET}" "${SEED}" "$2" "" "" "${OPTS[@]}"
}

# template_tag TEMPLATE: a folder-safe tag of a zero-shot template: _tpl_<words>_<crc32 hex> ("{}" -> CLS)
template_tag() {
    local slug crc
    slug=$(printf '%s' "$1" | sed 's/{}/CLS/g; s/[^A-Za-z0-9]\{1,\}/_/g; s/^_//; s/_$//')
    crc=$(printf '%s' "$1" | cksum | awk '{printf "%08x", $1}')
    echo "_tpl_${slug:0:32}_${crc}"
}

# zeroshot TRAINER  DATASET [CFG=vit_b16] [KEY VALUE ...]: zero-shot CLIP with a CoOp config (as published), on
#   all classes (SUB unset): output/<TRAINER>/<CFG>/<DATASET> (the published folder);
#   SUB=base|new (or a DATASET.SUBSAMPLE_CLASSES override): output/base2new/test_<SUB>/<DATASET>/<TRAINER>/<CFG>;
#   SUB=base2new: both, then the Base/New/HM table.
# A TRAINER.ZEROSHOT.TEMPLATE override adds template_tag to the CFG segment (a run with another template never
# reuses the folder).
zeroshot() {
    local OPTS trainer=$1 DATASET CFG sub=${SUB:-} tag="" over subs s
    parse_args DATASET CFG=vit_b16 -- "${@:2}"
    check_dataset "${DATASET}"; check_config CoOp "${CFG}"
    if over=$(opt_value DATASET.SUBSAMPLE_CLASSES); then
        [ -z "${sub}" ] || [ "${sub}" = "${over}" ] ||
            die "SUB=${sub} and DATASET.SUBSAMPLE_CLASSES ${over} disagree; give one of them"
        sub=${over}
    fi
    case ${sub:-all} in
        all) subs=all ;; base|new) subs=${sub} ;; base2new) subs="base new" ;;
        *) die "SUB must be all, base, new or base2new, got '${sub}'" ;;
    esac
    if over=$(opt_value TRAINER.ZEROSHOT.TEMPLATE) && [ -n "${over}" ]; then tag=$(template_tag "${over}"); fi
    for s in ${subs}; do
        local dir=output/base2new/test_${s}/${DATASET}/${trainer}/${CFG}${tag}
        [ "${s}" = all ] && dir=output/${trainer}/${CFG}${tag}/${DATASET}
        run_or_skip ${dir} \
            --trainer ${trainer} \
            --dataset-config-file configs/datasets/${DATASET}.yaml \
            --config-file configs/trainers/CoOp/${CFG}.yaml \
            --eval-only DATASET.SUBSAMPLE_CLASSES ${s} "${OPTS[@]}"
    done
    [ "${sub}" = base2new ] && show_table "${DATASET}" "${trainer}/${CFG}${tag}"
    return 0
}

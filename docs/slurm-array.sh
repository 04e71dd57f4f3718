#!/bin/bash
# slurm-array.sh - one data set made by a Slurm job array. Every array task runs
# `sdc dataset` on its own slice of the prompts (sdc reads SLURM_ARRAY_TASK_ID and
# SLURM_ARRAY_TASK_COUNT), all writing into one folder on a shared file system.
# Rerunning the same array resumes: finished images are kept, torn ones redone.
#
#   MODEL=/models/sd15 PROMPTS=$PWD/prompts.jsonl OUT=/shared/dataset \
#   IMAGES_PER_PROMPT=4 sbatch docs/slurm-array.sh
#
# Change --array to change the number of slices: every slice is a contiguous range
# of image indices, and the union of all slices is exactly a single-machine run.
#SBATCH --job-name=sdc-dataset
#SBATCH --array=0-7
#SBATCH --cpus-per-task=16
#SBATCH --mem=16G
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --signal=B:TERM@120
#SBATCH --output=sdc-dataset-%A_%a.log
set -euo pipefail

SDC=${SDC:-sdc}                                   # the sdc program
MODEL=${MODEL:?set MODEL to a diffusers model folder}
PROMPTS=${PROMPTS:?set PROMPTS to a prompts file (text or JSONL)}
OUT=${OUT:?set OUT to the data set folder (shared by all tasks)}

args=(dataset -m "$MODEL" --prompts "$PROMPTS" --out "$OUT")
[[ -n ${IMAGES_PER_PROMPT:-} ]] && args+=(--images-per-prompt "$IMAGES_PER_PROMPT")
[[ -n ${SEED:-} ]] && args+=(--seed "$SEED")
[[ -n ${FORMAT:-} ]] && args+=(--format "$FORMAT")
[[ -n ${SLURM_CPUS_PER_TASK:-} ]] && args+=(--threads "$SLURM_CPUS_PER_TASK")

# EXTRA: more sdc dataset flags, e.g. EXTRA="--steps 30 --batch-size 4". They must be
# the same for every task (sdc refuses a task whose settings differ from the folder's).
# exec: Slurm's TERM (--signal, preemption) reaches sdc, which stops after the current
# step; the requeued task then resumes where it stopped.
# shellcheck disable=SC2086
exec "$SDC" "${args[@]}" ${EXTRA:-}

#!/bin/bash
# tests/cluster/k8s.sh - docs/k8s-indexed-job.yaml without a Kubernetes cluster.
#
#   1. the manifest parses as YAML (python3-yaml) and is an Indexed Job whose sdc command gives
#      --shards equal to its completions;
#   2. the manifest's own command runs once per completion index i with JOB_COMPLETION_INDEX=i, as
#      the Job controller runs it (the volume's /data mapped to a temp dir, the tiny model in place
#      of sd15): the union of the slices is byte for byte the same command run once without
#      slicing, and each slice is exactly the slice Slurm's SLURM_ARRAY_TASK_ID=i (and --shard i/N)
#      makes, manifests included.
# Installs python3-yaml with apt-get when it is missing; skips with one line where it cannot.
#
#   tests/cluster/k8s.sh              (SDC_BIN=build/sdc by default; `make test-cluster`)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SDC=$(realpath "${SDC_BIN:-$ROOT/build/sdc}")
MANIFEST=$ROOT/docs/k8s-indexed-job.yaml
SKIP="kubernetes manifest test: SKIPPED"
[ -x "$SDC" ] || { echo "kubernetes manifest test: no sdc program at $SDC (run make first)" >&2; exit 1; }

if ! python3 -c 'import yaml' >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
    inst() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null 2>&1; }
    echo "kubernetes manifest test: installing python3-yaml (apt-get)"
    if ! command -v apt-get >/dev/null 2>&1 || ! { inst || { $SUDO apt-get update -qq >/dev/null 2>&1 && inst; }; } ||
        ! python3 -c 'import yaml' >/dev/null 2>&1; then
        echo "$SKIP (no python3 with yaml, and apt-get cannot install python3-yaml)"
        exit 0
    fi
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/sdc-k8s.XXXXXX")
trap 'rm -rf "$T"' EXIT
unset SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_COUNT SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_STEP JOB_COMPLETION_INDEX
fail() {
    echo "kubernetes manifest test: FAILED: $*" >&2
    exit 1
}

# 1. parse and check the manifest; print completions, the volume's mount path, then the command
#    one word per line
python3 - "$MANIFEST" >"$T/job" <<'EOF' || fail "$MANIFEST"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
assert len(docs) == 1, f"{len(docs)} YAML documents, want 1"
job = docs[0]
assert job.get("apiVersion") == "batch/v1" and job.get("kind") == "Job", "not a batch/v1 Job"
spec = job["spec"]
assert spec.get("completionMode") == "Indexed", "completionMode is not Indexed"
n = spec["completions"]
assert isinstance(n, int) and n >= 1, "completions is not a positive integer"
pod = spec["template"]["spec"]
assert pod.get("restartPolicy") in ("OnFailure", "Never"), "a Job's pods need restartPolicy OnFailure or Never"
(c,) = pod["containers"]
cmd = [str(w) for w in c["command"] + c.get("args", [])]
assert cmd[:2] == ["sdc", "dataset"], f"the command is not sdc dataset: {cmd}"
assert "--shards" in cmd and cmd[cmd.index("--shards") + 1] == str(n), "--shards differs from completions"
assert not any(w.startswith("--shard=") or w == "--shard" for w in cmd), "--shard would override the index"
(m,) = c["volumeMounts"]
vols = {v["name"]: v for v in pod["volumes"]}
assert m["name"] in vols and "persistentVolumeClaim" in vols[m["name"]], "the data volume is not a claim"
print(n)
print(m["mountPath"])
print("\n".join(cmd))
EOF
{
    read -r N
    read -r MOUNT
    mapfile -t CMD
} <"$T/job"
echo "kubernetes manifest test: docs/k8s-indexed-job.yaml parses: an Indexed Job of $N completions running: ${CMD[*]}"

# the pods' volume: the mount path mapped to $T/data, the model a link to the tiny one, a prompts file
ARGS=()
for w in "${CMD[@]:2}"; do ARGS+=("${w/#$MOUNT\//$T/data/}"); done
get() { # the value of flag $1 in the command
    local i
    for ((i = 0; i < ${#ARGS[@]} - 1; i++)); do [ "${ARGS[i]}" = "$1" ] && { echo "${ARGS[i + 1]}"; return; }; done
    fail "the command has no $1"
}
MODEL_DIR=$(get -m) PROMPTS=$(get --prompts) OUT=$(get --out)
[[ $OUT == "$T/data/"* ]] || fail "--out $OUT is not on the shared volume ($MOUNT)"
mkdir -p "$(dirname "$MODEL_DIR")" "$(dirname "$PROMPTS")"
ln -s "$ROOT/tests/fixtures/models/tiny-sd" "$MODEL_DIR"
printf '%s\n' '{"prompt": "a red fox in snow"}' '{"prompt": "a lighthouse at dusk", "negative_prompt": "blurry"}' \
    '{"prompt": "a bowl of ramen", "seed": 1234}' >"$PROMPTS"
# the rest of the command line but --shards N and --out, plus FAST (the same for every run: 10 steps
# keep it short; one thread, as a 2-core machine runs them one at a time)
BASE=()
for ((i = 0; i < ${#ARGS[@]}; i++)); do
    case ${ARGS[i]} in --shards | --out) i=$((i + 1)) ;; *) BASE+=("${ARGS[i]}") ;; esac
done
FAST=(--steps 10 --threads 1)

run() { # run DIR [VAR=VALUE...] -- [FLAGS...]: sdc dataset into DIR
    local dir=$1 envs=()
    shift
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    timeout 300 env "${envs[@]}" "$SDC" dataset "${BASE[@]}" --out "$dir" "${FAST[@]}" "$@" >>"$T/log" 2>&1 ||
        { cat "$T/log" >&2; fail "sdc dataset ${envs[*]} $* --out $dir"; }
}

# 2. one pod per index, as the Job controller starts them; the same slices under Slurm's variables
#    and --shard; and the whole set in one run
for ((i = 0; i < N; i++)); do
    run "$T/k8s" "JOB_COMPLETION_INDEX=$i" -- --shards "$N"
    run "$T/slurm" "SLURM_ARRAY_TASK_ID=$((i + 3))" "SLURM_ARRAY_TASK_COUNT=$N" "SLURM_ARRAY_TASK_MIN=3" \
        "SLURM_ARRAY_TASK_STEP=1" --
    run "$T/flag" -- --shard "$i/$N"
done
run "$T/one" --
grep -q "slice $((N - 1))/$N (from JOB_COMPLETION_INDEX)" "$T/log" || fail "no slice taken from JOB_COMPLETION_INDEX"

IMAGES=$(find "$T/one/train" -name '*.png' | wc -l)
[ "$IMAGES" -ge "$N" ] || fail "only $IMAGES images for $N slices"
out=$(diff -r -x manifests "$T/one" "$T/k8s") || fail "the $N JOB_COMPLETION_INDEX slices differ from one run:
$out"
out=$(diff <(sort "$T/one/manifests/slice-0-of-1.jsonl") <(cat "$T/k8s/manifests/slice-"*"-of-$N.jsonl" | sort)) ||
    fail "the slices' manifest lines are not the single run's:
$out"
for d in slurm flag; do
    out=$(diff -r "$T/k8s" "$T/$d") || fail "the JOB_COMPLETION_INDEX slices differ from the $d ones:
$out"
done
echo "kubernetes manifest test: JOB_COMPLETION_INDEX=0..$((N - 1)) with --shards $N makes the slices SLURM_ARRAY_TASK_ID and --shard make (manifests too); their union is one run ($IMAGES images byte for byte)"

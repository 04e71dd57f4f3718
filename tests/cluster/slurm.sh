#!/bin/bash
# tests/cluster/slurm.sh - docs/slurm-array.sh on a real one-node Slurm cluster.
#
# Starts munged, MariaDB, slurmdbd, slurmctld and slurmd on 127.0.0.1 (its own ports, keys, sockets,
# state and logs, all under one temp dir; nothing of a system Slurm or MUNGE is read or touched),
# with one partition of 2 CPUs, then:
#   1. submits docs/slurm-array.sh, unchanged, as an array of 3 tasks; sacct shows them COMPLETED;
#      the union of the 3 slices is byte for byte one plain `sdc dataset` run;
#   2. submits it again into a new folder, SIGKILLs task 1 mid-run (`scancel --signal=KILL`),
#      resubmits the same array, and checks that nothing was lost or duplicated;
#   3. prints the images/s of one task (1 CPU), the number docs/dataset.md quotes.
# Every daemon it started is stopped by its pid and the temp dir is removed, on success or failure.
#
# Needs root (slurmd starts jobs; rerun under `sudo -n` otherwise) and Debian's slurm-wlm, munge,
# slurmdbd, mariadb-server-core and mariadb-client-core, installed with apt-get when missing.
# Skips with one line only where they cannot be installed.
#
#   tests/cluster/slurm.sh            (SDC_BIN=build/sdc by default; `make test-cluster`)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SDC=$(realpath "${SDC_BIN:-$ROOT/build/sdc}")
MODEL=$ROOT/tests/fixtures/models/tiny-sd
SKIP="slurm cluster test: SKIPPED"

# ---- root and packages -------------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n env SDC_BIN="$SDC" bash "${BASH_SOURCE[0]}" "$@"
    fi
    echo "$SKIP (needs root or password-less sudo to install and run slurmd)"
    exit 0
fi
[ -x "$SDC" ] || { echo "slurm cluster test: no sdc program at $SDC (run make first)" >&2; exit 1; }

PKGS="slurm-wlm munge slurmdbd mariadb-server-core mariadb-client-core"
BINS="munged mungekey slurmctld slurmd slurmdbd sbatch squeue sacct sacctmgr scancel sinfo mariadbd mariadb-install-db"
have_all() {
    local b
    for b in $BINS; do command -v "$b" >/dev/null 2>&1 || return 1; done
}
if ! have_all; then
    echo "slurm cluster test: installing $PKGS (apt-get)"
    # --no-install-recommends: MariaDB's server binaries without its service; the packages' slurm
    # services start only with /etc/slurm/*.conf, which nothing here writes. (Under systemd the
    # munge package starts its own munge.service on /etc/munge; this test never uses it.)
    inst() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS >/dev/null 2>&1; }
    if ! command -v apt-get >/dev/null 2>&1 || ! { inst || { apt-get update -qq >/dev/null 2>&1 && inst; }; }; then
        echo "$SKIP (apt-get cannot install $PKGS)"
        exit 0
    fi
    have_all || { echo "$SKIP (installed $PKGS, but some of $BINS are still missing)"; exit 0; }
fi

# ---- the throw-away cluster --------------------------------------------------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/sdc-slurm.XXXXXX")
chmod 755 "$T" # munged wants its socket's folders executable by all
export SLURM_CONF=$T/etc/slurm.conf
unset SLURM_JOB_ID SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_COUNT SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_STEP \
      JOB_COMPLETION_INDEX SBATCH_PARTITION SBATCH_ACCOUNT SLURM_CLUSTERS 2>/dev/null || true
mkdir -p "$T"/{etc,munge,db,state,spool,log,jobs,work}
declare -A PID=()          # daemon name -> pid
DAEMONS=()                 # in start order; stopped in reverse
T0=$(date +%s)

log_tails() { # the daemons' logs; a daemon's stderr only where its log is empty (it died early)
    local f
    for f in "$T"/log/*.log "$T"/log/*.stderr "$T"/jobs/*.log; do
        [ -s "$f" ] || continue
        [[ $f == *.stderr && -s ${f%.stderr}.log ]] && continue
        echo "---- ${f#"$T"/}"
        tail -n 25 "$f"
    done
}

fail() {
    echo "slurm cluster test: FAILED: $*" >&2
    log_tails >&2
    exit 1
}

# Every process of the cluster (daemons, slurmstepd, the jobs) carries SDC_SLURM_TEST_DIR=$T in its
# environment (this script itself does not): the final sweep of cleanup() finds exactly those.
our_pids() {
    grep -lzxF "SDC_SLURM_TEST_DIR=$T" /proc/[0-9]*/environ 2>/dev/null | sed 's|^/proc/\([0-9]*\)/environ$|\1|' || true
}

stop_pid() { # TERM, up to 15 s, then KILL
    local p=$1 i
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

cleanup() {
    local rc=$? i p n
    set +e
    trap - EXIT INT TERM
    [ -n "${PID[slurmctld]:-}" ] && timeout 10 scancel --quiet --user=root >/dev/null 2>&1
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_pid "${PID[${DAEMONS[i]}]}"; done
    # whatever of ours outlived its daemon (a slurmstepd or job of a failed run): KILL by pid
    for ((i = 0; i < 50; i++)); do
        n=0
        for p in $(our_pids); do kill -KILL "$p" 2>/dev/null && n=$((n + 1)); done
        [ "$n" -eq 0 ] && break
        sleep 0.1
    done
    [ -n "$(our_pids)" ] && { echo "slurm cluster test: processes left: $(our_pids)" >&2; rc=1; }
    rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS WHAT CMD...: poll CMD every 0.2 s until it succeeds, fail after SECONDS
wait_for() {
    local secs=$1 what=$2 end
    shift 2
    end=$(($(date +%s) + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || fail "$what: not after ${secs} s"
        sleep 0.2
    done
}

# start NAME CMD...: run a daemon in the foreground as our child; it logs to log/NAME.log (set in its
# config or command line), its stdout and stderr go to log/NAME.stderr
start() {
    local name=$1
    shift
    SDC_SLURM_TEST_DIR=$T "$@" >>"$T/log/$name.stderr" 2>&1 &
    PID[$name]=$!
    DAEMONS+=("$name")
}
alive() { kill -0 "${PID[$1]}" 2>/dev/null || fail "$1 exited"; }

# free_ports N: N distinct TCP ports that nothing on this machine listens on or uses (its own
# ports, so that two runs, or a system Slurm, never collide)
free_ports() {
    local used p out=()
    used=" $(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk 'NR > 1 && $2 ~ /:/ {sub(/.*:/, "", $2); print $2}' |
        while read -r h; do echo $((16#$h)); done | tr '\n' ' ') "
    while [ ${#out[@]} -lt "$1" ]; do
        p=$((20000 + RANDOM % 40000))
        [[ $used == *" $p "* || " ${out[*]} " == *" $p "* ]] || out+=("$p")
    done
    echo "${out[@]}"
}
read -r P_CTLD P_SLURMD P_DBD P_DB < <(free_ports 4)
HOST=$(uname -n)
HOST=${HOST%%.*} # what slurmctld and slurmd compare with SlurmctldHost and NodeName
CLUSTER=sdctest
MUNGE_SOCKET=$T/munge/munge.socket

# MUNGE: its own key, socket, pid and seed files
timeout 30 mungekey --create --keyfile="$T/munge/munge.key" >/dev/null 2>&1 ||
    { dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none && chmod 600 "$T/munge/munge.key"; }
start munged munged --foreground --socket="$MUNGE_SOCKET" --key-file="$T/munge/munge.key" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/log/munged.log" --seed-file="$T/munge/munged.seed"
wait_for 20 "munged's socket" test -S "$MUNGE_SOCKET"

# MariaDB for slurmdbd (sacct needs slurmdbd): its own data dir, socket and port; --no-defaults
# keeps /etc/mysql out of it
timeout 120 mariadb-install-db --no-defaults --datadir="$T/db/data" --user=root --auth-root-authentication-method=normal \
    --skip-test-db >"$T/db/install.out" 2>&1 || fail "mariadb-install-db: $(tail -n 20 "$T/db/install.out")"
start mariadbd mariadbd --no-defaults --datadir="$T/db/data" --socket="$T/db/mysqld.sock" --pid-file="$T/db/mysqld.pid" \
    --port="$P_DB" --bind-address=127.0.0.1 --user=root --skip-log-bin --innodb-buffer-pool-size=32M \
    --log-error="$T/log/mariadbd.log"
wait_for 60 "MariaDB" test -S "$T/db/mysqld.sock"

cat >"$T/etc/slurmdbd.conf" <<EOF
# slurmdbd.conf of tests/cluster/slurm.sh (read from SLURM_CONF's folder)
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$P_DBD
SlurmUser=root
LogFile=$T/log/slurmdbd.log
PidFile=$T/state/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$P_DB
StorageUser=root
StorageLoc=slurm_acct_db
EOF
chmod 600 "$T/etc/slurmdbd.conf"

cat >"$T/etc/slurm.conf" <<EOF
# slurm.conf of tests/cluster/slurm.sh: one node, 2 CPUs, 127.0.0.1, no cgroups
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$P_CTLD
SlurmdPort=$P_SLURMD
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/state/slurmctld.pid
SlurmdPidFile=$T/state/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$P_DBD
# the MUNGE socket the slurmdbd connections use (AuthInfo covers the others)
AccountingStoragePass=$MUNGE_SOCKET
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
SlurmdParameters=config_overrides
MailProg=/bin/true
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=1024 State=UNKNOWN
PartitionName=sdc Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$T/etc/cgroup.conf" <<EOF
# no cgroups: proctrack/linuxproc and task/none track and start the tasks
CgroupAutomount=no
EOF

start slurmdbd slurmdbd -D
wait_for 60 "slurmdbd" timeout 10 sacctmgr -n list cluster
timeout 30 sacctmgr -i add cluster "$CLUSTER" >/dev/null || fail "sacctmgr add cluster"
start slurmctld slurmctld -D -f "$SLURM_CONF"
start slurmd slurmd -D -f "$SLURM_CONF"
node_idle() { [ "$(timeout 10 sinfo -h -n "$HOST" -o %T)" = idle ]; }
wait_for 60 "node $HOST idle" node_idle
for d in munged mariadbd slurmdbd slurmctld slurmd; do alive "$d"; done
echo "slurm cluster test: cluster up in $(($(date +%s) - T0)) s ($(sinfo --version), node $HOST, 2 CPUs, ports $P_CTLD/$P_SLURMD/$P_DBD/$P_DB)"

# ---- the data set --------------------------------------------------------------------------
# 18 prompts x 2 images = 36 images, 12 per task; 20 PNDM steps at 64x64 on the tiny model
NPROMPTS=18 IPP=2 SEED_BASE=100
NIMAGES=$((NPROMPTS * IPP)) PER_TASK=$((NPROMPTS * IPP / 3))
PROMPTS=$T/work/prompts.txt
for ((i = 1; i <= NPROMPTS; i++)); do echo "a watercolour of lighthouse number $i at dusk"; done >"$PROMPTS"
EXTRA="--steps 20 -W 64 -H 64"

# reference: one plain run, on one machine, no slicing (1 thread like the tasks: sdc's pixels do not
# depend on it, and a shared machine's other work cannot stall its OpenMP threads)
timeout 300 "$SDC" dataset -m "$MODEL" --prompts "$PROMPTS" --out "$T/work/ref" \
    --images-per-prompt $IPP --seed $SEED_BASE $EXTRA --threads 1 --quiet >"$T/log/reference.log" 2>&1 || fail "reference run"

# submit OUT LOGNAME: docs/slurm-array.sh as is; the command line overrides its #SBATCH lines
submit() {
    SDC_SLURM_TEST_DIR=$T MODEL=$MODEL PROMPTS=$PROMPTS OUT=$1 SDC=$SDC IMAGES_PER_PROMPT=$IPP SEED=$SEED_BASE EXTRA=$EXTRA \
        timeout 30 sbatch --parsable --array=0-2 --cpus-per-task=1 --mem=256M --time=5 --partition=sdc \
        --output="$T/jobs/$2-%A_%a.log" "$ROOT/docs/slurm-array.sh"
}

# wait_job JOBID SECONDS: until no task of the array is queued or running
job_gone() { [ -z "$(timeout 10 squeue -h -j "$1" -o %i 2>/dev/null)" ]; }
wait_job() { wait_for "$2" "job $1 to finish" job_gone "$1"; }

# sacct_rows JOBID: "JOBID_TASK|STATE" of each array task (allocations, not steps); show_sacct waits
# until all 3 are recorded in a final state and prints sacct's table; state_of JOBID TASK
sacct_rows() { timeout 10 sacct -n -X -P -j "$1" -o JobID,State 2>/dev/null; }
sacct_final() { [ "$(sacct_rows "$1" | grep -cE '\|(COMPLETED|FAILED|CANCELLED|NODE_FAIL|OUT_OF_MEMORY|TIMEOUT)')" -ge 3 ]; }
show_sacct() {
    wait_for 30 "sacct to record job $1" sacct_final "$1"
    timeout 10 sacct -j "$1" -o JobID%12,JobName%12,Partition,AllocCPUS,State,ExitCode,Elapsed,NodeList
}
state_of() { sacct_rows "$1" | awk -F'|' -v t="$1_$2" '$1 == t {print $2}' | sed 's/ by .*//'; }

# same_set DIR: DIR equals the reference: every file byte for byte (PNGs, train/metadata.jsonl,
# sdc-dataset.json); the slices' manifests together hold the reference's lines, each once
same_set() {
    local d=$1 out
    out=$(diff -r -x manifests "$T/work/ref" "$d" 2>&1) || fail "$d differs from the plain run:
$out"
    [ "$(find "$d" -name '*.tmp' -o -name '*.part' | wc -l)" -eq 0 ] || fail "$d has leftover .tmp/.part files"
    [ "$(find "$d/train" -name '*.png' | wc -l)" -eq $NIMAGES ] || fail "$d: not $NIMAGES images"
    [ "$(wc -l <"$d/train/metadata.jsonl")" -eq $NIMAGES ] || fail "$d: metadata.jsonl is not $NIMAGES lines"
    out=$(diff <(sort "$T/work/ref/manifests/slice-0-of-1.jsonl") <(cat "$d"/manifests/slice-*-of-3.jsonl | sort)) ||
        fail "$d: the 3 slices' manifest lines are not the plain run's (lost or duplicated images):
$out"
}

# ---- 1. an array of 3 tasks ----------------------------------------------------------------
J1=$(submit "$T/work/array" array) || fail "sbatch"
wait_job "$J1" 180
echo "slurm cluster test: sacct of array job $J1 (docs/slurm-array.sh, --array=0-2, 1 CPU per task):"
show_sacct "$J1"
for t in 0 1 2; do
    [ "$(state_of "$J1" $t)" = COMPLETED ] || fail "task ${J1}_$t is $(state_of "$J1" $t), not COMPLETED"
done
same_set "$T/work/array"
echo "slurm cluster test: the union of the 3 slices equals one plain run ($NIMAGES images byte for byte, metadata.jsonl line for line)"
grep -h '^dataset: slice .* made' "$T"/jobs/array-"$J1"_*.log | sed 's/^/    /'

# per task images/s from each task's closing line ("...; 2.2 s, 5.48 images/s")
RATES=$(sed -n 's/^dataset: slice .*; [0-9.]* s, \([0-9.]*\) images\/s$/\1/p' "$T"/jobs/array-"$J1"_*.log | sort -n | xargs)
[ "$(echo "$RATES" | wc -w)" -eq 3 ] || fail "no summary line in every task's log"
MEAN=$(echo "$RATES" | awk '{for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s / NF}')

# ---- 2. kill task 1 mid-run, resubmit ------------------------------------------------------
OUT2=$T/work/killed
J2=$(submit "$OUT2" killed) || fail "sbatch"
M1=$OUT2/manifests/slice-1-of-3.jsonl
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
two_done() { [ "$(lines "$M1")" -ge 2 ]; }
wait_for 120 "task ${J2}_1 to write 2 images" two_done
timeout 30 scancel --signal=KILL "${J2}_1" || fail "scancel"
wait_job "$J2" 180
KEPT=$(lines "$M1")
echo "slurm cluster test: sacct of array job $J2 (task 1 killed with scancel --signal=KILL after $KEPT of its $PER_TASK images):"
show_sacct "$J2"
[ "$(state_of "$J2" 1)" != COMPLETED ] || fail "task ${J2}_1 COMPLETED: the kill came too late"
[ "$KEPT" -lt $PER_TASK ] || fail "task ${J2}_1 had made its whole slice before the kill"
for t in 0 2; do [ "$(state_of "$J2" $t)" = COMPLETED ] || fail "task ${J2}_$t is not COMPLETED"; done

J3=$(submit "$OUT2" resubmitted) || fail "sbatch"
wait_job "$J3" 180
echo "slurm cluster test: sacct of the resubmitted array job $J3 (same command, same folder):"
show_sacct "$J3"
for t in 0 1 2; do [ "$(state_of "$J3" $t)" = COMPLETED ] || fail "task ${J3}_$t is not COMPLETED"; done
grep -h '^dataset: slice .* made' "$T"/jobs/resubmitted-"$J3"_*.log | sed 's/^/    /'
# task 1 keeps what the killed one finished (at least the images its manifest listed; one more if
# the kill fell between an image's rename and its manifest line) and makes only the rest
read -r MADE THERE < <(sed -n 's/^dataset: slice 1\/3, .*: \([0-9]*\) made, \([0-9]*\) already there.*/\1 \2/p' \
    "$T/jobs/resubmitted-${J3}_1.log")
[ -n "${THERE:-}" ] && [ $((MADE + THERE)) -eq $PER_TASK ] && [ "$THERE" -ge "$KEPT" ] ||
    fail "the resubmitted task 1 made ${MADE:-?} and found ${THERE:-?} images, not $PER_TASK with the $KEPT kept"
same_set "$OUT2"
echo "slurm cluster test: after the kill and the resubmission the folder equals one plain run (nothing lost or duplicated)"

echo "slurm cluster test: throughput: $MEAN images/s per task (tasks: $RATES) - tiny-sd, 64x64, 20 PNDM steps, 1 CPU per task, 2 tasks at a time on this machine's 2 CPUs"
echo "slurm cluster test: passed in $(($(date +%s) - T0)) s"

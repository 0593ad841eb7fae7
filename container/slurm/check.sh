#!/usr/bin/env bash
# make slurm-check: run the demo on a real single-node SLURM cluster through the dry run's job scripts.
#
# Installs slurm-wlm and munge if missing, starts munged, slurmctld and slurmd of its own in a temporary folder
# (own munge key and socket, loopback ports found free, 2 CPUs), makes the demo data, and for each demo part
# (HCP, then fMRIPrep; four participants each) writes the job scripts with `bidsapp ... participant --dry-run --slurm-script FILE`,
# submits FILE as a job array with the repo's installed bidsapp ($BIDSAPP) and FILE_group with
# --dependency=afterok on the array, waits, checks that every task completed with exit code 0, and compares the
# outputs with one bidsapp run without SLURM (same file names; TSV and NIfTI data equal; sidecars, reports and
# logs aside). Then it cancels one fMRIPrep array task mid-run with scancel, resubmits it, and checks the outputs
# end complete and equal again. Every wait is bounded; every daemon it started is stopped on every exit path.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PY=$REPO/.venv/bin/python
export BIDSAPP=$REPO/.venv/bin/bidsapp   # what the job scripts run (instead of the container)
say() { echo "[slurm-check] $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

if ! command -v slurmctld > /dev/null || ! command -v slurmd > /dev/null || ! command -v munged > /dev/null; then
    say "installing slurm-wlm and munge"
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq slurm-wlm munge > /dev/null
fi

S=$(mktemp -d /var/tmp/bidsapp-slurm.XXXXXX)
PIDS=()      # daemons started here (each leads its process group), stopped in reverse order
KEEP=""      # set when a daemon failed: its log stays
cleanup() {
    local code=$?
    if [ -n "${SLURM_CONF:-}" ] && scontrol ping > /dev/null 2>&1; then   # every job of this cluster is ours
        squeue -h -o %A | sort -u | xargs -r scancel 2> /dev/null || true
        for _ in $(seq 60); do [ -z "$(squeue -h -o %i 2> /dev/null)" ] && break; sleep 1; done
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        local pid=${PIDS[i]}
        kill -- "-$pid" 2> /dev/null || continue   # the daemon's process group (slurmctld's slurmscriptd too)
        for _ in $(seq 30); do kill -0 -- "-$pid" 2> /dev/null || break; sleep 1; done
        kill -9 -- "-$pid" 2> /dev/null || true
    done
    if [ -n "$KEEP" ]; then say "logs kept in $S"; else rm -rf "$S"; fi
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS COMMAND...: run COMMAND every half second until it succeeds, at most SECONDS.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" > /dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.5
    done
}
# start_daemon NAME LOG SECONDS READY COMMAND...: start COMMAND in the background (its output to LOG.out), wait
# until READY succeeds; when it does not within SECONDS, or the daemon exits, fail naming its log.
start_daemon() {
    local name=$1 log=$2 seconds=$3 ready=$4; shift 4
    setsid "$@" > "$log.out" 2>&1 &   # a process group of its own, stopped whole
    local pid=$!
    PIDS+=("$pid")
    local deadline=$((SECONDS + seconds))
    until "$ready" > /dev/null 2>&1; do
        if ! kill -0 "$pid" 2> /dev/null || [ $SECONDS -ge $deadline ]; then
            KEEP=1
            [ -s "$log" ] || log=$log.out   # a daemon that stops before opening its log says why on its output
            tail -n 10 "$log" >&2 || true
            fail "$name did not start; its log: $log"
        fi
        sleep 0.5
    done
}

mkdir -p "$S/munge" "$S/state" "$S/spool" "$S/submit"
chmod 700 "$S/munge"
say "starting munged, slurmctld and slurmd in $S"
mungekey --create --keyfile "$S/munge/munge.key" > /dev/null 2>&1 \
    || { dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 2> /dev/null; chmod 400 "$S/munge/munge.key"; }
munge_works() { munge -n -S "$S/munge/munge.sock" | unmunge -S "$S/munge/munge.sock"; }
start_daemon munged "$S/munged.log" 20 munge_works munged --foreground --force --key-file "$S/munge/munge.key" \
    --socket "$S/munge/munge.sock" --pid-file "$S/munge/munged.pid" --seed-file "$S/munge/munged.seed" \
    --log-file "$S/munged.log"

read -r CTLD_PORT SLURMD_PORT < <("$PY" -c '
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')
MEMORY_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
HOST=$(hostname -s)
export SLURM_CONF=$S/slurm.conf
cat > "$SLURM_CONF" << EOF
ClusterName=bidsappcheck
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.sock
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$S/jobcomp.log
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=20
NodeName=bidsappnode NodeAddr=127.0.0.1 NodeHostname=$HOST CPUs=2 RealMemory=$MEMORY_MB State=UNKNOWN
PartitionName=check Nodes=bidsappnode Default=YES MaxTime=INFINITE State=UP
EOF
controller_up() { scontrol ping; }
start_daemon slurmctld "$S/slurmctld.log" 30 controller_up slurmctld -D -c -f "$SLURM_CONF"
node_idle() { sinfo -h -n bidsappnode -o %T | grep -qx idle; }
start_daemon slurmd "$S/slurmd.log" 30 node_idle slurmd -D -N bidsappnode -f "$SLURM_CONF"
say "cluster up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %T')"

# submit SCRIPT [sbatch options]: the job id.
submit() {
    local id
    id=$(cd "$S/submit" && sbatch --parsable "${@:2}" "$1") || fail "sbatch $1 was refused"
    echo "${id%%;*}"
}
# finish JOB SECONDS: wait until no task of JOB is pending or running.
job_done() { [ -z "$(squeue -h -j "$1" -o %i 2> /dev/null)" ]; }
finish() { wait_for "$2" job_done "$1" || fail "job $1 still not done after $2 s: $(squeue -h -j "$1")"; }
# succeeded JOB: every task of JOB COMPLETED with exit code 0 (scontrol keeps finished jobs for MinJobAge).
succeeded() {
    local states
    states=$(scontrol -o show job "$1" | grep -o 'JobId=[0-9]* .*JobState=[A-Z_]*\|ExitCode=[0-9:]*' | paste -d' ' - -)
    [ -n "$states" ] || fail "job $1: scontrol shows no task"
    if grep -v 'JobState=COMPLETED.* ExitCode=0:0' <<< "$states" | grep -q .; then
        for out in "$S"/submit/slurm-"$1"*.out; do [ -f "$out" ] && { echo "--- $out"; tail -n 5 "$out"; } >&2; done
        fail "job $1: not every task succeeded: $(grep -o 'JobState=[A-Z_]*\|ExitCode=[0-9:]*' <<< "$states" | sort | uniq -c | tr -s ' \n' ' ')"
    fi
    echo "$(wc -l <<< "$states")"
}

say "making the demo data"
"$PY" -m bidsapp.demo "$S/data" > /dev/null
# Four participants of each part keep the check to a few minutes (and the group scripts carry the selection).
HCP_OPTIONS=(--participant-label 100307 100408 101107 101309)
FMRIPREP_OPTIONS=(--participant-label 01 02 03 04 --skip-bids-validation
                  --atlas "$S/data/atlas/atlas-DemoNetworks_dseg.nii.gz" --seeds PCC=0,-52,26)

# part NAME INPUT OPTIONS...: reference run, dry run with --slurm-script, array + group job, compare.
part() {
    local name=$1 input=$2; shift 2
    local started=$SECONDS
    say "$name: one bidsapp run without SLURM (the reference)"
    "$BIDSAPP" "$input" "$S/reference/$name" participant -w "$S/work-reference" "$@" > /dev/null 2>&1 \
        || fail "$name: the reference participant level failed"
    "$BIDSAPP" "$input" "$S/reference/$name" group -w "$S/work-reference" "$@" > /dev/null 2>&1 \
        || fail "$name: the reference group level failed"
    say "$name: the dry run writes $S/submit/$name.sbatch"
    (cd "$S/submit" && "$BIDSAPP" "$input" "$S/slurm/$name" participant -w "$S/work" "$@" --dry-run \
        --slurm-script "$name.sbatch") > "$S/$name-plan.txt" 2>&1 || { tail -n 5 "$S/$name-plan.txt"; fail "$name: the dry run failed"; }
    grep '^#SBATCH' "$S/submit/$name.sbatch" | tr '\n' ' '; echo
    local array group
    array=$(submit "$name.sbatch")
    group=$(submit "${name}_group.sbatch" --dependency=afterok:"$array")
    say "$name: array job $array, group job $group (afterok:$array); waiting"
    finish "$array" 900
    finish "$group" 600
    local tasks groups
    tasks=$(succeeded "$array")
    groups=$(succeeded "$group")
    say "$name: $tasks array tasks and $groups group job completed, exit code 0"
    "$PY" container/slurm/compare.py "$S/reference/$name" "$S/slurm/$name" || fail "$name: outputs differ"
    say "$name: done in $((SECONDS - started)) s"
}

started=$SECONDS
part hcp "$S/data/hcp" "${HCP_OPTIONS[@]}"
part fmriprep "$S/data/bids" "${FMRIPREP_OPTIONS[@]}"

say "fmriprep: cancel array task 1 mid-run, then resubmit it"
first=$(sed -n 's/^labels=(\([^ )]*\).*/\1/p' "$S/submit/fmriprep.sbatch")
outputs=$S/slurm/fmriprep/sub-$first
rm -rf "$outputs"
rerun=$(submit fmriprep.sbatch --array=1)
some_output() { [ -n "$(find "$outputs" -type f 2> /dev/null | head -n 1)" ]; }
wait_for 300 some_output || fail "task 1 of job $rerun wrote nothing in 300 s"
scancel "$rerun"
finish "$rerun" 120
state=$(scontrol -o show job "$rerun" | grep -o 'JobState=[A-Z_]*')
[ "$state" = JobState=CANCELLED ] || fail "job $rerun ended $state before scancel reached it (cancel it earlier)"
written=$(find "$outputs" -type f ! -name '*.json' | wc -l)
say "fmriprep: job $rerun cancelled with $written data files of sub-$first written"
again=$(submit fmriprep.sbatch --array=1)
finish "$again" 600
tasks=$(succeeded "$again")
say "fmriprep: resubmitted as job $again: $tasks task completed, exit code 0"
"$PY" container/slurm/compare.py "$S/reference/fmriprep" "$S/slurm/fmriprep" || fail "fmriprep: outputs differ after the resubmission"
say "passed in $((SECONDS - started)) s after the cluster started"

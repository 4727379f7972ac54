#!/usr/bin/env bash
# A single-node SLURM 22.05 cluster on this machine, for the tests and .ci/run (needs root).
#
#   tests/slurm/cluster.sh start    install slurm-wlm + munge if missing, write the config, start
#                                   munged, slurmctld and slurmd, wait until `srun -n1 true` works
#   tests/slurm/cluster.sh stop     cancel our jobs, stop exactly the daemons `start` started
#   tests/slurm/cluster.sh status   exit 0 when the daemons started here are all running
#
# Idempotent: `start` on a running cluster and `stop` on a stopped one do nothing. Daemons, PIDs,
# state and logs live in $VPT_SLURM_STATE (default /tmp/vpt-slurm). slurm.conf has to be
# /etc/slurm/slurm.conf (slurmstepd drops SLURM_CONF); one not written by this script is never
# overwritten. One CPU-only node `localhost` (CPUs = nproc), partition `debug`, no accounting.
set -euo pipefail

STATE=${VPT_SLURM_STATE:-/tmp/vpt-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by vpt tests/slurm/cluster.sh"
WAIT_S=${VPT_SLURM_WAIT_S:-60}

log() { echo "cluster.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# pid of a daemon we started, if it is still that daemon (a PID can be reused after a reboot)
alive() {
    local name=$1 pidfile="$STATE/$1.pid" pid
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$name" ]] || return 1
    echo "$pid"
}

running() { alive slurmctld >/dev/null && alive slurmd >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

tails() {
    local f
    for f in "$STATE"/log/*.log; do
        [[ -f $f ]] && { echo "--- $f (last 20 lines)"; tail -n 20 "$f"; }
    done >&2
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    log "installing slurm-wlm and munge with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

start_munge() {
    # Reuse a munged that already answers (the system's own); else start ours as user munge.
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$STATE/munged.pid"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "munged does not answer (munge -n | unmunge); see /var/log/munge/munged.log"
}

refuse_foreign_conf() {
    if [[ -e $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; refusing to overwrite it (move it away to use the test cluster)"
    fi
}

write_conf() {
    local cpus mem_mb
    cpus=$(nproc)
    # RealMemory must not exceed what slurmd sees, or the node is drained: stay well below free memory.
    mem_mb=$(awk '/^MemAvailable:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
    cat >"$CONF.tmp" <<EOF
$MARK -- stop it with: tests/slurm/cluster.sh stop
ClusterName=vpt-ci
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
# A requeued batch job may not start again before its old credential expires (cred_expire,
# 120 s by default; it also bounds step launch, so not the bare minimum), and then waits for
# the next scheduling pass (up to sched_interval=60 s / bf_interval=30 s by default).
AuthInfo=cred_expire=10
SchedulerParameters=sched_interval=2,bf_interval=2
NodeName=localhost CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

wait_ready() {
    local end=$((SECONDS + WAIT_S)) state
    while ((SECONDS < end)); do
        state=$(sinfo -h -N -o %T 2>/dev/null | head -n1 || true)
        if [[ $state == idle* || $state == mixed* || $state == allocated* ]]; then
            if timeout "$WAIT_S" srun -n1 -t 1 true 2>/dev/null; then
                return
            fi
        fi
        sleep 0.5
    done
    tails
    die "the cluster is not ready after ${WAIT_S}s (node state: ${state:-unknown}; sinfo / srun -n1 true failed)"
}

cmd_start() {
    [[ $(id -u) == 0 ]] || die "must run as root (installs packages, writes $CONF, starts daemons)"
    if running; then
        log "already running (state in $STATE)"
        return
    fi
    refuse_foreign_conf # before anything is started
    mkdir -p "$STATE"
    install_packages
    start_munge
    write_conf
    # -c: a fresh controller state, so jobs of an earlier session are not resurrected
    alive slurmctld >/dev/null || slurmctld -c || { tails; die "slurmctld did not start"; }
    alive slurmd >/dev/null || slurmd || { tails; die "slurmd did not start"; }
    for _ in $(seq 50); do
        alive slurmctld >/dev/null && alive slurmd >/dev/null && break
        sleep 0.1
    done
    alive slurmctld >/dev/null && alive slurmd >/dev/null || { tails; die "a daemon exited right after starting"; }
    wait_ready
    log "running: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %T'), state in $STATE"
}

stop_pid() {
    local name=$1 pid
    pid=$(alive "$name") || { rm -f "$STATE/$name.pid"; return 0; }
    kill -TERM "$pid"
    for _ in $(seq 100); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    [[ -d /proc/$pid ]] && kill -KILL "$pid"
    rm -f "$STATE/$name.pid"
    log "stopped $name (pid $pid)"
}

cmd_stop() {
    if alive slurmctld >/dev/null; then
        # our cluster's jobs only (this controller); their steps would outlive slurmd otherwise
        local jobs
        jobs=$(squeue -h -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086
            scancel $jobs || true
            for _ in $(seq 100); do
                [[ -z $(squeue -h -t running,completing -o %i 2>/dev/null || true) ]] && break
                sleep 0.1
            done
        fi
    fi
    stop_pid slurmd
    stop_pid slurmctld
    stop_pid munged
    if [[ -e $CONF ]] && grep -qF "$MARK" "$CONF"; then
        rm -f "$CONF"
    fi
}

cmd_status() {
    local name pid rc=0
    for name in munged slurmctld slurmd; do
        if pid=$(alive "$name"); then
            echo "$name: running (pid $pid)"
        elif [[ $name == munged ]] && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
            echo "munged: running (not started here)"
        else
            echo "$name: stopped"
            rc=3
        fi
    done
    return $rc
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

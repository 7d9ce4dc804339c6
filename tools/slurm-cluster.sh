#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for efflab's SLURM tests and for
# trying `efflab run EXP --profile slurm` without a site cluster.
#
#   tools/slurm-cluster.sh start    install (apt-get) if needed, configure, start, wait idle
#   tools/slurm-cluster.sh status   exit 0 when the node answers idle/mixed/allocated, 3 if not
#   tools/slurm-cluster.sh stop     stop the daemons this script started (by pid file) and
#                                   remove the slurm.conf it wrote
#
# Why each choice:
# - Debian's slurm-wlm + munge: the same slurmctld/slurmd/sbatch a site runs, so the
#   executor plugin is exercised against real sbatch/squeue, not a mock.
# - One node called `localhost` (slurmd -N localhost): no dependence on the machine's
#   host name resolving; its CPUs and memory come from `slurmd -C`, so the partition
#   limits efflab checks before submitting are the machine's own.
# - No slurmdbd: job history goes to a job-completion log (jobcomp/filetxt, which the
#   tests read to prove jobs went through sbatch), and a long MinJobAge keeps finished
#   jobs visible to `squeue`, which is how the plugin then learns their final state.
# - Daemons run without systemd (containers and CI runners have none); munged runs as
#   the munge user and its key, log and socket folders belong to it, as munged demands.
# - An /etc/slurm/slurm.conf not written by this script is never overwritten: on a real
#   cluster node the script refuses instead of clobbering the site's configuration.
#
# Environment: EFFLAB_SLURM_PARTITION (default: debug), EFFLAB_SLURM_MAXTIME
# (partition MaxTime, default 2-00:00:00), EFFLAB_SLURM_WAIT_S (default 90).
# Exit codes: 0 ok, 1 failed to start (log tails printed), 2 cannot run here (not root,
# no apt-get, a foreign slurm.conf), 3 status: not running.
set -euo pipefail

PARTITION="${EFFLAB_SLURM_PARTITION:-debug}"
MAXTIME="${EFFLAB_SLURM_MAXTIME:-2-00:00:00}"
WAIT_S="${EFFLAB_SLURM_WAIT_S:-90}"
CONF=/etc/slurm/slurm.conf
MARKER="# written by efflab tools/slurm-cluster.sh"
STATE=/var/lib/slurm/slurmctld
SPOOL=/var/lib/slurm/slurmd
LOGS=/var/log/slurm
RUN=/run/slurm
JOBCOMP="$LOGS/jobcomp.log"
MUNGE_PID=/run/munge/munged.pid

die() { echo "slurm-cluster: $2" >&2; exit "$1"; }
say() { echo "slurm-cluster: $*"; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            exec sudo -n -E "$0" "$@"
        fi
        die 2 "needs root (apt-get, daemons, /etc/slurm); run as root or with passwordless sudo"
    fi
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null \
        || die 2 "slurm-wlm and munge are not installed and there is no apt-get to install them"
    say "installing slurm-wlm and munge (apt-get)"
    # no service may start itself during the install: this script starts them, by pid
    local policy_added=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge; } \
        >/tmp/efflab-slurm-apt.log 2>&1 || {
        [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
        tail -20 /tmp/efflab-slurm-apt.log >&2
        die 2 "apt-get install slurm-wlm munge failed (log: /tmp/efflab-slurm-apt.log)"
    }
    [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

is_up() {
    # the node answers and is schedulable: idle, mixed or allocated, and no suffix
    # (a "*" would mean slurmd has not registered since the controller started)
    local st
    # our own cluster without its controller: say so now, not after sinfo's retries
    if grep -qsF "$MARKER" "$CONF" && ! pid_alive "$RUN/slurmctld.pid"; then
        return 1
    fi
    st=$(timeout 10 sinfo -h -N -n localhost -o %t 2>/dev/null | head -1) || return 1
    [[ "$st" =~ ^(idle|mix|alloc|comp)$ ]]
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    getent passwd munge >/dev/null || die 1 "package munge did not create the munge user"
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        if command -v mungekey >/dev/null; then
            runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    if pid_alive "$MUNGE_PID"; then
        return
    fi
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" \
        || { tail -5 /var/log/munge/munged.log >&2 || true; die 1 "munged failed to start"; }
    munge -n </dev/null | unmunge >/dev/null || die 1 "munge credential round trip failed"
}

write_conf() {
    if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
        die 2 "$CONF exists and was not written by this script; refusing to overwrite a site configuration"
    fi
    # CPUs, sockets, cores, threads and RealMemory of this machine, as slurmd sees them
    local hw
    hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //')
    [ -n "$hw" ] || die 1 "slurmd -C printed no node description"
    mkdir -p /etc/slurm
    cat >"$CONF.tmp" <<EOF
$MARKER — regenerated on every start; edit the script instead.
ClusterName=efflab
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# no cgroups: containers and CI runners rarely delegate them
ProctrackType=proctrack/linuxproc
# task/affinity pins each job to its cores (honest timings); needs no cgroups
TaskPlugin=task/affinity
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# cores and memory are consumable: --cpus-per-task and --mem are honoured
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
# no slurmdbd: completed jobs go to a text log, and stay in squeue for an hour so the
# executor plugin's squeue status query sees how they ended
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
MinJobAge=3600
NodeName=localhost NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=$MAXTIME State=UP
EOF
    mv "$CONF.tmp" "$CONF"
    chmod 0644 "$CONF"
}

start_slurm() {
    getent passwd slurm >/dev/null || die 1 "the slurm packages did not create the slurm user"
    install -d -o slurm -g slurm -m 0755 "$STATE" "$LOGS" "$RUN"
    install -d -m 0755 "$SPOOL"
    touch "$JOBCOMP" && chown slurm:slurm "$JOBCOMP" && chmod 0644 "$JOBCOMP"
    if ! pid_alive "$RUN/slurmctld.pid"; then
        slurmctld || die 1 "slurmctld failed to start: $(tail -5 $LOGS/slurmctld.log 2>/dev/null)"
    fi
    if ! pid_alive "$RUN/slurmd.pid"; then
        slurmd -N localhost || die 1 "slurmd failed to start: $(tail -5 $LOGS/slurmd.log 2>/dev/null)"
    fi
}

wait_idle() {
    local deadline=$((SECONDS + WAIT_S))
    while [ $SECONDS -lt $deadline ]; do
        if is_up; then
            return 0
        fi
        # a node left down by an earlier, unclean stop comes back here
        scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
        sleep 1
    done
    echo "--- sinfo ---" >&2
    sinfo -N -l >&2 || true
    for f in slurmctld slurmd; do
        echo "--- $LOGS/$f.log ---" >&2
        tail -15 "$LOGS/$f.log" >&2 || true
    done
    die 1 "node localhost not idle after ${WAIT_S}s"
}

stop_pid() {
    local name=$1 pidfile=$2
    pid_alive "$pidfile" || return 0
    local pid
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { say "stopped $name ($pid)"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    say "killed $name ($pid)"
}

cmd_start() {
    local t0=$SECONDS
    if command -v sinfo >/dev/null && is_up; then
        say "already running"
        sinfo
        return 0
    fi
    install_packages
    write_conf
    start_munge
    start_slurm
    wait_idle
    say "up in $((SECONDS - t0))s (partition $PARTITION, job completion log $JOBCOMP)"
    sinfo
}

cmd_stop() {
    stop_pid slurmd "$RUN/slurmd.pid"
    stop_pid slurmctld "$RUN/slurmctld.pid"
    stop_pid munged "$MUNGE_PID"
    # no half-configured client left behind: with our slurm.conf and no controller,
    # every scontrol/sinfo (and so every Snakemake start that imports the SLURM
    # executor plugin) retries the dead controller for ~9 s. start writes it anew.
    if grep -qsF "$MARKER" "$CONF"; then
        rm -f "$CONF"
        say "removed $CONF (start writes it again)"
    fi
}

cmd_status() {
    if command -v sinfo >/dev/null && is_up; then
        sinfo
        return 0
    fi
    say "not running"
    return 3
}

case "${1:-}" in
    start) need_root "$@"; cmd_start ;;
    stop) need_root "$@"; cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

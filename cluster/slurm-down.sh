#!/usr/bin/env bash
# Stop the one-node SLURM cluster that cluster/slurm-up.sh started: cancel its jobs, stop
# slurmd, slurmctld and munged by the PID files in LALM_SLURM_DIR (default /tmp/lalm-slurm)
# and remove the /etc/slurm/slurm.conf that slurm-up.sh wrote. Touches no other process
# and no other configuration. Safe to run again, and when nothing runs.
set -euo pipefail

DIR="${LALM_SLURM_DIR:-/tmp/lalm-slurm}"
CONF=/etc/slurm/slurm.conf
MARKER="# lalm-eval one-node test cluster"

say() { echo "slurm-down: $*"; }
ours() { [ -f "$CONF" ] && head -1 "$CONF" | grep -qF "$MARKER"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! compgen -G "$DIR/run/*.pid" >/dev/null && ! ours; then
    say "nothing to stop ($DIR)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "slurm-down: error: must run as root" >&2; exit 1; }
    exec sudo LALM_SLURM_DIR="$DIR" "$0" "$@"
fi

# jobs first, through SLURM, so that their processes (under slurmstepd) end with them
if ours && alive "$DIR/run/slurmctld.pid"; then
    jobs="$(timeout 10 squeue -h -t PENDING,RUNNING,COMPLETING,SUSPENDED -o %A 2>/dev/null \
        | sort -u | tr '\n' ' ')" || jobs=""
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 20 scancel $jobs || true
        for _ in $(seq 60); do
            left="$(timeout 10 squeue -h -t PENDING,RUNNING,COMPLETING -o %A 2>/dev/null)" || left=""
            [ -z "$left" ] && break
            sleep 0.5
        done
    fi
fi

stop() {  # stop NAME PIDFILE: TERM, wait up to 20 s, then KILL
    local name="$1" pidfile="$2" pid
    if ! alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) did not stop on TERM: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    say "stopped $name (pid $pid)"
}

stop slurmd "$DIR/run/slurmd.pid"
stop slurmctld "$DIR/run/slurmctld.pid"
stop munged "$DIR/run/munged.pid"
rm -f "$DIR/munge/munged.pid"
if ours; then
    rm -f "$CONF"
    say "removed $CONF"
fi

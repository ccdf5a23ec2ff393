#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (Debian's slurmctld, slurmd, munge).
#
#   cluster/slurm-up.sh      # installs the packages if missing, starts the daemons
#   sinfo; sbatch ...        # the cluster is this machine's SLURM until:
#   cluster/slurm-down.sh    # stops what this script started
#
# The configuration goes to /etc/slurm/slurm.conf, where every SLURM command looks,
# including the `srun` that the executor plugin runs inside each job (the plugin removes
# SLURM_CONF from that srun's environment, so a configuration elsewhere is not found there).
# An existing slurm.conf that this script did not write is never touched: it stops instead.
# Everything else lives in LALM_SLURM_DIR (default /tmp/lalm-slurm): a private munged with
# its own socket, state, spool, logs and PID files. The partition is `lalm`
# (cluster/partitions-local.yaml describes it to the executor). Safe to run again: a
# running cluster is reused, a half-started one is stopped and started afresh.
# Settings (environment): LALM_SLURM_DIR, LALM_SLURM_PORT (slurmctld port, default 6817;
# slurmd uses the next one), LALM_SLURM_WAIT (seconds to wait for each daemon, default 60).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${LALM_SLURM_DIR:-/tmp/lalm-slurm}"
CTLD_PORT="${LALM_SLURM_PORT:-6817}"
SLURMD_PORT="$((CTLD_PORT + 1))"
WAIT="${LALM_SLURM_WAIT:-60}"
PARTITION=lalm
CONF=/etc/slurm/slurm.conf
MARKER="# lalm-eval one-node test cluster"
SOCKET="$DIR/munge/munge.socket.2"

say() { echo "slurm-up: $*"; }
die() { echo "slurm-up: error: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "must run as root (the daemons run as root), and sudo is missing"
    say "not root: running through sudo"
    exec sudo LALM_SLURM_DIR="$DIR" LALM_SLURM_PORT="$CTLD_PORT" LALM_SLURM_WAIT="$WAIT" "$0" "$@"
fi

# --- packages ---------------------------------------------------------------------------
PACKAGES=(slurmctld slurmd slurm-client munge)
need_install=0
for tool in slurmctld slurmd sbatch squeue munged munge; do
    command -v "$tool" >/dev/null 2>&1 || need_install=1
done
if [ "$need_install" = 1 ]; then
    say "installing ${PACKAGES[*]} (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 600 apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
        say "apt-get install failed: updating package lists and trying again"
        timeout 600 apt-get update -qq
        timeout 600 apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    fi
fi
[ -r /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing (the munge package creates it)"

# --- already up? --------------------------------------------------------------------------
ours() { [ -f "$CONF" ] && head -1 "$CONF" | grep -qF "$MARKER"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
node_state() { timeout 10 sinfo -h -N -p "$PARTITION" -o %t 2>/dev/null | head -1; }
ready() { case "$(node_state)" in idle | mix | alloc) return 0 ;; *) return 1 ;; esac; }

if ours && alive "$DIR/run/munged.pid" && alive "$DIR/run/slurmctld.pid" \
    && alive "$DIR/run/slurmd.pid" && ready; then
    say "already running ($CONF, state in $DIR)"
    exit 0
fi
if [ -e "$CONF" ] && ! ours; then
    die "$CONF exists and was not written by this script: this machine has its own SLURM setup, which is left alone"
fi
if ours || compgen -G "$DIR/run/*.pid" >/dev/null; then
    say "a previous cluster is partly up: stopping it first"
    LALM_SLURM_DIR="$DIR" "$HERE/slurm-down.sh"
fi

# --- configuration ------------------------------------------------------------------------
rm -rf "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/munge"
mkdir -p "$DIR"/{state,spool,run,log,munge}
chmod 755 "$DIR" "$DIR/run" "$DIR/log"
chown munge:munge "$DIR/munge"
chmod 755 "$DIR/munge"

HOST="$(hostname -s)"
# the node line as slurmd measures this machine (CPUs, sockets, cores, memory), with 5 %
# of the memory held back so that the node never reports less than it is configured with
NODE="$(slurmd -C | head -1)"
[[ "$NODE" == NodeName=* ]] || die "slurmd -C printed no node line: $NODE"
MEM="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE")"
NODE="$(sed -e "s/RealMemory=[0-9]*/RealMemory=$((MEM * 95 / 100))/" \
    -e "s/^NodeName=[^ ]*/NodeName=$HOST NodeAddr=127.0.0.1/" <<<"$NODE")"
mkdir -p "$(dirname "$CONF")"
{
    echo "$MARKER (written by cluster/slurm-up.sh, removed by cluster/slurm-down.sh)"
    sed -e "s|@HOST@|$HOST|g" -e "s|@DIR@|$DIR|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
        -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@NODE@|$NODE|g" "$HERE/slurm.conf.in"
} >"$CONF"
say "configuration $CONF: $NODE, partition $PARTITION"

wait_for() {  # wait_for WHAT COMMAND...: retry COMMAND for up to $WAIT seconds
    local what="$1"; shift
    local deadline=$((SECONDS + WAIT))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "slurm-up: error: $what not ready after ${WAIT}s; logs in $DIR/log" >&2
            tail -n 20 "$DIR"/log/*.log "$DIR"/munge/*.log >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.5
    done
}

# --- daemons ------------------------------------------------------------------------------
# munged runs as the munge user; slurmctld and slurmd detach and write their PID files
runuser -u munge -- munged --socket="$SOCKET" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
wait_for "munged" test -s "$DIR/munge/munged.pid"
cp "$DIR/munge/munged.pid" "$DIR/run/munged.pid"
wait_for "munge credentials" bash -c "munge -n -S '$SOCKET' | unmunge -S '$SOCKET'"
say "munged up (pid $(cat "$DIR/run/munged.pid"))"

slurmctld
wait_for "slurmctld" scontrol ping
say "slurmctld up (pid $(cat "$DIR/run/slurmctld.pid"))"

slurmd
if ! wait_for "node $HOST" ready; then
    scontrol show node "$HOST" >&2 || true
    exit 1
fi
say "slurmd up (pid $(cat "$DIR/run/slurmd.pid")), node $HOST $(node_state)"

timeout 60 srun -p "$PARTITION" -N1 -n1 --mem=100 -t 1 hostname >/dev/null \
    || die "srun smoke test failed; logs in $DIR/log"
say "ready: srun works; sinfo, sbatch and squeue talk to this cluster"

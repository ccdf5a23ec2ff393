#!/usr/bin/env bash
# The offline demo through SLURM, checked against a local run (make test-cluster).
#
# 1. runs a small selection of the demo (config/demo.yaml with cluster/demo-selection.yaml:
#    the three suites sseu, jasco and knowledge, cut down; 36 jobs) locally, with
#    profiles/default;
# 2. starts a one-node SLURM cluster on this machine (cluster/slurm-up.sh);
# 3. runs the same selection through the SLURM executor:
#    --profile profiles/slurm --profile cluster/slurm-local.yaml (the test partition);
# 4. checks that both runs produced the same results, and that SLURM ran the jobs
#    (pytest tests/cluster/test_same_results.py);
# and stops the cluster on the way out, whatever happened.
#
# Each run gets its own folders under LALM_CLUSTER_WORK (default /tmp/lalm-cluster-test,
# emptied first); results/ and resources/ of the checkout are not touched. Demo packages
# already downloaded in resources/demo are copied instead of downloaded again.
# Time limits (seconds, SIGKILL): LALM_LOCAL_TIMEOUT (default 900), LALM_SLURM_TIMEOUT
# (default 1200).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="${PY:-$REPO/.venv/bin/python}"
WORK="${LALM_CLUSTER_WORK:-/tmp/lalm-cluster-test}"
LOCAL_TIMEOUT="${LALM_LOCAL_TIMEOUT:-900}"
SLURM_TIMEOUT="${LALM_SLURM_TIMEOUT:-1200}"
DEBS=corpora/demo/debs/debs   # the demo's downloaded Debian packages, under paths.resources

say() { echo "run-demo-on-slurm: $*"; }
die() { echo "run-demo-on-slurm: error: $*" >&2; exit 1; }

[ -x "$PY" ] || die "$PY not found: run 'make install' first"
"$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null \
    || die "snakemake-executor-plugin-slurm is not installed in $PY's environment: run 'make install'"

case "$WORK" in /|"$REPO"|"$HOME") die "LALM_CLUSTER_WORK=$WORK is not a scratch folder" ;; esac
rm -rf "$WORK"
mkdir -p "$WORK"
for run in local slurm; do
    cat >"$WORK/$run.yaml" <<EOF
# $run run of the cluster test (cluster/run-demo-on-slurm.sh)
paths: {resources: $WORK/$run/res, results: $WORK/$run/out}
EOF
done
if [ -d "resources/demo/$DEBS" ]; then
    say "reusing the demo packages in resources/demo/$DEBS"
    mkdir -p "$WORK/local/res/$(dirname "$DEBS")"
    cp -a "resources/demo/$DEBS" "$WORK/local/res/$DEBS"
fi

CHILD=""
run_snakemake() {  # run_snakemake NAME TIMEOUT ARGS...: one bounded run, its log in $WORK
    local name="$1" limit="$2"; shift 2
    local start=$SECONDS status=0
    # in the background, so that an interrupt reaches the traps at once (see cleanup)
    timeout -s KILL "$limit" "$PY" -m snakemake \
        --configfile config/demo.yaml cluster/demo-selection.yaml "$WORK/$name.yaml" \
        --directory "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 &
    CHILD=$!
    wait "$CHILD" || status=$?
    CHILD=""
    if [ "$status" != 0 ]; then
        tail -n 40 "$WORK/$name.log" >&2
        [ "$status" = 137 ] && die "$name run killed after ${limit}s (log: $WORK/$name.log)"
        die "$name run failed with status $status (log: $WORK/$name.log)"
    fi
    echo "$((SECONDS - start))" >"$WORK/$name.seconds"
    say "$name run done in $((SECONDS - start)) s ($(grep -Eo '[0-9]+ of [0-9]+ steps' "$WORK/$name.log" | tail -1))"
}

stop_child() {  # an interrupted run: TERM (timeout passes it on to Snakemake), then KILL
    [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null || return 0
    say "stopping the running Snakemake (pid $CHILD)"
    kill -TERM "$CHILD" 2>/dev/null || true
    for _ in $(seq 60); do
        kill -0 "$CHILD" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -KILL "$CHILD" 2>/dev/null || true
}
trap 'stop_child; exit 130' INT
trap 'stop_child; exit 143' TERM

total_start=$SECONDS
say "local run (profiles/default, 2 cores) of cluster/demo-selection.yaml"
run_snakemake local "$LOCAL_TIMEOUT" --cores 2

if [ -d "$WORK/local/res/$DEBS" ]; then
    mkdir -p "$WORK/slurm/res/$(dirname "$DEBS")"
    cp -a "$WORK/local/res/$DEBS" "$WORK/slurm/res/$DEBS"
fi

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_child
    "$REPO/cluster/slurm-down.sh" || status=1
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
timeout -s KILL 900 "$REPO/cluster/slurm-up.sh"

say "SLURM run (--profile profiles/slurm --profile cluster/slurm-local.yaml)"
# absolute profile paths: file names in a profile are resolved against the profile's path
# as given, and the run works in its own --directory
run_snakemake slurm "$SLURM_TIMEOUT" --profile "$REPO/profiles/slurm" \
    --profile "$REPO/cluster/slurm-local.yaml"
# the jobs of this run as SLURM saw them (finished jobs stay listed for MinJobAge)
run_id="$(sed -n 's/^SLURM run ID: //p' "$WORK/slurm.log" | head -1)"
[ -n "$run_id" ] || die "no 'SLURM run ID' in $WORK/slurm.log: did the SLURM executor run?"
timeout 30 squeue --states=all --noheader --name "$run_id" -o '%i|%T|%P|%M|%k' >"$WORK/slurm-jobs.txt"
say "SLURM ran $(wc -l <"$WORK/slurm-jobs.txt") jobs or array tasks: $(cut -d'|' -f2 "$WORK/slurm-jobs.txt" | sort | uniq -c | xargs)"

say "comparing the results of both runs"
LALM_CLUSTER_WORK="$WORK" timeout -s KILL 300 "$PY" -m pytest -q -p no:cacheprovider \
    tests/cluster/test_same_results.py
say "done in $((SECONDS - total_start)) s (local $(cat "$WORK/local.seconds") s, SLURM $(cat "$WORK/slurm.seconds") s)"

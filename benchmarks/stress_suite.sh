#!/usr/bin/env bash
# Run the whole test suite while N CPU-bound processes keep the machine's cores busy, and exit
# with the suite's status: the suite must pass on a loaded machine, not only on a quiet one.
#
#   benchmarks/stress_suite.sh              # 2 busy processes (both cores of a 2-core machine)
#
# The suite runs as the README runs it, on two workers (-n 2); pytest options given after N
# are added (-n 1 runs it on one).
#   benchmarks/stress_suite.sh 4 -x -q      # 4 busy processes; the rest goes to pytest
#   STRESS_RUNS=3 benchmarks/stress_suite.sh   # the suite 3 times in a row, stopping at a failure
#
# PYTHON picks the interpreter (default: python). The load average is printed before and after
# each run, so a result can be quoted with the load it was measured under.
set -u

busy=${1:-2}
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $busy =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [N busy processes, default 2] [pytest options...]" >&2
    exit 2
fi
runs=${STRESS_RUNS:-1}
python=${PYTHON:-python}
cd "$(dirname "$0")/.."

pids=()
stop_busy() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait "${pids[@]}" 2>/dev/null
}
trap stop_busy EXIT
trap 'exit 130' INT TERM

for ((k = 0; k < busy; k++)); do
    # A pure-Python spin: one core each, no I/O, no memory to speak of.
    "$python" -c 'while True: pass' &
    pids+=("$!")
done

status=0
for ((run = 1; run <= runs; run++)); do
    echo "stress_suite: run $run of $runs, $busy busy process(es); $(uptime)"
    started=$SECONDS
    "$python" -m pytest -q -n 2 "$@"
    status=$?
    echo "stress_suite: run $run exit $status after $((SECONDS - started)) s; $(uptime)"
    if [[ $status -ne 0 ]]; then break; fi
done
exit $status

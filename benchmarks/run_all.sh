#!/usr/bin/env bash
# Re-measure every figure of the README's benchmark table, one script after another, each
# preceded and followed by the load average it ran under. Run it on an otherwise idle machine
# to compare with the README; a busy one only lowers the speeds (the ratios hold better).
#
#   benchmarks/run_all.sh                      # every benchmark (about 15 minutes on 2 cores)
#   benchmarks/run_all.sh throughput redis     # only the named ones (see NAMES below)
#   PYTHON=.venv/bin/python benchmarks/run_all.sh startup
#
# The output is meant to be kept: `benchmarks/run_all.sh 2>&1 | tee bench.log`.
set -u
python=${PYTHON:-python}
cd "$(dirname "$0")"

# name: the command line (arguments as the README's table quotes them).
declare -A BENCH=(
    [throughput]="throughput.py --repeat 3"
    [throughput-jitter]="throughput.py --repeat 3 --jitter 50 --busy 2"
    [throughput-refusals]="throughput.py --repeat 2 --refusals-count"
    [throughput-refusals-jitter]="throughput.py --repeat 2 --refusals-count --jitter 50 --busy 2"
    [guard_sim]="guard_sim.py"
    [redis]="redis_hosts.py --repeat 4"
    [redis_alone]="redis_hosts.py --alone"
    [redis_ledger]="redis_ledger.py"
    [ceiling]="client_ceiling.py --repeat 3"
    [cache_load]="cache_load.py"
    [refresh]="refresh.py"
    [iter_memory]="iter_memory.py --bars 50000"
    [dataset_size]="dataset_size.py"
    [store_chunks]="store_chunks.py"
    [ledger_cost]="ledger_cost.py"
    [decode]="decode.py"
    [categories]="categories.py"
    [startup]="startup.py"
)
NAMES=(throughput throughput-jitter throughput-refusals throughput-refusals-jitter guard_sim redis
    redis_alone redis_ledger ceiling cache_load refresh iter_memory dataset_size store_chunks
    ledger_cost decode categories startup)

if [[ $# -gt 0 ]]; then NAMES=("$@"); fi
status=0
for name in "${NAMES[@]}"; do
    if [[ -z ${BENCH[$name]+x} ]]; then
        echo "run_all: no benchmark named '$name' (known: ${!BENCH[*]})" >&2
        exit 2
    fi
    echo "=== $name: ${BENCH[$name]}"
    echo "    before: $(uptime)"
    started=$SECONDS
    # shellcheck disable=SC2086
    "$python" ${BENCH[$name]} || status=$?
    echo "    after $((SECONDS - started)) s: $(uptime)"
done
exit $status

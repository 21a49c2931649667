#!/usr/bin/env bash
# The scaling run of docs/performance.md: intake, the collector and N pool instances per
# department, each a process of its own on SQLite, then `prh bench --external` against them.
#
#   cargo build --release
#   deploy/scaling-run.sh 2            # 2 instances per department, 5,000 applications
#   deploy/scaling-run.sh 4 20000      # 4 instances, 20,000 applications
set -euo pipefail

instances=${1:-1}
applications=${2:-5000}
bin=${PRH_BIN:-target/release/prh}
[ -x "$bin" ] || { echo "no $bin: run cargo build --release first" >&2; exit 2; }

work=$(mktemp -d /tmp/prh-scaling.XXXXXX)
port=$((20000 + RANDOM % 20000))
export PRH__DATA_DIR=$work
export PRH__AMQP__PREFIX=prh-scaling-$$
export PRH__INTAKE__LISTEN=127.0.0.1:$port
export PRH__CLIENT__INTAKE_URL=http://127.0.0.1:$port
export PRH__LOG__FILTER=${PRH__LOG__FILTER:-warn}

pids=()
cleanup() {
    [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null && wait "${pids[@]}" 2>/dev/null
    # The topology of this run: every queue and exchange under its prefix.
    for q in $(rabbitmqctl -q list_queues name 2>/dev/null | grep "^$PRH__AMQP__PREFIX\." || true); do
        rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
    done
    for x in $(rabbitmqctl -q list_exchanges name 2>/dev/null | grep "^$PRH__AMQP__PREFIX\." || true); do
        rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$x\">>), false, <<\"prh\">>)." >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" migrate >/dev/null
"$bin" intake & pids+=($!)
"$bin" collector & pids+=($!)
for department in public_security civil_affairs human_resources natural_resources housing education; do
    for _ in $(seq "$instances"); do
        "$bin" worker --department "$department" & pids+=($!)
    done
done

for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
echo "running: intake, collector and $instances instance(s) per department (${#pids[@]} processes)" >&2

# CPU seconds of a process so far (user + system), from /proc.
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Empty for a process that has ended (the bench driver, by the time the table is printed).
role() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | sed 's|^[^ ]*prh ||; s/ *$//' || true; }
broker=$(pgrep -f 'beam.smp.*rabbit' | head -1 || true)
watched=("${pids[@]}" ${broker:+"$broker"})

# The bench measures the ceiling and seeds first; the CPU split covers only the phase in
# which the applications are driven.
"$bin" bench --external --applications "$applications" "${@:3}" 2> >(tee "$work/bench.err" >&2) &
bench=$!
until grep -q driving "$work/bench.err" 2>/dev/null || ! kill -0 $bench 2>/dev/null; do sleep 0.2; done
declare -A before; for p in "${watched[@]}" $bench; do before[$p]=$(cpu "$p"); done
started=$(date +%s.%N)
declare -A last; ended=$started
while kill -0 $bench 2>/dev/null; do
    for p in "${watched[@]}" $bench; do last[$p]=$(cpu "$p"); done
    ended=$(date +%s.%N)
    sleep 0.5
done
wait $bench
echo
wall=$(awk -v a="$started" -v b="$ended" 'BEGIN {printf "%.1f", b - a}')
echo "CPU while driving (cores: CPU seconds per second of the $wall s):"
for p in "${watched[@]}" $bench; do
    name=$(role "$p"); [ "$p" = "$broker" ] && name=rabbitmq; [ "$p" = "$bench" ] && name="bench driver"
    awk -v a="${before[$p]:-0}" -v b="${last[$p]:-0}" -v w="$wall" -v n="$name" 'BEGIN {printf "  %5.2f  %s\n", (b - a) / w, n}'
done | sort -rn

#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md, reproducible: builds release binaries, then measures
#   1. time from start to SERVING of each service (separate binaries, fresh and existing data);
#   2. idle RSS of each service;
#   3. cursos GetStatus / GetUserCourses vs the floor (a bare tonic server sending the same bytes,
#      services/aula/examples/floor.rs), server pinned to one core, h2load to the other, rounds
#      alternating between the two servers;
#   4. p99 latency of GetUserCourses at half the maximum rate (aula load --rate, open loop), and
#      of the floor at the same rate (h2load --rps sends each client's share in bursts: unusable);
#   5. the AskQuestion chain (cursos -> chatbot -> insights) flat out with `aula load`;
#   6. the whole mix flat out, then peak RSS of each service;
#   7. the cost of tracing at 10% sampling (OTLP to an in-process sink, examples/otlp_sink.rs);
#   8. image sizes, when `docker images aula/*` has any;
#   9. GetUserCourses on PostgreSQL, the gateway, and the cost of data (scripts/bench-data.sh:
#      the modes postgres, gateway and data below, in that order).
# Results: target/bench/results.tsv (key, value) and target/bench/summary.md; logs next to them.
#
# Validity (#16): every round of 3. measures the floor too, and the run is INVALID when any
# round's floor is below 80% of the quiet reference: the best floor of this run, or the best
# floor of an earlier valid run on this machine (target/bench-floor-reference.tsv), or
# BENCH_FLOOR_REFERENCE (GetUserCourses), whichever is higher. A busy machine compresses every ratio toward 1, so an invalid run's ratios say nothing;
# the summary and results.tsv say INVALID and why. Before starting, the script checks the load
# (/proc/loadavg, processes using a CPU) and refuses a busy machine unless --force. The modes
# overload, streams and mtls take a round of the floor before and after their measurement and
# are judged by the same rule (scripts/bench_validity.py; their summary says VALID, INVALID, or
# validity unknown when nothing but the run itself says what quiet is).
#
# Modes of their own (scripts/bench-limits.sh, #14), results in target/bench/<mode>/:
#   scripts/bench.sh floor      is the machine quiet? BENCH_ROUNDS rounds of the floor alone on
#                               its core (~15 s each), judged against the quiet reference: the
#                               first thing to run before timing anything
#   scripts/bench.sh callgrind  instructions per request of cursos and the floor, GetStatus and
#                               GetUserCourses (valgrind; noise-free, runs on a busy machine too;
#                               scripts/bench-callgrind.sh)
#   scripts/bench.sh callgrind-gateway  instructions per GET /cursos/ver_inscricoes_do_usuario/1
#                               of the gateway (valgrind), cursos behind it as a plain binary
#   scripts/bench.sh callgrind-overload  instructions per served GetUserCourses of cursos
#                               (valgrind), closed loop vs overloaded: the overload's goodput
#                               target in user space, on any machine
#   scripts/bench.sh overload   cursos at ~3x its maximum rate for 60 s (goodput, p99, RSS, health,
#                               and with perf: CPU and system calls per answered call;
#                               h2load and a probe: scripts/bench-limits.sh says why)
#   scripts/bench.sh streams    10,000 SubscribeNotifications streams (RSS, delivery delay)
#   scripts/bench.sh mtls       GetUserCourses over TLS vs plaintext, same core, same run
#                               (scripts/bench-mtls.sh)
#   scripts/bench.sh flags      GetUserCourses without a flags file vs every fault flag off
#                               (scripts/bench-flags.sh, #19)
#   scripts/bench.sh postgres   GetUserCourses on PostgreSQL (on the other core): throughput,
#                               p99 at half of it (scripts/bench-data.sh, #16)
#   scripts/bench.sh gateway    GET /cursos/ver_inscricoes_do_usuario/1 through the gateway:
#                               throughput, p99 at half, the p50 it adds over direct gRPC
#   scripts/bench.sh data       p50 of five calls on demo data vs 1M enrolments and 2M
#                               notifications (scripts/seed.sh), SQLite and PostgreSQL
#
# Knobs (environment): BENCH_SECONDS (10) per h2load measurement, BENCH_ROUNDS (3),
# BENCH_CLIENTS (16) h2load connections, BENCH_STREAMS (10) streams per connection,
# BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1), BENCH_PORT_BASE (51000), BENCH_OUT (target/bench),
# BENCH_WARMUP_SECONDS (5) of untimed load on each server before the rounds of 3.,
# BENCH_MORE=0 to leave out 9. (PostgreSQL, gateway, data: ~10 min) from `all`,
# BENCH_SKIP_BUILD=1 to reuse the binaries in target/release (callgrind: target/profiling), or
# in BENCH_BIN_DIR (e.g. target/debug, for a quick check that a mode runs), BENCH_MAX_LOAD (0.3) the 1-minute
# load average above which the machine counts as busy, BENCH_FLOOR_VALID (0.8) the validity ratio,
# BENCH_FLOOR_REFERENCE the quiet floor (GetUserCourses/s) on a machine that has not stored one.
#
# Usage: scripts/bench.sh [--force] [all|floor|callgrind|callgrind-gateway|callgrind-overload|overload|streams|mtls|flags|postgres|gateway|data];
# --help prints this.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=all
FORCE=
for arg in "$@"; do
    case "$arg" in
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --force) FORCE=1 ;;
        all | floor | callgrind | callgrind-gateway | callgrind-overload | overload | streams | mtls | flags | postgres | gateway | data) MODE=$arg ;;
        *) echo "bench: unknown argument $arg (modes: all, floor, callgrind, callgrind-gateway, callgrind-overload, overload, streams, mtls, flags, postgres, gateway, data; --force, --help)" >&2; exit 2 ;;
    esac
done

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS=${BENCH_CLIENTS:-16}
STREAMS=${BENCH_STREAMS:-10}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
BASE=${BENCH_PORT_BASE:-51000}
OUT=${BENCH_OUT:-$ROOT/target/bench}
[ "$MODE" = all ] || OUT=$OUT/$MODE
REL=${BENCH_BIN_DIR:-$ROOT/target/release}
# The quiet reference of the floor on this machine, raised only by a valid run (step 3).
FLOOR_REF_FILE=$ROOT/target/bench-floor-reference.tsv
SERVICES=(cursos chatbot cpar notificacoes insights midia)

mkdir -p "$OUT/logs"
: >"$OUT/results.tsv"
WORK=$(mktemp -d)
PIDS=()
CLEANUPS=() # functions to run at exit (a PostgreSQL cluster to stop)

log() { printf '\n== %s\n' "$*" >&2; }
result() { printf '%s\t%s\n' "$1" "$2" >>"$OUT/results.tsv"; printf '   %-40s %s\n' "$1" "$2" >&2; }

cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for f in "${CLEANUPS[@]}"; do "$f" || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- is the machine quiet?
# A timed benchmark on a busy machine measures the machine: refuse it (unless --force), and
# record what the machine was doing in the results either way.
busy_report() { # prints the load and the processes using a CPU, other than this script's
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "load average (1 min) $load on $(nproc) cores"
    # %CPU over each process' lifetime is useless; sample one second of /proc instead.
    python3 - "$$" <<'EOF'
import os, sys, time
me = int(sys.argv[1])
def ticks():
    t = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            f = open(f"/proc/{pid}/stat").read()
            rest = f[f.rindex(")") + 2:].split()
            t[int(pid)] = (int(rest[11]) + int(rest[12]), f[f.index("(") + 1:f.rindex(")")])
        except (OSError, ValueError):
            pass
    return t
a = ticks(); time.sleep(1); b = ticks()
hz = os.sysconf("SC_CLK_TCK")
busy = sorted(((b[p][0] - a[p][0]) / hz * 100, p, b[p][1]) for p in b if p in a and p != me)
for pct, pid, name in reversed(busy):
    if pct >= 10:
        print(f"busy: pid {pid} {name} {pct:.0f}% of a core")
EOF
}
check_quiet() {
    local report load
    report=$(busy_report)
    printf '%s\n' "$report" >"$OUT/machine.txt"
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" -v m="${BENCH_MAX_LOAD:-0.3}" 'BEGIN { exit !(l > m) }' || grep -q '^busy:' <<<"$report"; then
        printf 'bench: the machine is busy:\n%s\n' "$report" >&2
        if [ -z "$FORCE" ]; then
            echo "bench: timings taken now would measure the other work; stop it and retry, or pass --force (the run is then marked as taken on a busy machine). 'scripts/bench.sh callgrind' counts instructions and is not affected." >&2
            exit 3
        fi
        echo "bench: --force: measuring anyway; the results say the machine was busy" >&2
        echo busy >"$OUT/machine.state"
    else
        echo quiet >"$OUT/machine.state"
    fi
}

# ---------------------------------------------------------------- tools and binaries
if ! command -v h2load >/dev/null; then
    log "installing h2load (nghttp2-client)"
    apt-get install -y nghttp2-client >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y nghttp2-client >/dev/null; }
fi
command -v taskset >/dev/null || { echo "bench: taskset (util-linux) is required" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then echo "bench: needs two cores (server and load generator apart)" >&2; exit 1; fi

if [ "$MODE" = callgrind ]; then
    # The profiling profile (release with symbols), cursos and the floor only.
    REL=${BENCH_BIN_DIR:-$ROOT/target/profiling}
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        log "building profiling binaries (cursos, the floor)"
        if [ "${BENCH_CG_FLOOR:-1}" != 0 ]; then
            cargo build --profile profiling -p cursos --bin cursos -p aula --example floor
        else
            cargo build --profile profiling -p cursos --bin cursos
        fi
    fi
    BINARIES=(cursos)
    [ "${BENCH_CG_FLOOR:-1}" != 0 ] && BINARIES+=(examples/floor)
elif [ "$MODE" = callgrind-gateway ]; then
    # The profiling profile: the gateway, and cursos behind it.
    REL=${BENCH_BIN_DIR:-$ROOT/target/profiling}
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        log "building profiling binaries (the gateway, cursos)"
        cargo build --profile profiling -p cursos --bin cursos -p gateway --bin gateway
    fi
    BINARIES=(cursos gateway)
elif [ "$MODE" = callgrind-overload ]; then
    # The profiling profile, cursos only (a release binary counts the same instructions).
    REL=${BENCH_BIN_DIR:-$ROOT/target/profiling}
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        log "building profiling binaries (cursos)"
        cargo build --profile profiling -p cursos --bin cursos
    fi
    BINARIES=(cursos)
elif [ "$MODE" = floor ]; then
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        log "building release binaries (cursos, the floor)"
        cargo build --release -p cursos --bin cursos -p aula --example floor
    fi
    BINARIES=(cursos examples/floor)
elif [ "$MODE" = overload ]; then
    # cursos and the probe only (scripts/bench-limits.sh): h2load is the load generator.
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        log "building release binaries (cursos, the overload probe, the floor)"
        cargo build --release -p cursos --bin cursos -p aula-runtime --example overload_probe -p aula --example floor
    fi
    BINARIES=(cursos examples/overload_probe examples/floor)
else
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        log "building release binaries"
        cargo build --release --bins --examples -p aula
        cargo build --release --bins -p cursos -p chatbot -p cpar -p notificacoes -p insights -p midia -p gateway
        # The open-loop generator of every figure "at half" in scripts/bench-data.sh.
        cargo build --release -p aula-runtime --example openloop
    fi
    case "$MODE" in
        postgres | gateway | data) BINARIES=(cursos notificacoes gateway aula examples/openloop) ;;
        *) BINARIES=("${SERVICES[@]}" aula gateway examples/floor examples/otlp_sink examples/openloop) ;;
    esac
fi
for b in "${BINARIES[@]}"; do
    [ -x "$REL/$b" ] || { echo "bench: $REL/$b missing; build first" >&2; exit 1; }
done

# gRPC request bodies for h2load: the 5-byte frame prefix (uncompressed, big-endian length)
# and the protobuf bytes.
python3 - "$WORK" <<'EOF'
import struct, sys
def frame(msg: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(msg)) + msg
user = b"1"
open(sys.argv[1] + "/empty.bin", "wb").write(frame(b""))
# GetUserCoursesRequest { id_usuario (1): "1" }: tag 0x0a, length, bytes.
open(sys.argv[1] + "/user1.bin", "wb").write(frame(b"\x0a" + bytes([len(user)]) + user))
EOF

port() { # service -> its gRPC port in the bench's range
    local i
    for i in "${!SERVICES[@]}"; do [ "${SERVICES[$i]}" = "$1" ] && { echo $((BASE + 51 + i)); return; }; done
    return 1
}
metrics_port() { echo $(($(port "$1") + 900)); }
peer_env() { # every service's address, for peers and `aula load`
    local s
    for s in "${SERVICES[@]}"; do printf '%s_ADDR=http://127.0.0.1:%s ' "${s^^}" "$(port "$s")"; done
}

START_PID=
# start NAME CPU DATA_DIR LOGNAME [VAR=value ...]: a service binary, pinned, on its bench port.
start() {
    local name=$1 cpu=$2 data=$3 logname=$4
    shift 4
    # shellcheck disable=SC2046
    # AULA_DEMO_DATA=1: the demo catalogue and user 1's enrolments, what every measurement reads.
    env -u OTEL_EXPORTER_OTLP_ENDPOINT $(peer_env) RUST_LOG=warn AULA_DEMO_DATA=1 AULA_DATA_DIR="$data" \
        AULA_LISTEN="127.0.0.1:$(port "$name")" AULA_METRICS_LISTEN="127.0.0.1:$(metrics_port "$name")" \
        "$@" taskset -c "$cpu" "$REL/$name" >"$OUT/logs/$logname.log" 2>&1 &
    START_PID=$!
    PIDS+=("$START_PID")
}
healthy() { # NAME [ADDR]: exits 0 once the server answers SERVING
    "$REL/$1" healthcheck --addr "${2:-http://127.0.0.1:$(port "$1")}" --timeout 1s >/dev/null 2>&1
}
wait_serving() {
    local i
    for i in $(seq 1 400); do healthy "$@" && return 0; sleep 0.025; done
    echo "bench: $1 did not become SERVING; see $OUT/logs" >&2
    return 1
}
stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# cpu_ticks CPU: busy and total jiffies of one core so far (/proc/stat).
cpu_ticks() { awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
# h2load NAME URL BODY [extra flags]: one timed measurement, on the load core; prints req/s.
# Also records how busy each core was (cpu.NAME): the server's core near 100% and the load
# core well below says the server was the bottleneck, so the figure is the server's cost and
# not the load generator's ceiling (a ratio against the floor is only meaningful then).
h2() {
    local name=$1 url=$2 body=$3 s0 l0 s1 l1
    shift 3
    s0=$(cpu_ticks "$SERVER_CPU"); l0=$(cpu_ticks "$LOAD_CPU")
    taskset -c "$LOAD_CPU" h2load -D "$SECS" --warm-up-time 1 -c "$CLIENTS" -m "$STREAMS" -t 1 \
        -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' "$@" "$url" \
        >"$OUT/logs/h2load-$name.log" 2>&1 || true
    s1=$(cpu_ticks "$SERVER_CPU"); l1=$(cpu_ticks "$LOAD_CPU")
    printf 'cpu.%s\tserver core %s%%, load core %s%%\n' "$name" \
        "$(awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x); split(b, y); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2] + 1e-9) }')" \
        "$(awk -v a="$l0" -v b="$l1" 'BEGIN { split(a, x); split(b, y); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2] + 1e-9) }')" \
        >>"$OUT/results.tsv"
    local rps failed
    rps=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$OUT/logs/h2load-$name.log")
    failed=$(awk '/^requests:/ { print $10 }' "$OUT/logs/h2load-$name.log")
    if [ -z "$rps" ] || [ "${failed:-1}" != 0 ]; then
        echo "bench: h2load $name failed (see $OUT/logs/h2load-$name.log)" >&2
        echo 0
        return
    fi
    echo "$rps"
}
wait_port() { # PORT: until something listens there
    local i
    for i in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.025; done
    echo "bench: nothing listens on port $1; see $OUT/logs" >&2
    return 1
}

# floor_round NAME: one round of the floor alone on the server's core, GetUserCourses, recorded
# as floor.NAME. The modes timed against the clock (overload, streams, mtls) take one before and
# one after their measurement (mode_validity judges them): without it a slowed machine's figures
# looked like a quiet one's (2026-12-06: cursos' maximum 14.6k against 43k-51k quiet, found only
# by measuring the floor by hand). The floor copies its answers from a cursos started for the
# purpose and stopped once copied, so the round measures the floor alone.
floor_round() {
    local src_port=$((BASE + 251)) floor_port=$((BASE + 252))
    start cursos "$SERVER_CPU" "$WORK/floor-src" "floor-src-$1" \
        AULA_LISTEN="127.0.0.1:$src_port" AULA_METRICS_LISTEN="127.0.0.1:$((src_port + 900))"
    local src=$START_PID
    wait_serving cursos "http://127.0.0.1:$src_port"
    taskset -c "$SERVER_CPU" "$REL/examples/floor" --listen "127.0.0.1:$floor_port" \
        --from "http://127.0.0.1:$src_port" >"$OUT/logs/floor-$1.log" 2>&1 &
    local floor=$!
    PIDS+=("$floor")
    wait_port "$floor_port"
    stop "$src"
    local url="http://127.0.0.1:$floor_port/services.CursosService/GetUserCourses" secs=$SECS
    # Untimed first (the first seconds of load run slower on a quiet VM too: step 3 says why).
    SECS=${BENCH_WARMUP_SECONDS:-5} h2 "floor-$1-warmup" "$url" "$WORK/user1.bin" >/dev/null
    result "floor.$1.GetUserCourses" "$(SECS=$secs h2 "floor-$1" "$url" "$WORK/user1.bin")"
    stop "$floor"
}

# mode_validity: whether a mode's floor rounds (floor_round) were within BENCH_FLOOR_VALID of the
# quiet reference, by the rule step 3 uses too (scripts/bench_validity.py). Records run.valid (1, 0,
# or unknown when nothing outside the run says what quiet is) and run.invalid_reason, and appends
# the verdict to the mode's summary.md.
mode_validity() {
    python3 "$ROOT/scripts/bench_validity.py" mode "$OUT/results.tsv" "$FLOOR_REF_FILE" \
        "${BENCH_FLOOR_VALID:-0.8}" "$(cat "$OUT/machine.state")" "${BENCH_FLOOR_REFERENCE:-}" "$OUT/summary.md"
}

# ---------------------------------------------------------------- modes of their own
case "$MODE" in
    callgrind | callgrind-gateway | callgrind-overload)
        # shellcheck source=scripts/bench-callgrind.sh
        . "$ROOT/scripts/bench-callgrind.sh"
        "bench_${MODE//-/_}" # bench_callgrind, bench_callgrind_gateway, bench_callgrind_overload
        exit 0
        ;;
esac
check_quiet
if [ "$MODE" != all ]; then
    # shellcheck source=scripts/bench-limits.sh
    . "$ROOT/scripts/bench-limits.sh"
    # shellcheck source=scripts/bench-mtls.sh
    . "$ROOT/scripts/bench-mtls.sh"
    # shellcheck source=scripts/bench-flags.sh
    . "$ROOT/scripts/bench-flags.sh"
    # shellcheck source=scripts/bench-data.sh
    . "$ROOT/scripts/bench-data.sh"
    if [ "$MODE" = floor ]; then
        log "floor: $ROUNDS rounds of the floor alone on core $SERVER_CPU, GetUserCourses, h2load -c $CLIENTS -m $STREAMS on core $LOAD_CPU"
        printf '# Is the machine quiet? (scripts/bench.sh floor)\n' >"$OUT/summary.md"
        for r in $(seq 1 "$ROUNDS"); do floor_round "round$r"; done
        mode_validity
        exit 0
    fi
    "bench_$MODE"
    case "$MODE" in
        postgres | gateway | data) bench_more_summary | tee "$OUT/summary.md" ;;
    esac
    exit 0
fi

# ---------------------------------------------------------------- 1. time to SERVING
log "1. time from start to SERVING (separate binaries; includes one healthcheck exec)"
# What one healthcheck costs by itself, against a server already serving.
start midia "$SERVER_CPU" "$WORK/probe" probe
wait_serving midia
t0=$(now_ms); for _ in 1 2 3 4 5; do healthy midia; done; t1=$(now_ms)
stop "$START_PID"
result healthcheck_exec_ms $(((t1 - t0) / 5))
for s in "${SERVICES[@]}"; do
    for run in fresh warm warm2; do
        [ "$run" = fresh ] && rm -rf "$WORK/serving-$s"
        t0=$(now_ms)
        start "$s" "$SERVER_CPU" "$WORK/serving-$s" "serving-$s-$run"
        until healthy "$s"; do
            sleep 0.002
            [ $(($(now_ms) - t0)) -lt 10000 ] || { echo "bench: $s not SERVING after 10s" >&2; break; }
        done
        t1=$(now_ms)
        stop "$START_PID"
        result "serving_ms.$s.$run" $((t1 - t0))
    done
done

# ---------------------------------------------------------------- 2. idle RSS
log "2. the six services, each its own process on core $SERVER_CPU; idle RSS"
declare -A PID_OF
for s in insights midia notificacoes chatbot cpar cursos; do
    start "$s" "$SERVER_CPU" "$WORK/data" "$s"
    PID_OF[$s]=$START_PID
done
for s in "${SERVICES[@]}"; do wait_serving "$s"; done
sleep 2
for s in "${SERVICES[@]}"; do result "idle_rss_kb.$s" "$(rss_kb "${PID_OF[$s]}" VmRSS)"; done

env -u RUST_LOG taskset -c "$SERVER_CPU" "$REL/examples/floor" --listen "127.0.0.1:$((BASE + 151))" \
    --from "http://127.0.0.1:$(port cursos)" >"$OUT/logs/floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
wait_port $((BASE + 151))
sleep 0.5
result idle_rss_kb.floor "$(rss_kb "$FLOOR_PID" VmRSS)"
# The floor copied its responses from cursos; its log says how many bytes each is.
result floor_responses "$(sed -n 's/^floor: serving on [^ ]* (\(.*\))$/\1/p' "$OUT/logs/floor.log")"

# ---------------------------------------------------------------- 3. throughput vs the floor
log "3. throughput: cursos vs floor, $ROUNDS alternating rounds of ${SECS}s, h2load -c $CLIENTS -m $STREAMS on core $LOAD_CPU"
CURSOS_URL="http://127.0.0.1:$(port cursos)/services.CursosService"
FLOOR_URL="http://127.0.0.1:$((BASE + 151))/services.CursosService"
# One untimed round first (both servers, both RPCs, BENCH_WARMUP_SECONDS each): on a quiet VM
# the first seconds of load ran ~35% slower for floor and cursos alike (2026-12-03: GetStatus
# floor 50.7k in round 1, 74-78k after), which would mark a quiet run invalid for no reason.
SECS_TIMED=$SECS
SECS=${BENCH_WARMUP_SECONDS:-5}
for rpc in GetStatus GetUserCourses; do
    body=$WORK/empty.bin
    [ "$rpc" = GetUserCourses ] && body=$WORK/user1.bin
    h2 "warmup-floor-$rpc" "$FLOOR_URL/$rpc" "$body" >/dev/null
    h2 "warmup-cursos-$rpc" "$CURSOS_URL/$rpc" "$body" >/dev/null
done
SECS=$SECS_TIMED
for r in $(seq 1 "$ROUNDS"); do
    for rpc in GetStatus GetUserCourses; do
        body=$WORK/empty.bin
        [ "$rpc" = GetUserCourses ] && body=$WORK/user1.bin
        result "rps.floor.$rpc.$r" "$(h2 "floor-$rpc-$r" "$FLOOR_URL/$rpc" "$body")"
        result "rps.cursos.$rpc.$r" "$(h2 "cursos-$rpc-$r" "$CURSOS_URL/$rpc" "$body")"
    done
done

# Is the run valid? Every round's floor against the quiet reference (see the header).
python3 "$ROOT/scripts/bench_validity.py" step3 "$OUT/results.tsv" "$FLOOR_REF_FILE" \
    "${BENCH_FLOOR_VALID:-0.8}" "$(cat "$OUT/machine.state")" "${BENCH_FLOOR_REFERENCE:-}"
if [ "$(awk -F'\t' '$1 == "run.valid" { print $2 }' "$OUT/results.tsv")" = 1 ]; then
    log "the run is VALID: every round's floor within ${BENCH_FLOOR_VALID:-0.8} of the reference ($(awk -F'\t' '$1 == "floor_reference_source.GetUserCourses" { print $2 }' "$OUT/results.tsv"))"
else
    log "the run is INVALID: $(awk -F'\t' '$1 == "run.invalid_reason" { print $2 }' "$OUT/results.tsv")"
fi

# ---------------------------------------------------------------- 4. p99 at half the max rate
HALF=$(awk -F'\t' '$1 ~ /^rps\.cursos\.GetUserCourses\./ { print $2 }' "$OUT/results.tsv" | sort -n |
    awk '{ v[NR] = $1 } END { print int(v[int((NR + 1) / 2)] / 2) }')
log "4. p99 of cursos GetUserCourses at half its max rate: $HALF req/s"
result half_rate "$HALF"
if [ "${HALF:-0}" -gt 0 ]; then
    # aula load: open loop, latency from each request's due time (coordinated omission counted).
    env $(peer_env) taskset -c "$LOAD_CPU" "$REL/aula" load --only GetUserCourses --rate "$HALF" \
        --concurrency 64 --connections 4 --duration "${SECS}s" --warmup 2s \
        --json "$OUT/half-aula-load.json" >"$OUT/logs/half-aula-load.log" 2>&1 || true
    python3 - "$OUT/half-aula-load.json" >>"$OUT/results.tsv" <<'EOF' || true
import json, sys
s = json.load(open(sys.argv[1]))["total"]
print(f"half.aula_load.rate\t{s['rate']:.0f}")
print(f"half.aula_load.errors\t{s['errors']}")
print(f"half.aula_load.p50_ms\t{s['latency_ms']['p50']:.3f}")
print(f"half.aula_load.p99_ms\t{s['latency_ms']['p99']:.3f}")
EOF
    # The same rate against the floor: what the machine and the load generator add by themselves.
    env $(peer_env) CURSOS_ADDR="http://127.0.0.1:$((BASE + 151))" taskset -c "$LOAD_CPU" "$REL/aula" load \
        --only GetUserCourses --rate "$HALF" --concurrency 64 --connections 4 --duration "${SECS}s" \
        --warmup 2s --json "$OUT/half-floor-aula-load.json" >"$OUT/logs/half-floor-aula-load.log" 2>&1 || true
    python3 - "$OUT/half-floor-aula-load.json" >>"$OUT/results.tsv" <<'EOF' || true
import json, sys
s = json.load(open(sys.argv[1]))["total"]
print(f"half.floor.p50_ms\t{s['latency_ms']['p50']:.3f}")
print(f"half.floor.p99_ms\t{s['latency_ms']['p99']:.3f}")
EOF
fi

# ---------------------------------------------------------------- 5, 6. aula load: chain and mix
aula_load() { # NAME [flags]: aula load on the load core; its summary to $OUT/NAME.json
    local name=$1
    shift
    env $(peer_env) taskset -c "$LOAD_CPU" "$REL/aula" load --duration "${SECS}s" --warmup 2s \
        --json "$OUT/$name.json" "$@" >"$OUT/logs/$name.log" 2>&1 || echo "bench: aula load $name exited $?" >&2
    python3 - "$OUT/$name.json" "$name" >>"$OUT/results.tsv" <<'EOF' || true
import json, sys
s = json.load(open(sys.argv[1]))["total"]
n = sys.argv[2]
print(f"{n}.rate\t{s['rate']:.0f}")
print(f"{n}.errors\t{s['errors']}")
print(f"{n}.p50_ms\t{s['latency_ms']['p50']:.3f}")
print(f"{n}.p99_ms\t{s['latency_ms']['p99']:.3f}")
EOF
    sed -n '/^rpc /,$p' "$OUT/logs/$name.log" >&2
}
log "5. AskQuestion chain flat out (cursos -> chatbot -> insights, offline answerer)"
aula_load askquestion --only AskQuestion --concurrency 32 --connections 2
log "6. the whole mix flat out"
aula_load mix --concurrency 32 --connections 2
for s in "${SERVICES[@]}"; do result "peak_rss_kb.$s" "$(rss_kb "${PID_OF[$s]}" VmHWM)"; done
result peak_rss_kb.floor "$(rss_kb "$FLOOR_PID" VmHWM)"

for s in "${SERVICES[@]}"; do stop "${PID_OF[$s]}"; done
stop "$FLOOR_PID"

# ---------------------------------------------------------------- 7. tracing at 10% sampling
log "7. tracing cost: cursos with and without OTLP export at 10% sampling, alternating rounds"
SINK=$((BASE + 317))
taskset -c "$LOAD_CPU" "$REL/examples/otlp_sink" --listen "127.0.0.1:$SINK" --report "$OUT/spans.txt" \
    >"$OUT/logs/otlp_sink.log" 2>&1 &
SINK_PID=$!
PIDS+=("$SINK_PID")
wait_port "$SINK"
cp -r "$WORK/data" "$WORK/data-traced"
start cursos "$SERVER_CPU" "$WORK/data" cursos-untraced
PLAIN_PID=$START_PID
wait_serving cursos
TRACED=$((BASE + 161))
env $(peer_env) RUST_LOG=warn AULA_DEMO_DATA=1 AULA_DATA_DIR="$WORK/data-traced" \
    AULA_LISTEN="127.0.0.1:$TRACED" AULA_METRICS_LISTEN="127.0.0.1:$((TRACED + 800))" \
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK" OTEL_TRACES_SAMPLER=parentbased_traceidratio \
    OTEL_TRACES_SAMPLER_ARG=0.1 taskset -c "$SERVER_CPU" "$REL/cursos" >"$OUT/logs/cursos-traced.log" 2>&1 &
TRACED_PID=$!
PIDS+=("$TRACED_PID")
wait_serving cursos "http://127.0.0.1:$TRACED"
TRACED_URL="http://127.0.0.1:$TRACED/services.CursosService"
for r in $(seq 1 "$ROUNDS"); do
    result "rps.untraced.GetUserCourses.$r" "$(h2 "untraced-$r" "$CURSOS_URL/GetUserCourses" "$WORK/user1.bin")"
    result "rps.traced.GetUserCourses.$r" "$(h2 "traced-$r" "$TRACED_URL/GetUserCourses" "$WORK/user1.bin")"
done
sleep 6 # the batch exporter's interval: let the last spans arrive
result spans_received "$(cut -d' ' -f1 "$OUT/spans.txt" 2>/dev/null || echo 0)"
stop "$PLAIN_PID"
stop "$TRACED_PID"
stop "$SINK_PID"

# ---------------------------------------------------------------- 8. image sizes
log "8. image sizes"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' 'aula/*' | while IFS=$'\t' read -r img size; do
        result "image.$img" "$size"
    done
fi

# ---------------------------------------------------------------- 9. PostgreSQL, gateway, data
# shellcheck source=scripts/bench-data.sh
. "$ROOT/scripts/bench-data.sh"
if [ "${BENCH_MORE:-1}" = 1 ]; then
    bench_more
else
    log "9. skipped (BENCH_MORE=0): run scripts/bench.sh postgres, gateway and data on their own"
fi

# ---------------------------------------------------------------- summary
python3 - "$OUT/results.tsv" "$OUT/summary.md" "$SECS" "$ROUNDS" "$CLIENTS" "$STREAMS" <<'EOF'
import statistics, sys
from collections import defaultdict

path, out, secs, rounds, clients, streams = sys.argv[1:]
r = {}
for line in open(path):
    k, _, v = line.rstrip("\n").partition("\t")
    r[k] = v
num = lambda k, d=0.0: float(r.get(k) or d)

def runs(prefix):
    return [float(v) for k, v in r.items() if k.startswith(prefix + ".") and k[len(prefix) + 1:].isdigit()]

lines = []
w = lines.append
verdicts = []
def target(name, ok, detail):
    verdicts.append(f"| {name} | {detail} | {'met' if ok else 'MISSED'} |")

import datetime
valid = r.get("run.valid") == "1"
w(f"# Benchmark run of {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: "
  + ("**VALID**" if valid else "**INVALID**") + "\n")
if valid:
    w("Every round's floor was within 80% of the quiet reference "
      f"(GetStatus {num('floor_reference.GetStatus'):,.0f}, GetUserCourses {num('floor_reference.GetUserCourses'):,.0f} req/s; "
      f"{r.get('floor_reference_source.GetUserCourses')}).\n")
else:
    w(f"**Do not publish these numbers as results**: {r.get('run.invalid_reason') or 'no floor measured'}. "
      "A busy machine compresses every ratio toward 1.\n")
w(f"h2load -c {clients} -m {streams}, {secs}s per measurement, {rounds} alternating rounds; server on one core, load on the other.\n")
w("## Throughput (req/s, median of rounds)\n")
w("| rpc | floor | cursos | ratio | rounds (floor / cursos) |\n|---|---|---|---|---|")
# The targets of #16, for a quiet run.
for rpc, need in (("GetStatus", 0.85), ("GetUserCourses", 0.6)):
    f, c = runs(f"rps.floor.{rpc}"), runs(f"rps.cursos.{rpc}")
    if f and c and statistics.median(f) > 0:
        ratio = statistics.median(c) / statistics.median(f)
        w(f"| {rpc} | {statistics.median(f):,.0f} | {statistics.median(c):,.0f} | {ratio:.2f} | "
          f"{' '.join(f'{x:,.0f}' for x in f)} / {' '.join(f'{x:,.0f}' for x in c)} |")
        target(f"{rpc} >= {need}x floor", ratio >= need, f"{ratio:.2f}x")
w("")
w(f"The floor's responses, copied from cursos: {r.get('floor_responses')}\n")

w("## Latency at half the max rate (cursos GetUserCourses)\n")
w(f"rate {r.get('half_rate')} req/s: aula load --rate p50 {r.get('half.aula_load.p50_ms')} ms, "
  f"p99 {r.get('half.aula_load.p99_ms')} ms (achieved {r.get('half.aula_load.rate')} req/s, {r.get('half.aula_load.errors')} errors); "
  f"the floor at the same rate (aula load): p50 {r.get('half.floor.p50_ms')} ms, p99 {r.get('half.floor.p99_ms')} ms\n")
if "half.aula_load.p99_ms" in r:
    p99 = num("half.aula_load.p99_ms")
    target("p99 <= 2 ms at half the max rate (aula load, CO-corrected)", p99 <= 2.0,
           f"{p99:.2f} ms (the floor at the same rate: {r.get('half.floor.p99_ms')} ms)")

w("## aula load, flat out\n")
w("| run | req/s | errors | p50 ms | p99 ms |\n|---|---|---|---|---|")
for n in ("askquestion", "mix"):
    if f"{n}.rate" in r:
        w(f"| {n} | {r[n + '.rate']} | {r[n + '.errors']} | {r[n + '.p50_ms']} | {r[n + '.p99_ms']} |")
w("")

w("## Memory (RSS, MB)\n")
w("| service | idle VmRSS | peak VmHWM |\n|---|---|---|")
worst_idle = 0.0
for s in ("cursos", "chatbot", "cpar", "notificacoes", "insights", "midia", "floor"):
    idle, peak = num(f"idle_rss_kb.{s}") / 1024, num(f"peak_rss_kb.{s}") / 1024
    w(f"| {s} | {idle:.1f} | {peak:.1f} |")
    if s != "floor":
        worst_idle = max(worst_idle, idle)
w("")
target("idle RSS <= 15 MB per service", worst_idle <= 15, f"max {worst_idle:.1f} MB")

w("## Start to SERVING (ms, spawn to first SERVING answer, one healthcheck exec included)\n")
w(f"healthcheck exec alone: {r.get('healthcheck_exec_ms')} ms\n")
w("| service | fresh data | existing data | existing data |\n|---|---|---|---|")
worst = 0
for s in ("cursos", "chatbot", "cpar", "notificacoes", "insights", "midia"):
    v = [r.get(f"serving_ms.{s}.{x}", "?") for x in ("fresh", "warm", "warm2")]
    w(f"| {s} | {' | '.join(v)} |")
    worst = max([worst] + [int(x) for x in v if x.isdigit()])
w("")
probe = int(num("healthcheck_exec_ms"))
target("SERVING within 100 ms of start", worst - probe <= 100, f"max {worst} ms, {worst - probe} ms without the {probe} ms probe")

u, t = runs("rps.untraced.GetUserCourses"), runs("rps.traced.GetUserCourses")
if u and t and statistics.median(u) > 0:
    ratio = statistics.median(t) / statistics.median(u)
    w("## Tracing at 10% sampling (cursos GetUserCourses)\n")
    w(f"without {statistics.median(u):,.0f} req/s, with {statistics.median(t):,.0f} req/s: {ratio:.2f}x "
      f"(rounds {' '.join(f'{x:,.0f}' for x in u)} / {' '.join(f'{x:,.0f}' for x in t)}); spans received by the sink: {r.get('spans_received')}\n")
    target("tracing at 10% costs <= 10% of throughput", ratio >= 0.9, f"{(1 - ratio) * 100:.1f}% lost")

images = {k[6:]: v for k, v in r.items() if k.startswith("image.")}
if images:
    w("## Images\n")
    w("| image | size |\n|---|---|")
    for k, v in sorted(images.items()):
        w(f"| {k} | {v} |")
    w("")

w("## Targets\n")
w("| target | measured | verdict |\n|---|---|---|")
if not valid:
    verdicts = [v.replace("| met |", "| (invalid run) |").replace("| MISSED |", "| (invalid run) |") for v in verdicts]
lines.extend(verdicts)
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
bench_more_summary | tee -a "$OUT/summary.md"

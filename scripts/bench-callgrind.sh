# Instructions per request (#16, #14), sourced by scripts/bench.sh for its callgrind modes (it
# defines start, result, log, port, REL, WORK, OUT, SERVER_CPU, LOAD_CPU, BASE):
#
#   scripts/bench.sh callgrind   cursos and the floor, each under valgrind --tool=callgrind on
#                                core SERVER_CPU, h2load on core LOAD_CPU; GetStatus and
#                                GetUserCourses (user "1"), served and refused (cursos at its
#                                in-flight limit: what one refusal costs).
#   scripts/bench.sh callgrind-overload
#                                cursos under callgrind, default limits, GetUserCourses from
#                                h2load in a closed loop of 8 x 8 (all served) and of 64 x 32
#                                (2,048 calls outstanding: beyond AULA_MAX_IN_FLIGHT and the
#                                queue bound, so cursos sheds). Instructions per served call in
#                                each; their ratio is the overload's goodput in user space, the
#                                part of `overload`'s 90% target no machine's speed moves.
#   scripts/bench.sh callgrind-gateway
#                                the gateway under callgrind on core SERVER_CPU, cursos behind it
#                                as a plain profiling binary (on LOAD_CPU, beside h2load), and
#                                GET /cursos/ver_inscricoes_do_usuario/1 over h2c: the gateway's
#                                own instructions per request (#16). BENCH_CG_CURSOS=1 runs
#                                cursos under callgrind too, for what it spends behind the gateway.
#
# Timings on a shared machine measure the machine; instruction counts do not move with it. For
# each server and RPC: BENCH_CG_WARMUP requests (connections, caches, prepared statements), then
# the counters are zeroed (callgrind_control -z) and N requests are counted (callgrind_control -d),
# then again with 2N; (I(2N) - I(N)) / N is the cost of one request with everything per run
# (start-up, warm-up, background ticks between the two windows' lengths aside) subtracted. The
# idle rate (instructions per second with no requests: timers, the storage probe) is reported
# next to it, so a reader can see it is small against a window.
#
# Knobs: BENCH_CG_REQUESTS (2000; the gateway 1000) N, BENCH_CG_WARMUP (500), BENCH_CG_FLOOR=0 (cursos only), BENCH_CG_CLIENTS (4) connections and
# BENCH_CG_STREAMS (8) streams each (the same for both servers: how many requests share a write
# changes the count). Output: target/bench/callgrind/summary.md, results.tsv, the dumps and
# callgrind_annotate's top functions of each 2N window (logs/annotate-*.txt).

bench_callgrind() {
    local tool
    for tool in valgrind callgrind_control callgrind_annotate h2load; do
        command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install valgrind nghttp2-client)" >&2; exit 1; }
    done
    local n=${BENCH_CG_REQUESTS:-2000} warm=${BENCH_CG_WARMUP:-500}
    local cursos_port floor_port
    cursos_port=$(port cursos)
    floor_port=$((BASE + 151))
    log "callgrind: $n and $((2 * n)) requests per RPC after $warm to warm up; h2load -c ${BENCH_CG_CLIENTS:-4} -m ${BENCH_CG_STREAMS:-8} on core $LOAD_CPU"
    uptime >"$OUT/machine.txt"

    # The floor copies its answers from a cursos running normally, so both send the same bytes.
    # BENCH_CG_FLOOR=0 leaves it out (cursos before and after a change, without building aula).
    if [ "${BENCH_CG_FLOOR:-1}" != 0 ]; then
        start cursos "$SERVER_CPU" "$WORK/data" cursos-plain
        local plain=$START_PID
        wait_serving cursos
        cg_spawn floor "$REL/examples/floor" --listen "127.0.0.1:$floor_port" --from "http://127.0.0.1:$cursos_port"
        local floor=$CG_PID
        cg_wait_port "$floor_port"
        stop "$plain"
        result cg.floor_responses "$(sed -n 's/^floor: serving on [^ ]* (\(.*\))$/\1/p' "$OUT/logs/callgrind-floor.log")"
        cg_measure floor "$floor" "http://127.0.0.1:$floor_port" "$n" "$warm"
        cg_idle floor "$floor"
        stop "$floor"
    fi

    # cursos as shipped: metrics on, tracing on (no exporter: every span unsampled), SQLite.
    # shellcheck disable=SC2046
    CG_ENV=(env -u OTEL_EXPORTER_OTLP_ENDPOINT $(peer_env) RUST_LOG=warn AULA_DEMO_DATA=1 AULA_DATA_DIR="$WORK/data"
        AULA_LISTEN="127.0.0.1:$cursos_port" AULA_METRICS_LISTEN="127.0.0.1:$(metrics_port cursos)")
    cg_spawn cursos "$REL/cursos"
    local cursos=$CG_PID
    local i
    cg_wait_serving cursos
    cg_measure cursos "$cursos" "http://127.0.0.1:$cursos_port" "$n" "$warm"
    cg_idle cursos "$cursos"
    stop "$cursos"

    # What a refusal costs (#14): the same cursos at AULA_MAX_IN_FLIGHT=1 with its one place
    # held by a call whose request body never ends (curl uploading from a pipe kept open), so
    # that every GetStatus and GetUserCourses is answered RESOURCE_EXHAUSTED.
    CG_ENV+=(AULA_MAX_IN_FLIGHT=1)
    cg_spawn cursos-shed "$REL/cursos"
    local shed=$CG_PID
    cg_wait_serving cursos
    mkfifo "$WORK/hold"
    curl -s --http2-prior-knowledge -X POST -T - -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://127.0.0.1:$cursos_port/services.CursosService/GetStatus" <"$WORK/hold" >/dev/null 2>&1 &
    local holder=$!
    PIDS+=("$holder")
    exec 7>"$WORK/hold"
    # Whether the place is held is asked over gRPC (a GetStatus answered RESOURCE_EXHAUSTED), not
    # read from /metrics: the process collector behind a scrape reads the auxiliary vector through
    # rustix, which crashes under valgrind (SIGSEGV in rustix's check_elf_base, rustix issue 1559).
    local held=
    for i in $(seq 1 120); do
        cg_refused "$cursos_port" && { held=1; break; }
        sleep 0.25
    done
    # Without the held call every request would be served, and counted as a refusal's cost.
    [ -n "$held" ] || { echo "bench: the call meant to hold cursos' one place never arrived (curl)" >&2; exit 1; }
    cg_measure cursos-shed "$shed" "http://127.0.0.1:$cursos_port" "$n" "$warm"
    # Still held after the measurement: every request of it was a refusal.
    cg_refused "$cursos_port" || { echo "bench: cursos' one place was freed during the refusal phase" >&2; exit 1; }
    result cg.cursos-shed.held_throughout 1
    exec 7>&-
    stop "$holder"
    stop "$shed"
    CG_ENV=()

    python3 - "$OUT/results.tsv" "$OUT/summary.md" "$n" <<'EOF'
import datetime, sys
path, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = dict(l.rstrip("\n").split("\t", 1) for l in open(path) if "\t" in l)
num = lambda k: float(r.get(k) or 0)
lines = [f"# Instructions per request, callgrind, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n",
         f"(I(2N) - I(N)) / N with N = {n}, after a warm-up; profiling build (release with symbols). "
         f"The floor's answers: {r.get('cg.floor_responses')}.\n",
         "| rpc | floor | cursos | cursos / floor | target |", "|---|---|---|---|---|"]
for rpc, target in (("GetStatus", 1.3), ("GetUserCourses", None)):
    f, c = num(f"cg.floor.{rpc}.per_request"), num(f"cg.cursos.{rpc}.per_request")
    ratio = c / f if f else 0
    verdict = "" if target is None else (f"<= {target}x: " + ("met" if ratio <= target else "MISSED") if f else "floor not measured")
    lines.append(f"| {rpc} | {f:,.0f} | {c:,.0f} | {ratio:.2f}x | {verdict} |")
for rpc in ("GetStatus", "GetUserCourses"):
    c, shed = num(f"cg.cursos.{rpc}.per_request"), num(f"cg.cursos-shed.{rpc}.per_request")
    lines.append(f"| {rpc} refused (AULA_MAX_IN_FLIGHT reached) | | {shed:,.0f} | {shed / c if c else 0:.2f}x of served | |")
lines.append("")
lines.append("The place was held throughout the refusal phase (a GetStatus answered RESOURCE_EXHAUSTED before and after it): "
             + ("yes." if r.get("cg.cursos-shed.held_throughout") == "1" else "not checked."))
lines.append("")
lines.append(f"Idle (no requests), instructions per second: floor {num('cg.floor.idle_per_s'):,.0f}, "
             f"cursos {num('cg.cursos.idle_per_s'):,.0f}.")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
}

CG_PID=
CG_ENV=()
# cg_spawn NAME BINARY [ARGS...]: the binary under callgrind, pinned to the server core; the
# counters are zeroed and dumped on request (callgrind_control), into $OUT/callgrind.NAME.<pid>.<k>.
cg_spawn() {
    local name=$1
    shift
    # shellcheck disable=SC2046 # cg_cache_opts is a list of options
    "${CG_ENV[@]}" taskset -c "$SERVER_CPU" valgrind --tool=callgrind --dump-instr=no $(cg_cache_opts) \
        --callgrind-out-file="$OUT/callgrind.$name.%p" "$@" >"$OUT/logs/callgrind-$name.log" 2>&1 &
    CG_PID=$!
    PIDS+=("$CG_PID")
}

# cg_cache_opts: valgrind's options for BENCH_CG_CACHE: unset or 0, no cache simulation; 1, the
# host's caches (valgrind simulates the first level and the last, here the L3); anything else is
# valgrind's own cache options, e.g. "--LL=524288,8,64" for a last level the size of this
# host's L2, the one a working set outgrows first.
cg_cache_opts() {
    case "${BENCH_CG_CACHE:-0}" in
        0) ;;
        1) echo --cache-sim=yes ;;
        *) echo --cache-sim=yes "$BENCH_CG_CACHE" ;;
    esac
}

# cg_refused PORT: true when a GetStatus to the server on PORT is answered RESOURCE_EXHAUSTED (8).
# The answer's head is read whole before it is matched: `grep -q` in the pipe exits at the
# match, and under pipefail the writer's SIGPIPE made a refused call read as not refused, at
# random (the refusal phase failed "never arrived" with the place held, 2026-12-06).
cg_refused() {
    local head
    head=$(printf '\0\0\0\0\0' | curl -s --max-time 10 --http2-prior-knowledge -D - -o /dev/null -X POST \
        --data-binary @- -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://127.0.0.1:$1/services.CursosService/GetStatus") || return 1
    grep -qx 'grpc-status: 8' <<<"${head//$'\r'/}"
}

cg_wait_serving() { # NAME: a server under valgrind starts ~50x slower
    local i
    for i in $(seq 1 240); do healthy "$1" && return 0; sleep 0.25; done
    echo "bench: $1 did not become SERVING in 60 s; see $OUT/logs" >&2
    exit 1
}

cg_wait_port() { # a server under valgrind starts ~50x slower
    local i
    for i in $(seq 1 240); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.25; done
    echo "bench: nothing listens on port $1 after 60 s; see $OUT/logs" >&2
    return 1
}

# cg_total PID: zeroes nothing; dumps the counters and prints the instructions since the last zero.
cg_dump() {
    local pid=$1 before after file
    before=$(ls "$OUT"/callgrind.*."$pid".* 2>/dev/null | wc -l)
    callgrind_control -d "$pid" >/dev/null 2>&1
    for _ in $(seq 1 200); do
        after=$(ls "$OUT"/callgrind.*."$pid".* 2>/dev/null | wc -l)
        [ "$after" -gt "$before" ] && break
        sleep 0.05
    done
    file=$(ls -t "$OUT"/callgrind.*."$pid".* | head -1)
    sleep 0.2 # the dump is written in one go, but let it finish
    CG_LAST=$file
    awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

# cg_requests URL BODY N LOG [CLIENTS STREAMS]: N requests from the load core; fails unless all
# were answered (a refusal too: its status is in the trailers).
cg_requests() {
    taskset -c "$LOAD_CPU" h2load -n "$3" -c "${5:-${BENCH_CG_CLIENTS:-4}}" -m "${6:-${BENCH_CG_STREAMS:-8}}" -t 1 \
        -d "$2" -H 'content-type: application/grpc' -H 'te: trailers' "$1" >"$4" 2>&1 || true
    local ok
    ok=$(awk '/^requests:/ { print $8 }' "$4")
    [ "${ok:-0}" = "$3" ] || { echo "bench: $3 requests to $1: only ${ok:-0} succeeded (see $4)" >&2; exit 1; }
}

# cg_measure NAME PID BASE_URL N WARMUP: instructions per request for both RPCs.
cg_measure() {
    local name=$1 pid=$2 url=$3 n=$4 warm=$5 rpc body one two
    for rpc in GetStatus GetUserCourses; do
        body=$WORK/empty.bin
        [ "$rpc" = GetUserCourses ] && body=$WORK/user1.bin
        cg_requests "$url/services.CursosService/$rpc" "$body" "$warm" "$OUT/logs/cg-$name-$rpc-warm.log"
        callgrind_control -z "$pid" >/dev/null 2>&1
        cg_requests "$url/services.CursosService/$rpc" "$body" "$n" "$OUT/logs/cg-$name-$rpc-n.log"
        one=$(cg_dump "$pid")
        callgrind_control -z "$pid" >/dev/null 2>&1
        cg_requests "$url/services.CursosService/$rpc" "$body" "$((2 * n))" "$OUT/logs/cg-$name-$rpc-2n.log"
        two=$(cg_dump "$pid")
        callgrind_annotate --inclusive=no "$(ls -t "$OUT"/callgrind.*."$pid".* | head -1)" 2>/dev/null |
            head -60 >"$OUT/logs/annotate-$name-$rpc.txt" || true
        callgrind_annotate --inclusive=yes "$(ls -t "$OUT"/callgrind.*."$pid".* | head -1)" 2>/dev/null |
            head -120 >"$OUT/logs/annotate-inclusive-$name-$rpc.txt" || true
        result "cg.$name.$rpc.instructions_n" "$one"
        result "cg.$name.$rpc.instructions_2n" "$two"
        result "cg.$name.$rpc.per_request" "$(((two - one) / n))"
    done
}

# cg_idle NAME PID: instructions per second with no requests (timers, probes).
cg_idle() {
    callgrind_control -z "$2" >/dev/null 2>&1
    sleep 5
    result "cg.$1.idle_per_s" "$(($(cg_dump "$2") / 5))"
}

# The gateway's own work per request (#16): the same windows as above ((I(2N) - I(N)) / N after a
# warm-up), GET /cursos/ver_inscricoes_do_usuario/1 through the gateway as shipped (metrics on,
# tracing on with no exporter, RUST_LOG=warn) except the per-client rate limit, off: one load
# generator stands for many users (scripts/bench-data.sh's gateway mode does the same).
bench_callgrind_gateway() {
    local tool
    for tool in valgrind callgrind_control callgrind_annotate h2load curl; do
        command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install valgrind nghttp2-client curl)" >&2; exit 1; }
    done
    local n=${BENCH_CG_REQUESTS:-1000} warm=${BENCH_CG_WARMUP:-500}
    local gw=$((BASE + 80)) cursos_port cursos gateway
    cursos_port=$(port cursos)
    local url="http://127.0.0.1:$gw/cursos/ver_inscricoes_do_usuario/1"
    log "callgrind: the gateway, $n and $((2 * n)) requests to $url after $warm to warm up; h2load -c ${BENCH_CG_CLIENTS:-4} -m ${BENCH_CG_STREAMS:-8} on core $LOAD_CPU"
    uptime >"$OUT/machine.txt"

    # shellcheck disable=SC2046
    CG_ENV=(env -u OTEL_EXPORTER_OTLP_ENDPOINT $(peer_env) RUST_LOG=warn AULA_DEMO_DATA=1 AULA_DATA_DIR="$WORK/data"
        AULA_LISTEN="127.0.0.1:$cursos_port" AULA_METRICS_LISTEN="127.0.0.1:$(metrics_port cursos)")
    if [ "${BENCH_CG_CURSOS:-0}" != 0 ]; then
        cg_spawn cursos "$REL/cursos"
        cursos=$CG_PID
    else
        "${CG_ENV[@]}" taskset -c "$LOAD_CPU" "$REL/cursos" >"$OUT/logs/cursos.log" 2>&1 &
        cursos=$!
        PIDS+=("$cursos")
    fi
    cg_wait_serving cursos

    # shellcheck disable=SC2046
    CG_ENV=(env -u OTEL_EXPORTER_OTLP_ENDPOINT $(peer_env) RUST_LOG=warn GATEWAY_RATE_LIMIT=off
        GATEWAY_LISTEN="127.0.0.1:$gw" AULA_METRICS_LISTEN="127.0.0.1:$((gw + 900))")
    cg_spawn gateway "$REL/gateway"
    gateway=$CG_PID
    cg_wait_port "$gw"
    # The answer itself, kept: a change that speeds the gateway must not change its JSON.
    curl -fsS "$url" >"$OUT/gateway-answer.json" || { echo "bench: the gateway did not answer $url" >&2; exit 1; }

    local one two cursos_one=0 cursos_two=0
    cg_get "$url" "$warm" "$OUT/logs/cg-gateway-warm.log"
    cg_zero "$gateway" "$cursos"
    cg_get "$url" "$n" "$OUT/logs/cg-gateway-n.log"
    one=$(cg_dump "$gateway")
    [ "${BENCH_CG_CURSOS:-0}" != 0 ] && cursos_one=$(cg_dump "$cursos")
    cg_zero "$gateway" "$cursos"
    cg_get "$url" "$((2 * n))" "$OUT/logs/cg-gateway-2n.log"
    two=$(cg_dump "$gateway")
    callgrind_annotate --inclusive=no "$CG_LAST" 2>/dev/null | head -80 >"$OUT/logs/annotate-gateway.txt" || true
    callgrind_annotate --inclusive=yes "$CG_LAST" 2>/dev/null | head -160 >"$OUT/logs/annotate-inclusive-gateway.txt" || true
    result cg.gateway.instructions_n "$one"
    result cg.gateway.instructions_2n "$two"
    result cg.gateway.per_request "$(((two - one) / n))"
    if [ "${BENCH_CG_CURSOS:-0}" != 0 ]; then
        cursos_two=$(cg_dump "$cursos")
        result cg.cursos-behind-gateway.per_request "$(((cursos_two - cursos_one) / n))"
    fi
    # No idle rate here: an idle gateway has no timer to wake it (the rate limiter's is off), and
    # callgrind serves a dump request only when the program runs, so cg_idle read the last
    # window's dump instead of its own.
    stop "$gateway"
    stop "$cursos"
    CG_ENV=()

    {
        echo "# The gateway's instructions per request, callgrind, $(date -u '+%Y-%m-%d %H:%M') UTC"
        echo
        echo "GET /cursos/ver_inscricoes_do_usuario/1, (I(2N) - I(N)) / N with N = $n after $warm; profiling build ($(git -C "$ROOT" rev-parse --short HEAD))."
        echo
        echo "| | instructions per request |"
        echo "|---|---|"
        awk -F'\t' '$1 == "cg.gateway.per_request" { printf "| gateway | %d |\n", $2 }
            $1 == "cg.cursos-behind-gateway.per_request" { printf "| cursos behind it | %d |\n", $2 }' "$OUT/results.tsv"
    } | tee "$OUT/summary.md"
}

# cg_zero PID...: zeroes the counters of each process under callgrind (the others ignore it).
cg_zero() {
    local pid
    for pid in "$@"; do callgrind_control -z "$pid" >/dev/null 2>&1 || true; done
}

# cg_get URL N LOG: N GET requests over h2c from the load core; fails unless all were 2xx.
cg_get() {
    taskset -c "$LOAD_CPU" h2load -n "$2" -c "${BENCH_CG_CLIENTS:-4}" -m "${BENCH_CG_STREAMS:-8}" -t 1 \
        "$1" >"$3" 2>&1 || true
    local ok
    ok=$(awk '/^status codes:/ { print $3 }' "$3")
    [ "${ok:-0}" = "$2" ] || { echo "bench: $2 requests to $1: only ${ok:-0} answered 2xx (see $3)" >&2; exit 1; }
}

# The overload's goodput in user space (#14). `scripts/bench.sh overload` divides what cursos
# served at 3x by its closed-loop maximum; on a VM whose speed drifts by a quarter within a
# minute that ratio measures the drift as much as cursos. Counted instructions do not drift: a
# served call's instructions in a closed loop of 8 x 8 (nothing refused), against the
# instructions spent per served call under 2,048 outstanding (what the refusals, the queue and
# fair starts cost, shared out over the calls served). The kernel's part (reads, writes,
# wake-ups) is not counted here; `overload` counts it with perf stat.
#
# The refused calls are told from the served by their answer: a served GetUserCourses has a
# body (DATA frames), a refusal is headers only, so h2load's DATA bytes over a served answer's
# bytes (from the closed loop, where every call is served) count the served. Windows as above:
# (I(2N) - I(N)) over the calls served between them. The start of an overloaded window is not
# the same twice (2,048 calls at once, a few thousand refused, more in one window than in the
# other), so the summary gives each window's own counts too, and the longer window alone, start
# included, as the bound that needs no cancelling. Knobs: BENCH_CG_OVERLOAD_REQUESTS (8000: N in
# the closed loop, 8N overloaded, where the start then weighs ~5%; ~2 minutes), BENCH_CG_WARMUP
# (500), BENCH_CG_OVERLOAD_CLIENTS (64) x BENCH_CG_OVERLOAD_STREAMS (32), BENCH_CG_CACHE (1, or
# valgrind's cache options: cg_cache_opts) to simulate the caches too (misses per served call;
# about 3 times slower).
bench_callgrind_overload() {
    local tool
    for tool in valgrind callgrind_control h2load; do
        command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install valgrind nghttp2-client)" >&2; exit 1; }
    done
    local n=${BENCH_CG_OVERLOAD_REQUESTS:-8000} warm=${BENCH_CG_WARMUP:-500}
    local heavy_c=${BENCH_CG_OVERLOAD_CLIENTS:-64} heavy_m=${BENCH_CG_OVERLOAD_STREAMS:-32}
    local cursos_port url pid
    cursos_port=$(port cursos)
    url="http://127.0.0.1:$cursos_port/services.CursosService/GetUserCourses"
    log "callgrind-overload: cursos, GetUserCourses, closed loop 8 x 8 ($n and $((2 * n))) then $heavy_c x $heavy_m ($((8 * n)) and $((16 * n))), h2load on core $LOAD_CPU"
    uptime >"$OUT/machine.txt"

    # Valgrind slows cursos tens of times (the cache simulation ~4x more), and its timers keep
    # the wall clock's pace. A connection paced for its refusals waits as many times longer to be
    # read: with the caches simulated, long enough for its PING's answer to sit unread past the
    # keepalive timeout (cursos closed 34 of the 64 connections, 2026-12-07), and the 2N window
    # outlasted AULA_MAX_CONNECTION_AGE (h2load does not reconnect after GOAWAY). Both are put
    # off: they are not what is counted.
    # shellcheck disable=SC2046
    CG_ENV=(env -u OTEL_EXPORTER_OTLP_ENDPOINT $(peer_env) RUST_LOG=warn AULA_DEMO_DATA=1 AULA_DATA_DIR="$WORK/data"
        AULA_LISTEN="127.0.0.1:$cursos_port" AULA_METRICS_LISTEN="127.0.0.1:$(metrics_port cursos)"
        AULA_HTTP2_KEEPALIVE_INTERVAL=3600s AULA_MAX_CONNECTION_AGE=3600s)
    cg_spawn cursos-overload "$REL/cursos"
    pid=$CG_PID
    cg_wait_serving cursos

    cg_load warm "$url" "$warm" 8 8
    local phase c m count one two
    for phase in closed overload; do
        c=8 m=8 count=$n
        [ "$phase" = overload ] && c=$heavy_c m=$heavy_m count=$((8 * n))
        cg_zero "$pid"
        cg_load "$phase-n" "$url" "$count" "$c" "$m"
        one=$(cg_dump "$pid")
        cg_totals "$pid" "cg.overload.$phase.n"
        cg_zero "$pid"
        cg_load "$phase-2n" "$url" "$((2 * count))" "$c" "$m"
        two=$(cg_dump "$pid")
        cg_totals "$pid" "cg.overload.$phase.2n"
        result "cg.overload.$phase.instructions_n" "$one"
        result "cg.overload.$phase.instructions_2n" "$two"
    done
    stop "$pid"
    CG_ENV=()

    python3 - "$OUT/results.tsv" "$OUT/summary.md" "$heavy_c" "$heavy_m" "$(git -C "$ROOT" rev-parse --short HEAD)" \
        "$(cg_cache_opts)" <<'EOF'
import datetime, sys
path, out, hc, hm, rev, cache = sys.argv[1:]
cache = "--cache-sim=yes, the host's cache sizes" if cache == "--cache-sim=yes" else cache
r = dict(l.rstrip("\n").split("\t", 1) for l in open(path) if "\t" in l)
n = lambda k: float(r.get(k) or 0)
# A served answer's DATA bytes, from the closed loop, where every call is served: both of its
# windows must agree, or a call was refused there and the count below would be wrong.
answer = n("cg.load.closed-2n.data") / max(n("cg.load.closed-2n.ok"), 1)
if abs(n("cg.load.closed-n.data") / max(n("cg.load.closed-n.ok"), 1) - answer) > 0.5:
    sys.exit("bench: the closed loop's two windows differ in DATA bytes per answer: a call was refused there")
def window(w):
    # One window's own counts, exact: its answers, the served among them (DATA bytes), its instructions.
    answered, served = n(f"cg.load.{w}.ok"), n(f"cg.load.{w}.data") / answer
    return answered, served, n(f"cg.overload.{w.replace('-', '.instructions_')}")
rows, steady, whole, between = [], {}, {}, {}
for p, label in (("closed", "closed loop, 8 x 8"), ("overload", f"overloaded, {hc} x {hm}")):
    wins = {w: window(f"{p}-{w}") for w in ("n", "2n")}
    for w, (a, sv, i) in wins.items():
        rows.append(f"| {label} | {w.upper()} | {a:,.0f} | {sv:,.0f} | {a - sv:,.0f} | {i / max(sv, 1):,.0f} |")
    (_, s1, i1), (_, s2, i2) = wins["n"], wins["2n"]
    between[p] = s2 - s1  # calls served between the windows
    steady[p], whole[p] = (i2 - i1) / max(between[p], 1), i2 / max(s2, 1)
share = steady["closed"] / max(steady["overload"], 1)
share_whole = whole["closed"] / max(whole["overload"], 1)
lines = [f"# Overload in user space, callgrind, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC ({rev})\n",
         f"cursos, default limits, GetUserCourses (user 1: {answer:.0f} bytes of DATA per served answer). "
         "Each window's own counts; its instructions per served call include its start (connections opened, and "
         f"under overload the {int(hc) * int(hm):,} calls sent at once, many refused).\n",
         "| load | window | answered | served | refused | instructions per served call |", "|---|---|---|---|---|---|"]
lines += rows
lines += ["",
          f"Between the windows (2N less N: the start cancels, up to how much of it was refused): "
          f"{steady['closed']:,.0f} instructions per served call in the closed loop, {steady['overload']:,.0f} overloaded: "
          f"calls served per instruction overloaded **{share:.0%}** of the closed loop's; in the 2N window alone, start included, "
          f"{share_whole:.0%}. The overload's goodput target is 90%; this is its user-space part. "
          "The kernel's reads, writes and wake-ups are not counted here: `scripts/bench.sh overload` has them per call."]
# With BENCH_CG_CACHE: the simulated caches' misses per served call, between the windows. A
# call that costs the same instructions but more time under overload (2,048 streams' state
# against 64's) would show here as more misses per call.
if "cg.overload.closed.n.D1mr" in r:
    events = {"I1 misses": ("I1mr",), "D1 misses": ("D1mr", "D1mw"), "last-level misses": ("ILmr", "DLmr", "DLmw")}
    per = {}
    for p in ("closed", "overload"):
        per[p] = {name: sum(n(f"cg.overload.{p}.2n.{e}") - n(f"cg.overload.{p}.n.{e}") for e in evs) / max(between[p], 1)
                  for name, evs in events.items()}
    lines += ["", f"Simulated caches (valgrind {cache}), misses per served call between the windows:", "",
              "| load | " + " | ".join(events) + " |", "|---|" + "---|" * len(events)]
    for p, label in (("closed", "closed loop, 8 x 8"), ("overload", f"overloaded, {hc} x {hm}")):
        lines.append(f"| {label} | " + " | ".join(f"{per[p][e]:,.1f}" for e in events) + " |")
    # Fewer than one miss per call is the cache holding everything, and the difference of two
    # such windows is noise (negative, even, when the start of the shorter window missed more):
    # a ratio of it says nothing.
    lines.append("| overloaded / closed | " + " | ".join(
        f"{per['overload'][e] / per['closed'][e]:.2f}x" if min(per["closed"][e], per["overload"][e]) >= 1
        else "under 1 per call" for e in events) + " |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
}

# cg_totals PID KEY: every event counted in PID's latest dump, as KEY.<event> (Ir; with
# BENCH_CG_CACHE also the simulated caches' reads, writes and misses: D1mr, DLmr, ...).
cg_totals() {
    local file
    file=$(ls -t "$OUT"/callgrind.*."$1".* | head -1)
    awk -v k="$2" '/^events:/ { for (i = 2; i <= NF; i++) e[i] = $i }
        /^(summary|totals):/ { for (i = 2; i <= NF; i++) printf "%s.%s\t%s\n", k, e[i], $i; exit }' "$file" >>"$OUT/results.tsv"
}

# cg_load NAME URL N CLIENTS STREAMS: N GetUserCourses (user 1), all answered (cg_requests); records
# the answers (cg.load.NAME.ok) and the DATA bytes (cg.load.NAME.data, h2load's traffic line),
# from which the served are counted.
cg_load() {
    local log=$OUT/logs/cg-load-$1.log
    cg_requests "$2" "$WORK/user1.bin" "$3" "$log" "$4" "$5"
    result "cg.load.$1.ok" "$3"
    result "cg.load.$1.data" "$(sed -n 's/^traffic:.* (\([0-9]*\)) data.*/\1/p' "$log")"
}

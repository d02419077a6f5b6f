# The limits' benchmarks (#14), sourced by scripts/bench.sh for its modes `overload` and
# `streams` (it defines start, wait_serving, healthy, result, log, rss_kb, port, peer_env):
#
#   scripts/bench.sh overload   cursos on one core driven at ~3x its maximum rate for
#                               BENCH_OVERLOAD_SECONDS (60): goodput against the maximum, p99 of
#                               the admitted calls against the p99 at half load, peak RSS, health
#                               checked every second throughout, latency right after the load.
#   scripts/bench.sh streams    BENCH_STREAMS_N (10000) open SubscribeNotifications streams on one
#                               notificacoes: RSS, and the delay from SendNotification to delivery.
#
# Knobs: BENCH_STREAMS_N, BENCH_STREAMS_NOTIFICATIONS (200), BENCH_STREAMS_RATE (20 per second);
# the overload's are described with bench_overload below.
# Results: $OUT/results.tsv and $OUT/summary.md (OUT is target/bench/<mode>).

# The overload benchmark (#14). Why h2load, and how each figure is taken:
# - The load generator must offer ~3x what one server core serves, from one core of its own.
#   `aula load` could not (its 60 s schedule took 149 s); h2load (C, nghttp2) costs a fraction
#   of what the server spends per request. It runs open loop at the rate (--rps, per
#   connection): requests due while all of a connection's streams are busy wait in h2load and
#   go as soon as a stream frees, so at 3x h2load keeps every stream it is allowed busy. The
#   rate it actually achieved is reported (offered), not assumed. Many connections x streams
#   (64 x 32 = 2,048 calls outstanding against AULA_MAX_IN_FLIGHT's 256) so that shedding, not
#   the client's stream budget, bounds the server: a refused stream is answered at once and
#   replaced at once, the worst case for what a refusal costs.
# - h2load cannot tell a served call from a refused one (both HTTP 200; the gRPC status is in
#   trailers it does not read). Goodput and refusals are counted by the server itself
#   (grpc_server_handled_total of GetUserCourses, OK and ResourceExhausted, from /metrics before
#   and after each phase) over the phase's duration as h2load measured it. The p99 of admitted
#   calls comes from a light probe (services/runtime/examples/overload_probe.rs: 200 calls/s
#   over its own connection, open loop, latency of the OK calls from their due time) run the
#   same way at half load and at 3x, so the two p99s compare like with like.
# - Maximum: h2load closed loop, 8 connections x 8 streams (within every limit: nothing shed),
#   after an untimed warm-up. Half: h2load at half of it, shaped like the 3x phase. After: the
#   same half load and probe, starting 1 s after the 3x phase stopped, for 5 s. Then the maximum
#   again: a slowed VM's speed drifts by 10-20% within minutes (2026-12-06), and a goodput judged
#   against a maximum taken a minute earlier may measure the drift. Goodput is judged against the
#   higher of the two (never easier than against the first), and a drift above 10% is reported.
# - The 1-minute load average is recorded before every phase: on a shared machine the figures
#   are only as good as that. Re-run on a quiet machine for numbers that count.
#
# Knobs: BENCH_OVERLOAD_SECONDS (60) at 3x, BENCH_OVERLOAD_FACTOR (3), BENCH_OVERLOAD_CLIENTS
# (64) and BENCH_OVERLOAD_STREAMS (32) h2load connections x streams at half load and 3x,
# BENCH_OVERLOAD_PROBE_RATE (200), BENCH_OVERLOAD_ENV (server settings for the run, e.g.
# "AULA_MAX_IN_FLIGHT=64 AULA_HTTP2_MAX_CONCURRENT_STREAMS=16"), BENCH_PROBE (the probe's
# binary; default $REL/examples/overload_probe); BENCH_SECONDS for the maximum and half load;
# BENCH_OVERLOAD_MAX (the maximum to use instead of the one measured: the same load for two
# builds compared back to back on a busy machine).

value() { awk -F'\t' -v k="$1" '$1 == k { v = $2 } END { print v + 0 }' "$OUT/results.tsv"; }
# ok_rate PHASE: the OK answers per second cursos gave over PHASE (server_counts before and after
# it, over the seconds h2load ran), as a whole number: a phase's maximum.
ok_rate() {
    python3 -c "print(int(($(value "$1.after.ok_total") - $(value "$1.before.ok_total")) / max($(value "$1.seconds"), 1e-9)))"
}

# server_counts NAME PID: cursos' GetUserCourses answers so far, OK and refused, as
# NAME.ok_total and NAME.refused_total, its CPU time so far (NAME.cpu_ticks: utime + stime of
# process PID, in clock ticks), for how busy a phase kept its core, and the machine's 1-minute
# load average as NAME.load.
server_counts() {
    result "$1.cpu_ticks" "$(awk '{ print $14 + $15 }' "/proc/$2/stat")"
    curl -s "http://127.0.0.1:$(metrics_port cursos)/metrics" >"$WORK/metrics.txt" || true
    local ok shed
    ok=$(awk '/^grpc_server_handled_total\{/ && /grpc_method="GetUserCourses"/ && /grpc_code="OK"/ { print $NF }' "$WORK/metrics.txt")
    shed=$(awk '/^grpc_server_handled_total\{/ && /grpc_method="GetUserCourses"/ && /grpc_code="ResourceExhausted"/ { print $NF }' "$WORK/metrics.txt")
    result "$1.ok_total" "${ok:-0}"
    result "$1.refused_total" "${shed:-0}"
    result "$1.load" "$(cut -d' ' -f1 /proc/loadavg)"
}

# flood NAME SECONDS CLIENTS STREAMS [h2load flags]: GetUserCourses from h2load on the load
# core; records NAME.started and NAME.seconds (what it achieved, from its own report).
flood() {
    local name=$1 secs=$2 clients=$3 streams=$4
    shift 4
    taskset -c "$LOAD_CPU" h2load -D "$secs" -c "$clients" -m "$streams" -t 1 -d "$WORK/user1.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$@" \
        "http://127.0.0.1:$(port cursos)/services.CursosService/GetUserCourses" \
        >"$OUT/logs/h2load-$name.log" 2>&1 || echo "bench: h2load $name exited $?" >&2
    result "$name.started" "$(awk '/^requests:/ { print $4 }' "$OUT/logs/h2load-$name.log")"
    result "$name.seconds" "$(awk '/^finished in/ { sub("s,", "", $3); print $3 }' "$OUT/logs/h2load-$name.log")"
}

# probe NAME SECONDS: the probe on the load core, ahead of h2load there (nice -5), so that its
# own wait for that core stays out of the latency it reports; records NAME.probe_*.
probe() {
    taskset -c "$LOAD_CPU" nice -n -5 "$PROBE" --url "http://127.0.0.1:$(port cursos)" \
        --rate "${BENCH_OVERLOAD_PROBE_RATE:-200}" --seconds "$2" >"$OUT/$1.probe.json" \
        2>"$OUT/logs/$1.probe.log" || echo "bench: the probe $1 exited $?" >&2
    python3 - "$OUT/$1.probe.json" "$1" >>"$OUT/results.tsv" <<'EOF' || true
import json, sys
s = json.load(open(sys.argv[1]))
for k in ("sent", "ok", "refused", "errors", "p50_ms", "p99_ms", "max_ms"):
    print(f"{sys.argv[2]}.probe_{k}\t{s[k]}")
EOF
}

# Software counters of cursos over a phase (perf stat; no hardware counters needed, so they
# work in a VM): CPU time, context switches and the syscalls that move bytes, per answered call.
# On a slowed machine the rates move but these per-call costs hardly do: they say where a
# build's served calls went (2026-12-06: they showed h2 writing each answer on its own, 1.42
# writes per answered call; BENCHMARKS.md, "Answers in shared writes"). Without perf, nothing
# is recorded.
COUNTED=(task-clock context-switches raw_syscalls:sys_enter syscalls:sys_enter_write
    syscalls:sys_enter_writev syscalls:sys_enter_sendto syscalls:sys_enter_sendmsg
    syscalls:sys_enter_read syscalls:sys_enter_recvfrom syscalls:sys_enter_epoll_wait
    syscalls:sys_enter_futex syscalls:sys_enter_sched_yield)
# counters_start NAME PID: starts counting; counters_stop NAME records NAME.counted.<event>.
counters_start() {
    COUNTERS_PID=
    command -v perf >/dev/null || return 0
    local events
    events=$(IFS=,; echo "${COUNTED[*]}")
    perf stat -x, -o "$OUT/logs/$1.perf.csv" -e "$events" -p "$2" >/dev/null 2>&1 &
    COUNTERS_PID=$!
    PIDS+=("$COUNTERS_PID")
}
counters_stop() {
    [ -n "$COUNTERS_PID" ] || return 0
    kill -INT "$COUNTERS_PID" 2>/dev/null || true
    wait "$COUNTERS_PID" 2>/dev/null || true
    # perf stat -x, lines: value,unit,event,... (task-clock in ms); "<not counted>" is left out.
    awk -F, -v n="$1" '$1 ~ /^[0-9.]+$/ { e = $3; sub(/^(raw_)?syscalls:sys_enter_?/, "sys_", e); if (e == "sys_") e = "syscalls"; printf "%s.counted.%s\t%s\n", n, e, $1 }' \
        "$OUT/logs/$1.perf.csv" >>"$OUT/results.tsv"
}

bench_overload() {
    local secs=${BENCH_OVERLOAD_SECONDS:-60} factor=${BENCH_OVERLOAD_FACTOR:-3}
    local conns=${BENCH_OVERLOAD_CLIENTS:-64} streams=${BENCH_OVERLOAD_STREAMS:-32}
    PROBE=${BENCH_PROBE:-$REL/examples/overload_probe}
    [ -x "$PROBE" ] || { echo "bench: $PROBE missing (cargo build --release -p aula-runtime --example overload_probe)" >&2; return 1; }
    log "overload: cursos alone on core $SERVER_CPU (${BENCH_OVERLOAD_ENV:-default limits}), GetUserCourses: flat out, half, ${factor}x for ${secs}s (h2load -c $conns -m $streams), after"
    floor_round before
    # shellcheck disable=SC2086 # BENCH_OVERLOAD_ENV is a list of VAR=value words
    start cursos "$SERVER_CPU" "$WORK/overload" cursos-overload ${BENCH_OVERLOAD_ENV:-}
    local pid=$START_PID
    wait_serving cursos
    flood overload.warmup "${BENCH_WARMUP_SECONDS:-5}" 8 8

    server_counts overload.max.before "$pid"
    flood overload.max "$SECS" 8 8
    server_counts overload.max.after "$pid"
    local max
    max=$(ok_rate overload.max)
    result overload.measured_max_rate "$max"
    # Back-to-back comparisons on a busy machine: the same load for both builds.
    max=${BENCH_OVERLOAD_MAX:-$max}
    result overload.max_fixed "$([ -n "${BENCH_OVERLOAD_MAX:-}" ] && echo 1 || echo 0)"
    result overload.max_rate "$max"
    [ "$max" -gt 0 ] || { echo "bench: no maximum rate measured; see $OUT/logs" >&2; return 1; }

    server_counts overload.half.before "$pid"
    probe overload.half "$SECS" &
    local probe_pid=$!
    flood overload.half "$SECS" "$conns" "$streams" --rps "$((max / 2 / conns + 1))"
    wait "$probe_pid" || true
    server_counts overload.half.after "$pid"

    # Health every second while overloaded: a probe must never see it fail.
    rm -f "$WORK/overload.done"
    (
        checks=0 failed=0
        while [ ! -e "$WORK/overload.done" ]; do
            checks=$((checks + 1))
            healthy cursos || failed=$((failed + 1))
            sleep 1
        done
        printf '%s %s\n' "$checks" "$failed" >"$WORK/overload.health"
    ) &
    local watcher=$!
    server_counts overload.3x.before "$pid"
    counters_start overload.3x "$pid"
    probe overload.3x "$secs" &
    probe_pid=$!
    flood overload.3x "$secs" "$conns" "$streams" --rps "$((max * factor / conns + 1))"
    counters_stop overload.3x
    server_counts overload.3x.after "$pid"
    wait "$probe_pid" || true
    touch "$WORK/overload.done"
    wait "$watcher" || true
    read -r checks failed <"$WORK/overload.health"
    result overload.health_checks "$checks"
    result overload.health_failed "$failed"
    result overload.peak_rss_kb "$(rss_kb "$pid" VmHWM)"
    # Back to normal: the same half load and probe, one second after the overload stopped.
    sleep 1
    probe overload.after 5 &
    probe_pid=$!
    flood overload.after 5 "$conns" "$streams" --rps "$((max / 2 / conns + 1))"
    wait "$probe_pid" || true
    server_counts overload.max_again.before "$pid"
    flood overload.max_again "$SECS" 8 8
    server_counts overload.max_again.after "$pid"
    result overload.max_again_rate "$(ok_rate overload.max_again)"
    stop "$pid"
    floor_round after

    python3 - "$OUT/results.tsv" "$OUT/summary.md" "$secs" "$factor" "$conns" "$streams" "${BENCH_OVERLOAD_ENV:-default limits}" <<'EOF'
import os, sys
path, out, secs, factor, conns, streams, env = sys.argv[1:]
r = dict(l.rstrip("\n").split("\t", 1) for l in open(path) if "\t" in l)
n = lambda k: float(r.get(k) or 0)
delta = lambda p, k: n(f"{p}.after.{k}") - n(f"{p}.before.{k}")
# The maximum before and after the overload; goodput is judged against the higher one, unless
# BENCH_OVERLOAD_MAX fixed the load (then against that: the same for two builds compared).
mx_before = n("overload.measured_max_rate")
mx_again = n("overload.max_again_rate")
fixed = n("overload.max_fixed") == 1
mx = n("overload.max_rate") if fixed else max(mx_before, mx_again)
# No second maximum (the server gone, or h2load failed) is no drift to report.
drift = abs(mx_again - mx_before) / max(mx_before, mx_again) if mx_again > 0 and mx_before > 0 else 0
again = f"{mx_again:,.0f}/s" if mx_again > 0 else "not measured"
secs3 = max(n("overload.3x.seconds"), 1e-9)
good = delta("overload.3x", "ok_total") / secs3
refused = delta("overload.3x", "refused_total")
offered = n("overload.3x.started") / secs3
half99, adm99, after99 = (n(f"overload.{p}.probe_p99_ms") for p in ("half", "3x", "after"))
rss = n("overload.peak_rss_kb") / 1024
loads = ", ".join(f"{p} {r.get(f'overload.{p}.before.load', '?')}" for p in ("max", "half", "3x"))
rows = [
    ("goodput >= 90% of the maximum", good >= 0.9 * mx,
     f"{good:,.0f} of {mx:,.0f} OK/s ({good / max(mx, 1) * 100:.0f}%; the maximum "
     f"{mx_before:,.0f}/s before, {again} after{', BENCH_OVERLOAD_MAX set' if fixed else ''}); "
     f"offered {offered:,.0f}/s (asked {n('overload.max_rate') * float(factor):,.0f}/s); "
     f"refused {refused / secs3:,.0f}/s"),
    ("p99 admitted <= 2x p99 at half load", 0 < adm99 <= 2 * half99,
     f"{adm99:.2f} ms vs {half99:.2f} ms (probe at 3x: {n('overload.3x.probe_ok'):.0f} OK, "
     f"{n('overload.3x.probe_refused'):.0f} refused, {n('overload.3x.probe_errors'):.0f} other errors)"),
    ("peak RSS <= 64 MB", rss <= 64, f"{rss:.1f} MB"),
    ("SERVING throughout", n("overload.health_failed") == 0 and n("overload.health_checks") > 0,
     f"{n('overload.health_failed'):.0f} of {n('overload.health_checks'):.0f} checks failed"),
    ("normal latency within 1 s after", 0 < after99 <= 2 * half99, f"p99 {after99:.2f} ms"),
]
# What each call cost cursos at 3x (perf stat), when counted: the served and the refused together.
c = lambda e: n(f"overload.3x.counted.{e}")
answered = delta("overload.3x", "ok_total") + refused
costs = ""
if c("task-clock") > 0 and answered > 0:
    writes = sum(c(f"sys_{e}") for e in ("write", "writev", "sendto", "sendmsg"))
    reads = sum(c(f"sys_{e}") for e in ("read", "recvfrom"))
    costs = (f"\ncursos at 3x, per answered call (served or refused; perf stat): "
             f"{c('task-clock') * 1000 / answered:.1f} us of CPU, {c('syscalls') / answered:.3f} syscalls "
             f"({writes / answered:.3f} writes, {reads / answered:.3f} reads, "
             f"{c('sys_epoll_wait') / answered:.3f} epoll_wait, {c('sys_futex') / answered:.3f} futex), "
             f"{c('context-switches') / answered:.3f} context switches.\n")

# How busy each phase kept cursos' core (/proc/PID/stat). A call costs more CPU when fewer
# arrive together (each read, write and wake-up carries fewer of them), and on some machines
# much more: on a slowed VM (2026-12-06) ~100 us at 2k calls/s against ~30 us flat out, the
# bare tonic floor as well. "Half load" then keeps the core nearly busy, and its p99 is not a
# light-load p99 to hold the 3x p99 against: said here, so a reader need not guess.
tck = os.sysconf("SC_CLK_TCK")
busy = lambda p: delta(p, "cpu_ticks") / tck / max(n(f"{p}.seconds"), 1e-9)
per_call = lambda p: delta(p, "cpu_ticks") / tck * 1e6 / max(delta(p, "ok_total") + delta(p, "refused_total"), 1)
if n("overload.half.after.cpu_ticks") > 0:
    half_busy = busy("overload.half")
    costs += (f"\ncursos' core was busy {half_busy:.0%} at half load ({per_call('overload.half'):.1f} us "
              f"of CPU per answered call) and {busy('overload.3x'):.0%} at {factor}x "
              f"({per_call('overload.3x'):.1f} us).\n")
    if half_busy > 0.7:
        costs += ("Half load kept the core more than 70% busy: on this machine calls cost more when "
                  "fewer arrive together, so the half-load p99 is not a light-load p99, and the p99 "
                  "ratio above says little.\n")

# A maximum is cursos' only if it kept cursos' core busy: a closed loop of 64 calls stalls with the
# machine (2026-12-07: one kept the core 83% busy, at 32.4k/s, and the one after it 99%, at 55.4k/s).
maxima = [(p, w) for p, w in (("overload.max", "before"), ("overload.max_again", "after"))
          if n(f"{p}.after.cpu_ticks") > 0]
if maxima:
    costs += ("\nThe maximum kept cursos' core " + " and ".join(
        f"{busy(p):.0%} busy {w} the overload ({per_call(p):.1f} us per call)" for p, w in maxima) + ".\n")
    held = [w for p, w in maxima if busy(p) < 0.95]
    if held:
        costs += (f"The maximum {' and '.join(held)} left cursos' core idle more than 5% of the time: the closed "
                  "loop or the machine held it back, and it understates what cursos can serve.\n")

lines = [f"# Overload: cursos GetUserCourses, {factor}x its maximum for {secs} s\n",
         f"Server: {env}. Load: h2load -c {conns} -m {streams} --rps; the maximum from 8 x 8, closed loop. "
         f"Load average (1 min) before each phase: {loads}.\n",
         "| target | measured | verdict |", "|---|---|---|"]
lines += [f"| {t} | {m} | {'met' if ok else 'MISSED'} |" for t, ok, m in rows]
lines += [costs] if costs else []
if drift > 0.1:
    lines.append(f"The maximum moved {drift:.0%} between before and after the overload: the machine's "
                 "speed drifted during the run, and the goodput above is only as good as that.\n")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
    mode_validity
}

bench_streams() {
    local n=${BENCH_STREAMS_N:-10000}
    [ -x "$REL/examples/streams" ] || { echo "bench: $REL/examples/streams missing; build first" >&2; return 1; }
    log "streams: $n SubscribeNotifications streams on one notificacoes (core $SERVER_CPU)"
    floor_round before
    start notificacoes "$SERVER_CPU" "$WORK/streams" notificacoes-streams NOTIFICACOES_STREAMS_MAX="$n"
    local pid=$START_PID
    wait_serving notificacoes
    sleep 1
    result streams.idle_rss_kb "$(rss_kb "$pid" VmRSS)"
    taskset -c "$LOAD_CPU" "$REL/examples/streams" --addr "http://127.0.0.1:$(port notificacoes)" \
        --streams "$n" --notifications "${BENCH_STREAMS_NOTIFICATIONS:-200}" \
        --rate "${BENCH_STREAMS_RATE:-20}" --json "$OUT/streams.json" \
        >"$OUT/logs/streams.log" 2>&1 || echo "bench: the streams client exited $?" >&2
    result streams.peak_rss_kb "$(rss_kb "$pid" VmHWM)"
    stop "$pid"
    floor_round after
    python3 - "$OUT/streams.json" "$OUT/results.tsv" "$OUT/summary.md" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
r = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]) if "\t" in l)
d = s["delay_ms"]
with open(sys.argv[2], "a") as f:
    for k in ("streams_open", "deliveries_expected", "deliveries_seen"):
        f.write(f"streams.{k}\t{s[k]}\n")
    f.write(f"streams.delay_p50_ms\t{d['p50']}\nstreams.delay_p99_ms\t{d['p99']}\n")
idle, peak = float(r["streams.idle_rss_kb"]) / 1024, float(r["streams.peak_rss_kb"]) / 1024
lines = [
    f"# {s['streams_open']:,} open SubscribeNotifications streams on one notificacoes\n",
    f"- streams open {s['streams_open']:,} of {s['streams_requested']:,} (refused for good: {', '.join(f'{n} {c}' for c, n in s['streams_refused'].items()) or 'none'}, after {s.get('subscriptions_retried', 0):,} retries honouring the server's pushback), opened in {s['open_seconds']:.1f} s",
    f"- RSS idle {idle:.1f} MB, peak {peak:.1f} MB ({(peak - idle) * 1024 / max(s['streams_open'], 1):.1f} KB per stream)",
    f"- deliveries {s['deliveries_seen']:,} of {s['deliveries_expected']:,}; delay from SendNotification p50 {d['p50']:.1f} ms, p99 {d['p99']:.1f} ms, max {d['max']:.1f} ms",
]
open(sys.argv[3], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
    mode_validity
}

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
# Knobs: BENCH_OVERLOAD_RPC (GetUserCourses; Enroll for the write path), BENCH_OVERLOAD_SECONDS,
# BENCH_STREAMS_N, BENCH_STREAMS_NOTIFICATIONS (200), BENCH_STREAMS_RATE (20 per second).
# Results: $OUT/results.tsv and $OUT/summary.md (OUT is target/bench/<mode>).

# load_json NAME [aula load flags]: one aula load run on the load core, summary in $OUT/NAME.json;
# records NAME.{offered,goodput,shed,errors,p50_ms,p99_ms}. Errors are expected here (shed
# calls), so no error ratio fails the run.
load_json() {
    local name=$1
    shift
    env $(peer_env) taskset -c "$LOAD_CPU" "$REL/aula" load --warmup 2s --max-error-ratio 1 \
        --json "$OUT/$name.json" "$@" >"$OUT/logs/$name.log" 2>&1 ||
        echo "bench: aula load $name exited $?" >&2
    python3 - "$OUT/$name.json" "$name" >>"$OUT/results.tsv" <<'EOF' || true
import json, sys
s = json.load(open(sys.argv[1]))
t, n = s["total"], sys.argv[2]
ok = t["count"] - t["errors"]
print(f"{n}.offered\t{t['rate']:.0f}")
print(f"{n}.goodput\t{ok / max(s['duration_s'], 1e-9):.0f}")
print(f"{n}.shed\t{t['error_codes'].get('ResourceExhausted', 0)}")
print(f"{n}.errors\t{t['errors'] - t['error_codes'].get('ResourceExhausted', 0)}")
lat = t.get("latency_ms") or {}
print(f"{n}.p50_ms\t{lat.get('p50', 0):.3f}")
print(f"{n}.p99_ms\t{lat.get('p99', 0):.3f}")
EOF
}

value() { awk -F'\t' -v k="$1" '$1 == k { v = $2 } END { print v + 0 }' "$OUT/results.tsv"; }

bench_overload() {
    local rpc=${BENCH_OVERLOAD_RPC:-GetUserCourses} secs=${BENCH_OVERLOAD_SECONDS:-60}
    log "overload: cursos alone on core $SERVER_CPU, $rpc: flat out, half, ~3x for ${secs}s, after"
    start cursos "$SERVER_CPU" "$WORK/overload" cursos-overload
    local pid=$START_PID
    wait_serving cursos

    load_json overload.max --only "$rpc" --concurrency 64 --connections 4 --duration "${SECS}s"
    local max
    max=$(value overload.max.goodput)
    result overload.max_rate "$max"
    [ "$max" -gt 0 ] || { echo "bench: no maximum rate measured; see $OUT/logs" >&2; return 1; }
    load_json overload.half --only "$rpc" --rate $((max / 2)) --concurrency 256 --connections 4 \
        --duration "${SECS}s"

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
    load_json overload.3x --only "$rpc" --rate $((max * 3)) --concurrency 8192 --connections 8 \
        --duration "${secs}s" --timeout 5s
    touch "$WORK/overload.done"
    wait "$watcher" || true
    read -r checks failed <"$WORK/overload.health"
    result overload.health_checks "$checks"
    result overload.health_failed "$failed"
    result overload.peak_rss_kb "$(rss_kb "$pid" VmHWM)"
    # Back to normal: the same half load, one second after the overload stopped.
    sleep 1
    load_json overload.after --only "$rpc" --rate $((max / 2)) --concurrency 256 --connections 4 \
        --duration 5s
    stop "$pid"

    python3 - "$OUT/results.tsv" "$OUT/summary.md" "$rpc" "$secs" <<'EOF'
import sys
path, out, rpc, secs = sys.argv[1:]
r = dict(l.rstrip("\n").split("\t", 1) for l in open(path) if "\t" in l)
n = lambda k: float(r.get(k) or 0)
mx, good = n("overload.max_rate"), n("overload.3x.goodput")
half99, adm99, after99 = n("overload.half.p99_ms"), n("overload.3x.p99_ms"), n("overload.after.p99_ms")
rss = n("overload.peak_rss_kb") / 1024
rows = [
    ("goodput >= 90% of the maximum", good >= 0.9 * mx, f"{good:,.0f} of {mx:,.0f} req/s ({good / max(mx, 1) * 100:.0f}%), offered {n('overload.3x.offered'):,.0f}, shed {n('overload.3x.shed'):,.0f}, other errors {n('overload.3x.errors'):,.0f}"),
    ("p99 admitted <= 2x p99 at half load", adm99 <= 2 * half99, f"{adm99:.2f} ms vs {half99:.2f} ms"),
    ("peak RSS <= 64 MB", rss <= 64, f"{rss:.1f} MB"),
    ("SERVING throughout", n("overload.health_failed") == 0, f"{n('overload.health_failed'):.0f} of {n('overload.health_checks'):.0f} checks failed"),
    ("normal latency within 1 s after", after99 <= 2 * half99, f"p99 {after99:.2f} ms"),
]
lines = [f"# Overload: cursos {rpc}, ~3x its maximum for {secs} s\n", "| target | measured | verdict |", "|---|---|---|"]
lines += [f"| {t} | {m} | {'met' if ok else 'MISSED'} |" for t, ok, m in rows]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
}

bench_streams() {
    local n=${BENCH_STREAMS_N:-10000}
    [ -x "$REL/examples/streams" ] || { echo "bench: $REL/examples/streams missing; build first" >&2; return 1; }
    log "streams: $n SubscribeNotifications streams on one notificacoes (core $SERVER_CPU)"
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
    f"- streams open {s['streams_open']:,} of {s['streams_requested']:,} (refused: {s['streams_refused']}), opened in {s['open_seconds']:.1f} s",
    f"- RSS idle {idle:.1f} MB, peak {peak:.1f} MB ({(peak - idle) * 1024 / max(s['streams_open'], 1):.1f} KB per stream)",
    f"- deliveries {s['deliveries_seen']:,} of {s['deliveries_expected']:,}; delay from SendNotification p50 {d['p50']:.1f} ms, p99 {d['p99']:.1f} ms, max {d['max']:.1f} ms",
]
open(sys.argv[3], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
}

# PostgreSQL, the gateway and the cost of data (#16), sourced by scripts/bench.sh (it defines
# start, stop, wait_serving, wait_port, result, log, h2, port, peer_env, REL, WORK, OUT, SECS,
# ROUNDS, SERVER_CPU, LOAD_CPU, BASE, CLEANUPS). Modes of their own, and the last sections of
# `scripts/bench.sh all`:
#
#   scripts/bench.sh postgres  cursos GetUserCourses on PostgreSQL: cursos on core SERVER_CPU,
#                              PostgreSQL on core LOAD_CPU (the other core, as in a deployment)
#                              with the load generators; BENCH_ROUNDS rounds flat out (h2load),
#                              then p50/p99 at half that rate (openloop, below).
#   scripts/bench.sh gateway   GET /cursos/ver_inscricoes_do_usuario/1 through the gateway:
#                              throughput (gateway and cursos on core SERVER_CPU, h2load on
#                              LOAD_CPU), p50/p99 at half of it, and the gateway's added p50
#                              over the same call made directly in gRPC at the same rate, with
#                              cursos on the gateway's core (as runs before 2026-12-04 17:00
#                              measured it) and on the other core (as in a deployment; the
#                              figure held to #16's target). See bench_gateway for why.
#   scripts/bench.sh data      p50 of GetUserCourses, Enroll, SendNotification,
#                              ListNotifications (first page) and GetStatus on the demo data,
#                              then with scripts/seed.sh's 1,000,000 enrolments and 2,000,000
#                              notifications loaded, on SQLite and on PostgreSQL (BENCH_DATA_BACKENDS,
#                              default "sqlite postgres"); the target is seeded/demo <= 1.5.
#                              BENCH_SEED_ARGS passes options to seed.sh (a quick check:
#                              "--enrolments 10000 --notifications 20000").
#
# The maximum is h2load's, flat out. Every figure "at half" is taken at exactly half the maximum
# measured in the same run, by services/runtime/examples/openloop (open_loop below), and its
# achieved rate is recorded next to it (NAME.rate). h2load could not be used for those: its
# timing script fell behind (8 connections sent 54-64% of the rate asked), and with RATE/50
# connections it kept the rate but measured its own batching (p50 3-4 ms for a 0.3 ms call).
# `aula load --rate` (section 4 of bench.sh) is heavier: on the core cursos shares with it in
# the "apart" placement it would measure itself.
# PostgreSQL: a throwaway cluster (scripts/start-postgres.sh) in /tmp/aula-bench-pg-<pid>,
# port BENCH_PORT_BASE + 432, stopped at the end.

BENCH_PG_URL=
BENCH_PG_DATA=
# bench_pg_start: a fresh PostgreSQL pinned to the load core; sets BENCH_PG_URL.
bench_pg_start() {
    [ -n "$BENCH_PG_URL" ] && return 0
    BENCH_PG_DATA=/tmp/aula-bench-pg-$$
    rm -rf "$BENCH_PG_DATA"
    # fsync stays on (a deployment's durability; start-postgres.sh turns it off for tests).
    BENCH_PG_URL=$(PGPORT_AULA=$((BASE + 432)) PGDATA_AULA=$BENCH_PG_DATA PG_FSYNC=on \
        taskset -c "$LOAD_CPU" bash "$ROOT/scripts/start-postgres.sh" 2>"$OUT/logs/postgres-start.log")
    CLEANUPS+=(bench_pg_stop)
    log "PostgreSQL at $BENCH_PG_URL (core $LOAD_CPU, data $BENCH_PG_DATA)"
}
bench_pg_stop() {
    [ -n "$BENCH_PG_DATA" ] || return 0
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$bin/pg_ctl" -D "$BENCH_PG_DATA" -m fast stop >/dev/null 2>&1 || true
    else
        "$bin/pg_ctl" -D "$BENCH_PG_DATA" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$BENCH_PG_DATA"
    BENCH_PG_URL=
    BENCH_PG_DATA=
}
# bench_pg_fresh_db NAME: an empty database on the bench cluster; prints its URL.
bench_pg_fresh_db() {
    local admin=${BENCH_PG_URL%/*}/postgres
    PGOPTIONS="-c client_min_messages=warning" psql "$admin" -q -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
    echo "${BENCH_PG_URL%/*}/$1"
}

# open_loop NAME URL RATE [openloop flags]: RATE calls/s for SECS seconds after a 1 s warm-up at
# the same rate, over OL_CLIENTS connections (OL_HTTP1_CLIENTS for --get: HTTP/1.1 carries one
# call at a time per connection), from the load core; records its figures as NAME.* (openloop's
# keys: NAME.asked_rate, NAME.rate (answered per second), NAME.sent_rate, NAME.p50_ms,
# NAME.p99_ms, NAME.lag_p99_us (how late calls went out), NAME.dropped, NAME.errors, ...), and
# NAME.kept_schedule: 1 when the achieved rate is within 2% of RATE and nothing was dropped.
#
# openloop sends each call at its due time (a timerfd, not a millisecond timer), counts its
# latency from that due time (a stalled client or server is charged: no coordinated omission),
# and never skips a call silently (beyond OL_MAX_OUTSTANDING out, a call is dropped and counted).
# NAME.lag_* and NAME.cpu_pct say whether it kept up (on a busy machine it still kept 5,000 and
# 10,000 GetUserCourses/s within 0.1%, at 24-40% of its core at 10,000/s; BENCHMARKS.md, Method).
OL_CLIENTS=${OL_CLIENTS:-8}
OL_HTTP1_CLIENTS=${OL_HTTP1_CLIENTS:-64}
OL_MAX_OUTSTANDING=${OL_MAX_OUTSTANDING:-4096}
open_loop() {
    local name=$1 url=$2 rate=$3 conns=$OL_CLIENTS
    shift 3
    case " $* " in *" --h2 "*) ;; *" --get "*) conns=$OL_HTTP1_CLIENTS ;; esac
    taskset -c "$LOAD_CPU" "$REL/examples/openloop" --url "$url" --rate "$rate" --seconds "$SECS" \
        --warmup 1 --connections "$conns" --max-outstanding "$OL_MAX_OUTSTANDING" "$@" \
        >"$WORK/ol-$name.tsv" 2>"$OUT/logs/openloop-$name.log" ||
        echo "bench: openloop $name failed (see $OUT/logs/openloop-$name.log)" >&2
    sed "s/^/$name./" "$WORK/ol-$name.tsv" >>"$OUT/results.tsv"
    awk -F'\t' -v r="$rate" -v n="$name" '$1 == "rate" { a = $2 } $1 == "dropped" { d = $2 }
        END { printf "%s.kept_schedule\t%d\n", n, (a >= 0.98 * r && a <= 1.02 * r && d == 0) }' \
        "$WORK/ol-$name.tsv" >>"$OUT/results.tsv"
    grep -P "^\Q$name.\E(asked_rate|rate|sent_rate|ok|errors|dropped|p50_ms|p99_ms|lag_p99_us|cpu_pct|kept_schedule)\t" \
        "$OUT/results.tsv" | sed 's/^/   /' >&2 || true
    grep -q "^$name.kept_schedule.1" "$OUT/results.tsv" ||
        echo "bench: openloop $name did not keep the rate of $rate/s (see $OUT/logs/openloop-$name.log)" >&2
}

median_of() { # KEY_PREFIX: the median of KEY_PREFIX.1..N in results.tsv
    awk -F'\t' -v p="$1." 'index($1, p) == 1 && substr($1, length(p) + 1) ~ /^[0-9]+$/ { print $2 }' \
        "$OUT/results.tsv" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'
}

# ---------------------------------------------------------------- (a) PostgreSQL
bench_postgres() {
    bench_pg_start
    local url
    url=$(bench_pg_fresh_db bench_cursos)
    log "postgres: cursos GetUserCourses on PostgreSQL; cursos on core $SERVER_CPU, PostgreSQL and the load (h2load, openloop) on core $LOAD_CPU"
    start cursos "$SERVER_CPU" "$WORK/pg-cursos" cursos-pg DATABASE_URL="$url"
    local pid=$START_PID r
    wait_serving cursos
    local server="http://127.0.0.1:$(port cursos)"
    local target="$server/services.CursosService/GetUserCourses"
    for r in $(seq 1 "$ROUNDS"); do
        result "rps.pg.GetUserCourses.$r" "$(h2 "pg-GetUserCourses-$r" "$target" "$WORK/user1.bin")"
    done
    local half
    half=$(($(median_of rps.pg.GetUserCourses | cut -d. -f1) / 2))
    result pg.half_rate "$half"
    if [ "$half" -gt 0 ]; then
        open_loop pg.half "$server" "$half" --call GetUserCourses
    fi
    stop "$pid"
}

# ---------------------------------------------------------------- (b) the gateway
bench_gateway() {
    local gw=$((BASE + 80))
    log "gateway: GET /cursos/ver_inscricoes_do_usuario/1; gateway and cursos on core $SERVER_CPU, the load (h2load, openloop) on core $LOAD_CPU"
    start cursos "$SERVER_CPU" "$WORK/gw-cursos" cursos-gw
    local cursos_pid=$START_PID
    wait_serving cursos
    # The per-client rate limit off: one load generator stands for many users here.
    # shellcheck disable=SC2046
    env $(peer_env) RUST_LOG=warn GATEWAY_RATE_LIMIT=off GATEWAY_LISTEN="127.0.0.1:$gw" AULA_METRICS_LISTEN="127.0.0.1:$((gw + 900))" \
        taskset -c "$SERVER_CPU" "$REL/gateway" >"$OUT/logs/gateway.log" 2>&1 &
    local gw_pid=$!
    PIDS+=("$gw_pid")
    wait_port "$gw"
    local rest="http://127.0.0.1:$gw/cursos/ver_inscricoes_do_usuario/1"
    local grpc="http://127.0.0.1:$(port cursos)"
    curl -fsS "$rest" >"$OUT/gateway-answer.json" 2>"$OUT/logs/gateway-curl.log" ||
        echo "bench: the gateway did not answer $rest (see $OUT/logs/gateway-curl.log)" >&2
    local r
    for r in $(seq 1 "$ROUNDS"); do
        result "rps.gateway.GetUserCourses.$r" "$(h2get "gateway-$r" "$rest")"
    done
    # What cursos shed flat out (the gateway's 429s above): AULA_MAX_QUEUED at work.
    result gateway.cursos_shed "$(curl -s "http://127.0.0.1:$(metrics_port cursos)/metrics" |
        awk '/^aula_shed_total/ { n += $NF } END { print n + 0 }')"
    local half
    half=$(($(median_of rps.gateway.GetUserCourses | cut -d. -f1) / 2))
    result gateway.half_rate "$half"
    if [ "$half" -gt 0 ]; then
        # Placement. Throughput above keeps the gateway and cursos on one core, as every
        # earlier run did: the two processes' work per request added on one core is what it
        # measures, comparable across runs. Latency is measured twice:
        # - "shared": cursos on the gateway's core, as earlier runs measured it. Every request
        #   then waits for the gateway to go idle before cursos can run, and back: the two take
        #   turns on one core, which no deployment does (a gateway and the service it calls
        #   never share a core; on Kubernetes they are separate pods, usually on separate nodes).
        # - "apart": cursos moved to the other core (with openloop, which at half rate leaves it
        #   mostly idle, as PostgreSQL shares it in the postgres mode), the gateway alone on its
        #   core: each hop crosses cores as it would cross machines. This is the figure #16's
        #   target (the gateway adds at most 150 us at p50) is held to.
        # The direct call is measured with cursos on SERVER_CPU and openloop on LOAD_CPU in both
        # cases, as before: the client is never on the server's core.
        # Protocols: the gateway's maximum is h2load's over h2c (comparable with earlier runs);
        # its latency is a browser-like client's, GET over HTTP/1.1 keep-alive on
        # OL_HTTP1_CLIENTS connections (OL_GATEWAY_H2=1: over h2c, as the maximum). The direct
        # call is gRPC over HTTP/2, as any gRPC client makes it.
        local get=(--get)
        [ "${OL_GATEWAY_H2:-0}" = 1 ] && get+=(--h2)
        open_loop gateway.half "$rest" "$half" "${get[@]}"
        taskset -a -p -c "$LOAD_CPU" "$cursos_pid" >/dev/null
        open_loop gateway.apart "$rest" "$half" "${get[@]}"
        taskset -a -p -c "$SERVER_CPU" "$cursos_pid" >/dev/null
        # The same call directly in gRPC, at the same rate, same method: what the gateway adds.
        open_loop gateway.direct "$grpc" "$half" --call GetUserCourses
        # And with cursos where "apart" had it (sharing openloop's core): the one difference from
        # "apart" is then the gateway itself, which is what its added p50 should count.
        taskset -a -p -c "$LOAD_CPU" "$cursos_pid" >/dev/null
        open_loop gateway.direct_apart "$grpc" "$half" --call GetUserCourses
        taskset -a -p -c "$SERVER_CPU" "$cursos_pid" >/dev/null
        result gateway.added_p50_us "$(awk -F'\t' '$1 == "gateway.half.p50_ms" { g = $2 } $1 == "gateway.direct.p50_ms" { d = $2 }
            END { printf "%.0f", (g - d) * 1000 }' "$OUT/results.tsv")"
        result gateway.apart.added_p50_us "$(awk -F'\t' '$1 == "gateway.apart.p50_ms" { g = $2 } $1 == "gateway.direct.p50_ms" { d = $2 }
            END { printf "%.0f", (g - d) * 1000 }' "$OUT/results.tsv")"
        result gateway.apart.added_same_placement_p50_us "$(awk -F'\t' '$1 == "gateway.apart.p50_ms" { g = $2 } $1 == "gateway.direct_apart.p50_ms" { d = $2 }
            END { printf "%.0f", (g - d) * 1000 }' "$OUT/results.tsv")"
    fi
    stop "$gw_pid"
    stop "$cursos_pid"
}

# h2get NAME URL: h2load GET flat out (h2c, like the gRPC measurements); prints the rate of
# answers served (2xx) per second. Flat out, cursos behind the gateway may shed calls that
# queue beyond AULA_MAX_QUEUED, which the gateway answers 429: those are load shedding, not
# failures, and are left out of the rate and counted (NAME.4xx; the caller records cursos'
# aula_shed_total). A 3xx, a 5xx or an error fails the measurement.
h2get() {
    taskset -c "$LOAD_CPU" h2load -D "$SECS" --warm-up-time 1 -c "$CLIENTS" -m "$STREAMS" -t 1 "$2" \
        >"$OUT/logs/h2load-$1.log" 2>&1 || true
    local rps failed shed
    rps=$(awk '/^finished in/ { gsub(",", "", $4); rps = $4 } /^requests:/ { done = $6; errored = $12 }
        /^status codes:/ { ok = $3 } END { if (rps != "" && done > 0 && errored == 0) printf "%.2f", rps * ok / done }' "$OUT/logs/h2load-$1.log")
    failed=$(awk '/^status codes:/ { print $5 + $9 }' "$OUT/logs/h2load-$1.log")
    shed=$(awk '/^status codes:/ { print $7 }' "$OUT/logs/h2load-$1.log")
    if [ -z "$rps" ] || [ "${failed:-1}" != 0 ]; then
        echo "bench: h2load $1 failed or got errors (see $OUT/logs/h2load-$1.log)" >&2
        echo 0
        return
    fi
    printf '%s\t%s\n' "$1.4xx" "${shed:-0}" >>"$OUT/results.tsv"
    echo "$rps"
}

# ---------------------------------------------------------------- (c) cost with data
DATA_RPCS=cursos.GetUserCourses,cursos.Enroll,cursos.SendNotification,notificacoes.ListNotifications,cursos.GetStatus,notificacoes.GetStatus
bench_data() {
    local backend
    for backend in ${BENCH_DATA_BACKENDS:-sqlite postgres}; do
        bench_data_on "$backend"
    done
}

# bench_data_on sqlite|postgres: cursos and notificacoes on core SERVER_CPU; the p50s at a
# light open-loop rate (BENCH_DATA_RATE, 200/s: latency, not throughput) on the demo data,
# then after scripts/seed.sh.
bench_data_on() {
    local backend=$1 extra=() seed_env=() dir=$WORK/data-$1
    rm -rf "$dir"
    if [ "$backend" = postgres ]; then
        bench_pg_start
        local url
        url=$(bench_pg_fresh_db bench_data)
        extra=(DATABASE_URL="$url")
        seed_env=(DATABASE_URL="$url")
    else
        seed_env=(AULA_DATA_DIR="$dir")
    fi
    log "data ($backend): p50 of the five calls on the demo data, then with 1M enrolments and 2M notifications"
    start notificacoes "$SERVER_CPU" "$dir" "data-$backend-notificacoes" "${extra[@]}"
    local np=$START_PID
    start cursos "$SERVER_CPU" "$dir" "data-$backend-cursos" "${extra[@]}"
    local cp=$START_PID
    wait_serving notificacoes
    wait_serving cursos
    local phase t0
    for phase in demo seeded; do
        if [ "$phase" = seeded ]; then
            t0=$(date +%s)
            # shellcheck disable=SC2086
            env "${seed_env[@]}" bash "$ROOT/scripts/seed.sh" ${BENCH_SEED_ARGS:-} >"$OUT/logs/seed-$backend.log" 2>&1 ||
                echo "bench: seed.sh failed on $backend (see $OUT/logs/seed-$backend.log)" >&2
            result "data.$backend.seed_s" $(($(date +%s) - t0))
        fi
        # shellcheck disable=SC2046
        env $(peer_env) taskset -c "$LOAD_CPU" "$REL/aula" load --only "$DATA_RPCS" \
            --rate "${BENCH_DATA_RATE:-200}" --concurrency 16 --connections 1 --warmup 2s \
            --duration "${SECS}s" --json "$OUT/data-$backend-$phase.json" \
            >"$OUT/logs/data-$backend-$phase.log" 2>&1 || echo "bench: aula load (data $backend $phase) failed" >&2
        python3 - "$OUT/data-$backend-$phase.json" "data.$backend.$phase" >>"$OUT/results.tsv" <<'EOF' || true
import json, sys
s = json.load(open(sys.argv[1]))
for row in s["rpcs"]:
    lat = row.get("latency_ms") or {}
    print(f"{sys.argv[2]}.{row['rpc']}.p50_ms\t{lat.get('p50', 0):.3f}")
    print(f"{sys.argv[2]}.{row['rpc']}.errors\t{row['errors']}")
EOF
    done
    stop "$cp"
    stop "$np"
}

# bench_more_summary: the markdown of the three measurements, from results.tsv.
bench_more_summary() {
    python3 - "$OUT/results.tsv" <<'EOF'
import sys
r = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition("\t")
    r[k] = v
num = lambda k: float(r.get(k) or 0)
rounds = lambda p: [float(v) for k, v in r.items() if k.startswith(p + ".") and k[len(p) + 1:].isdigit()]
med = lambda xs: sorted(xs)[(len(xs) - 1) // 2] if xs else 0
out = []
pg = rounds("rps.pg.GetUserCourses")
if pg:
    out += ["## GetUserCourses on PostgreSQL (cursos on one core, PostgreSQL on the other)\n",
            f"{med(pg):,.0f} req/s (rounds {' '.join(f'{x:,.0f}' for x in pg)}); at half that rate "
            f"({r.get('pg.half_rate')} req/s, openloop, achieved {r.get('pg.half.rate')}): "
            f"p50 {r.get('pg.half.p50_ms')} ms, p99 {r.get('pg.half.p99_ms')} ms\n"]
gw = rounds("rps.gateway.GetUserCourses")
if gw:
    added, apart = num("gateway.added_p50_us"), num("gateway.apart.added_p50_us")
    same = num("gateway.apart.added_same_placement_p50_us")
    out += ["## GET /cursos/ver_inscricoes_do_usuario/1 through the gateway\n",
            f"{med(gw):,.0f} req/s, gateway and cursos on one core (rounds {' '.join(f'{x:,.0f}' for x in gw)}); "
            f"at half that rate ({r.get('gateway.half_rate')} req/s, openloop, GET over "
            f"{'h2c' if r.get('gateway.half.protocol') == 'h2' else 'HTTP/1.1'} on {r.get('gateway.half.connections')} connections): "
            f"cursos on the gateway's core (achieved {r.get('gateway.half.rate')}) p50 {r.get('gateway.half.p50_ms')} ms, "
            f"p99 {r.get('gateway.half.p99_ms')} ms; cursos on the other core, as in a deployment "
            f"(achieved {r.get('gateway.apart.rate')}) p50 {r.get('gateway.apart.p50_ms')} ms, p99 {r.get('gateway.apart.p99_ms')} ms. "
            f"The same call in gRPC directly at that rate: p50 {r.get('gateway.direct.p50_ms')} ms with cursos alone on its core "
            f"(achieved {r.get('gateway.direct.rate')}), {r.get('gateway.direct_apart.p50_ms')} ms with cursos where \"apart\" "
            f"has it (achieved {r.get('gateway.direct_apart.rate')}). The gateway adds {added:.0f} us at p50 sharing cursos' core, "
            f"{apart:.0f} us on its own core against cursos alone, and **{same:.0f} us against the direct call with cursos "
            f"placed the same**, the one comparison in which the gateway is the only difference "
            f"(target <= 150 us: {'met' if same <= 150 else 'MISSED'})\n"]
for backend in ("sqlite", "postgres"):
    demo = {k.split(".", 3)[3][:-len(".p50_ms")]: float(v) for k, v in r.items()
            if k.startswith(f"data.{backend}.demo.") and k.endswith(".p50_ms")}
    if not demo:
        continue
    out += [f"## Cost with data, {backend} (p50 ms; seeded: 1M enrolments, 2M notifications; "
            f"seed.sh took {r.get(f'data.{backend}.seed_s', '?')} s)\n",
            "| rpc | demo | seeded | seeded / demo | target <= 1.5x |", "|---|---|---|---|---|"]
    for rpc, d in demo.items():
        s = num(f"data.{backend}.seeded.{rpc}.p50_ms")
        ratio = s / d if d else 0
        out.append(f"| {rpc} | {d:.3f} | {s:.3f} | {ratio:.2f}x | {'met' if 0 < ratio <= 1.5 else 'MISSED'} |")
    out.append("")
print("\n".join(out))
EOF
}

bench_more() { # the three, as the last sections of `all`
    bench_postgres
    bench_gateway
    bench_data
}

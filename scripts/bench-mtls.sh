# The cost of mutual TLS (#14), sourced by scripts/bench.sh for its mode `mtls` (it defines start,
# wait_serving, result, log, h2, port, REL, WORK, OUT):
#
#   scripts/bench.sh mtls   GetUserCourses on cursos over TLS against the same cursos in
#                           plaintext, same core, same run, BENCH_ROUNDS rounds alternating;
#                           reports both rates and their ratio (target: at least 0.85).
#
# Two clients: h2load (the throughput figure; it presents no client certificate, so that TLS
# server runs with AULA_TLS_CLIENT_AUTH=none: every frame encrypted, the same steady state as with
# one), then `aula load` with the operator's certificate against a server requiring it (mutual
# TLS and per-RPC authorization, exactly as deployed; aula load is a heavier client, so its rates
# are lower for both). Certificates come from `aula certs`, as a developer's would.

# Every peer address as https: a service with TLS on refuses plaintext peer addresses at start.
tls_peer_env() {
    local s
    for s in "${SERVICES[@]}"; do printf '%s_ADDR=https://localhost:%s ' "${s^^}" "$(port "$s")"; done
}

bench_mtls() {
    local certs=$WORK/certs
    "$REL/aula" certs --out "$certs" >"$OUT/logs/certs.log"
    local plain_port tls_port
    plain_port=$(port cursos)
    tls_port=$((plain_port + 100))
    log "mtls: cursos on core $SERVER_CPU in plaintext (:$plain_port) and over TLS (:$tls_port)"
    floor_round before
    start cursos "$SERVER_CPU" "$WORK/plain" cursos-plain
    wait_serving cursos
    # shellcheck disable=SC2046
    start cursos "$SERVER_CPU" "$WORK/tls" cursos-tls $(tls_peer_env) \
        AULA_LISTEN="127.0.0.1:$tls_port" AULA_METRICS_LISTEN="127.0.0.1:$((tls_port + 900))" \
        AULA_TLS_CERT="$certs/cursos.crt" AULA_TLS_KEY="$certs/cursos.key" AULA_TLS_CA="$certs/ca.crt" \
        AULA_TLS_CLIENT_AUTH=none
    local i
    for i in $(seq 1 400); do
        AULA_TLS_CERT="$certs/operator.crt" AULA_TLS_KEY="$certs/operator.key" AULA_TLS_CA="$certs/ca.crt" \
            "$REL/cursos" healthcheck --addr "https://127.0.0.1:$tls_port" --timeout 1s >/dev/null 2>&1 && break
        sleep 0.025
    done
    local path=/services.CursosService/GetUserCourses round plain tls
    local plain_sum=0 tls_sum=0
    for round in $(seq 1 "$ROUNDS"); do
        plain=$(h2 "mtls-plain-$round" "http://127.0.0.1:$plain_port$path" "$WORK/user1.bin")
        tls=$(h2 "mtls-tls-$round" "https://127.0.0.1:$tls_port$path" "$WORK/user1.bin")
        result "mtls.round$round.plaintext_rps" "$plain"
        result "mtls.round$round.tls_rps" "$tls"
        plain_sum=$(awk -v a="$plain_sum" -v b="$plain" 'BEGIN { print a + b }')
        tls_sum=$(awk -v a="$tls_sum" -v b="$tls" 'BEGIN { print a + b }')
    done
    result mtls.plaintext_rps "$(awk -v s="$plain_sum" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }')"
    result mtls.tls_rps "$(awk -v s="$tls_sum" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }')"
    result mtls.ratio "$(awk -v t="$tls_sum" -v p="$plain_sum" 'BEGIN { printf "%.3f", (p > 0) ? t / p : 0 }')"

    # Mutual TLS as deployed: the TLS cursos again, now requiring client certificates.
    stop "$START_PID"
    # shellcheck disable=SC2046
    start cursos "$SERVER_CPU" "$WORK/tls" cursos-mtls $(tls_peer_env) \
        AULA_LISTEN="127.0.0.1:$tls_port" AULA_METRICS_LISTEN="127.0.0.1:$((tls_port + 900))" \
        AULA_TLS_CERT="$certs/cursos.crt" AULA_TLS_KEY="$certs/cursos.key" AULA_TLS_CA="$certs/ca.crt"
    sleep 1
    local mplain=0 mtls=0
    for round in $(seq 1 "$ROUNDS"); do
        # shellcheck disable=SC2046
        env $(peer_env) taskset -c "$LOAD_CPU" "$REL/aula" load --only GetUserCourses --concurrency 64 --connections 4 \
            --warmup 1s --duration "${SECS}s" --json "$OUT/aula-plain-$round.json" \
            >"$OUT/logs/aula-plain-$round.log" 2>&1 || true
        env AULA_TLS_CERT="$certs/operator.crt" AULA_TLS_KEY="$certs/operator.key" AULA_TLS_CA="$certs/ca.crt" \
            CURSOS_ADDR="https://localhost:$tls_port" taskset -c "$LOAD_CPU" "$REL/aula" load \
            --only GetUserCourses --concurrency 64 --connections 4 --warmup 1s --duration "${SECS}s" \
            --json "$OUT/aula-mtls-$round.json" >"$OUT/logs/aula-mtls-$round.log" 2>&1 || true
        local p t
        p=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["total"]; print(round(t["rate"]) if not t["errors"] else 0)' "$OUT/aula-plain-$round.json" 2>/dev/null || echo 0)
        t=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["total"]; print(round(t["rate"]) if not t["errors"] else 0)' "$OUT/aula-mtls-$round.json" 2>/dev/null || echo 0)
        result "mtls.aula_load.round$round.plaintext_rps" "$p"
        result "mtls.aula_load.round$round.mtls_rps" "$t"
        mplain=$((mplain + p))
        mtls=$((mtls + t))
    done
    result mtls.aula_load.ratio "$(awk -v t="$mtls" -v p="$mplain" 'BEGIN { printf "%.3f", (p > 0) ? t / p : 0 }')"
    floor_round after # the two servers idle on its core
    {
        echo "# mTLS cost (scripts/bench.sh mtls)"
        echo
        echo "GetUserCourses, h2load $CLIENTS connections x $STREAMS streams, ${SECS}s x $ROUNDS rounds, server on core $SERVER_CPU."
        echo
        echo "| key | value |"
        echo "|---|---|"
        awk -F'\t' '{ printf "| %s | %s |\n", $1, $2 }' "$OUT/results.tsv"
    } >"$OUT/summary.md"
    mode_validity >/dev/null
    cat "$OUT/summary.md"
}

# The cost of mutual TLS (#14), sourced by scripts/bench.sh for its mode `mtls` (it defines start,
# wait_serving, result, log, h2, port, REL, WORK, OUT):
#
#   scripts/bench.sh mtls   GetUserCourses on cursos over TLS against the same cursos in
#                           plaintext, same core, same run, BENCH_ROUNDS rounds alternating;
#                           reports both rates and their ratio (target: at least 0.85).
#
# h2load presents no client certificate, so the TLS server runs with AULA_TLS_CLIENT_AUTH=none:
# what is measured is the steady state (every frame encrypted and authenticated, ALPN h2), the
# same with or without a client certificate; the handshakes (mutual or not) happen once per
# connection. Certificates come from `aula certs`, as a developer's would.

bench_mtls() {
    local certs=$WORK/certs
    "$REL/aula" certs --out "$certs" >"$OUT/logs/certs.log"
    local plain_port tls_port
    plain_port=$(port cursos)
    tls_port=$((plain_port + 100))
    log "mtls: cursos on core $SERVER_CPU in plaintext (:$plain_port) and over TLS (:$tls_port)"
    start cursos "$SERVER_CPU" "$WORK/plain" cursos-plain
    wait_serving cursos
    start cursos "$SERVER_CPU" "$WORK/tls" cursos-tls \
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
    {
        echo "# mTLS cost (scripts/bench.sh mtls)"
        echo
        echo "GetUserCourses, h2load $CLIENTS connections x $STREAMS streams, ${SECS}s x $ROUNDS rounds, server on core $SERVER_CPU."
        echo
        echo "| key | value |"
        echo "|---|---|"
        awk -F'\t' '{ printf "| %s | %s |\n", $1, $2 }' "$OUT/results.tsv"
    } >"$OUT/summary.md"
    cat "$OUT/summary.md"
}

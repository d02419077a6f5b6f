# The cost of fault flags switched off (#19), sourced by scripts/bench.sh for its mode `flags` (it
# defines start, wait_serving, result, log, h2, port, REL, WORK, OUT):
#
#   scripts/bench.sh flags   GetUserCourses on cursos without AULA_FLAGS_FILE against the same
#                            cursos reading a flags file with every flag of every service present
#                            and off (what `aula flags clear` leaves), same core, same run,
#                            BENCH_ROUNDS rounds alternating; reports both rates and their ratio
#                            (target: within noise, at least 0.98).
#
# A third cursos reads a file where only another service's faults are on (midia's error ratio at
# 100%): cursos' layer is just as inert then (its own faults are all off), which the ratio shows too.

bench_flags() {
    local none_port off_port other_port
    none_port=$(port cursos)
    off_port=$((none_port + 100))
    other_port=$((none_port + 200))
    "$REL/aula" flags --file "$WORK/flags-off.json" clear >"$OUT/logs/flags.log"
    cp "$WORK/flags-off.json" "$WORK/flags-other.json"
    "$REL/aula" flags --file "$WORK/flags-other.json" set fault.midia.error_ratio all >>"$OUT/logs/flags.log"
    log "flags: cursos on core $SERVER_CPU without a flags file (:$none_port), all off (:$off_port), midia's on (:$other_port)"
    start cursos "$SERVER_CPU" "$WORK/none" cursos-flags-none
    wait_serving cursos
    start cursos "$SERVER_CPU" "$WORK/off" cursos-flags-off \
        AULA_LISTEN="127.0.0.1:$off_port" AULA_METRICS_LISTEN="127.0.0.1:$((off_port + 900))" \
        AULA_FLAGS_FILE="$WORK/flags-off.json"
    wait_serving cursos "http://127.0.0.1:$off_port"
    start cursos "$SERVER_CPU" "$WORK/other" cursos-flags-other \
        AULA_LISTEN="127.0.0.1:$other_port" AULA_METRICS_LISTEN="127.0.0.1:$((other_port + 900))" \
        AULA_FLAGS_FILE="$WORK/flags-other.json"
    wait_serving cursos "http://127.0.0.1:$other_port"
    local path=/services.CursosService/GetUserCourses round none off other
    local none_sum=0 off_sum=0 other_sum=0
    for round in $(seq 1 "$ROUNDS"); do
        none=$(h2 "flags-none-$round" "http://127.0.0.1:$none_port$path" "$WORK/user1.bin")
        off=$(h2 "flags-off-$round" "http://127.0.0.1:$off_port$path" "$WORK/user1.bin")
        other=$(h2 "flags-other-$round" "http://127.0.0.1:$other_port$path" "$WORK/user1.bin")
        result "flags.round$round.no_file_rps" "$none"
        result "flags.round$round.all_off_rps" "$off"
        result "flags.round$round.other_service_on_rps" "$other"
        none_sum=$(awk -v a="$none_sum" -v b="$none" 'BEGIN { print a + b }')
        off_sum=$(awk -v a="$off_sum" -v b="$off" 'BEGIN { print a + b }')
        other_sum=$(awk -v a="$other_sum" -v b="$other" 'BEGIN { print a + b }')
    done
    result flags.no_file_rps "$(awk -v s="$none_sum" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }')"
    result flags.all_off_rps "$(awk -v s="$off_sum" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }')"
    result flags.other_service_on_rps "$(awk -v s="$other_sum" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }')"
    result flags.ratio_all_off "$(awk -v o="$off_sum" -v n="$none_sum" 'BEGIN { printf "%.3f", (n > 0) ? o / n : 0 }')"
    result flags.ratio_other_service_on "$(awk -v o="$other_sum" -v n="$none_sum" 'BEGIN { printf "%.3f", (n > 0) ? o / n : 0 }')"
}

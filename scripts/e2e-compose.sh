#!/usr/bin/env bash
# End-to-end test of the containers, offline: builds the images (scripts/build-images.sh), starts
# docker-compose.yml + docker-compose.offline.yml, and checks from the host what a user would see:
#
#   - the stack becomes healthy; reflection `list` and grpc.health.v1 on every gRPC port; metrics;
#   - every container runs as 65532 on a read-only root filesystem;
#   - the seed's API through the containers, and the REST gateway;
#   - notificacoes stopped: cursos' SendNotification still answers within 5 s (queued `pendente`, or
#     UNAVAILABLE) and the acknowledged notification arrives once notificacoes is back;
#   - midia scaled to 3: cursos re-resolves the name and its GetMedia calls reach all three replicas
#     (each replica's own /metrics, read through its address on the compose network);
#   - mutual TLS (docker-compose.mtls.yml, certificates from `aula certs`): healthy again with the
#     healthchecks over mTLS, the operator's certificate calls cursos (and cursos notificacoes),
#     plaintext is refused, midia's certificate may not SendNotification, the gateway still works;
#   - end-user tokens (docker-compose.auth.yml, tokens from `aula token`): through the gateway a
#     user's own data is 200, no token 401 with `WWW-Authenticate: Bearer realm="aula"`, another
#     user's data 403, /livez 200 without a token; cursos called directly is UNAUTHENTICATED
#     without a token and answers with one.
#
# Prints PASS/FAIL per check and a total; exits 1 if any check failed. Tears the stack down (with
# its volumes) on every exit. Traffic goes only to 127.0.0.1 and to the containers it created.
#
# Environment:
#   AULA_E2E_SKIP_BUILD=1   use the aula/*:$AULA_TAG images already there
#   AULA_E2E_PROJECT        compose project name (default aula-e2e)
#   AULA_E2E_KEEP=1         leave the stack running at the end (for debugging)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

project=${AULA_E2E_PROJECT:-aula-e2e}
export AULA_TAG=${AULA_TAG:-dev}
compose=(docker compose --ansi never -p "$project" -f "$root/docker-compose.yml" -f "$root/docker-compose.offline.yml")
services=(cursos chatbot cpar notificacoes insights midia)
declare -A grpc_port=([cursos]=50051 [chatbot]=50052 [cpar]=50053 [notificacoes]=50054 [insights]=50055 [midia]=50056)
declare -A metrics_port=([cursos]=9051 [chatbot]=9052 [cpar]=9053 [notificacoes]=9054 [insights]=9055 [midia]=9056)
declare -A grpc_service=([cursos]=services.CursosService [chatbot]=services.ChatbotService
  [cpar]=services.CPARService [notificacoes]=services.NotificacoesService
  [insights]=services.InsightsService [midia]=services.MidiaConteudoService)

passed=0
failed=0
log() { printf 'e2e-compose: %s\n' "$*" >&2; }
pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
# check NAME CMD...: PASS when CMD succeeds; its output is shown on failure.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name"; printf '%s\n' "$out" | tail -n 15 | sed 's/^/      /'; fi
}
now_ms() { date +%s%3N; }

teardown() {
  local rc=$?
  if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
    log "logs of the stack (last 40 lines per container):"
    "${compose[@]}" logs --no-color --tail 40 >&2 2>&1 || true
  fi
  if [ "${AULA_E2E_KEEP:-0}" = 1 ]; then
    log "AULA_E2E_KEEP=1: leaving project $project running"
  else
    "${compose[@]}" --profile load down -v --remove-orphans --timeout 20 >/dev/null 2>&1 || true
  fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ tools and images
"$root/scripts/install-docker-plugins.sh" >/dev/null || { fail "docker buildx/compose available"; exit 1; }
grpcurl=$("$root/scripts/install-grpcurl.sh") || { fail "grpcurl installed"; exit 1; }
if [ "${AULA_E2E_SKIP_BUILD:-0}" != 1 ]; then
  if "$root/scripts/build-images.sh"; then pass "images built offline, each within its size budget"
  else fail "images built offline, each within its size budget"; exit 1; fi
fi

# gRPC call on 127.0.0.1: rpc PORT METHOD [JSON]
rpc() {
  local port=$1 method=$2 data=${3:-'{}'}
  "$grpcurl" -plaintext -max-time 10 -d "$data" "127.0.0.1:$port" "$method"
}
contains() { grep -q -- "$2" <<<"$1"; }

# ------------------------------------------------------------------ start
"${compose[@]}" --profile load down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true
busy=""
for p in 50051 50052 50053 50054 50055 50056 9051 9052 9053 9054 9055 9056 8080; do
  if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then busy="$busy $p"; fi
done
if [ -n "$busy" ]; then
  fail "host ports free for the offline stack (in use:$busy)"
  exit 1
fi

t0=$(now_ms)
if "${compose[@]}" up -d --no-build --wait --wait-timeout 180 >/tmp/e2e-compose-up.log 2>&1; then
  pass "offline stack up and healthy in $(( ($(now_ms) - t0) / 1000 )) s"
else
  fail "offline stack up and healthy"; tail -n 20 /tmp/e2e-compose-up.log; exit 1
fi
running=$("${compose[@]}" ps --status running --services | sort | tr '\n' ' ')
check "exactly the seven project containers run (got: $running)" \
  test "$running" = "chatbot cpar cursos gateway insights midia notificacoes "

# ------------------------------------------------------------------ per service: reflection, health, metrics
for s in "${services[@]}"; do
  p=${grpc_port[$s]}
  out=$("$grpcurl" -plaintext -max-time 10 "127.0.0.1:$p" list 2>&1)
  if contains "$out" "${grpc_service[$s]}" && contains "$out" grpc.health.v1.Health; then
    pass "$s :$p reflection list shows ${grpc_service[$s]} and grpc.health.v1.Health"
  else fail "$s :$p reflection list"; printf '      %s\n' "$out"; fi
  ok=1
  for name in "${grpc_service[$s]}" ""; do
    out=$(rpc "$p" grpc.health.v1.Health/Check "{\"service\":\"$name\"}" 2>&1)
    contains "$out" '"SERVING"' || { ok=0; printf '      %s\n' "$out"; }
  done
  if [ $ok = 1 ]; then pass "$s :$p health SERVING (\"${grpc_service[$s]}\" and \"\")"
  else fail "$s :$p health"; fi
  m=${metrics_port[$s]}
  check "$s :$m /metrics (aula_build_info, grpc_server_handled_total)" \
    bash -c "out=\$(curl -fsS --max-time 5 http://127.0.0.1:$m/metrics) && grep -q '^aula_build_info' <<<\"\$out\" && grep -q '^grpc_server_handled_total' <<<\"\$out\""
done

# ------------------------------------------------------------------ hardening
for c in $("${compose[@]}" ps -q); do
  name=$(docker inspect -f '{{.Name}}' "$c" | sed 's|^/||')
  cfg=$(docker inspect -f '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}' "$c")
  uids=$(docker top "$c" -eo pid,uid 2>/dev/null | awk 'NR > 1 {print $2}' | sort -u | tr '\n' ' ')
  if [ "$cfg" = "65532:65532 true" ] && [ "$uids" = "65532 " ]; then
    pass "$name runs as 65532 with a read-only root filesystem"
  else fail "$name runs as 65532 with a read-only root filesystem (user/readonly: $cfg; process uids: $uids)"; fi
done

# ------------------------------------------------------------------ the seed's API through the containers
out=$(rpc 50051 services.CursosService/GetUserCourses '{"id_usuario":"1"}' 2>&1)
if contains "$out" '"cursosInscritos"'; then pass "cursos GetUserCourses(1) lists enrolled courses"
else fail "cursos GetUserCourses(1)"; printf '      %s\n' "$out"; fi

out=$(rpc 50051 services.CursosService/GetCourseMedia '{"id_curso":"1"}' 2>&1)
if contains "$out" '"midiaCurso"'; then pass "cursos GetCourseMedia(1) answers through midia"
else fail "cursos GetCourseMedia(1)"; printf '      %s\n' "$out"; fi

out=$(rpc 50051 services.CursosService/AskQuestion \
  '{"id_curso":"1","aula_contexto":"Aula 1","duvida":"O que vou aprender neste curso?","id_usuario":"1"}' 2>&1)
if contains "$out" '"resposta"'; then pass "cursos AskQuestion answers through chatbot"
else fail "cursos AskQuestion"; printf '      %s\n' "$out"; fi

msg="e2e $(date +%s) mensagem direta"
out=$(rpc 50051 services.CursosService/SendNotification "{\"id_usuario\":\"1\",\"message\":\"$msg\"}" 2>&1)
if contains "$out" '"message"' && ! contains "$out" 'ERROR'; then pass "cursos SendNotification answers"
else fail "cursos SendNotification"; printf '      %s\n' "$out"; fi

out=$(rpc 50053 services.CPARService/NotifySchedule '{"id_agendamento":"1"}' 2>&1)
if contains "$out" '"message"' && ! contains "$out" 'ERROR'; then pass "cpar NotifySchedule(1) answers"
else fail "cpar NotifySchedule(1)"; printf '      %s\n' "$out"; fi

out=$(rpc 50052 services.ChatbotService/ResolveDuvida \
  '{"aula_contexto":"Aula 1","duvida":"O que e uma variavel?"}' 2>&1)
if contains "$out" '"resposta"'; then pass "chatbot ResolveDuvida answers"
else fail "chatbot ResolveDuvida"; printf '      %s\n' "$out"; fi

# Whatever cursos acknowledged is in notificacoes (delivered from cursos' outbox).
listed() {
  local deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    # Not grep -q: under pipefail, grpcurl dying of SIGPIPE after the match would read as no match.
    rpc 50054 services.NotificacoesService/ListNotifications '{"id_usuario":"1","page_size":100}' 2>/dev/null \
      | grep -F -- "$1" >/dev/null && return 0
    sleep 1
  done
  return 1
}
check "notificacoes ListNotifications(1) has the notification sent through cursos" listed "$msg" 15

out=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/healthz 2>&1)
check "gateway GET /healthz is 200 (got $out)" test "$out" = 200
out=$(curl -sS --max-time 10 -w '\n%{http_code}' http://127.0.0.1:8080/cursos 2>&1)
code=$(tail -n1 <<<"$out")
if [ "$code" = 200 ] && head -n -1 <<<"$out" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null; then
  pass "gateway GET /cursos is 200 with JSON"
else fail "gateway GET /cursos (status $code)"; printf '      %s\n' "$(head -c 300 <<<"$out")"; fi
gw=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' \
  "$("${compose[@]}" ps -q gateway)" | awk '{print $1}')
check "gateway :9080 /metrics (http_requests_total)" \
  bash -c "curl -fsS --max-time 5 http://$gw:9080/metrics | grep -q '^http_requests_total'"

# The `load` profile's client, briefly.
load_check() {
  local rc=0
  timeout 90 "${compose[@]}" --profile load run --rm --no-deps --name "$project-load-check" \
    load load --warmup 1s --duration 5s --rate 20 || rc=$?
  docker rm -f -v "$project-load-check" >/dev/null 2>&1 || true
  return $rc
}
check "aula load (the compose 'load' service) runs 5 s against the stack" load_check

# ------------------------------------------------------------------ degrade, don't fail
"${compose[@]}" stop notificacoes >/dev/null 2>&1
outage="e2e $(date +%s) durante a queda"
t0=$(now_ms)
out=$(rpc 50051 services.CursosService/SendNotification "{\"id_usuario\":\"1\",\"message\":\"$outage\"}" 2>&1)
took=$(( $(now_ms) - t0 ))
acknowledged=0
if contains "$out" '"pendente": true'; then acknowledged=1; verdict="acknowledged, pendente"
elif contains "$out" 'Code: Unavailable'; then verdict="UNAVAILABLE"
else verdict="unexpected answer"; fi
if [ "$verdict" != "unexpected answer" ] && [ "$took" -lt 5000 ]; then
  pass "notificacoes stopped: SendNotification answers in ${took} ms ($verdict)"
else fail "notificacoes stopped: SendNotification answers within 5 s (${took} ms, $verdict)"; printf '      %s\n' "$out"; fi
out=$(rpc 50051 services.CursosService/GetUserCourses '{"id_usuario":"1"}' 2>&1)
if contains "$out" '"cursosInscritos"'; then pass "notificacoes stopped: cursos still serves its own data"
else fail "notificacoes stopped: cursos GetUserCourses"; printf '      %s\n' "$out"; fi

"${compose[@]}" start notificacoes >/dev/null 2>&1
if "${compose[@]}" up -d --no-build --no-recreate --wait --wait-timeout 60 notificacoes >/dev/null 2>&1; then
  pass "notificacoes restarted and healthy"
else fail "notificacoes restarted and healthy"; fi
if [ $acknowledged = 1 ]; then
  check "the notification acknowledged during the outage is delivered after the restart" listed "$outage" 30
else
  pass "nothing was acknowledged during the outage (UNAVAILABLE), so nothing to deliver"
fi

# ------------------------------------------------------------------ scale midia to three
# docker-compose.scale.yml: the new replicas publish no host port (the first keeps 50056/9056).
if "${compose[@]}" -f "$root/docker-compose.scale.yml" up -d --no-build --no-recreate --scale midia=3 \
    --wait --wait-timeout 90 >/tmp/e2e-compose-scale.log 2>&1; then
  pass "midia scaled to 3 replicas, all healthy"
else fail "midia scaled to 3"; tail -n 20 /tmp/e2e-compose-scale.log; fi

mapfile -t replicas < <("${compose[@]}" ps -q midia)
declare -A ip before
for c in "${replicas[@]}"; do
  ip[$c]=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$c" | awk '{print $1}')
done
# Calls of GetMedia one replica has handled, from its own metrics (all codes).
served() {
  curl -fsS --max-time 5 "http://$1:9056/metrics" 2>/dev/null \
    | awk '/^grpc_server_handled_total\{/ && /grpc_method="GetMedia"/ {s += $NF} END {print s + 0}'
}
for c in "${replicas[@]}"; do before[$c]=$(served "${ip[$c]}"); done

# cursos re-resolves `midia` every 2 s (AULA_DNS_REFRESH in the offline override): keep calling,
# 20 at a time, until every replica has served some or 120 calls were made.
calls=0
ok_calls=0
all_used() {
  local c
  for c in "${replicas[@]}"; do [ "$(served "${ip[$c]}")" -gt "${before[$c]}" ] || return 1; done
}
while [ $calls -lt 120 ]; do
  for _ in $(seq 1 20); do
    calls=$((calls + 1))
    rpc 50051 services.CursosService/GetCourseMedia '{"id_curso":"1"}' 2>/dev/null | grep '"midiaCurso"' >/dev/null \
      && ok_calls=$((ok_calls + 1))
  done
  [ $ok_calls -eq 0 ] && break  # cursos does not answer at all: no point in going on
  [ $calls -ge 60 ] && all_used && break
done
spread=""
used=0
for c in "${replicas[@]}"; do
  d=$(( $(served "${ip[$c]}") - before[$c] ))
  spread="$spread $(docker inspect -f '{{.Name}}' "$c" | sed 's|^/||')=$d"
  [ $d -gt 0 ] && used=$((used + 1))
done
check "GetCourseMedia through cursos: $ok_calls/$calls calls answered" test "$ok_calls" -eq "$calls"
check "cursos -> midia calls reached all ${#replicas[@]} replicas (GetMedia served:$spread)" \
  test "$used" -eq 3 -a "${#replicas[@]}" -eq 3

# ------------------------------------------------------------------ mutual TLS
# The same stack recreated with docker-compose.mtls.yml: every container its own certificate.
aula_bin=${AULA_BIN:-$root/target/debug/aula}
[ -x "$aula_bin" ] || cargo build -q -p aula >&2
certs=$(mktemp -d)
# --container-readable: keys 0644 and the folder 0755, for the containers' user 65532.
if "$aula_bin" certs --out "$certs" --container-readable >/dev/null; then
  export AULA_CERTS_DIR=$certs
  if "${compose[@]}" -f "$root/docker-compose.mtls.yml" up -d --no-build --wait --wait-timeout 120 \
      >/tmp/e2e-compose-mtls.log 2>&1; then
    pass "mTLS: the stack is healthy again (every healthcheck over mTLS with the container's certificate)"
  else fail "mTLS: stack healthy"; tail -n 20 /tmp/e2e-compose-mtls.log; fi
  as() { # as IDENTITY PORT METHOD [JSON]
    local data=${4:-'{}'}
    "$grpcurl" -cacert "$certs/ca.crt" -cert "$certs/$1.crt" -key "$certs/$1.key" -max-time 10 \
      -d "$data" "localhost:$2" "$3"
  }
  out=$(as operator 50051 services.CursosService/GetUserCourses '{"id_usuario":"1"}' 2>&1)
  check "mTLS: the operator's certificate calls cursos" contains "$out" '"cursosInscritos"'
  out=$(as operator 50051 services.CursosService/SendNotification '{"id_usuario":"9","message":"over mTLS"}' 2>&1)
  check "mTLS: cursos -> notificacoes as cursos (delivered, not queued)" \
    bash -c '! grep -q "\"pendente\": true" <<<"$1" && grep -q "\"notificacaoServico\"" <<<"$1"' _ "$out"
  out=$(rpc 50051 services.CursosService/GetStatus 2>&1)
  check "mTLS: a plaintext client is refused" bash -c '! grep -q "\"message\"" <<<"$1"' _ "$out"
  out=$(as midia 50054 services.NotificacoesService/SendNotification '{"id_usuario":"9","message":"spoof"}' 2>&1)
  check "mTLS: midia may not SendNotification (PermissionDenied naming it)" \
    bash -c 'grep -q PermissionDenied <<<"$1" && grep -q "midia may not call" <<<"$1"' _ "$out"
  check "mTLS: the gateway calls the services with its certificate" \
    curl -fsS --max-time 10 http://127.0.0.1:8080/cursos/ver_inscricoes_do_usuario/1
else
  fail "mTLS: aula certs wrote the certificates"
fi
rm -rf "$certs"

# ------------------------------------------------------------------ end-user tokens
# The same stack recreated with docker-compose.auth.yml (without mTLS: the variant trusts the
# compose network between services). `aula token --data-dir` generates the development key and
# its key set, which the variant mounts from $AULA_AUTH_DIR into every container.
authdir=$(mktemp -d)
chmod 755 "$authdir"  # the key set is read by the containers' user 65532
user1=$("$aula_bin" token --user 1 --data-dir "$authdir" 2>/dev/null)
if [ -n "$user1" ] && [ -r "$authdir/auth/jwks.json" ]; then
  export AULA_AUTH_DIR=$authdir/auth
  if "${compose[@]}" -f "$root/docker-compose.auth.yml" up -d --no-build --wait --wait-timeout 120 \
      >/tmp/e2e-compose-auth.log 2>&1; then
    pass "auth: the stack is healthy with AULA_AUTH=jwt (health needs no token)"
  else fail "auth: stack healthy"; tail -n 20 /tmp/e2e-compose-auth.log; fi
  # http_status PATH [TOKEN]: the gateway's status code for GET PATH.
  http_status() {
    local h=()
    [ -n "${2:-}" ] && h=(-H "authorization: Bearer $2")
    curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "${h[@]}" "http://127.0.0.1:8080$1" 2>&1
  }
  got=$(http_status /cursos/ver_inscricoes_do_usuario/1 "$user1")
  check "auth: user 1's token reads user 1's courses through the gateway (200, got $got)" test "$got" = 200
  challenge=$(curl -sS --max-time 10 -o /dev/null -D - http://127.0.0.1:8080/cursos/ver_inscricoes_do_usuario/1 2>&1 | tr -d '\r')
  check "auth: no token is 401 with WWW-Authenticate: Bearer realm=\"aula\"" \
    bash -c 'grep -q "^HTTP/[0-9.]* 401" <<<"$1" && grep -qix "www-authenticate: Bearer realm=\"aula\"" <<<"$1"' _ "$challenge"
  got=$(http_status /cursos/ver_inscricoes_do_usuario/2 "$user1")
  check "auth: user 1's token on user 2's courses is 403 (got $got)" test "$got" = 403
  got=$(http_status /livez)
  check "auth: /livez is 200 without a token (got $got)" test "$got" = 200
  out=$(rpc 50051 services.CursosService/GetUserCourses '{"id_usuario":"1"}' 2>&1)
  check "auth: cursos called directly without a token is UNAUTHENTICATED" contains "$out" 'Code: Unauthenticated'
  out=$("$grpcurl" -plaintext -max-time 10 -H "authorization: Bearer $user1" -d '{"id_usuario":"1"}' \
    127.0.0.1:50051 services.CursosService/GetUserCourses 2>&1)
  check "auth: cursos called directly with user 1's token answers" contains "$out" '"cursosInscritos"'
else
  fail "auth: aula token wrote a token and its key set"
fi
rm -rf "$authdir"

# ------------------------------------------------------------------ total
total=$((passed + failed))
if [ "$failed" -eq 0 ]; then
  printf 'e2e-compose: PASS %d/%d checks\n' "$passed" "$total"
  exit 0
fi
printf 'e2e-compose: FAIL %d/%d checks passed, %d failed\n' "$passed" "$total" "$failed"
exit 1

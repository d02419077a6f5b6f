#!/usr/bin/env bash
# Loads cursos and notificacoes with a lot of data, to check that calls cost the same with it
# (#16: with 1,000,000 enrolments and 2,000,000 notifications, GetUserCourses, Enroll,
# SendNotification, ListNotifications and GetStatus stay within 1.5x of the demo data's p50).
#
#   scripts/seed.sh [--enrolments N] [--notifications M] [--courses C]
#
# Defaults: 1,000,000 enrolments, 2,000,000 notifications, 1,000 courses. Where the data goes is
# read as the services read it: DATABASE_URL (or CURSOS_DATABASE_URL / NOTIFICACOES_DATABASE_URL)
# for PostgreSQL, each service in its schema (AULA_DB_SCHEMA is not read: the schemas are
# cursos and notificacoes); otherwise the SQLite files <AULA_DATA_DIR>/cursos.db and
# notificacoes.db (AULA_DATA_DIR defaults to ./data). The tables must exist: start the services
# once (`aula up`, or `cursos` and `notificacoes`) so they create and migrate them. The services
# may stay up (SQLite in WAL mode; PostgreSQL): their counts catch up within GetStatus' cache.
#
# What it adds, leaving the demo rows alone (user 1 keeps its two courses and its welcome):
# - courses 6..C+5 of the catalogue ("Curso de carga n");
# - enrolments of users 1,000,000 and up, five courses each;
# - notifications of 200,000 users from 1,000,000 up, a third of them read, keys seed-<n>.
# Running it again adds nothing already there (the same keys and ids; ON CONFLICT DO NOTHING).
# SQLite takes python3 (its sqlite3 module); PostgreSQL takes psql.
set -euo pipefail
ENROLMENTS=1000000
NOTIFICATIONS=2000000
COURSES=1000
while [ $# -gt 0 ]; do
    case "$1" in
        --enrolments) ENROLMENTS=$2; shift 2 ;;
        --notifications) NOTIFICATIONS=$2; shift 2 ;;
        --courses) COURSES=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "seed: unknown argument $1 (--enrolments N, --notifications M, --courses C, --help)" >&2; exit 2 ;;
    esac
done
for v in "$ENROLMENTS" "$NOTIFICATIONS" "$COURSES"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "seed: $v is not a count (digits only, e.g. 1000000)" >&2; exit 2; }
done
[ "$COURSES" -ge 5 ] || { echo "seed: --courses must be at least 5 (five courses per user)" >&2; exit 2; }
USERS=$(((ENROLMENTS + 4) / 5))
NOW_MS=$(($(date +%s) * 1000))

# The SQL both databases accept, with the counts in; $SERIES is how each spells 0..n-1.
courses_sql() {
    cat <<EOF
INSERT INTO cursos (id, nome, descricao, carga_horaria, instrutor, categoria, criado_ms)
SELECT 6 + n, 'Curso de carga ' || n, 'Um curso gerado por scripts/seed.sh para medir o custo com muitos dados.',
       20 + n % 40, 'Equipe de carga', 'Carga', $NOW_MS
FROM $(series "$COURSES") WHERE TRUE ON CONFLICT (id) DO NOTHING;
EOF
}
# User u (from 1,000,000) takes five consecutive courses starting where u falls in the catalogue.
enrolments_sql() {
    cat <<EOF
INSERT INTO inscricoes (id_usuario, id_curso, criada_ms)
SELECT 1000000 + n / 5, 6 + ((n / 5) * 37 + n % 5) % $COURSES, $NOW_MS
FROM $(series "$ENROLMENTS") WHERE TRUE ON CONFLICT (id_usuario, id_curso) DO NOTHING;
EOF
}
notifications_sql() {
    cat <<EOF
INSERT INTO notificacoes (id_usuario, mensagem, lida, criada_ms, origem, chave)
SELECT 1000000 + n % 200000, 'Notificação de carga ' || n, n % 3 = 0, $NOW_MS - n, 'seed', 'seed-' || n
FROM $(series "$NOTIFICATIONS") WHERE TRUE ON CONFLICT (chave) DO NOTHING;
EOF
}

URL=${DATABASE_URL:-}
CURSOS_URL=${CURSOS_DATABASE_URL:-$URL}
NOTIF_URL=${NOTIFICACOES_DATABASE_URL:-$URL}
if [ -n "$CURSOS_URL" ] || [ -n "$NOTIF_URL" ]; then
    if [ -z "$CURSOS_URL" ] || [ -z "$NOTIF_URL" ]; then
        echo "seed: both services on PostgreSQL or both on SQLite (set DATABASE_URL, or both *_DATABASE_URL)" >&2
        exit 2
    fi
    command -v psql >/dev/null || { echo "seed: PostgreSQL needs psql (apt-get install postgresql-client)" >&2; exit 1; }
    series() { echo "generate_series(0, $1 - 1) AS s(n)"; }
    pg() { # URL SCHEMA SQL
        psql "$1" -v ON_ERROR_STOP=1 -q -c "SET search_path TO \"$2\"" -c "$3" -c "ANALYZE" >/dev/null
    }
    echo "seed: $COURSES courses, $ENROLMENTS enrolments ($USERS users) into PostgreSQL (schema cursos)" >&2
    pg "$CURSOS_URL" cursos "$(courses_sql)"
    # cursos' id sequence must pass the ids given here, or the next CreateCourse would collide.
    pg "$CURSOS_URL" cursos "SELECT setval(pg_get_serial_sequence('cursos', 'id'), (SELECT MAX(id) FROM cursos))"
    pg "$CURSOS_URL" cursos "$(enrolments_sql)"
    echo "seed: $NOTIFICATIONS notifications into PostgreSQL (schema notificacoes)" >&2
    pg "$NOTIF_URL" notificacoes "$(notifications_sql)"
else
    DIR=${AULA_DATA_DIR:-./data}
    for f in cursos notificacoes; do
        [ -f "$DIR/$f.db" ] || {
            echo "seed: $DIR/$f.db does not exist: start the services once (aula up) so they create their tables, or set AULA_DATA_DIR" >&2
            exit 1
        }
    done
    # SQLite's spelling of 0..n-1.
    series() { echo "(WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < $1) SELECT n FROM s)"; }
    sqlite() { # FILE SQL: one transaction; waits for a running service's writes
        python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("PRAGMA foreign_keys = ON")
db.execute("BEGIN IMMEDIATE")
db.execute(sys.argv[2])
db.execute("COMMIT")
db.execute("ANALYZE")
EOF
    }
    echo "seed: $COURSES courses, $ENROLMENTS enrolments ($USERS users) into $DIR/cursos.db" >&2
    sqlite "$DIR/cursos.db" "$(courses_sql)"
    sqlite "$DIR/cursos.db" "$(enrolments_sql)"
    echo "seed: $NOTIFICATIONS notifications into $DIR/notificacoes.db" >&2
    sqlite "$DIR/notificacoes.db" "$(notifications_sql)"
fi
echo "seed: done; seeded users are 1000000 to $((1000000 + USERS - 1)) (cursos) and 1000000 to 1199999 (notificacoes)" >&2

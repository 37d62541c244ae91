#!/bin/sh
# Container entry point.
#
#   (no arguments) | web   apply migrations (retried until the database answers), then serve
#                          with gunicorn on 0.0.0.0:8000 (webapp/gunicorn_conf.py, as `make run`:
#                          $WEB_WORKERS gthread workers, default 2, or 1 on SQLite, each of
#                          $WEB_THREADS threads, default 8; more options via $GUNICORN_CMD_ARGS)
#   worker                 an RQ worker with the app context (flask --app webapp worker)
#   scheduler              the one scheduler of the scheduled tasks (flask --app webapp scheduler)
#   migrate                apply migrations (retried), then the data steps, and exit
#   anything else          run as given, e.g. `flask --app webapp users create ...`
#
# RUN_MIGRATIONS=0 skips the migration step of `web` (when a separate job runs `migrate`).
# DB_WAIT_TRIES (default 30) and DB_WAIT_SECONDS (default 2) bound the wait for the database.
set -eu

migrate() {
    tries=${DB_WAIT_TRIES:-30}
    pause=${DB_WAIT_SECONDS:-2}
    attempt=1
    while :; do
        if output=$(flask --app webapp db upgrade 2>&1); then
            [ -z "$output" ] || printf '%s\n' "$output"
            echo "entrypoint: database migrated to head."
            # data steps that write audit events run as services, after the schema is at head
            # (idempotent: a second run finds nothing to do)
            flask --app webapp conflicts supersede
            return 0
        fi
        if [ "$attempt" -ge "$tries" ]; then
            printf '%s\n' "$output" >&2
            echo "entrypoint: 'flask db upgrade' still failing after $attempt attempts; giving up." >&2
            exit 1
        fi
        # the exception line says why (connection refused, unknown host, bad password...)
        reason=$(printf '%s\n' "$output" | grep -E '^[A-Za-z_.]*(Error|Exception)' | tail -n 1 || true)
        echo "entrypoint: database not ready (attempt $attempt/$tries): ${reason:-$(printf '%s\n' "$output" | tail -n 1)}" >&2
        attempt=$((attempt + 1))
        sleep "$pause"
    done
}

case "${1:-web}" in
    web)
        if [ "${RUN_MIGRATIONS:-1}" != "0" ]; then
            migrate
        fi
        exec gunicorn -c python:webapp.gunicorn_conf wsgi:app --bind 0.0.0.0:8000
        ;;
    worker)
        shift
        exec flask --app webapp worker "$@"
        ;;
    scheduler)
        shift
        exec flask --app webapp scheduler "$@"
        ;;
    migrate)
        migrate
        ;;
    *)
        exec "$@"
        ;;
esac

"""gunicorn settings for the app: `gunicorn -c python:webapp.gunicorn_conf wsgi:app`, as `make
run` (bound to 127.0.0.1:$PORT) and the container (0.0.0.0:8000) start it.

Only what differs from gunicorn's defaults. Command-line options and $GUNICORN_CMD_ARGS still
override these (bind, workers, threads).
"""

from webapp.config import Config

_config = Config()  # the environment (and .env), read where every other setting is

# gthread: each worker process serves WEB_THREADS requests at once on threads, so one process is
# enough for a small team; WEB_WORKERS processes (default 1 on SQLite, where the in-process jobs
# and the scheduler thread live in the web process, 2 otherwise)
worker_class = "gthread"
workers = _config.WEB_WORKERS
threads = _config.WEB_THREADS

# gunicorn answers a header over 8190 bytes itself, with an HTML 431 page. Let headers up to
# 64 KB through so the app refuses those over 8 KB in its own format (problem+json on the API;
# webapp/web/request.py), and gunicorn only the truly absurd.
limit_request_field_size = 65536

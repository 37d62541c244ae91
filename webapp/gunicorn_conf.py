"""gunicorn settings for the app: `gunicorn -c python:webapp.gunicorn_conf wsgi:app`.

Only what differs from gunicorn's defaults. Command-line options and $GUNICORN_CMD_ARGS still
override these (bind, workers).
"""

# gunicorn answers a header over 8190 bytes itself, with an HTML 431 page. Let headers up to
# 64 KB through so the app refuses those over 8 KB in its own format (problem+json on the API;
# webapp/web/request.py), and gunicorn only the truly absurd.
limit_request_field_size = 65536

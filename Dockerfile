# syntax=docker/dockerfile:1
# Production image: gunicorn serving wsgi:app on port 8000, migrations applied on start.
#
#   docker build -t asset-inventory .
#   docker run -p 8000:8000 -e DATABASE_URL=postgresql+psycopg://... -e REDIS_URL=redis://... \
#       -e SECRET_KEY=... -e INVENTORY_ENCRYPTION_KEYS=... asset-inventory
#   docker run ... asset-inventory worker          # an RQ worker from the same image
#
# Liveness: GET /healthz; readiness (database, migrations, Redis): GET /readyz.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=webapp \
    INVENTORY_ENV=production \
    MAX_UPLOAD_MB=50

# A writable home of its own: gunicorn puts its control socket in ~/.gunicorn/.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
        --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The code stays owned by root (read-only to the app); only instance/ is writable, for the
# embedded SQLite default. Production sets DATABASE_URL to PostgreSQL.
COPY webapp ./webapp
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY wsgi.py ./
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/entrypoint.sh
RUN mkdir -p /app/instance && chown app:app /app/instance && chmod 0700 /app/instance

USER app:app

EXPOSE 8000

ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["web"]

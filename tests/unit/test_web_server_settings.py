"""The web server's settings (webapp/gunicorn_conf.py, read by `make run` and the container):
gthread workers, one process on the embedded SQLite default, counts from the environment."""

from __future__ import annotations

import importlib

import pytest

from webapp.config import Config

POSTGRES = "postgresql+psycopg://inventory@db/inventory"


def test_one_process_of_eight_threads_on_sqlite_two_elsewhere():
    embedded = Config({})
    assert (embedded.WEB_WORKERS, embedded.WEB_THREADS) == (1, 8)
    assert Config({"DATABASE_URL": "sqlite:////srv/inventory.db"}).WEB_WORKERS == 1
    assert Config({"DATABASE_URL": POSTGRES}).WEB_WORKERS == 2


def test_the_counts_come_from_the_environment():
    config = Config({"DATABASE_URL": POSTGRES, "WEB_WORKERS": "5", "WEB_THREADS": "4"})
    assert (config.WEB_WORKERS, config.WEB_THREADS) == (5, 4)
    # gunicorn's own name for the worker count, which the container used to set
    assert Config({"WEB_CONCURRENCY": "3"}).WEB_WORKERS == 3
    assert Config({"WEB_CONCURRENCY": "3", "WEB_WORKERS": "2"}).WEB_WORKERS == 2


def test_gunicorn_reads_them_through_its_config_module(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEB_WORKERS", "3")
    monkeypatch.setenv("WEB_THREADS", "6")
    import webapp.gunicorn_conf as conf

    try:
        conf = importlib.reload(conf)
        assert (conf.worker_class, conf.workers, conf.threads) == ("gthread", 3, 6)
        assert conf.limit_request_field_size == 65536
    finally:
        monkeypatch.undo()
        importlib.reload(conf)

"""The webhooks job kind: send the deliveries a commit just created (SPEC §13).

`services.webhooks.fan_out` (the dispatcher), `send_test` and `redeliver` note the deliveries
they add in `session.info`; once that transaction commits, the listener below hands their ids to
this job (RQ queue "webhooks", or a thread of this process when Redis is down). If the kick is
lost (Redis and the process both gone), nothing is: the scheduler's `send_due` sweep sends every
pending delivery within a minute of its due time.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.jobs import runner
from webapp.services import webhooks

log = logging.getLogger(__name__)

KIND = "webhook_send"
QUEUE = "webhooks"


@runner.register(KIND, queue=QUEUE, default_timeout=15 * 60)
def run(*delivery_ids: str, runner: str) -> int:
    return webhooks.send_deliveries(db.session, list(delivery_ids))


def dispatch(delivery_ids: list[uuid.UUID]) -> runner.Dispatch:
    return runner.dispatch(KIND, *[str(d) for d in delivery_ids],
                           description=f"webhook deliveries: {len(delivery_ids)}")


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    created = session.info.pop(webhooks.NEW_DELIVERIES, None)
    if not created or not has_app_context() or not current_app.config.get("WEBHOOK_SEND_ON_COMMIT", True):
        return
    try:
        dispatch(created)
    except Exception:  # the sweep sends them later; a failed kick must not fail the caller
        log.exception("could not start the webhooks job for %d deliveries", len(created))


@event.listens_for(Session, "after_rollback")
def _forget(session: Session, *_: Any) -> None:
    session.info.pop(webhooks.NEW_DELIVERIES, None)

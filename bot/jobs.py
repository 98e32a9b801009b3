"""JobQueue jobs of the running bot. JobQueue jobs live in memory: post_init schedules them
at every start, and everything they need to resume is in the database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.delivery import Delivery, DeliveryConfig, utc_now
from handlers.context import NewsApp, NewsContext

log = logging.getLogger(__name__)

# -- topic alerts (issue 3) ------------------------------------------------------------

# bot_data.extras keys: tests put a DeliveryConfig and a clock there before start-up.
DELIVERY = "delivery"
DELIVERY_CONFIG = "delivery_config"
CLOCK = "clock"


def _delivery(context: NewsContext) -> Delivery:
    delivery: Delivery = context.bot_data.extras[DELIVERY]
    return delivery


async def deliver_alerts(context: NewsContext) -> None:
    """Job: drain the alert queue (unless a drain is under way)."""
    _delivery(context).kick()


async def send_digests(context: NewsContext) -> None:
    """Job: send the daily digests whose hour has come."""
    _delivery(context).start_digests()


def schedule_alert_jobs(app: NewsApp) -> Delivery:
    """Create the alert delivery of this process and schedule its jobs: the queue is
    drained every `interval` seconds and at once when this process stores a story with
    alerts; digests are looked for every `digest_interval` seconds."""
    store = app.bot_data.store
    assert store is not None, "post_init opens the store first"
    extras = app.bot_data.extras
    config: DeliveryConfig = extras.get(DELIVERY_CONFIG) or DeliveryConfig()

    def clock() -> datetime:
        # Read at every use, so a test can swap the clock while the bot runs.
        now: Callable[[], datetime] = extras.get(CLOCK) or utc_now
        return now()

    delivery = Delivery(
        store,
        app.bot,
        config=config,
        clock=clock,
        is_running=lambda: app.running,
        spawn=app.create_task,
    )
    extras[DELIVERY] = delivery
    store.on_alerts_queued = delivery.kick
    job_queue = app.job_queue
    assert job_queue is not None, "python-telegram-bot[job-queue] is a dependency"
    job_queue.run_repeating(deliver_alerts, interval=config.interval, first=0.0, name="alerts")
    job_queue.run_repeating(
        send_digests, interval=config.digest_interval, first=0.0, name="digests"
    )
    log.debug("alert delivery scheduled (claim token %s)", delivery.token)
    return delivery

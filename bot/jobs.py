"""JobQueue jobs of the running bot. JobQueue jobs live in memory: post_init schedules them
at every start, and everything they need to resume is in the database."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from telegram.error import TelegramError

from bot.config import Settings
from bot.delivery import Delivery, DeliveryConfig
from bot.feeds import PollReport, poll_due
from bot.related import ensure_model
from handlers.context import NewsApp, NewsContext
from handlers.render import esc
from news.fetch import Fetcher

log = logging.getLogger(__name__)


def schedule_jobs(app: NewsApp) -> None:
    """Schedule every job of `newsbot run`: alert delivery and digests, feed polling (with
    the Fetcher it needs), the related-stories model."""
    settings: Settings = app.bot_data.extras["settings"]
    job_queue = app.job_queue
    assert job_queue is not None, "python-telegram-bot[job-queue] is a dependency"
    schedule_alert_jobs(app)
    app.bot_data.fetcher = Fetcher(allow_private_hosts=settings.allow_private_hosts)
    job_queue.run_repeating(
        poll_job,
        interval=poll_interval(settings),
        first=1.0,
        name="feeds",
        job_kwargs={"max_instances": 1, "coalesce": True},
    )
    # Fit the related-stories model when missing or outgrown, now and every day after.
    job_queue.run_repeating(
        related_job, interval=24 * 3600, first=5.0, name="related", job_kwargs={"max_instances": 1}
    )


# -- the related-stories model (issue 5) ----------------------------------------------


async def related_job(context: NewsContext) -> None:
    """Job: keep the related-stories model fitted and every story embedded."""
    status = await ensure_model(context.store)
    if status.fitted or status.embedded:
        log.info(
            "related-stories index: %s%d stories embedded in %.1f s",
            "model refitted, " if status.fitted else "",
            status.embedded,
            status.seconds,
        )


# -- feed polling (issue 4) ----------------------------------------------------------


async def poll_job(context: NewsContext) -> None:
    """JobQueue job: poll the due feeds; tell the admins about a feed paused after failing
    for days."""
    settings: Settings = context.bot_data.extras["settings"]
    reports = await poll_due(
        context.store,
        context.fetcher,
        datetime.now(UTC),
        interval=timedelta(seconds=settings.poll_seconds),
    )
    for report in reports:
        if report.new:
            log.info("%s", report.line())
        if report.paused:
            await tell_admins(context, paused_text(report))


def paused_text(report: PollReport) -> str:
    """The message the admins get when a feed is paused."""
    feed = report.feed
    return (
        f"⚠️ Feed #{feed.id} has failed for days and is paused: {esc(feed.url)}\n"
        f"Last error: {esc(report.error or 'unknown')}\n"
        f"/removefeed {feed.id} removes it; /addfeed {esc(feed.url)} resumes it."
    )


async def tell_admins(context: NewsContext, text: str) -> None:
    """Send `text` to every admin who can be reached (one who never started the bot can't)."""
    for admin_id in sorted(context.bot_data.admin_ids):
        try:
            await context.bot.send_message(admin_id, text)
        except TelegramError as error:
            log.warning("could not tell admin %s: %s", admin_id, error)


def poll_interval(settings: Settings) -> float:
    """How often the polling job looks for due feeds: often enough that a feed is polled
    close to its time, at most every 30 s."""
    return float(min(30, max(1, settings.poll_seconds // 10)))


# -- topic alerts (issue 3) ------------------------------------------------------------

# bot_data.extras keys: tests put a DeliveryConfig and a clock there before start-up
# (the clock, under handlers.context.CLOCK, is read by BotData.now()).
DELIVERY = "delivery"
DELIVERY_CONFIG = "delivery_config"


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

    delivery = Delivery(
        store,
        app.bot,
        config=config,
        clock=app.bot_data.now,
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

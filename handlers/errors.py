"""The single error handler: usage errors become replies, anything else is logged."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, NetworkError, RetryAfter

from handlers.common import UsageError, reply
from handlers.context import NewsContext

log = logging.getLogger(__name__)

SORRY = (
    "Sorry, something went wrong on our side while answering that. Please try again in a "
    "moment; /help lists what I can do."
)


async def on_error(update: object, context: NewsContext) -> None:
    """Reply with the usage text for bad input; log and apologise for anything else."""
    error = context.error
    if not isinstance(update, Update):
        log.error("error outside an update: %r", error, exc_info=error)
        return
    if isinstance(error, UsageError):
        if update.callback_query is not None:
            await update.callback_query.answer()
        await reply(update, str(error))
        return
    if isinstance(error, Forbidden | RetryAfter | NetworkError):
        # Telegram refused or could not take our reply: replying again would fail too.
        log.warning("could not answer update %s: %s", update.update_id, error)
        return
    log.error("error while handling update %s", update.update_id, exc_info=error)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer()
        await reply(update, SORRY)
    except Exception:  # the apology is best effort: never raise from the error handler
        log.warning("could not send the apology for update %s", update.update_id)

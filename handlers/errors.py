"""The single error handler: usage errors become replies, anything else is logged."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, NetworkError, RetryAfter, TelegramError

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
        try:
            if update.callback_query is not None:
                await update.callback_query.answer()
            await reply(update, str(error))
        except TelegramError as failed:  # never raise from the error handler
            log.warning("could not answer update %s: %s", update.update_id, failed)
        return
    if isinstance(error, Forbidden | RetryAfter):
        # The chat blocked us, or its flood limit holds: replying again would fail too.
        log.warning("could not answer update %s: %s", update.update_id, error)
        return
    if isinstance(error, NetworkError):
        # A Telegram call failed (a 5xx, a timeout, a refused message): the reader still
        # hears that something went wrong, if Telegram takes that one.
        log.warning("Telegram failed while answering update %s: %s", update.update_id, error)
    else:
        log.error("error while handling update %s", update.update_id, exc_info=error)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer()
        await reply(update, SORRY)
    except Exception:  # the apology is best effort: never raise from the error handler
        log.warning("could not send the apology for update %s", update.update_id)

"""Logging for the `newsbot` process: levels, and a filter that keeps secrets out of every
log line (third-party loggers, arguments and tracebacks included)."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import quote

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "[REDACTED]"
# Shorter values would mask ordinary words; tokens and secrets are far longer.
MIN_SECRET = 6


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as it may be written: raw, and percent-encoded as in a URL (the token's
    ':' becomes %3A), longest first so that no fragment of one is left behind."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            forms |= {secret, quote(secret, safe=""), quote(secret)}
    return sorted(forms, key=len, reverse=True)


class Redactor:
    """Replaces every known secret in a text with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms = secret_forms(secrets)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        """`text` without any of the secrets."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text


class RedactingFilter(logging.Filter):
    """A handler filter: formats the record's message, exception and stack now, and
    replaces each secret in them, so no formatter downstream can print one."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("")
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class DropBootstrapFailure(logging.Filter):
    """PTB logs a failed start-up (getMe refused or unreachable) with its whole traceback
    before raising; `__main__` explains the same error in one line, so drop PTB's."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for PTB's "Network Retry Loop (Bootstrap ...) Aborting" record."""
        message = record.getMessage()
        return not (message.startswith("Network Retry Loop (Bootstrap") and record.exc_info)


def configure_logging(verbose: bool, *, quiet: bool = False) -> None:
    """Logging for the whole process, set up once by `__main__`: INFO (WARNING when
    `quiet`), DEBUG with `verbose`."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format=FORMAT)
    # httpx logs every request URL, and Bot API URLs carry the token: WARNING unless
    # asked for (the redacting filter masks the token when they are shown).
    logging.getLogger("httpx").setLevel(logging.NOTSET if verbose else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.INFO if verbose else logging.WARNING)
    # APScheduler (under PTB's JobQueue) logs each job run at INFO, twice a second.
    logging.getLogger("apscheduler").setLevel(logging.NOTSET if verbose else logging.WARNING)
    if not verbose:
        logging.getLogger("telegram.ext").addFilter(DropBootstrapFailure())


def install_redaction(secrets: Iterable[str]) -> Redactor:
    """Mask `secrets` on every root handler, and in uncaught exceptions' tracebacks."""
    redact = Redactor(secrets)
    if not redact:
        return redact
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(redact))
    log = logging.getLogger("newsbot")

    def excepthook(
        kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        log.critical("uncaught %s", kind.__name__, exc_info=(kind, error, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log.critical(
                "uncaught %s in thread %s",
                args.exc_type.__name__,
                args.thread.name if args.thread else "?",
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    return redact

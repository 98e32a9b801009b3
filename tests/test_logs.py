"""The redacting log filter: no secret survives in a message, its arguments, a traceback or
a stack, from any logger, in any form a URL may give it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.logs import MASK, RedactingFilter, Redactor

TOKEN = "987654:SECRET-token_value"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A handler on a third-party-like logger, with the filter as `__main__` installs it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(Redactor([TOKEN, "s3cret-webhook"])))
    logger = logging.getLogger("thirdparty.client")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield out
    logger.removeHandler(handler)
    logger.propagate = True


def test_secrets_in_messages_and_arguments_are_masked(captured: io.StringIO) -> None:
    log = logging.getLogger("thirdparty.client")
    log.debug("POST https://api.telegram.org/bot%s/getMe", TOKEN)
    log.info("token=" + TOKEN)
    log.warning("header %r", {"X-Telegram-Bot-Api-Secret-Token": "s3cret-webhook"})
    log.debug("quoted https://h/bot987654%3ASECRET-token_value/getMe")
    text = captured.getvalue()
    assert "SECRET-token" not in text
    assert "s3cret" not in text
    assert f"https://api.telegram.org/bot{MASK}/getMe" in text
    assert text.count(MASK) == 4


def test_secrets_in_tracebacks_and_stacks_are_masked(captured: io.StringIO) -> None:
    log = logging.getLogger("thirdparty.client")
    try:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
    except RuntimeError:
        log.exception("start-up failed")
    log.debug("where: %s", TOKEN, stack_info=True)
    text = captured.getvalue()
    assert "Traceback" in text
    assert f"The token `{MASK}` was rejected" in text
    assert "SECRET-token" not in text


def test_short_or_no_secrets_leave_text_alone() -> None:
    assert not Redactor([])
    assert Redactor(["abc"])("abc def") == "abc def"  # too short to be a secret
    assert Redactor([TOKEN])("nothing secret") == "nothing secret"

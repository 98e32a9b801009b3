"""Settings from the environment, then a `.env` file, then defaults; each cast on read."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
# Documented bounds (README, .env.example): values outside them stop start-up.
POLL_SECONDS = (10, 24 * 3600)
PORT = (1, 65535)
# Telegram user ids have at most 52 significant bits.
ADMIN_ID = (1, 2**52)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(Exception):
    """A missing or malformed setting; the message names the variable."""


class Secret:
    """A value that never shows itself in repr() or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself, for the one place that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything newsbot reads from its environment (see `.env.example`)."""

    token: Secret | None = None
    api_base_url: str = DEFAULT_BASE_URL
    db_path: Path = Path("newsbot.db")
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    poll_seconds: int = 300
    webhook_url: str | None = None
    webhook_secret: Secret | None = None
    port: int = 8443
    allow_private_hosts: bool = False

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Read settings: the environment wins over `env_file`, which wins over defaults."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = values.get(name, "").strip()
            return value or None

        token = get("TELEGRAM_BOT_TOKEN")
        if token is not None and not _looks_like_token(token):
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is malformed: expected the form 123456:ABC... "
                "that @BotFather gives"
            )
        base_url = get("TELEGRAM_API_BASE_URL") or DEFAULT_BASE_URL
        if not _is_http_url(base_url):
            raise ConfigError(
                "TELEGRAM_API_BASE_URL must be an http(s) URL such as "
                f"{DEFAULT_BASE_URL}, not {base_url!r}"
            )
        webhook_url = get("NEWSBOT_WEBHOOK_URL")
        if webhook_url is not None and not _is_https_url(webhook_url):
            raise ConfigError(
                "NEWSBOT_WEBHOOK_URL must be an https URL (Telegram posts only to https), "
                f"such as https://bot.example.com/telegram, not {webhook_url[:100]!r}"
            )
        secret = get("NEWSBOT_WEBHOOK_SECRET")
        if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret):
            raise ConfigError(
                "NEWSBOT_WEBHOOK_SECRET must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -"
            )
        db = get("NEWSBOT_DB") or "newsbot.db"
        if "\x00" in db:
            raise ConfigError("NEWSBOT_DB contains a NUL character: give a file path")
        return cls(
            token=Secret(token) if token else None,
            api_base_url=base_url,
            db_path=Path(db),
            admin_ids=_ids("NEWSBOT_ADMIN_IDS", get("NEWSBOT_ADMIN_IDS")),
            poll_seconds=_int(
                "NEWSBOT_POLL_SECONDS", get("NEWSBOT_POLL_SECONDS"), 300, POLL_SECONDS
            ),
            webhook_url=webhook_url,
            webhook_secret=Secret(secret) if secret else None,
            port=_int("NEWSBOT_PORT", get("NEWSBOT_PORT"), 8443, PORT),
            allow_private_hosts=_flag(
                "NEWSBOT_ALLOW_PRIVATE_HOSTS", get("NEWSBOT_ALLOW_PRIVATE_HOSTS")
            ),
        )

    def secrets(self) -> list[str]:
        """Every secret value, for the logging filter that keeps them out of logs."""
        return [s.reveal() for s in (self.token, self.webhook_secret) if s is not None]

    def require_token(self) -> Secret:
        """The bot token, or a ConfigError naming TELEGRAM_BOT_TOKEN."""
        if self.token is None:
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and put it in "
                "the environment or in .env (try `newsbot chat` to use the bot without one)"
            )
        return self.token


def _looks_like_token(token: str) -> bool:
    bot_id, _, rest = token.partition(":")
    return bot_id.isdigit() and len(rest) >= 1 and " " not in token


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_https_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _flag(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1 (on) or 0 (off), not {raw[:40]!r}")


def _ids(name: str, raw: str | None) -> frozenset[int]:
    if raw is None:
        return frozenset()
    usage = f"{name} must be comma-separated Telegram user ids, like 12345,67890"
    try:
        ids = frozenset(int(part) for part in raw.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(usage) from None
    low, high = ADMIN_ID
    if any(not low <= user_id <= high for user_id in ids):
        raise ConfigError(f"{usage} (each from {low} to {high})")
    return ids


def _int(name: str, raw: str | None, default: int, bounds: tuple[int, int]) -> int:
    if raw is None:
        return default
    low, high = bounds
    try:
        value = int(raw)
    except ValueError:
        # Also a number too long to convert (Python's int max str digits).
        raise ConfigError(f"{name} must be a whole number from {low} to {high}") from None
    if not low <= value <= high:
        shown = str(value) if len(str(value)) <= 20 else f"{str(value)[:20]}..."
        raise ConfigError(f"{name} must be from {low} to {high}, not {shown}")
    return value

"""Pure news logic: parsing, text analysis, query language and matching (no Telegram, no SQL)."""

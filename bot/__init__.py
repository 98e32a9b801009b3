"""newsbot's application: configuration, wiring, jobs and the command line."""

import os

# python-telegram-bot 22 warns (PTBDeprecationWarning) whenever it builds a RetryAfter
# unless time periods are opted into as timedelta; we read them as timedelta everywhere.
os.environ.setdefault("PTB_TIMEDELTA", "true")

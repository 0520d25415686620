"""Billing's settings and their defaults. The project's settings module only overrides them
(from the environment); billing code reads them through `setting`, so an override in a test
(`settings.BILLING_BATCH_SIZE = 2`) takes effect."""

from __future__ import annotations

from functools import cache

from django.dispatch import receiver
from django.test.signals import setting_changed

from utility.conf import defaults_reader

BILLING_CURRENCY = "GBP"
BILLING_MINOR_UNITS = 2  # pence: amounts to 0.01
BILLING_TIME_ZONE = "Europe/London"
# Gaps up to this many hours are interpolated linearly; longer ones follow the meter's profile.
BILLING_LINEAR_GAP_MAX_HOURS = 6
BILLING_PROFILE_DAYS = 28
# How many earlier invoices with estimates are re-priced when actual reads arrive.
BILLING_CORRECTION_LOOKBACK = 3
BILLING_RUN_DELAY_DAYS = 2
BILLING_BATCH_SIZE = 500
# S11: the database alias the run reads readings through; the project's settings point it at
# the read-only role's alias when BILLING_DATABASE_URL is set.
BILLING_READ_DATABASE = "default"


# Cached: rating asks for the currency's minor units once per line, and a setting the project
# leaves unset costs Django an exception per look-up.
setting = cache(defaults_reader(globals()))


@receiver(setting_changed)
def _forget(**kwargs) -> None:
    # A test that overrides a setting sees its value.
    setting.cache_clear()

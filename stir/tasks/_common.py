"""What the tasks share."""

from __future__ import annotations

from stir.settings import Settings, get_settings


def settings_or_default(settings: Settings | None) -> Settings:
    return settings if settings is not None else get_settings()

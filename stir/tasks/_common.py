"""What the tasks share."""

from __future__ import annotations

from stir.settings import Settings, get_settings
from stir.tasks.credentials import settings_with_blocks


async def settings_or_default(settings: Settings | None) -> Settings:
    """The run's `settings`; called without (a task outside a flow run), the environment's,
    with the secrets of the blocks they name, as a flow run would have them."""
    return settings if settings is not None else await settings_with_blocks(get_settings())

"""campaign-tui: know whether a long batch campaign is healthy, hung, crashed or
finished, and recover it without losing work.

The public API is :class:`Campaign`; everything else is reached through the
``campaign-tui`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Campaign", "__version__"]

if TYPE_CHECKING:
    from campaign_tui.campaign import Campaign


def __getattr__(name: str) -> object:
    # Lazy, so that `campaign-tui status` does not pay for the API's imports.
    if name == "Campaign":
        from campaign_tui.campaign import Campaign

        return Campaign
    raise AttributeError(f"module 'campaign_tui' has no attribute {name!r}")

"""The instruction-tuning task families, one module each.

``FAMILIES`` maps a family name to its ``Family`` (templates + item drawer);
``TASK_FAMILIES`` is the tuple of names in a fixed order.
"""

from __future__ import annotations

from . import arithmetic, entities, qa, sentiment, strings, translate
from .base import Family, Item, SFTExample, Template

FAMILIES: dict[str, Family] = {
    m.FAMILY.name: m.FAMILY for m in (qa, sentiment, entities, translate, arithmetic, strings)
}
TASK_FAMILIES: tuple[str, ...] = tuple(FAMILIES)


def get_family(name: object) -> Family:
    """The family called ``name``; a ValueError lists the valid names."""
    if not isinstance(name, str) or name not in FAMILIES:
        raise ValueError(f"unknown task family {name!r}; use one of {', '.join(TASK_FAMILIES)}")
    return FAMILIES[name]


__all__ = ["FAMILIES", "TASK_FAMILIES", "Family", "Item", "SFTExample", "Template", "get_family"]

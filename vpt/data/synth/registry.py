"""The family registry: FAMILIES, the one table mapping each family to its generator and its
number of templates, and N_TEMPLATES derived from it. Adding a family means adding it here.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from vpt.data.synth.counting import _comparison, _groups, _remaining, _sharing
from vpt.data.synth.equations import Problem
from vpt.data.synth.unit_rates import _percent, _rates, _shopping, _wages

FAMILIES: tuple[str, ...] = (
    "shopping",
    "remaining",
    "groups",
    "sharing",
    "rates",
    "wages",
    "percent",
    "comparison",
)

FamilyFn = Callable[[random.Random, int], Problem]

# family -> (generator, number of templates)
_REGISTRY: dict[str, tuple[FamilyFn, int]] = {
    "shopping": (_shopping, 4),
    "remaining": (_remaining, 5),
    "groups": (_groups, 4),
    "sharing": (_sharing, 5),
    "rates": (_rates, 5),
    "wages": (_wages, 5),
    "percent": (_percent, 4),
    "comparison": (_comparison, 5),
}
assert tuple(_REGISTRY) == FAMILIES

N_TEMPLATES: dict[str, int] = {name: n for name, (_, n) in _REGISTRY.items()}

"""Contact details that can never reach a real person.

Phone numbers come only from the ranges Ofcom keeps for use in TV and radio drama ("Telephone
numbers for drama purposes"): each is 1,000 numbers that Ofcom will not allocate to any
provider. Email domains must be reserved for documentation and testing by RFC 2606 or RFC 6761;
`willow_core.config.is_reserved_domain` checks them.
"""

import re

MOBILE_PREFIX = "07700 900"
"""Ofcom's drama range of mobile numbers, followed by 3 digits: 07700 900000 to 07700 900999."""

NON_GEOGRAPHIC_PREFIX = "01632 960"
"""Ofcom's drama range of geographic numbers with no real area, followed by 3 digits:
01632 960000 to 01632 960999."""

LANDLINE_PREFIXES_BY_TOWN: dict[str, str] = {
    "London": "020 7946 0",
    "Leeds": "0113 496 0",
    "Sheffield": "0114 496 0",
    "Nottingham": "0115 496 0",
    "Leicester": "0116 496 0",
    "Bristol": "0117 496 0",
    "Reading": "0118 496 0",
    "Birmingham": "0121 496 0",
    "Edinburgh": "0131 496 0",
    "Glasgow": "0141 496 0",
    "Liverpool": "0151 496 0",
    "Manchester": "0161 496 0",
    "Newcastle upon Tyne": "0191 498 0",
    "Sunderland": "0191 498 0",
    "Gateshead": "0191 498 0",
    "Durham": "0191 498 0",
    "Cardiff": "029 2018 0",
}
"""Ofcom's drama ranges for cities, 1,000 numbers each: the prefix, then 3 digits."""

DRAMA_RANGES: tuple[str, ...] = tuple(
    sorted({MOBILE_PREFIX, NON_GEOGRAPHIC_PREFIX, *LANDLINE_PREFIXES_BY_TOWN.values()})
)
"""Every range the generator draws phone numbers from."""

_DRAMA_PATTERN = re.compile(
    "^(?:" + "|".join(re.escape(prefix) + "[0-9]{3}" for prefix in DRAMA_RANGES) + ")$"
)


def landline_prefix_for_town(town: str) -> str:
    """Return the drama-range landline prefix for a post town (01632 960 when it has none)."""
    return LANDLINE_PREFIXES_BY_TOWN.get(town, NON_GEOGRAPHIC_PREFIX)


def is_drama_number(phone: str) -> bool:
    """Return whether `phone` is in one of the generator's Ofcom drama ranges."""
    return _DRAMA_PATTERN.match(phone) is not None

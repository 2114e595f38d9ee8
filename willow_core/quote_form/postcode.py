"""UK postcodes: normalisation and the official structure of outward and inward codes.

A postcode is an outward code (area letters, district digits, in central London sometimes a
letter) and an inward code (sector digit, two unit letters), as in `SW1A 1AA`. Forms accept any
case and spacing and store upper case with one space before the inward code.

The rules below follow Royal Mail's published postcode format:

- the 124 postcode areas (121 in the UK, plus Guernsey, Jersey and the Isle of Man);
- Q, V and X never start an area, and I, J and Z are never its second letter;
- a district is one or two digits with no leading zero, and 0 alone exists only in a few areas;
- some areas use only one-digit or only two-digit districts;
- only central London districts end in a letter (`W1A`, `EC1V`, `SW1A`, `E1W`, `N1C`, `NW1W`,
  `SE1P`), and the seven fully divided districts (EC1 to EC4, SW1, W1, WC1, WC2) never appear
  without one;
- the unit letters never include C, I, K, M, O or V.

NOTE: the upper bound of district numbers per area (TR1 to TR27, say) is not checked; that needs
Royal Mail's Postcode Address File.
"""

import re

_AREA_LIST = """
    AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT DY
    E EC EH EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA LD LE
    LL LN LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG SK SL
    SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS WV YO ZE
"""

AREAS = frozenset(_AREA_LIST.split())
"""Postcode areas in use."""

SINGLE_DIGIT_AREAS = frozenset(
    {"BR", "FY", "HA", "HD", "HG", "HR", "HS", "HX", "JE", "LD", "SM", "SR", "WC", "WN", "ZE"}
)
"""Areas whose districts are all one digit."""

DOUBLE_DIGIT_AREAS = frozenset({"AB", "LL", "SO"})
"""Areas whose districts are all two digits."""

DISTRICT_ZERO_AREAS = frozenset({"BL", "BS", "CM", "CR", "FY", "HA", "PR", "SL", "SS"})
"""Areas with a district 0 (such as CR0)."""

FULLY_DIVIDED_DISTRICTS = frozenset({"EC1", "EC2", "EC3", "EC4", "SW1", "W1", "WC1", "WC2"})
"""Central London districts that always end in a letter."""

PARTLY_DIVIDED_DISTRICTS = {"E1": "W", "N1": "CP", "NW1": "W", "SE1": "P"}
"""Central London districts that also exist with these letters appended (E1W, N1C, ...)."""

ONE_LETTER_AREA_DISTRICT_LETTERS = "ABCDEFGHJKPSTUW"
"""Letters that may end a district after a one-letter area (W1A)."""

TWO_LETTER_AREA_DISTRICT_LETTERS = "ABEHMNPRVWXY"
"""Letters that may end a district after a two-letter area (EC1A)."""

UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
"""Letters of the unit, the last two characters."""

_SHAPE = re.compile(r"^([A-Z]{1,2})([0-9]{1,2})([A-Z]?) ([0-9])([A-Z]{2})$")


def normalise_postcode(value: str) -> str:
    """Return `value` the way UK forms store a postcode: upper case, one space before the inward
    code. Text too short to hold an inward code comes back upper case with spaces removed."""
    compact = "".join(value.split()).upper()
    if len(compact) < 5:
        return compact
    return f"{compact[:-3]} {compact[-3:]}"


def postcode_problem(postcode: str) -> str | None:
    """Return why a normalised postcode breaks the official format, or None when it is valid."""
    shape = _SHAPE.match(postcode)
    if shape is None:
        return (
            f"{postcode!r} is not shaped like a UK postcode (outward code A9, A99, AA9, AA99, "
            "A9A or AA9A, a space, then a digit and two letters)"
        )
    area, digits, letter, _sector, unit = shape.groups()
    district = f"{area}{digits}"
    outward = f"{district}{letter}"

    if area not in AREAS:
        return f"{area!r} in {outward} is not a UK postcode area"
    if len(digits) == 2 and digits[0] == "0":
        return f"district {outward} has a leading zero"
    if digits == "0" and area not in DISTRICT_ZERO_AREAS:
        return f"district {outward}: area {area} has no district 0"
    if len(digits) == 2 and area in SINGLE_DIGIT_AREAS:
        return f"district {outward}: area {area} has only one-digit districts"
    if len(digits) == 1 and area in DOUBLE_DIGIT_AREAS:
        return f"district {outward}: area {area} has only two-digit districts"

    if letter:
        problem = _district_letter_problem(area, district, letter)
        if problem:
            return problem
    elif district in FULLY_DIVIDED_DISTRICTS:
        return f"district {district} is always followed by a letter, as in {district}A"

    bad_unit = [ch for ch in unit if ch not in UNIT_LETTERS]
    if bad_unit:
        return f"unit {unit!r} uses {bad_unit[0]!r}; the last two letters never include C I K M O V"
    return None


def _district_letter_problem(area: str, district: str, letter: str) -> str | None:
    outward = f"{district}{letter}"
    allowed_here = PARTLY_DIVIDED_DISTRICTS.get(district)
    if district not in FULLY_DIVIDED_DISTRICTS and allowed_here is None:
        return (
            f"district {outward} ends in a letter, which only central London districts "
            "(EC1-EC4, SW1, W1, WC1, WC2, E1W, N1C, N1P, NW1W, SE1P) do"
        )
    if allowed_here is not None and letter not in allowed_here:
        return f"district {outward}: {district} is only divided into {district}" + (
            f" or {district}".join(allowed_here)
        )
    letters = (
        ONE_LETTER_AREA_DISTRICT_LETTERS if len(area) == 1 else TWO_LETTER_AREA_DISTRICT_LETTERS
    )
    if letter not in letters:
        return f"district {outward}: {letter!r} never ends a district after area {area}"
    return None


def is_valid_postcode(postcode: str) -> bool:
    """Return whether a normalised postcode has the official format."""
    return postcode_problem(postcode) is None

"""Plain-language sentences for findings and suggestions, in Dutch and English.

Templates name their values; a float is written by the suffix of its name: ``*_m`` metres,
``*_m2`` an area (m² or hectares), ``*_days`` days. Dutch uses ``1.000,5``, English ``1,000.5``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from emon.feasibility.findings import Message

TEMPLATES: Mapping[str, tuple[str, str]] = {
    "RESIDENCE_INSIDE_ZONE": (
        "De woning van de betrokkene ligt binnen verbodszone '{zone}' ({depth_m} van de rand). "
        "Een locatieverbod dat de eigen woning omvat, is niet te handhaven; nodig is minstens "
        "{required_m} tussen woning en zone.",
        "The offender's residence lies inside exclusion zone '{zone}' ({depth_m} from its edge). "
        "A ban covering the offender's own home cannot be enforced; at least {required_m} between "
        "residence and zone is needed.",
    ),
    "RESIDENCE_TOO_CLOSE": (
        "De woning ligt hemelsbreed {distance_m} van verbodszone '{zone}'; voor een werkende enkelband "
        "is minstens {required_m} nodig ({shortfall_m} te weinig).",
        "The residence is {distance_m} in a straight line from exclusion zone '{zone}'; a working "
        "ankle tag needs at least {required_m} ({shortfall_m} short).",
    ),
    "PROTECTED_PLACE_NOT_COVERED": (
        "Beschermde plaats '{place}' ligt buiten elke verbodszone ({distance_m} buiten zone '{zone}').",
        "Protected place '{place}' lies outside every exclusion zone ({distance_m} outside zone '{zone}').",
    ),
    "PROTECTED_PLACE_NOT_COVERED/no_zones": (
        "Beschermde plaats '{place}' ligt in geen enkele verbodszone: het bevel heeft er geen.",
        "Protected place '{place}' is in no exclusion zone: the order has none.",
    ),
    "PROTECTED_PLACE_NEAR_EDGE": (
        "Beschermde plaats '{place}' ligt maar {margin_m} binnen de rand van zone '{zone}'; minstens "
        "{required_m} is nodig om de betrokkene op tijd te signaleren.",
        "Protected place '{place}' is only {margin_m} inside the edge of zone '{zone}'; at least "
        "{required_m} is needed to detect the offender in time.",
    ),
    "ZONE_TOO_SMALL": (
        "Zone '{zone}' is op het breedste punt maar {width_m} breed; bij een gangbare GPS-fout van "
        "{gps_accuracy_m} is binnen of buiten niet betrouwbaar te onderscheiden (minimaal {required_m}).",
        "Zone '{zone}' is only {width_m} wide at its widest; with a typical GPS error of "
        "{gps_accuracy_m} inside and outside cannot be told apart reliably (minimum {required_m}).",
    ),
    "ZONE_CONFLICT/overlap": (
        "Gebiedsgebod '{other}' overlapt verbodszone '{zone}' ({overlap_area_m2}): de betrokkene moet "
        "daar zijn en mag er tegelijk niet komen.",
        "Inclusion zone '{other}' overlaps exclusion zone '{zone}' ({overlap_area_m2}): the offender "
        "would be required to be there and forbidden to go there.",
    ),
    "ZONE_CONFLICT/mandatory_place": (
        "Verplichte plaats '{place}' ligt {depth_m} binnen verbodszone '{zone}': de betrokkene moet "
        "er komen maar mag de zone niet in.",
        "Mandatory place '{place}' lies {depth_m} inside exclusion zone '{zone}': the offender must go "
        "there but may not enter the zone.",
    ),
    "CONTACT_DISTANCE_TOO_SMALL": (
        "Het contactverbod van {contact_ban_m} is kleiner dan de {required_m} die twee GPS-apparaten "
        "betrouwbaar kunnen bewaken.",
        "The contact ban of {contact_ban_m} is below the {required_m} that two GPS devices can "
        "monitor reliably.",
    ),
    "CONTACT_BAN_NEEDS_VICTIM_DEVICE": (
        "Een contactverbod van {contact_ban_m} is alleen dynamisch te bewaken als het slachtoffer ook "
        "een apparaat draagt; dat is nu niet voorzien.",
        "A contact ban of {contact_ban_m} can only be monitored dynamically if the victim also "
        "carries a device; none is planned.",
    ),
    "INVALID_PERIOD/order": (
        "De einddatum van het bevel ({until}) ligt niet na de begindatum ({start}).",
        "The order's end ({until}) is not after its start ({start}).",
    ),
    "INVALID_PERIOD/zone": (
        "De einddatum van zone '{zone}' ({until}) ligt niet na de begindatum ({start}).",
        "The end of zone '{zone}' ({until}) is not after its start ({start}).",
    ),
    "OPEN_ENDED": (
        "Het bevel heeft geen einddatum (valid_until); controleer of dat de bedoeling is.",
        "The order has no end date (valid_until); check that this is intended.",
    ),
    "EXPIRES_SOON": (
        "Het bevel loopt over {days_left_days} af ({until}).",
        "The order ends in {days_left_days} ({until}).",
    ),
    "EXPIRED": (
        "Het bevel is al afgelopen ({until}, {days_ago_days} geleden).",
        "The order has already ended ({until}, {days_ago_days} ago).",
    ),
    "smaller_circle": (
        "Verklein zone '{zone}' tot een straal van {radius_m} rond hetzelfde middelpunt (was "
        "{original_radius_m}); de rand ligt dan {guideline_m} van de woning.",
        "Shrink zone '{zone}' to a radius of {radius_m} around the same centre (was "
        "{original_radius_m}); its edge is then {guideline_m} from the residence.",
    ),
    "smaller_circle/short": (
        "Bij de grootst mogelijke straal van {radius_m} (was {original_radius_m}) blijft de rand "
        "{guideline_m} van de woning.",
        "At the largest possible radius, {radius_m} (was {original_radius_m}), the edge stays "
        "{guideline_m} from the residence.",
    ),
    "trimmed_polygon/short": (
        "Zonder het deel binnen {guideline_m} van de woning blijft er van zone '{zone}' {area_m2} over "
        "(was {original_area_m2}).",
        "Without the part within {guideline_m} of the residence, {area_m2} of zone '{zone}' remains "
        "(was {original_area_m2}).",
    ),
    "trimmed_polygon": (
        "Haal uit zone '{zone}' het deel binnen {guideline_m} van de woning weg; er blijft "
        "{area_m2} over (was {original_area_m2}).",
        "Cut the part within {guideline_m} of the residence out of zone '{zone}'; {area_m2} remains "
        "(was {original_area_m2}).",
    ),
    "coverage/ok": (
        "'{place}' blijft beschermd ({margin_m} binnen de rand).",
        "'{place}' stays protected ({margin_m} inside the edge).",
    ),
    "coverage/short": (
        "'{place}' ligt dan maar {margin_m} binnen de rand (minimaal {required_m}).",
        "'{place}' is then only {margin_m} inside the edge (minimum {required_m}).",
    ),
    "coverage/outside": (
        "'{place}' valt dan buiten de zone ({distance_m} buiten de rand).",
        "'{place}' then falls outside the zone ({distance_m} beyond its edge).",
    ),
    "too_narrow": (
        "De overgebleven zone is maar {width_m} breed (minimaal {required_m}).",
        "The remaining zone is only {width_m} wide (minimum {required_m}).",
    ),
    "no_circle": (
        "Geen vaste cirkel rond dit middelpunt mogelijk: het ligt maar {centre_distance_m} van de woning, "
        "terwijl de rand al {guideline_m} van de woning moet blijven.",
        "No fixed circle around this centre is possible: it is only {centre_distance_m} from the "
        "residence, while the edge itself must stay {guideline_m} away from it.",
    ),
    "no_polygon": (
        "Als het deel binnen {guideline_m} van de woning wegvalt, blijft er van zone '{zone}' niets over.",
        "Once the part within {guideline_m} of the residence is removed, nothing of zone '{zone}' remains.",
    ),
    "fixed_zone_falls_short": (
        "Een vaste zone '{zone}' op {guideline_m} van de woning beschermt niet genoeg.",
        "A fixed zone '{zone}' kept {guideline_m} from the residence does not protect enough.",
    ),
    "dynamic": (
        "Advies: geen vaste zone, maar een contactverbod van {contact_ban_m} met dynamische bewaking: "
        "het slachtoffer draagt een eigen apparaat en er volgt een alarm zodra de betrokkene "
        "dichterbij komt.",
        "Advice: no fixed zone, but a contact ban of {contact_ban_m} with dynamic proximity monitoring: "
        "the victim carries a device and an alarm follows as soon as the offender comes closer.",
    ),
    "dynamic/no_device": (
        "Het slachtoffer heeft nu nog geen apparaat; dat moet dan worden geregeld.",
        "The victim has no device yet; one would have to be arranged.",
    ),
}

Value = str | float


def build(key: str, **values: Value) -> Message:
    """The sentence ``key`` in both languages with ``values`` filled in (floats formatted per name)."""
    nl, en = TEMPLATES[key]
    return Message(nl=_fill(nl, "nl", values), en=_fill(en, "en", values))


def join(*parts: Message) -> Message:
    """Several sentences as one message."""
    return Message(nl=" ".join(p.nl for p in parts), en=" ".join(p.en for p in parts))


def _fill(template: str, lang: str, values: Mapping[str, Value]) -> str:
    needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return template.format(**{k: _show(k, values[k], lang) for k in needed})


def _show(name: str, value: Value, lang: str) -> str:
    if isinstance(value, str):
        return value
    if name.endswith("_m2"):
        if abs(value) >= 10_000:
            return f"{number(value / 10_000, lang, 1)} ha"
        return f"{number(value, lang, 0)} m²"
    if name.endswith("_days"):
        word = (
            ("dag" if lang == "nl" else "day")
            if round(value, 1) == 1
            else ("dagen" if lang == "nl" else "days")
        )
        return f"{number(value, lang, 1)} {word}"
    if name.endswith("_m"):
        return f"{number(value, lang, 1 if abs(value) < 10 else 0)} m"
    return number(value, lang, 1)


NO_CIRCLE: Mapping[str, str] = {"nl": "geen vaste cirkel mogelijk", "en": "no fixed circle is possible"}


def figure(name: str, value: float, lang: str) -> str:
    """One figure of a finding or suggestion as a person reads it (number with the language's separators).

    A radius that would be zero or negative (the centre lies within the guideline distance of the
    residence) is never shown as a number: it reads "no fixed circle is possible".
    """
    if name.endswith("radius_m") and value <= 0:
        return NO_CIRCLE[lang]
    return number(value, lang, 1)


def number(value: float, lang: str, decimals: int) -> str:
    """``value`` rounded to ``decimals`` (trailing ``,0`` dropped), with the language's separators."""
    text = f"{value:,.{decimals}f}"
    if decimals and text.endswith("0" * decimals):
        text = text[: -(decimals + 1)]
    if text in ("-0", "-0.0"):
        text = "0"
    if lang == "nl":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text

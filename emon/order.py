"""The order document: what a court or prosecutor imposed, as emon enforces it.

One schema serves both the evaluation engine (enforcing an order) and the enforceability check
(judging a proposed one). See docs/order-schema.md for examples. All distances are metres, all
datetimes are timezone-aware and normalised to UTC, schedules are wall-clock times in a named
IANA time zone (so "22:00-07:00 Europe/Amsterdam" stays right across DST changes).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Annotated, Any, Literal, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)

from emon.errors import InvalidOrder
from emon.orders.legal import OrderKind, check_term
from emon.packed_geometry import pack, unpacked

# One set object per distinct combination of explicitly given field names, shared by every document
# model that has it (see Strict._shared_fields_set). Bounded: past the limit a model keeps its own set.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
_FIELDS_SETS_MAX = 4096


def shared_fields_set(names: set[str]) -> set[str]:
    """The one shared set equal to ``names`` (``names`` itself when the table is full)."""
    key = frozenset(names)
    shared = _FIELDS_SETS.get(key)
    if shared is None:
        if len(_FIELDS_SETS) >= _FIELDS_SETS_MAX:
            return names
        shared = _FIELDS_SETS[key] = set(key)
    return shared


class Strict(BaseModel):
    """Frozen, no unknown fields: the base of every case and order document model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _shared_fields_set(self) -> Self:
        """Every open case stays in memory for as long as it is monitored, and pydantic gives each
        model its own ``__pydantic_fields_set__`` (216-728 bytes; ≈ 2.9 KB per case of 12 models,
        a third of the document). The sets hold only field names and a frozen model never changes
        its own (``model_copy`` copies the set before adding to it), so equal sets are shared."""
        object.__setattr__(self, "__pydantic_fields_set__", shared_fields_set(self.__pydantic_fields_set__))
        return self


class RD(Strict):
    """Dutch RD New (EPSG:28992) coordinates in metres."""

    x: float = Field(ge=-7_000, le=300_000)
    y: float = Field(ge=289_000, le=629_000)


class _RDForm(Strict):
    rd: RD


def _from_rd(data: Any) -> Any:
    """``{"rd": {"x", "y"}, **rest}`` as ``{"lat", "lon", **rest}``; any other input unchanged.

    The RD part is validated as a nested model so that its errors are located at ``….rd.x``:
    pydantic prefixes the location of a ValidationError raised in a validator with the enclosing
    field's (pydantic-core "raising ValidationError directly").
    """
    if not (isinstance(data, dict) and "rd" in data):
        return data
    if "lat" in data or "lon" in data:
        raise ValueError("give either lat/lon or rd, not both")
    rd = _RDForm.model_validate({"rd": data["rd"]}).rd
    from emon.geo import rd_to_wgs84

    lat, lon = rd_to_wgs84(rd.x, rd.y)
    return {"lat": lat, "lon": lon, **{k: v for k, v in data.items() if k != "rd"}}


def _lon(value: Any) -> Any:
    """A zone's longitudes beyond ±180 (up to ±540) are normalised: 181 is -179."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 180 < abs(value) <= 540:
        from emon.geo import normalise_lon

        return normalise_lon(float(value))
    return value


class Position(Strict):
    """A WGS84 position; may be given as ``{"lat", "lon"}`` or ``{"rd": {"x", "y"}}``."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)

    _rd = model_validator(mode="before")(_from_rd)


class Circle(Strict):
    """A centre (``lat``/``lon`` or ``rd``, as :class:`Position`) and a radius in metres."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    radius_m: float = Field(gt=0, le=1_000_000, allow_inf_nan=False)

    _rd = model_validator(mode="before")(_from_rd)
    _lon = field_validator("lon", mode="before")(_lon)


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class Window(Strict):
    """A weekly window starting on each of ``days`` at ``start``; an ``end`` at or before
    ``start`` means the window runs past midnight into the next day (22:00-07:00)."""

    days: tuple[Weekday, ...] = tuple(Weekday)
    start: time
    end: time


class Schedule(Strict):
    timezone: str = "Europe/Amsterdam"
    windows: tuple[Window, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("datetime needs a UTC offset, e.g. 2026-01-01T00:00:00+01:00")
    return value.astimezone(UTC)


# Serialises a stored geometry as its GeoJSON dict (a packed polygon unpacked). On the dict inside the
# optional, so that the field's JSON schema (default null included) is the plain dict's.
_GEOJSON_OUT = PlainSerializer(unpacked, return_type=dict[str, Any])


class Zone(Strict):
    """An exclusion zone (locatieverbod) or inclusion zone (locatiegebod).

    Exactly one of ``circle`` and ``geometry`` (a GeoJSON Polygon or MultiPolygon, lon/lat order).
    ``prealert_m`` overrides the order's pre-alert ring width for this zone; the confirmation
    settings override the engine defaults for this rule.
    """

    name: str = Field(min_length=1, max_length=200)
    circle: Circle | None = None
    geometry: Annotated[dict[str, Any], _GEOJSON_OUT] | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    schedule: Schedule | None = None
    prealert_m: float | None = Field(default=None, ge=0, le=50_000)
    confirm_fixes: int | None = Field(default=None, ge=1, le=100)
    confirm_s: float | None = Field(default=None, ge=0, le=3600)
    clear_s: float | None = Field(default=None, ge=0, le=3600)
    clear_margin_m: float | None = Field(default=None, ge=0, le=5000)
    # A breach of this zone concerns the victim's safety: it warns the victim at every risk level, and
    # opens the victim's position to the room while its alert is open (emon/privacy.py).
    protects_victim: bool = False
    # Inclusion zones (curfews): seconds after each scheduled window starts before it is enforced.
    grace_s: float | None = Field(default=None, ge=0, le=7200)

    _utc = field_validator("valid_from", "valid_until")(_aware_utc)

    @field_validator("name")
    @classmethod
    def _one_name(cls, value: str) -> str:
        """One string for a zone name repeated across cases ("woning slachtoffer", …)."""
        return sys.intern(value)

    @field_validator("geometry")
    @classmethod
    def _polygon(cls, value: dict[str, Any] | None, info: ValidationInfo) -> object:
        """Validated; a ring drawn across the antimeridian (longitudes beyond ±180) is stored as
        the RFC 7946 split MultiPolygon. Kept packed (emon.packed_geometry) where it can be: reading
        ``zone.geometry`` (:class:`_Geometry`) and serialising (``_GEOJSON_OUT``) unpack it.

        A document the case book stored itself (context ``emon_stored_document``, emon.casebook) was
        validated and split when it was put: only packed again (3/4 of the cost of building a case)."""
        if value is None:
            return None
        if not (info.context and info.context.get("emon_stored_document")):
            from emon.geo import geojson_to_shape, split_antimeridian

            value = split_antimeridian(value)
            geojson_to_shape(value)  # raises ValueError naming the problem
        packed = pack(value)
        if packed is not None:
            return packed
        # The same few keys and type names in every zone: one string each, not one per zone.
        return {sys.intern(k): sys.intern(v) if isinstance(v, str) else v for k, v in value.items()}

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        # The stored field, not the ``geometry`` descriptor: that would unpack a polygon to test it.
        if (self.circle is None) == (self.__dict__["geometry"] is None):
            raise ValueError("give exactly one of 'circle' and 'geometry'")
        return self


class _Geometry:
    """``Zone.geometry`` reads as the GeoJSON dict although pydantic stores the field packed.

    A data descriptor on the class is found before the instance ``__dict__`` (where pydantic keeps
    field values), so every reader — evaluation's compiler, the API, the paperwork — gets the same dict
    as before packing. A packed polygon's dict is built anew on each read (the stored value cannot be
    changed through it); a geometry kept as given (integer coordinates, altitudes, ``bbox``) is the stored
    dict itself, as before packing: readers must not change it.
    """

    def __get__(self, obj: Zone | None, owner: type[Zone] | None = None) -> Any:
        if obj is None:
            return self
        try:
            return unpacked(obj.__dict__["geometry"])
        except KeyError:
            raise AttributeError("geometry") from None

    def __set__(self, obj: Zone, value: object) -> None:
        # Only pydantic's own construction gets here: a frozen Zone refuses assignment before.
        obj.__dict__["geometry"] = value


type.__setattr__(Zone, "geometry", _Geometry())


class PreAlert(Strict):
    """Pre-alert rings (metres). Entering a ring raises a pre-alert at ``*_enter_m``; it ends only
    beyond ``*_exit_m`` (>= enter), so a boundary walk does not flap."""

    exclusion_enter_m: float = Field(default=200, ge=0, le=50_000)
    exclusion_exit_m: float = Field(default=300, ge=0, le=50_000)
    proximity_enter_m: float = Field(default=1000, ge=0, le=100_000)
    proximity_exit_m: float = Field(default=1300, ge=0, le=100_000)

    @model_validator(mode="after")
    def _exit_beyond_enter(self) -> Self:
        if self.exclusion_exit_m < self.exclusion_enter_m:
            raise ValueError("exclusion_exit_m must be >= exclusion_enter_m")
        if self.proximity_exit_m < self.proximity_enter_m:
            raise ValueError("proximity_exit_m must be >= proximity_enter_m")
        return self


class Decision(Strict):
    """The decision that imposed (or extended) the order: who decided, its reference and date."""

    authority: str = Field(min_length=1, max_length=200)  # e.g. "OM Amsterdam", "rechtbank Midden-Nederland"
    reference: str = Field(min_length=1, max_length=200)  # the decision's own reference (parketnummer, …)
    date: datetime

    _utc = field_validator("date")(_aware_utc)


class Order(Strict):
    """The order document; the same JSON is enforced by evaluation and judged by the checker.

    ``kind`` and the term (``valid_from``/``valid_until``) are checked against the legal limits table
    (emon/orders/legal_limits.toml); ``extensions`` counts the extensions before this term.
    """

    kind: OrderKind = OrderKind.OTHER
    decision: Decision | None = None
    extensions: int = Field(default=0, ge=0, le=1000)

    exclusion_zones: tuple[Zone, ...] = ()
    inclusion_zones: tuple[Zone, ...] = ()
    contact_ban_m: float | None = Field(default=None, gt=0, le=100_000, allow_inf_nan=False)
    prealert: PreAlert = PreAlert()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    # The victim's choice: "all" (default) warns the victim of every confirmed violation of a rule that
    # protects them; "none" sends the victim no warnings at all (the room and police are still told).
    victim_notifications: Literal["all", "none"] = "all"

    _utc = field_validator("valid_from", "valid_until")(_aware_utc)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [z.name for z in (*self.exclusion_zones, *self.inclusion_zones)]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"zone names must be unique, repeated: {sorted(dupes)}")
        return self

    @model_validator(mode="after")
    def _legal_limits(self) -> Self:
        check_term(self.kind, self.valid_from, self.valid_until, self.extensions)
        return self


M = TypeVar("M", bound=BaseModel)


def parse_order(document: Any, *, where: str = "order") -> Order:
    """Validate an order document; raise :class:`InvalidOrder` naming the first bad field."""
    return parse_model(Order, document, where=where)


def parse_model(model: type[M], document: Any, *, where: str) -> M:
    """Validate ``document`` as ``model``; translate pydantic errors into :class:`InvalidOrder`."""
    from pydantic import ValidationError

    try:
        return model.model_validate(document)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        path = ".".join(str(p) for p in (where, *err["loc"]) if p != "")
        # Our own validators' ValueErrors read as written, without pydantic's "Value error, " prefix.
        cause = err.get("ctx", {}).get("error") if err["type"] == "value_error" else None
        raise InvalidOrder(path, str(cause) if cause is not None else err["msg"]) from exc


Kind = Literal["exclusion", "inclusion"]

"""A zone's GeoJSON polygon held packed while its case is open; the GeoJSON dict is built on reading.

Every open case stays in memory for as long as it is monitored. A polygon zone parsed from JSON is
Python lists of lists of float objects: ≈ 144 bytes per vertex (a list and two floats), most of a case
document's size. Packed, a vertex is 16 bytes (two doubles), and the nesting a tuple of ring lengths.

Only the plain form is packed: ``{"type": "Polygon" | "MultiPolygon", "coordinates": …}`` with every
position exactly two floats. Anything else (integer coordinates, altitudes, ``bbox`` or other members)
is kept as given, so that reading a zone always returns exactly the document that was validated.
"""

from __future__ import annotations

import array
from typing import Any

_KINDS = ("Polygon", "MultiPolygon")


class PackedPolygon:
    """A GeoJSON Polygon or MultiPolygon: ``kind``, the ring lengths in vertices (per polygon for a
    MultiPolygon) and every vertex's (lon, lat) as doubles in ``xy``. Immutable; equal to its dict."""

    __slots__ = ("kind", "rings", "type_first", "xy")

    kind: str
    rings: tuple[Any, ...]  # Polygon: (n, …); MultiPolygon: ((n, …), …)
    type_first: bool  # the key order of the dict it came from
    xy: bytes

    def __init__(self, kind: str, rings: tuple[Any, ...], type_first: bool, xy: bytes) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "rings", rings)
        object.__setattr__(self, "type_first", type_first)
        object.__setattr__(self, "xy", xy)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("PackedPolygon is immutable")

    def __reduce__(self) -> tuple[type[PackedPolygon], tuple[str, tuple[Any, ...], bool, bytes]]:
        # copy, deepcopy (``Case.model_copy(deep=True)``) and pickle rebuild it through __init__.
        return PackedPolygon, (self.kind, self.rings, self.type_first, self.xy)

    def unpack(self) -> dict[str, Any]:
        """The GeoJSON dict it was packed from (new lists every call: changing them changes nothing here)."""
        doubles = array.array("d")
        doubles.frombytes(self.xy)
        flat = doubles.tolist()
        pos = 0

        def ring(n: int) -> list[list[float]]:
            nonlocal pos
            out = [[flat[i], flat[i + 1]] for i in range(pos, pos + 2 * n, 2)]
            pos += 2 * n
            return out

        if self.kind == "Polygon":
            coords: list[Any] = [ring(n) for n in self.rings]
        else:
            coords = [[ring(n) for n in poly] for poly in self.rings]
        if self.type_first:
            return {"type": self.kind, "coordinates": coords}
        return {"coordinates": coords, "type": self.kind}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedPolygon):
            return (self.kind, self.rings, self.type_first, self.xy) == (
                other.kind,
                other.rings,
                other.type_first,
                other.xy,
            )
        if isinstance(other, dict):
            return self.unpack() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a dict, which is not hashable either

    def __repr__(self) -> str:
        return repr(self.unpack())


def pack(geometry: dict[str, Any]) -> PackedPolygon | None:
    """``geometry`` packed, or None if it is not in the plain form (see the module docstring)."""
    if set(geometry) != {"type", "coordinates"} or geometry["type"] not in _KINDS:
        return None
    kind = geometry["type"]
    flat: list[float] = []

    def rings_of(polygon: object) -> tuple[int, ...] | None:
        if type(polygon) is not list:
            return None
        lengths = []
        for ring in polygon:
            if type(ring) is not list:
                return None
            for p in ring:
                if type(p) is not list or len(p) != 2 or type(p[0]) is not float or type(p[1]) is not float:
                    return None
                flat.extend(p)
            lengths.append(len(ring))
        return tuple(lengths)

    coords = geometry["coordinates"]
    rings: tuple[Any, ...] | None
    if kind == "Polygon":
        rings = rings_of(coords)
    else:
        per_poly = [rings_of(poly) for poly in coords] if type(coords) is list else [None]
        rings = None if any(r is None for r in per_poly) else tuple(per_poly)
    if rings is None:
        return None
    return PackedPolygon(kind, rings, next(iter(geometry)) == "type", array.array("d", flat).tobytes())


def unpacked(value: object) -> Any:
    """A stored geometry as its GeoJSON dict (a :class:`PackedPolygon` unpacked; anything else as is)."""
    return value.unpack() if isinstance(value, PackedPolygon) else value

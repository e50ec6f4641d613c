"""Wire shapes shared by every area."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

# Query-string windows: Litestar validates query parameters from QueryParameter's own constraints.
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size (1-500)")]
Offset = Annotated[int, QueryParameter(ge=0, description="Items to skip")]


class Page(msgspec.Struct, Generic[T]):
    """A list response: `{"items": [...], "total": N}` plus the window asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int

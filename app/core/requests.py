"""The request class of the app: JSON bodies that parsers disagree on are refused before any handler.

Litestar decodes a JSON body once (Request.json) for every handler that takes `data`. Here that decode
also refuses, with 400 problem details instead of a 500:
- a document nested deeper than the decoder's recursion limit (RecursionError) and bytes that are not
  UTF-8 (msgspec raises UnicodeDecodeError, which Litestar does not map);
- an object with the same key twice: RFC 8259 leaves the meaning open (msgspec keeps the last, other
  parsers the first), so a proxy or audit log could read a different request than the one acted on;
- a NUL character in a string (\\u0000): PostgreSQL text cannot hold it, and file names end at it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from litestar.plugins.htmx import HTMXRequest

from app.core.errors import InvalidInput

# \u0000 preceded by an even number of backslashes (an escaped backslash followed by "u0000" is text).
_NUL_ESCAPE: Final = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def check_json_body(body: bytes) -> None:
    """InvalidInput when a JSON body (already known to decode) has a duplicate key or a NUL character."""
    if _NUL_ESCAPE.search(body):
        raise InvalidInput("a JSON string holds a NUL character (\\u0000)")
    if body.count(b":") < 2:  # fewer than two members: no key can repeat
        return
    try:
        json.loads(body, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise InvalidInput(f"the JSON object has the key {str(exc)!r} more than once") from None
    except (ValueError, RecursionError):  # msgspec accepted it; the standard library's limits are its own
        return


class ApiRequest(HTMXRequest):  # pages keep their htmx request details
    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:
            raise InvalidInput("the JSON body is nested too deeply") from None
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the JSON body is not UTF-8 (byte {exc.start})") from None
        check_json_body(await self.body())
        return value

"""Bounds on what a record read from JSON may hold, and the strict reader of such files.

A leaderboard entry is written by a run and read by everyone who checks, ranks and renders
it, so each of its fields has a bound: a range for every number, a length and a character
set for every string. They are declared here once, as pydantic types the entry schema
(and the model metadata it embeds) use, so the published JSON Schema states them too:

- :data:`Name`: an identifier shown on the pages (model, protocol, task, metric and split
  names, parameter keys): ASCII letters, digits and ``. _ - : / @ +`` and space, at most
  :data:`NAME_MAX` characters. Nothing in it can open a Markdown link or an HTML tag.
- :data:`Label`: one line of text (submitter, run id, environment, weights): any printable
  character, but no control character, no line break and no bidirectional override or
  invisible formatting character; at most :data:`LABEL_MAX` characters.
- :data:`URL`: a link (code, weights): ``http(s)://`` and the characters of RFC 3986 but
  the quote ``'`` (so it cannot end an HTML attribute), at most :data:`LABEL_MAX` characters.
- :data:`JSONValue`: a free-form value (metrics, model selection): ``null``, a boolean, an
  integer within ±:data:`MAX_INT`, a finite number within ±:data:`MAX_NUMBER`, a string of
  at most :data:`TEXT_MAX` characters without control characters, or a list / object of
  those (at most :data:`MAX_ITEMS` items, keys :data:`Name` s).

:func:`loads_strict` parses JSON text as the leaderboard reads it: NaN and Infinity tokens,
numbers that overflow to infinity, integers beyond ±:data:`MAX_INT`, duplicate keys at any
depth, lone surrogates and nesting deeper than :data:`MAX_DEPTH` are refused
(:class:`StrictJSONError`), where Python's ``json`` accepts them all.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema

__all__ = [
    "NAME_MAX", "LABEL_MAX", "TEXT_MAX", "MAX_INT", "MAX_NUMBER", "MAX_ITEMS", "MAX_DEPTH",
    "SEED_MAX", "NAME_PATTERN", "LABEL_PATTERN", "URL_PATTERN", "URL", "UNSAFE_CHARS", "Name", "Label", "JSONValue",
    "StrictJSONError", "loads_strict", "check_json_value", "strip_unsafe", "escape_unsafe",
]

NAME_MAX = 128
LABEL_MAX = 256
TEXT_MAX = 2000
#: Integers beyond this are refused: larger ones lose precision in JavaScript (2**53).
MAX_INT = 2**53
#: Finite numbers only, and none larger in magnitude than this.
MAX_NUMBER = 1e15
#: Items of one list or object inside a free-form value.
MAX_ITEMS = 1000
#: Nesting of objects and lists in a file (an entry needs 5).
MAX_DEPTH = 16
#: Seeds (training, bootstrap) are what numpy and torch take: 0 to 2**32 - 1.
SEED_MAX = 2**32 - 1

#: An identifier: ASCII letters, digits, ``. _ - : / @ +`` and space (not first).
NAME_PATTERN = r"^[A-Za-z0-9._:/@+-][A-Za-z0-9 ._:/@+-]*$"
#: Characters refused in names and labels (stripped or escaped wherever free text is shown):
#: C0 and C1 controls, DEL, the Arabic letter mark, zero-width and directional marks,
#: bidirectional embeddings, overrides and isolates, word joiners, line and paragraph
#: separators, and the byte-order mark.
UNSAFE_CHARS = (r"\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff")
LABEL_PATTERN = rf"^[^{UNSAFE_CHARS}]*$"
_UNSAFE = re.compile(f"[{UNSAFE_CHARS}]")

Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)]
Label = Annotated[str, Field(max_length=LABEL_MAX, pattern=LABEL_PATTERN)]
#: A link shown on the pages: http(s), no space, quote or angle bracket (nothing that can end
#: an HTML attribute or open a tag), at most :data:`LABEL_MAX` characters.
URL_PATTERN = r"^https?://[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+$"
URL = Annotated[str, Field(max_length=LABEL_MAX, pattern=URL_PATTERN)]


class StrictJSONError(ValueError):
    """JSON text that the strict reader refuses; the message says where and why."""


def strip_unsafe(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` without the characters of :data:`UNSAFE_CHARS` (tabs and, with
    `keep_newlines``, newlines kept): what free text may show on a page or a terminal."""
    if keep_newlines:
        return "".join(c for c in text if c in "\n\t" or not _UNSAFE.match(c))
    return _UNSAFE.sub("", text)


def escape_unsafe(text: str) -> str:
    """``text`` with the characters of :data:`UNSAFE_CHARS` but newlines written as escapes
    (``\\x1b``, ``\\u202e``): what a terminal prints as text, never as a control sequence."""
    return "".join(c if c == "\n" or not _UNSAFE.match(c) else ascii(c)[1:-1] for c in text)


# --------------------------------------------------------------------------- free-form values
def _where(path: str) -> str:
    return f"{path}: " if path else ""


def _check_text(value: str, path: str) -> None:
    if len(value) > TEXT_MAX:
        raise ValueError(f"{_where(path)}a string of {len(value)} characters; at most {TEXT_MAX}")
    bad = _UNSAFE.search(value)
    if bad:
        raise ValueError(f"{_where(path)}control or bidirectional character "
                         f"{ascii(bad.group())} in {ascii(value[:40])}")


def _check_number(value: int | float, path: str) -> None:
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ValueError(f"{_where(path)}integer {value} beyond ±2**53")
    elif not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise ValueError(f"{_where(path)}{value!r} is not a finite number within ±{MAX_NUMBER:g}")


def check_json_value(value: Any, path: str = "", depth: int = 0) -> Any:
    """``value`` if it is a free-form value within the bounds of :data:`JSONValue`;
    ``ValueError`` naming the path of the first one that is not."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{_where(path)}nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        _check_number(value, path)
    elif isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, (list, dict)):
        if len(value) > MAX_ITEMS:
            raise ValueError(f"{_where(path)}{len(value)} items; at most {MAX_ITEMS}")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict) and not (isinstance(key, str) and len(key) <= NAME_MAX
                                                and re.match(NAME_PATTERN, key)):
                raise ValueError(f"{_where(path)}key {ascii(str(key)[:40])} is not a name (ASCII "
                                 f"letters, digits, . _ - : / @ + and space; at most {NAME_MAX})")
            where = (f"{path}.{key}" if path else str(key)) if isinstance(value, dict) else f"{path}[{key}]"
            check_json_value(item, where, depth + 1)
    else:
        raise ValueError(f"{_where(path)}{type(value).__name__} is not a JSON value")
    return value


_JSON_VALUE_SCHEMA = {
    "description": f"null, a boolean, an integer within ±2**53, a finite number within "
                   f"±{MAX_NUMBER:g}, a string of at most {TEXT_MAX} characters without control "
                   f"characters, or a list or object of such values (at most {MAX_ITEMS} items, "
                   f"keys names, {MAX_DEPTH} levels deep)",
    "anyOf": [{"type": "null"}, {"type": "boolean"},
              {"type": "integer", "minimum": -MAX_INT, "maximum": MAX_INT},
              {"type": "number", "minimum": -MAX_NUMBER, "maximum": MAX_NUMBER},
              {"type": "string", "maxLength": TEXT_MAX, "pattern": LABEL_PATTERN},
              {"type": "array", "maxItems": MAX_ITEMS},
              {"type": "object", "maxProperties": MAX_ITEMS,
               "propertyNames": {"maxLength": NAME_MAX, "pattern": NAME_PATTERN}}],
}
JSONValue = Annotated[Any, AfterValidator(check_json_value), WithJsonSchema(_JSON_VALUE_SCHEMA)]


# --------------------------------------------------------------------------- the reader
def _refuse_constant(token: str) -> Any:
    raise StrictJSONError(f"{token} is not a JSON number (write a finite number, or null)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise StrictJSONError(f"number {text[:40]} is not within ±{MAX_NUMBER:g}")
    return value


def _parse_int(text: str) -> int:
    if len(text) > 17 or abs(int(text)) > MAX_INT:
        raise StrictJSONError(f"integer {text[:40]} is beyond ±2**53")
    return int(text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"key {ascii(key[:40])} appears twice in one object (a reader "
                                  "could see either value)")
        out[key] = value
    return out


def _check_structure(value: Any) -> None:
    """Depth and lone surrogates, walked without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise StrictJSONError(f"nested deeper than {MAX_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise StrictJSONError(f"string {ascii(item[:40])} holds a lone surrogate "
                                      "(\\ud800-\\udfff): not text") from None


def loads_strict(text: str) -> Any:
    """Parse JSON ``text`` strictly (see the module doc); :class:`StrictJSONError` says why not."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_parse_float,
                           parse_int=_parse_int, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise StrictJSONError(f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"not valid JSON ({exc})") from None
    _check_structure(value)
    return value

"""Shared pieces for reading JSON input files strictly and naming where they are wrong.

Files are parsed with the C `json` module at full speed, with no positions.
Only when something is wrong do we go back to the text: `locate` walks it to
the offending path (skipping whole values with the C scanner), and
`find_duplicate_key` re-parses it keeping every key, because `json.loads`
silently keeps the last of two equal keys.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]  # public in CPython, absent from typeshed
from typing import Any, Callable, Union

Path = tuple[Union[str, int], ...]

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

_WS = re.compile(r"[ \t\n\r]*")
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # C scanner: value at an offset -> (value, end offset)


class Bad(Exception):
    """A problem at a path inside a parsed document; the caller adds file and line."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


class Constant:
    """What NaN / Infinity parse to: json would give floats; we want a clear type error."""

    def __init__(self, name: str) -> None:
        self.name = name


_LONG_NUMBER = re.compile(r"\d{4301}")


MAX_DEPTH = 64     # where an error about nesting too deep to read points


def loads(text: str) -> Any:
    """json.loads, but NaN/Infinity become Constant (the JSON spec has no such values).

    Raises json.JSONDecodeError, with a position, for every unreadable text,
    including integers too long for Python's int() guard (4300 digits) and
    nesting too deep for Python's parser, whose RecursionError names no
    position: the error points where the nesting passes MAX_DEPTH (no file
    of ours nests past 4). The scan for it runs only then: over a 100,000-
    entity world file it would cost nearly three times the parse.
    """
    try:
        return json.loads(text, parse_constant=Constant)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError(f"arrays and objects nested more than {MAX_DEPTH} deep", text,
                                   _too_deep(text) or 0) from None
    except ValueError:
        match = _LONG_NUMBER.search(text)
        raise json.JSONDecodeError("a number has more than 4300 digits", text,
                                   match.start() if match else 0) from None


_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')     # a whole string (skipped), or a bracket


def _too_deep(text: str) -> int | None:
    """The offset of the first bracket that opens level MAX_DEPTH + 1, outside strings; else None."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    depth = 0
    for match in _STRUCTURE.finditer(text):
        ch = match.group()
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif ch in "]}":
            depth -= 1
    return None


def path_str(path: Path) -> str:
    """("entities", 3, "hp") -> "entities[3].hp"; a key that is not a plain word is JSON-quoted,
    so that whatever a file holds, an error message never carries a control character."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            word = step if _WORD.fullmatch(step) else json.dumps(step)
            out += f".{word}" if out else word
    return out


def quoted(key: str) -> str:
    """A key as an error message names it: JSON-quoted, control characters escaped."""
    return json.dumps(key)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_name(path: Path, value: Any, max_bytes: int | None) -> bytes:
    """A name (docs/rules.md "Value ranges"): UTF-8 with no control character, and 1..max_bytes
    bytes when given (a join's length is the rules' to judge: `bad_name`)."""
    encoded = check_str(path, value).encode()
    if max_bytes is not None and not 1 <= len(encoded) <= max_bytes:
        raise Bad(path, f"name is {len(encoded)} bytes of UTF-8; allowed 1..{max_bytes}")
    control = CONTROL.search(value)
    if control:
        raise Bad(path, f"name holds the control character U+{ord(control.group()):04X} "
                        f"(at character {control.start() + 1}); a name may hold none")
    return encoded


def describe(value: Any) -> str:
    """A value as the user wrote it, short enough for a message."""
    if isinstance(value, Constant):
        return value.name
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def check_int(path: Path, value: Any, lo: int, hi: int) -> int:
    """An integer in lo..hi (bool and float are not integers)."""
    if type(value) is not int:
        raise Bad(path, f"{path[-1]} must be an integer, got {describe(value)}")
    if not lo <= value <= hi:
        raise Bad(path, f"{path[-1]} {value} is out of range {range_str(lo, hi)}")
    return value


def check_str(path: Path, value: Any) -> str:
    """A string that encodes as UTF-8 (JSON can spell lone surrogates; UTF-8 cannot)."""
    if type(value) is not str:
        raise Bad(path, f"{path[-1]} must be a string, got {describe(value)}")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise Bad(path, f"{path[-1]} is not valid Unicode (it contains a lone surrogate escape)") from None
    return value


def range_str(lo: int, hi: int) -> str:
    return f"{_num(lo)}..{_num(hi)}"


def _num(n: int) -> str:
    """Write the limits people know by their powers of two as such."""
    for bits in (62, 63, 64, 32):
        for near in range(-2, 11):
            if n == 2**bits + near:
                return f"2^{bits}{near:+d}" if near else f"2^{bits}"
        if n == -(2**bits):
            return f"-2^{bits}"
    return str(n)


def check_keys(path: Path, obj: dict[str, Any], fields: tuple[str, ...], what: str) -> None:
    """obj has exactly `fields`: name the first unknown one, else the first missing one."""
    allowed = set(fields)
    for key in obj:
        if key not in allowed:
            raise Bad(path + (key,), f'unknown field {quoted(key)}; {what} has exactly: {", ".join(fields)}')
    for key in fields:
        if key not in obj:
            # The path points at the object itself: the field has no line of its own.
            raise Bad(path + (key,), f'missing field "{key}"; {what} has exactly: {", ".join(fields)}')


def check_object(path: Path, value: Any, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise Bad(path, f"{what} must be a JSON object, got {describe(value)}")
    return value


def check_list(path: Path, value: Any) -> list[Any]:
    if type(value) is not list:
        raise Bad(path, f"{path[-1]} must be an array, got {describe(value)}")
    return value


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def locate(text: str, path: Path) -> int:
    """Offset where `path` starts in valid JSON `text` (a member's key, an element's value).

    Goes as deep as the path exists, so a missing field gives its object's
    offset. Skipped values are parsed by the C scanner, so this stays fast even
    for the 100,000th entity.
    """
    pos = _ws(text, 0)
    found = pos
    for step in path:
        if isinstance(step, str) and text.startswith("{", pos):
            pos = _ws(text, pos + 1)
            while text.startswith('"', pos):
                key, end = scanstring(text, pos + 1)
                value_pos = _ws(text, _ws(text, end) + 1)  # past the colon
                if key == step:
                    found, pos = pos, value_pos
                    break
                pos = _ws(text, _SCAN(text, value_pos)[1])
                if text.startswith(",", pos):
                    pos = _ws(text, pos + 1)
            else:
                return found
        elif isinstance(step, int) and text.startswith("[", pos):
            pos = _ws(text, pos + 1)
            for _ in range(step):
                if text.startswith("]", pos):
                    return found
                pos = _ws(text, _SCAN(text, pos)[1])
                if text.startswith(",", pos):
                    pos = _ws(text, pos + 1)
            if text.startswith("]", pos):
                return found
            found = pos
        else:
            return found
    return found


_SPACED_COLON = re.compile(r'"[ \t\n\r]+:')


def key_count_bound(text: str) -> int:
    """At least the number of object keys in JSON `text`, and exactly it in a plain file.

    Every key is a string followed by optional whitespace and a colon; an
    escaped quote inside a string can add matches but no key is ever missed.
    So when this equals the keys json.loads kept, no key was a duplicate.
    (Two C-speed passes: str.count for `":`, a regex for the rare spaced form.)
    """
    return text.count('":') + len(_SPACED_COLON.findall(text))


class _Pairs(list):  # type: ignore[type-arg]
    """An object's (key, value) pairs, told apart from a JSON array."""


def find_duplicate_key(text: str) -> Path | None:
    """The path of the first repeated key in `text` (a valid JSON document), if any."""
    def walk(value: Any, path: Path) -> Path | None:
        if isinstance(value, _Pairs):
            seen: set[str] = set()
            for key, _ in value:
                if key in seen:
                    return path + (key,)
                seen.add(key)
            children: Any = value
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            return None
        for step, child in children:
            hit = walk(child, path + (step,))
            if hit:
                return hit
        return None

    return walk(json.loads(text, object_pairs_hook=_Pairs), ())


class Variants:
    """Objects whose `tag` field names their variant, and so exactly which
    fields they have and the ranges of their integer fields: a command's
    op, an entity's kind. `check` returns the variant once all of that holds."""

    def __init__(self, tag: str, fields: dict[str, tuple[str, ...]], ranges: dict[str, tuple[int, int]], *,
                 noun: str, allowed: str, variant_noun: Callable[[str], str]) -> None:
        self.tag, self.fields, self.noun, self.allowed, self.variant_noun = tag, fields, noun, allowed, variant_noun
        self._keysets = {v: frozenset(f) for v, f in fields.items()}
        self._ints = {v: tuple((f, *ranges[f]) for f in fs if f in ranges) for v, fs in fields.items()}

    def check(self, at: Path, obj: Any) -> str:
        if type(obj) is not dict:
            check_object(at, obj, self.noun)
        variant = obj.get(self.tag)
        if type(variant) is not str or variant not in self._keysets:
            what = "is missing" if self.tag not in obj else f"is {describe(variant)}"
            raise Bad(at + (self.tag,), f"{self.tag} {what}; allowed: {self.allowed}")
        if obj.keys() != self._keysets[variant]:
            check_keys(at, obj, self.fields[variant], self.variant_noun(variant))
        for name, lo, hi in self._ints[variant]:
            value = obj[name]
            if type(value) is not int or not lo <= value <= hi:
                check_int(at + (name,), value, lo, hi)
        return variant

"""Activity files: mappings, parsing and row-by-row validation.

An activity file is a CSV of logged events.  The canonical columns are
``occurred_at, lat, lon, kind`` plus optional ones (see
:data:`beatmap.schema.OPTIONAL_ACTIVITY_COLUMNS`).  A mapping file (TOML)
adapts a foreign export: column names, time format and zone, x/y columns in a
stated CRS, placeholder points to reject and rules that turn call types into a
``kind``.  See ``examples/`` for worked mappings.

:func:`parse_activity` turns the raw rows into two frames: the usable records
(canonical columns, times in UTC) and the rejected rows with their reasons.
Every row read ends up in exactly one of them.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import re
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pyproj import CRS

from beatmap import schema as S
from beatmap.crs import WGS84, parse_crs, transform_xy
from beatmap.errors import InputError
from beatmap.timeformat import expected_text, time_hint

#: Row numbers are 1-based counts of data rows: row 1 is the first line after the header.
ROW = "row"

_TRUE = {"y", "yes", "true", "t", "1"}
_FALSE = {"n", "no", "false", "f", "0"}
#: An ISO time's UTC offset: after a time of day (so the "-2026" of "05-03-2026" is not one).
_OFFSET = re.compile(r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:Z|[+-]\d\d(?::?\d\d)?)$", re.IGNORECASE)
_EARLIEST = pd.Timestamp("1970-01-01", tz="UTC")


@dataclass(frozen=True)
class KindRule:
    """Rows whose ``column`` equals one of ``values`` (or matches ``pattern``) get ``kind``."""

    column: str
    kind: str
    values: tuple[str, ...] = ()
    pattern: str | None = None

    def matches(self, column: pd.Series) -> pd.Series:
        """Boolean mask of the rows this rule applies to."""
        text = column.str.strip()
        hit = text.str.upper().isin([v.upper() for v in self.values])
        if self.pattern:
            hit |= text.str.contains(self.pattern, regex=True, case=False, na=False)
        return hit


@dataclass(frozen=True)
class Mapping:
    """How to read one kind of activity export (see ``examples/*.toml``).

    The default mapping reads the canonical CSV as it is.
    """

    name: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    time_format: str | None = None
    timezone: str | None = None
    x: str | None = None
    y: str | None = None
    xy_crs: str | None = None
    placeholders: tuple[tuple[float, float], ...] = ()
    placeholder_tolerance: float = 1e-6
    kind_default: str | None = None
    kind_rules: tuple[KindRule, ...] = ()
    beat_zero_pad: int | None = None
    reject_pileups: bool = False
    alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)
    time_formats: tuple[str, ...] = ()

    def source_column(self, canonical: str) -> str:
        """The file's column that holds a canonical field."""
        return self.columns.get(canonical, canonical)

    @property
    def formats(self) -> str | tuple[str, ...] | None:
        """The time format, or the formats tried in turn when the mapping lists several."""
        return self.time_formats if len(self.time_formats) > 1 else self.time_format


def resolve_columns(mapping: Mapping, header: Sequence[str]) -> tuple[Mapping, list[str]]:
    """Settle the columns a mapping lists alternatives for (``id = ["id", "ID"]``) against a file's header.

    The first alternative the file has is used.  When it has none: an
    optional field (``source_id``, ``subtype``, ...) is left out, with a note
    (records without an id are matched by their content); a required one keeps
    its first name, so the column check names it as missing.

    Returns
    -------
    mapping : Mapping
        With one column per field.
    notes : list of str
        One sentence per optional field left out.
    """
    if not mapping.alternatives:
        return mapping, []
    present = set(header)
    columns = dict(mapping.columns)
    x, y = mapping.x, mapping.y
    notes: list[str] = []
    for key, names in mapping.alternatives.items():
        found = next((n for n in names if n in present), None)
        if key in ("x", "y"):
            chosen = found or names[0]
            x, y = (chosen, y) if key == "x" else (x, chosen)
        elif found is not None:
            columns[key] = found
        elif key in S.OPTIONAL_ACTIVITY_COLUMNS:
            columns.pop(key, None)
            notes.append(
                f"{key}: the file has none of {', '.join(names)}; left out"
                + (" (records are matched by their content)" if key == S.SOURCE_ID else "")
            )
        else:
            columns[key] = names[0]
    return replace(mapping, columns=columns, x=x, y=y, alternatives={}), notes


_MAPPING_KEYS = {
    "source": {"name", "timezone", "time_format"},
    "columns": set(S.ACTIVITY_COLUMNS),
    "coordinates": {"x", "y", "crs", "reject", "tolerance", "reject_pileups"},
    "kind": {"default", "rules"},
    "reported_beat": {"zero_pad"},
}


def read_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file.

    Raises
    ------
    InputError
        Naming the file and every unknown section, key or value.
    """
    return mapping_from_dict(read_mapping_file(path), where=str(path))


def place_and_zone_problems(source: dict[str, Any], coords: dict[str, Any], *, where: str) -> list[str]:
    """What is wrong with a mapping's ``[coordinates] crs`` and ``[source] timezone`` (activity and ping mappings)."""
    problems: list[str] = []
    if coords.get("crs"):
        try:
            parse_crs(coords["crs"], what=f"{where}: [coordinates] crs")
        except InputError as exc:
            problems.append(str(exc))
    timezone = source.get("timezone")
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"[source] timezone {timezone!r} is not an IANA zone such as 'America/Chicago'")
    return problems


def read_mapping_file(path: str | Path) -> dict[str, Any]:
    """The TOML of a mapping file (activity or pings), unchecked.

    Raises
    ------
    InputError
        When the file is missing or is not TOML.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: mapping file not found. Check the path given to --mapping.")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid TOML mapping ({exc}). See examples/ for the format.") from exc


def _names(value: object) -> tuple[str, ...] | None:
    """A column given as a name or a list of alternative names, as a tuple; None when it is neither."""
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    return None


def mapping_from_dict(raw: dict, *, where: str) -> Mapping:
    """Check a mapping given as the dictionary of its TOML text (see :func:`read_mapping`); ``where`` names it."""
    path = where
    problems: list[str] = []
    for section, body in raw.items():
        known = _MAPPING_KEYS.get(section)
        if known is None or not isinstance(body, dict):
            problems.append(f"unknown section [{section}] (known: {', '.join(_MAPPING_KEYS)})")
            continue
        problems += [
            f"unknown key {k!r} in [{section}] (known: {', '.join(sorted(known))})" for k in body if k not in known
        ]
    source, cols = raw.get("source", {}), raw.get("columns", {})
    coords, kind = raw.get("coordinates", {}), raw.get("kind", {})
    if any(_names(v) is None for v in cols.values()):
        problems.append("every value in [columns] must be a column name in quotes, or a list of alternatives")
    if bool(coords.get("x")) != bool(coords.get("y")):
        problems.append("[coordinates] needs both x and y")
    elif coords.get("x") and (_names(coords["x"]) is None or _names(coords["y"]) is None):
        problems.append("[coordinates] x and y must be column names in quotes, or lists of alternatives")
    formats = source.get("time_format")
    if formats is not None and _names(formats) is None:
        problems.append(
            '[source] time_format must be a format in quotes, e.g. "%m/%d/%Y %I:%M:%S %p", or a list '
            "of formats tried in turn"
        )
    problems += place_and_zone_problems(source, coords, where=path)
    rules = []
    default = kind.get("default")
    if default is not None and default not in S.KINDS:
        problems.append(f"[kind] default {default!r} is not one of {', '.join(S.KINDS)}")
    for i, rule in enumerate(kind.get("rules", []), start=1):
        unknown = set(rule) - {"column", "equals", "matches", "kind"}
        if unknown or "column" not in rule or "kind" not in rule or not ({"equals", "matches"} & set(rule)):
            problems.append(f'[[kind.rules]] number {i} needs column, kind and equals = [...] or matches = "regex"')
            continue
        if rule["kind"] not in S.KINDS:
            problems.append(f"[[kind.rules]] number {i}: kind {rule['kind']!r} is not one of {', '.join(S.KINDS)}")
            continue
        if "matches" in rule:
            try:
                re.compile(rule["matches"])
            except re.error as exc:
                problems.append(f"[[kind.rules]] number {i}: matches is not a valid regular expression ({exc})")
                continue
        rules.append(
            KindRule(
                column=rule["column"],
                kind=rule["kind"],
                values=tuple(str(v) for v in rule.get("equals", [])),
                pattern=rule.get("matches"),
            )
        )
    if not isinstance(coords.get("reject_pileups", False), bool):
        problems.append("[coordinates] reject_pileups must be true or false")
    placeholders = []
    for point in coords.get("reject", []):
        if not (isinstance(point, list) and len(point) == 2 and all(isinstance(v, int | float) for v in point)):
            problems.append(f"[coordinates] reject must be a list of [x, y] pairs, not {point!r}")
        else:
            placeholders.append((float(point[0]), float(point[1])))
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems) + ". See examples/ for the format.")
    names = {k: _names(v) or () for k, v in cols.items()}
    if coords.get("x"):
        names |= {"x": _names(coords["x"]) or (), "y": _names(coords["y"]) or ()}
    time_formats = _names(formats) or ()
    return Mapping(
        name=source.get("name"),
        columns={k: v[0] for k, v in names.items() if k not in ("x", "y")},
        time_format=time_formats[0] if time_formats else None,
        time_formats=time_formats,
        alternatives={k: v for k, v in names.items() if len(v) > 1},
        timezone=source.get("timezone"),
        x=names["x"][0] if "x" in names else None,
        y=names["y"][0] if "y" in names else None,
        xy_crs=coords.get("crs"),
        placeholders=tuple(placeholders),
        placeholder_tolerance=float(coords.get("tolerance", 1e-6)),
        kind_default=default,
        kind_rules=tuple(rules),
        beat_zero_pad=raw.get("reported_beat", {}).get("zero_pad"),
        reject_pileups=bool(coords.get("reject_pileups", False)),
    )


#: The encoding a file was read in, kept in the frame's ``attrs`` (see :func:`encoding_note`).
ENCODING = "encoding"
#: What a file with no UTF-8 at all is read as: the Windows code page of Western European exports.
GUESSED_ENCODING = "cp1252"


def read_activity_csv(path: str | Path) -> pd.DataFrame:
    """Read an activity CSV as text, one row per data line, nothing dropped.

    Returns
    -------
    DataFrame
        Every cell as a string (blank for empty), index 1..n = row numbers.
        ``attrs["encoding"]`` is the encoding it was read in: ``utf-8-sig``,
        or ``cp1252`` (a guess) for a file with no UTF-8 text at all; see
        :func:`encoding_note`.
    """
    path = Path(path)
    encoding = _checked_text_file(path)
    raw = _read_clean_csv(path) if encoding == "utf-8-sig" else None
    if raw is None:
        with _pandas_problems_worded(path, encoding):
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, skip_blank_lines=True)
    if raw.shape[1] < 2:
        raise InputError(
            f"{path}: found only one column ({', '.join(map(str, raw.columns))!s}); "
            "is this a CSV with comma separators and a header row?"
        )
    if raw.empty:
        raise InputError(f"{path}: has a header but no rows. Nothing to import.")
    raw.columns = [str(c).strip() for c in raw.columns]
    raw.index = pd.RangeIndex(1, len(raw) + 1, name=ROW)
    raw.attrs[ENCODING] = encoding
    return raw


def encoding_note(raw: pd.DataFrame, *, file: str) -> str | None:
    """The sentence that reports a guessed encoding, for a frame of :func:`read_activity_csv`; None for UTF-8.

    A file with no UTF-8 text at all is read as Windows-1252 (what Western
    European Windows exports use): right for most such files, wrong for a
    file in another code page, whose accented letters then come out as other
    letters.  The import reports the guess so a person can check the names.
    """
    if raw.attrs.get(ENCODING, "utf-8-sig") != GUESSED_ENCODING:
        return None
    return guessed_encoding_note(file)


def guessed_encoding_note(file: str) -> str:
    """The sentence that reports a file read as Windows-1252 (see :func:`encoding_note`)."""
    return (
        f"{file}: read as Windows-1252 (no UTF-8 found). Check accented names: if they look wrong (a file "
        "from another code page gives, for example, 'JosŽ' for 'José'), save the file as UTF-8 and import it again."
    )


def text_encoding(path: Path) -> str:
    """The encoding to read a text file in: ``utf-8-sig``, or :data:`GUESSED_ENCODING` for a file with no UTF-8
    at all (a guess, to report with :func:`guessed_encoding_note`).

    Raises
    ------
    InputError
        For NUL bytes, or a file that mixes UTF-8 with another encoding (each with its fix).
    """
    return _check_bytes(Path(path))


#: Bytes of the file parsed at a time by :func:`read_activity_chunks` (about 100,000 rows of a typical export).
CHUNK_BYTES = 8 << 20
#: Rows read at a time by the careful reader (another encoding, or a file the quick reader refused).
CHUNK_ROWS = 100_000


class CarefulReadNeededError(Exception):
    """The quick reader of :func:`read_activity_chunks` met something it cannot read, after giving some
    chunks: read the file again from the start with ``careful=True``."""


def read_activity_chunks(path: str | Path, *, careful: bool = False) -> Iterator[pd.DataFrame]:
    """:func:`read_activity_csv` in pieces, so a big file is never held whole: the same checks and cells.

    Each piece is a frame of text cells whose index is the file's row
    numbers (1..n over the whole file), with ``attrs["encoding"]`` as
    :func:`read_activity_csv` sets it.  A well-formed UTF-8 file is read by
    pyarrow's streaming reader; another encoding, or ``careful=True``, by
    pandas in chunks.

    Raises
    ------
    InputError
        As :func:`read_activity_csv`.
    CarefulReadNeededError
        When the quick reader fails after the first piece: read again with ``careful=True``.
    """
    path = Path(path)
    encoding = _checked_text_file(path)
    pieces = None if careful or encoding != "utf-8-sig" else _clean_chunks(path)
    if pieces is None:
        pieces = _careful_chunks(path, encoding)
    start = 1
    for raw in pieces:
        if start == 1 and raw.shape[1] < 2:
            raise InputError(
                f"{path}: found only one column ({', '.join(map(str, raw.columns))!s}); "
                "is this a CSV with comma separators and a header row?"
            )
        if raw.empty:
            continue
        raw.columns = [str(c).strip() for c in raw.columns]
        raw.index = pd.RangeIndex(start, start + len(raw), name=ROW)
        raw.attrs[ENCODING] = encoding
        start += len(raw)
        yield raw
    if start == 1:
        raise InputError(f"{path}: has a header but no rows. Nothing to import.")


def _checked_text_file(path: Path) -> str:
    """The encoding to read an activity CSV in, after refusing a missing, binary or empty file, NUL bytes,
    mixed encodings and a header naming a column twice (each with its fix)."""
    if not path.exists():
        raise InputError(f"{path}: file not found. Check the path.")
    with path.open("rb") as fh:
        head = fh.read(8192)
    if b"\x00" in head:
        raise InputError(f"{path}: is not a text CSV file (it contains binary data). Export the activity as CSV.")
    if not head.strip():
        raise InputError(f"{path}: is empty. Export the activity with a header row and at least one row.")
    encoding = _check_bytes(path)
    _check_header(path, encoding)
    return encoding


def _clean_header(path: Path) -> list[str] | None:
    """The header of a file pyarrow's reader can take as it is (UTF-8, two or more distinct, non-empty names),
    or None: the careful reader then reads the file and words what is wrong with it."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            names = next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error):
        return None
    if len(names) < 2 or len(set(names)) != len(names) or "" in names:
        return None
    return names


def _text_columns(names: list[str]) -> Any:
    """pyarrow's CSV options reading every named column as text, an empty cell as an empty string."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    return pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


def _clean_chunks(path: Path) -> Iterator[pd.DataFrame] | None:
    """Pieces of a well-formed UTF-8 CSV from pyarrow's streaming reader (None: use the careful reader)."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    names = _clean_header(path)
    if names is None:
        return None
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=CHUNK_BYTES),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=_text_columns(names),
        )
    except (pa.ArrowInvalid, OSError):
        return None
    if reader.schema.names != names:
        return None

    def pieces() -> Iterator[pd.DataFrame]:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError) as exc:
                raise CarefulReadNeededError(str(exc)) from exc
            yield pd.DataFrame({name: batch.column(i).to_pandas() for i, name in enumerate(names)})

    return pieces()


def _careful_chunks(path: Path, encoding: str) -> Iterator[pd.DataFrame]:
    """Pieces from pandas' reader, with its problems worded as :func:`read_activity_csv` words them."""
    with _pandas_problems_worded(path, encoding):
        reader = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding=encoding, skip_blank_lines=True, chunksize=CHUNK_ROWS
        )
        with reader:
            yield from reader


@contextlib.contextmanager
def _pandas_problems_worded(path: Path, encoding: str) -> Iterator[None]:
    """pandas' reading errors as :class:`InputError` naming the file and the fix."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot be read as {encoding} text ({exc}). Export it as UTF-8 CSV.") from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: is empty. Export the activity with a header row.") from exc
    except pd.errors.ParserError as exc:
        raise InputError(
            f"{path}: is not a well-formed CSV ({_first_line(exc)}). Check quoting and separators."
        ) from exc


# A multi-byte UTF-8 sequence: a file holding one is UTF-8 (another encoding rarely forms one by chance).
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_CHUNK_BYTES = 1 << 20


def _check_bytes(path: Path) -> str:
    """The file's encoding (``utf-8-sig``, or ``cp1252`` for a file with no UTF-8 at all), after refusing NUL
    bytes and a file that mixes UTF-8 with another encoding.

    A Latin-1 row in a UTF-8 file would otherwise turn every ``José`` of the
    file into ``JosÃ©`` (decoding it all as cp1252), and a NUL byte cuts the
    text it is in.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, not_utf8, has_utf8 = 1, None, False
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK_BYTES), b""):
            if b"\x00" in chunk:
                at = line + chunk.count(b"\n", 0, chunk.index(b"\x00"))
                raise InputError(
                    f"{path}: line {at} holds a NUL byte, which would cut the id or text it is in "
                    "(two ids could become one). Remove it and import again."
                )
            if not_utf8 is None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    not_utf8 = line + chunk.count(b"\n", 0, exc.start)
            has_utf8 = has_utf8 or _UTF8_SEQUENCE.search(chunk) is not None
            line += chunk.count(b"\n")
    if not_utf8 is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            not_utf8 = line
    if not_utf8 is None:
        return "utf-8-sig"
    if has_utf8:
        raise InputError(
            f"{path}: line {not_utf8} is not UTF-8 while other lines are (text in another encoding, "
            "such as Latin-1, in a UTF-8 file); read either way some names would come out wrong, "
            "like 'JosÃ©' for 'José'. Save the whole file as UTF-8 and import it again."
        )
    return GUESSED_ENCODING  # no UTF-8 anywhere: a Windows (Latin-1) export, read as such (and reported)


def _check_header(path: Path, encoding: str) -> None:
    """Refuse a header that names a column twice (the reader would keep one copy without a word)."""
    with path.open(encoding=encoding, newline="") as fh:
        header = next(csv.reader(fh), [])
    names = [str(c).strip() for c in header]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{path}: the header names column(s) {', '.join(map(repr, repeated))} more than once; "
            "rename or remove the extra copy so each column has one name, and import again."
        )


def _read_clean_csv(path: Path) -> pd.DataFrame | None:
    """A well-formed UTF-8 CSV through pyarrow's multi-threaded reader, every cell as text.

    None when the file needs the careful reader (another encoding, ragged rows,
    repeated column names): it then reads it and words the problem.
    """
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    names = _clean_header(path)
    if names is None:
        return None
    try:
        table = pa_csv.read_csv(
            path,
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=_text_columns(names),
        )
    except (pa.ArrowInvalid, OSError):
        return None
    if table.column_names != names:
        return None
    return pd.DataFrame({name: table.column(name).to_pandas() for name in names})


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0]


def check_columns(raw: pd.DataFrame, mapping: Mapping, *, source: str) -> list[str]:
    """Check that the columns the mapping needs exist; return the ignored ones.

    Raises
    ------
    InputError
        Naming the missing columns, the columns found and the fix.
    """
    mapping, _ = resolve_columns(mapping, list(raw.columns))
    needed = {mapping.source_column(S.OCCURRED_AT)}
    if mapping.x:
        assert mapping.y is not None  # the mapping's checks require x and y together
        needed |= {mapping.x, mapping.y}
    else:
        needed |= {mapping.source_column(S.LAT), mapping.source_column(S.LON)}
    if not mapping.kind_rules and mapping.kind_default is None:
        needed.add(mapping.source_column(S.KIND))
    needed |= {rule.column for rule in mapping.kind_rules}
    needed |= set(mapping.columns.values())
    missing = sorted(needed - set(raw.columns))
    if missing:
        hint = (
            "fix the [columns] of the mapping file"
            if mapping.columns or mapping.x
            else ("rename the columns to the canonical names (occurred_at, lat, lon, kind) or give --mapping FILE")
        )
        raise InputError(
            f"{source}: missing column(s) {', '.join(missing)}; the file has {', '.join(raw.columns)}. "
            f"To import it, {hint}."
        )
    used = needed | {mapping.source_column(c) for c in S.OPTIONAL_ACTIVITY_COLUMNS}
    return [c for c in raw.columns if c not in used]


def parse_activity(
    raw: pd.DataFrame,
    mapping: Mapping,
    *,
    timezone: str,
    source: str,
    now: pd.Timestamp | None = None,
    area_bounds: tuple[float, float, float, float] | None = None,
    raw_per_reason: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate activity rows and turn them into canonical records.

    Parameters
    ----------
    raw : DataFrame
        As returned by :func:`read_activity_csv` (strings, index = row numbers).
    mapping : Mapping
        How to read the file.
    timezone : str
        Zone of times without an offset, unless the mapping names one.
    source : str
        Feed name, part of each record's identity for duplicate detection.
    now : Timestamp, optional
        Times after ``now`` plus one day are rejected as in the future.
    area_bounds : tuple, optional
        ``(west, south, east, north)`` of the beats in WGS84.  A point outside
        them whose swapped coordinates fall inside is rejected as swapped.
    raw_per_reason : int, optional
        Keep the cells (``raw``) of only the first this many rejected rows of
        each reason (the others get None): a file of garbage then costs
        memory for its reasons, not for a copy of every cell.

    Returns
    -------
    records : DataFrame
        One row per usable input row (index = row number) with the canonical
        columns, ``occurred_at``/``ended_at`` in UTC, ``lat``/``lon`` in WGS84,
        and ``fingerprint`` (identity for duplicate detection).
    rejects : DataFrame
        ``row``, ``reason``, ``group`` and ``raw`` (the row's cells as a dict)
        for every row that cannot be used; a row with several problems lists
        them all.  ``reason`` gives the value found and what was expected;
        ``group`` is the same words without the row's values (for counts).
        ``lat``/``lon`` are the row's point when its coordinates raised no
        problem (else missing) and ``reported_beat`` the beat it names: where
        the row is, so its rejects can be shown by beat.
    """
    mapping, _ = resolve_columns(mapping, list(raw.columns))
    zone = mapping.timezone or timezone
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    reasons = pd.Series("", index=raw.index, dtype=object)
    groups = pd.Series("", index=raw.index, dtype=object)

    def reject(mask: pd.Series, message: pd.Series | _Quoted | str, group: str | None = None) -> None:
        """Add ``message`` (the row's own words: value found and what was expected) to the rows in ``mask``.

        ``group`` is the same reason without the row's value, so like groups with like in a summary.
        """
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            text = message[mask] if isinstance(message, pd.Series | _Quoted) else message
            reasons[mask] = reasons[mask].where(reasons[mask] == "", reasons[mask] + "; ") + text
            key = group if group is not None else str(message)
            groups[mask] = groups[mask].where(groups[mask] == "", groups[mask] + "; ") + key

    def col(canonical: str) -> pd.Series:
        name = mapping.source_column(canonical)
        return raw[name].str.strip() if name in raw.columns else pd.Series("", index=raw.index, dtype=object)

    for name, values in ((S.OCCURRED_AT, col(S.OCCURRED_AT)), (S.ENDED_AT, col(S.ENDED_AT))):
        parsed, bad = _parse_times(values, fmt=mapping.formats, zone=zone)
        if bad.any():
            why = f"not {expected_text(mapping.formats)}: {time_hint(values[bad], mapping.formats)}"
            reject(bad, _quoted(name, values, why), f"{name} … is {why}")
        if name == S.OCCURRED_AT:
            occurred = parsed
        else:
            ended = parsed
    reject(col(S.OCCURRED_AT) == "", "occurred_at is empty")
    latest = now + pd.Timedelta(days=1)
    reject(
        occurred > latest,
        _quoted(S.OCCURRED_AT, col(S.OCCURRED_AT), f"in the future (after {latest:%Y-%m-%d})"),
        f"occurred_at … is in the future (after {latest:%Y-%m-%d})",
    )
    reject(
        occurred < _EARLIEST, _quoted(S.OCCURRED_AT, col(S.OCCURRED_AT), "before 1970"), "occurred_at … is before 1970"
    )
    reject(
        ended < occurred,
        "ended_at " + col(S.ENDED_AT).map(repr) + " is before occurred_at " + col(S.OCCURRED_AT).map(repr),
        "ended_at is before occurred_at",
    )

    duration = pd.to_numeric(col(S.DURATION_MIN), errors="coerce")
    reject(
        col(S.DURATION_MIN).ne("") & ~(duration >= 0),
        _quoted(S.DURATION_MIN, col(S.DURATION_MIN), "not a number of minutes"),
        f"{S.DURATION_MIN} … is not a number of minutes",
    )
    from_end = (ended - occurred).dt.total_seconds() / 60
    duration = duration.where(duration.notna(), from_end)

    before_coordinates = reasons.copy()
    lon, lat = _coordinates(raw, mapping, col, reject, area_bounds)
    # A row whose coordinates raised no problem has a place, even when it is rejected for another reason.
    placed = (reasons == before_coordinates) & lon.notna() & lat.notna()

    kind = _kinds(raw, mapping, col)
    kind_why = f"not one of {', '.join(S.KINDS)}" + (
        ": add a [kind] rule or default for it" if mapping.kind_rules or mapping.kind_default else ""
    )
    reject(kind.isna(), _quoted(S.KIND, col(S.KIND), kind_why), f"{S.KIND} … is {kind_why}")

    flag_text = col(S.SELF_INITIATED).str.lower()
    self_initiated = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    self_initiated[flag_text.isin(_TRUE)] = True
    self_initiated[flag_text.isin(_FALSE)] = False
    reject(
        ~flag_text.isin(_TRUE | _FALSE | {""}),
        _quoted(S.SELF_INITIATED, col(S.SELF_INITIATED), "not Y or N"),
        f"{S.SELF_INITIATED} … is not Y or N",
    )

    beat = col(S.REPORTED_BEAT)
    if mapping.beat_zero_pad:
        beat = beat.where(beat == "", beat.str.zfill(mapping.beat_zero_pad))
    for name, values, limit in [
        *((n, col(n), S.ID_MAX) for n in (S.OFFICER_ID, S.UNIT_ID, S.SOURCE_ID)),
        (S.REPORTED_BEAT, beat, S.ID_MAX),
        *((n, col(n), S.TEXT_MAX) for n in (S.SUBTYPE, S.NOTES)),
    ]:
        length = values.str.len()
        reject(
            length > limit,
            name + " is " + length.astype(str) + f" characters long, over the {limit:,} "
            "beatmap keeps; check that the mapping names the right column",
        )

    ok = reasons == ""
    records = pd.DataFrame(
        {
            S.OCCURRED_AT: occurred,
            S.ENDED_AT: ended,
            S.DURATION_MIN: duration.round(1),
            S.LAT: lat,
            S.LON: lon,
            S.KIND: kind,
            **{name: _text(col(name)) for name in (S.OFFICER_ID, S.UNIT_ID, S.SUBTYPE, S.SOURCE_ID, S.NOTES)},
            S.SELF_INITIATED: self_initiated,
            S.REPORTED_BEAT: _text(beat),
        }
    )[ok]
    records["source"] = source
    records["fingerprint"] = _fingerprints(records, source=source)
    bad_groups = groups[~ok]
    keep = (
        bad_groups.groupby(bad_groups, sort=False).cumcount() < raw_per_reason
        if raw_per_reason is not None
        else pd.Series(True, index=bad_groups.index)
    )
    cells = pd.Series(None, index=bad_groups.index, dtype=object)
    if keep.any():
        cells[keep] = raw.loc[keep[keep].index].to_dict(orient="records")
    rejects = pd.DataFrame(
        {
            ROW: raw.index[~ok],
            "reason": reasons[~ok].to_numpy(),
            "group": bad_groups.to_numpy(),
            "raw": cells.to_numpy(),
            S.LAT: lat.where(placed)[~ok].to_numpy(dtype=float),
            S.LON: lon.where(placed)[~ok].to_numpy(dtype=float),
            S.REPORTED_BEAT: _text(beat)[~ok].to_numpy(),
        }
    )
    return records, rejects


def _text(values: pd.Series) -> pd.Series:
    return values.where(values != "", None).astype(object)


class _Quoted:
    """The words ``name 'value' is why`` of each row, made only for the rows a mask picks (``quoted[mask]``):
    most masks pick no row, and wording every row of a big file cost more than checking it."""

    def __init__(self, name: str, values: pd.Series, why: str) -> None:
        self.name, self.values, self.why = name, values, why

    def __getitem__(self, mask: pd.Series) -> pd.Series:
        return self.name + " " + self.values[mask].map(repr) + " is " + self.why


def _quoted(name: str, values: pd.Series, why: str) -> _Quoted:
    return _Quoted(name, values, why)


def _parse_times(values: pd.Series, *, fmt: str | tuple[str, ...] | None, zone: str) -> tuple[pd.Series, pd.Series]:
    """Parse local or offset times to UTC.

    Times without an offset are wall-clock times in ``zone``.  At the autumn
    change the repeated hour is read as its first (daylight-saving) occurrence;
    a time in the spring gap is moved forward to the first valid instant.
    Several formats are tried in turn, each on the values the ones before it
    could not read.

    Returns
    -------
    times : Series of datetime64[ns, UTC]
    bad : Series of bool
        Non-blank values that could not be parsed.
    """
    if isinstance(fmt, tuple):
        out, bad = _parse_times(values, fmt=fmt[0], zone=zone)
        for other in fmt[1:]:
            if not bad.any():
                break
            more, still = _parse_times(values[bad], fmt=other, zone=zone)
            out[bad] = more
            bad = bad & still.reindex(bad.index, fill_value=False)
        return out, bad
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    present = values != ""
    # With a stated format, only its %z says a value carries an offset.
    offset = present & (_has_offset(values) if fmt is None else ("%z" in fmt or "%Z" in fmt))
    if offset.any():
        out[offset] = pd.to_datetime(values[offset], utc=True, errors="coerce", format=fmt or "ISO8601")
    naive = present & ~offset
    if naive.any():
        local = pd.to_datetime(values[naive], errors="coerce", format=fmt or "ISO8601")
        local = local.dt.tz_localize(zone, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward")
        out[naive] = local.dt.tz_convert("UTC")
    return out, present & out.isna()


def _has_offset(values: pd.Series) -> pd.Series:
    """Which values end in a UTC offset (or Z), by :data:`_OFFSET`, matched in pyarrow rather than row by row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    hit = pc.match_substring_regex(text, _OFFSET.pattern, ignore_case=True).fill_null(False)
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=values.index, dtype=bool)


def _coordinates(
    raw: pd.DataFrame,
    mapping: Mapping,
    col: Callable[[str], pd.Series],
    reject: Callable[..., None],
    bounds: tuple[float, float, float, float] | None,
) -> tuple[pd.Series, pd.Series]:
    """Longitude and latitude in WGS84, rejecting unusable coordinates row by row."""
    if mapping.x:
        assert mapping.y is not None  # the mapping's checks require x and y together
        xs, ys = raw[mapping.x].str.strip(), raw[mapping.y].str.strip()
        names = (mapping.x, mapping.y)
    else:
        xs, ys = col(S.LON), col(S.LAT)
        names = (S.LON, S.LAT)
    x, y = pd.to_numeric(xs, errors="coerce"), pd.to_numeric(ys, errors="coerce")
    blank = (xs == "") | (ys == "")
    reject(blank, "no coordinates (the location is blank)")
    reject(~blank & x.isna(), _quoted(names[0], xs, "not a number"), f"{names[0]} … is not a number")
    reject(~blank & y.isna(), _quoted(names[1], ys, "not a number"), f"{names[1]} … is not a number")
    finite = x.notna() & y.notna()
    placeholder = finite & (x.abs() < 1e-9) & (y.abs() < 1e-9)
    for px, py in mapping.placeholders:
        placeholder |= (
            finite
            & ((x - px).abs() <= mapping.placeholder_tolerance)
            & ((y - py).abs() <= mapping.placeholder_tolerance)
        )
    reject(
        placeholder,
        "placeholder coordinates " + xs + "," + ys + " (the system's stand-in for 'no location')",
        "placeholder coordinates (the system's stand-in for 'no location')",
    )
    usable = finite & ~placeholder
    if mapping.x:
        lon = pd.Series(np.nan, index=raw.index)
        lat = pd.Series(np.nan, index=raw.index)
        tx, ty = transform_xy(x[usable].to_numpy(), y[usable].to_numpy(), CRS(mapping.xy_crs), WGS84)
        lon[usable], lat[usable] = tx, ty
        bad = usable & ~(np.isfinite(lon) & np.isfinite(lat) & (lat.abs() <= 90) & (lon.abs() <= 180))
        reject(bad, f"x/y cannot be projected from {mapping.xy_crs} to longitude/latitude")
        if bounds is not None:
            sx, sy = transform_xy(y[usable].to_numpy(), x[usable].to_numpy(), CRS(mapping.xy_crs), WGS84)
            swapped = pd.Series(False, index=raw.index)
            swapped[usable] = _inside(sx, sy, bounds) & ~_inside(lon[usable].to_numpy(), lat[usable].to_numpy(), bounds)
            reject(
                swapped,
                f"{names[0]} and {names[1]} look swapped: as given the point is far from the beats, "
                "swapped it falls among them",
            )
        return lon, lat
    lon, lat = x, y
    swapped = usable & (lat.abs() > 90) & (lon.abs() <= 90)
    if bounds is not None:
        swapped |= usable & ~_inside(lon, lat, bounds) & _inside(lat, lon, bounds)
    why = "look swapped (as given the point is out of range or far from the beats; swapped it fits)"
    reject(swapped, "lat " + ys + " and lon " + xs + " " + why, f"lat and lon {why}")
    out_of_range = usable & ~swapped & ((lat.abs() > 90) | (lon.abs() > 180))
    reject(
        out_of_range,
        "coordinates " + ys + "," + xs + " are outside the range of latitude/longitude",
        "coordinates are outside the range of latitude/longitude",
    )
    return lon, lat


def _inside(
    lon: pd.Series | np.ndarray, lat: pd.Series | np.ndarray, bounds: tuple[float, float, float, float]
) -> np.ndarray:
    west, south, east, north = bounds
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


def _kinds(raw: pd.DataFrame, mapping: Mapping, col: Callable[[str], pd.Series]) -> pd.Series:
    """The canonical kind of each row, or missing where no rule or value gives one."""
    if mapping.kind_rules or mapping.kind_default is not None:
        kind = pd.Series(mapping.kind_default, index=raw.index, dtype=object)
        decided = pd.Series(False, index=raw.index)
        for rule in mapping.kind_rules:
            hit = rule.matches(raw[rule.column]) & ~decided
            kind[hit] = rule.kind
            decided |= hit
        return kind
    own = col(S.KIND).str.lower().str.replace(" ", "_").str.replace("-", "_")
    return own.where(own.isin(S.KINDS), None)


def _fingerprints(records: pd.DataFrame, *, source: str) -> pd.Series:
    """A stable identity per record: the feed and its id, or the record's content."""
    has_id = records[S.SOURCE_ID].notna()
    key = "id|" + source + "|" + records[S.SOURCE_ID].astype(str)
    no_id = records[~has_id]
    if len(no_id):  # the content only where there is no id: formatting times is most of the cost
        content = (
            no_id[S.OCCURRED_AT].dt.strftime("%Y-%m-%dT%H:%M:%S").fillna("")
            + "|"
            + no_id[S.LAT].round(6).astype(str)
            + "|"
            + no_id[S.LON].round(6).astype(str)
            + "|"
            + no_id[S.KIND].astype(str)
            + "|"
            + no_id[S.OFFICER_ID].fillna("").astype(str)
            + "|"
            + no_id[S.UNIT_ID].fillna("").astype(str)
            + "|"
            + no_id[S.SUBTYPE].fillna("").astype(str)
        )
        key = key.where(has_id, "row|" + content)
    blake2b = hashlib.blake2b
    return pd.Series(
        [blake2b(k.encode("utf-8"), digest_size=16).hexdigest() for k in key.to_numpy(dtype=object)],
        index=records.index,
        dtype=object,
    )


def reject_fingerprints(rejects: pd.DataFrame, *, source: str) -> pd.Series:
    """Identity of rejected rows, so importing the same file again adds no new rejects."""
    keys = (
        f"{source}|{row}|" + "\x1f".join(f"{k}={v}" for k, v in cells.items())
        for row, cells in zip(rejects[ROW], rejects["raw"], strict=True)
    )
    return pd.Series([_digest(k) for k in keys], index=rejects.index, dtype=object)


def id_fingerprint(source: str, source_id: str) -> str:
    """The identity of the record ``source_id`` of feed ``source``, as an import of it computes it."""
    return _digest(f"id|{source}|{source_id}")


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()

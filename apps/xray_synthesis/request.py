"""The synthesis request: how many images, which class, which seed, in which batch size."""

from __future__ import annotations

import json
import reprlib
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "REQUEST_FILENAME",
    "RequestError",
    "SynthesisRequest",
    "load_request",
    "parse_request",
]

REQUEST_FILENAME = "request.json"
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024  # a valid request is under 200 bytes; larger files are refused unread
_MAX_SEED = 2**63 - 1
_MAX_CLASS_CHARS = 64  # class names are DICOM LO text (at most 64 characters)
# what an error message may echo of a request value: requests come from outside, messages go to logs and reports
_ECHO = reprlib.Repr()  # keyword arguments need Python 3.12
_ECHO.maxlevel, _ECHO.maxdict, _ECHO.maxlist, _ECHO.maxtuple = 2, 4, 4, 4
_ECHO.maxstring, _ECHO.maxother, _ECHO.maxlong = 40, 40, 40


def _echo(value: Any) -> str:
    """A short, bounded ``repr`` of a request value for error messages (long strings give their length)."""
    text = _ECHO.repr(value)
    if isinstance(value, str) and len(value) > _ECHO.maxstring:
        text += f" ({len(value)} characters)"
    return text


class RequestError(ValueError):
    """A request that is malformed or out of range; the message names the file and the field."""


@dataclass(frozen=True)
class SynthesisRequest:
    """A validated request.

    Attributes:
        num_images: images to generate, in [2, max_images] (the diversity gate compares pairs).
        class_name: class name or index (as given; :func:`~monai_msgsagan.artifact.resolve_class` resolves it with the
            generator's classes), None for the default class (the first).
        seed: seed of the latent sampler; the same seed gives the same images.
        batch_size: images per generator call, in [1, max_batch_size].
    """

    num_images: int
    class_name: str | int | None
    seed: int
    batch_size: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the field names of the request file."""
        out = asdict(self)
        out["class"] = out.pop("class_name")
        return out


def _int_field(values: Mapping[str, Any], key: str, low: int, high: int, source: str) -> int:
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{source}: field '{key}' must be an integer, got {_echo(value)}.")
    if not low <= value <= high:
        raise RequestError(f"{source}: field '{key}' must be in [{low}, {high}], got {value}.")
    return value


def parse_request(
    values: Mapping[str, Any], defaults: Mapping[str, Any], max_images: int, max_batch_size: int, source: str
) -> SynthesisRequest:
    """Validate ``values`` (from the request file) over ``defaults`` (from app.yaml).

    Raises:
        RequestError: an unknown field, a value of the wrong type or out of range; the message names the field.
    """
    allowed = {"num_images", "class", "seed", "batch_size"}
    if not isinstance(values, Mapping):
        raise RequestError(f"{source}: the request must be a JSON object, got {type(values).__name__}.")
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise RequestError(f"{source}: unknown field {_echo(unknown[0])} (allowed: {', '.join(sorted(allowed))}).")
    merged = {**{k: v for k, v in defaults.items() if k in allowed}, **values}
    missing = sorted(allowed - set(merged) - {"class"})
    if missing:
        raise RequestError(f"{source}: field '{missing[0]}' is missing and has no default in app.yaml.")
    class_name = merged.get("class")
    if class_name is not None and (isinstance(class_name, bool) or not isinstance(class_name, (str, int))):
        raise RequestError(
            f"{source}: field 'class' must be a class name, a class index or null, got {_echo(class_name)}."
        )
    if isinstance(class_name, str) and len(class_name) > _MAX_CLASS_CHARS:
        raise RequestError(
            f"{source}: field 'class' must be at most {_MAX_CLASS_CHARS} characters, got {_echo(class_name)}."
        )
    return SynthesisRequest(
        num_images=_int_field(merged, "num_images", 2, max_images, source),
        class_name=class_name,
        seed=_int_field(merged, "seed", 0, _MAX_SEED, source),
        batch_size=_int_field(merged, "batch_size", 1, max_batch_size, source),
    )


def _refuse_duplicates(source: str):
    """``object_pairs_hook`` for :func:`json.loads`: a JSON object with a repeated key is refused, naming it."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise RequestError(f"{source}: duplicate field {_echo(key)} (JSON keys must be unique).")
            out[key] = value
        return out

    return hook


def load_request(
    input_path: str | Path,
    defaults: Mapping[str, Any],
    max_images: int,
    max_batch_size: int,
    max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> SynthesisRequest:
    """Read the request from ``input_path``.

    ``input_path`` is a JSON file, or a folder holding ``request.json`` or no JSON at all (then ``defaults`` apply).
    The request comes from outside the application, so it is read defensively: a file over ``max_bytes`` or not a
    regular file (a named pipe, a device) is refused before it is read, a repeated key is refused (JSON parsers
    silently keep the last one), nesting too deep for the parser is refused, and error messages echo at most a few
    dozen characters of any value.

    Raises:
        RequestError: oversize, unreadable or malformed JSON, other JSON files in the folder, or a bad field; the
            message names the file.
    """
    path = Path(input_path)
    if path.is_dir():
        candidates = sorted(path.glob("*.json"))
        if not candidates:
            return parse_request(
                {}, defaults, max_images, max_batch_size, f"defaults (no {REQUEST_FILENAME} in {path})"
            )
        if [c.name for c in candidates] != [REQUEST_FILENAME]:
            names = ", ".join(c.name for c in candidates)
            raise RequestError(f"{path}: expected only {REQUEST_FILENAME} among the JSON files, found {names}.")
        path = candidates[0]
    elif not path.exists():
        raise RequestError(f"request input {path} does not exist.")
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever, a device never end
            raise RequestError(f"{path}: not a regular file; refused unread.")
        size = info.st_size
        if size > max_bytes:
            raise RequestError(
                f"{path}: {size} bytes, over the {max_bytes}-byte limit of a request (limits.max_request_bytes); "
                "not read."
            )
        with open(path, encoding="utf-8") as f:
            text = f.read(max_bytes + 1)  # the file may grow between stat and read
        if len(text.encode("utf-8")) > max_bytes:
            raise RequestError(f"{path}: over the {max_bytes}-byte limit of a request (limits.max_request_bytes).")
        values = json.loads(text, object_pairs_hook=_refuse_duplicates(str(path)))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RequestError(f"{path}: not a readable JSON request ({e}).") from e
    except RecursionError as e:
        raise RequestError(f"{path}: not a usable JSON request (nested too deeply for the JSON parser).") from e
    return parse_request(values, defaults, max_images, max_batch_size, str(path))

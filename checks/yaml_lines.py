"""YAML that says where things are: each mapping knows its line, its keys' lines and the keys
it repeats (PyYAML keeps the last of a repeated key silently; the checks loader refuses them);
each sequence knows its line and its items' (a scalar item has nowhere else to keep one).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

MERGE_TAG = "tag:yaml.org,2002:merge"
ModelT = TypeVar("ModelT", bound=BaseModel)


class Lined(dict[str, Any]):
    """A mapping from the file: where it starts, where each key is, which keys repeat."""

    line: int = 0
    lines: dict[str, int]
    repeated: list[tuple[str, int, int]]  # (key, its line, the line of its first use)

    def line_of(self, key: object) -> int:
        return self.lines.get(str(key), self.line)


def line_at(mapping: Lined, loc: tuple[str | int, ...]) -> int:
    """The line of the deepest key along `loc` (list items and scalars have none of their own)."""
    line, value = mapping.line, mapping
    for key in loc:
        if not isinstance(value, Lined) or str(key) not in value:
            break
        line, value = value.line_of(key), value[str(key)]
    return line


def line_through(document: Lined, loc: tuple[Any, ...]) -> int:
    """The line along `loc`, through lists too (a rule or a schedule is a list item)."""
    line, value = document.line, document
    for key in loc:
        if isinstance(value, LinedList) and isinstance(key, int) and key < len(value):
            line, value = value.lines[key], value[key]
        elif isinstance(value, Lined) and str(key) in value:
            line, value = value.line_of(key), value[str(key)]
        else:
            break
    return line


def read_document(path: Path, what: str, shape: str) -> Lined:
    """The top mapping of the YAML file at `path` (empty if the file is), or ValueError saying
    what is wrong and on which line; `what` names the file, `shape` the mapping it should be."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: {what} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the {what}: {exc}") from exc
    try:
        document = load(text)
    except yaml.YAMLError as exc:
        line, problem = explain(exc, text)
        raise ValueError(f"{path}:{line}: not valid YAML: {problem}") from exc
    if document is None:
        return Lined()
    if not isinstance(document, Lined):
        raise ValueError(f"{path}:1: expected {shape}")
    return document


def validated(path: Path, document: Lined, model: type[ModelT]) -> tuple[ModelT | None, list[str]]:
    """`document` as `model`, and each problem with its line: keys given twice, then (the model
    then None) what the model refuses."""
    problems = [
        f"{path}:{line}: {field}: given twice (first on line {first})"
        for field, line, first in repeated_keys(document)
    ]
    try:
        return model.model_validate(plain(document)), problems
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            line = line_through(document, loc)
            problems.append(f"{path}:{line}: {'.'.join(map(str, loc))}: {error['msg']}")
        return None, problems


class LinedList(list[Any]):
    """A sequence from the file: where it starts, where each item is."""

    line: int = 0
    lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mappings are `Lined` and sequences `LinedList`."""


def _lined(loader: _Loader, node: yaml.MappingNode) -> Lined:
    first: dict[str, int] = {}
    repeated: list[tuple[str, int, int]] = []
    for key_node, _ in node.value:  # before merge keys (`<<`) are flattened into the node
        if key_node.tag == MERGE_TAG:
            continue
        key, line = str(loader.construct_object(key_node, deep=True)), key_node.start_mark.line + 1
        if key in first:
            repeated.append((key, line, first[key]))
        else:
            first[key] = line
    mapping = Lined((str(k), v) for k, v in loader.construct_mapping(node, deep=True).items())
    mapping.line, mapping.lines, mapping.repeated = node.start_mark.line + 1, first, repeated
    return mapping


def _lined_list(loader: _Loader, node: yaml.SequenceNode) -> LinedList:
    items = LinedList(loader.construct_sequence(node, deep=True))
    items.line, items.lines = node.start_mark.line + 1, [i.start_mark.line + 1 for i in node.value]
    return items


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _lined)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _lined_list)


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def explain(error: yaml.YAMLError, text: str) -> tuple[int, str]:
    """(line, what is wrong) of a YAML error, its marks as lines: PyYAML's own text names the
    stream `<unicode string>` and spreads over lines."""
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML refuses; its offset
        character = f"unacceptable character #x{error.character:04x}"
        return text.count("\n", 0, error.position) + 1, f"{character}: {error.reason}"
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return 1, str(error)
    line = error.problem_mark.line + 1
    said = error.problem or ""
    if error.context:  # what it was reading, from where
        start = error.context_mark.line + 1 if error.context_mark else line
        said += f" ({error.context}" + (f" from line {start})" if start != line else ")")
    return line, said


def repeated_keys(value: Any, path: str = "") -> Iterator[tuple[str, int, int]]:
    """Every repeated key in `value` and below: (dotted field, its line, the first's line)."""
    if isinstance(value, Lined):
        for key, line, first in value.repeated:
            yield f"{path}{key}", line, first
        for key, item in value.items():
            yield from repeated_keys(item, f"{path}{key}.")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from repeated_keys(item, f"{path}{index}.")


def plain(value: Any) -> Any:
    """`value` with plain dicts in place of Lined ones."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value

"""Loading YAML config files into pydantic models with messages a person can act on.

Every config-like file (carpool.yml, sites/*/mapping.yml, analysis plans) goes through
`load_model`: unknown keys and bad values become a `ConfigError` naming the file, the
line and the key path, never a pydantic traceback. Its size, its aliases and what they
expand to are bounded (`MAX_*`): an alias bomb is a one-line error, not 13 GB of memory.
"""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from etl.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
MAX_BYTES = 5 * 1024 * 1024   # a config, mapping or plan file
MAX_ALIASES = 1_000           # uses of anchors (*name)
MAX_NODES = 200_000           # values after expanding every alias


# libyaml's parser under PyYAML's safe constructor where PyYAML has it (about 10x faster than
# the pure-Python parser; the same nodes, marks and values); else the pure-Python safe loader
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> tuple[object, dict[tuple, int]]:
    """Parse YAML and return (data, {key path tuple: line number})."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{path}: {size:,} bytes; a config file holds at most {MAX_BYTES:,}")
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    loader = LOADER(text)   # parsed once: the values are constructed from the checked nodes, as yaml.load does
    try:
        node = loader.get_single_node()
        check_expansion(path, node)  # before anything walks or copies the expanded tree
        _no_duplicate_keys(path, node)
        lines = _key_lines(node, ())   # both before constructing, which merges `<<:` keys into the nodes
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        if "nesting depth" in str(getattr(exc, "problem", "")):   # libyaml's own limit
            raise ConfigError(f"{path}: nested too deeply to be a config file") from None
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config file") from None
    except ValueError as exc:  # a scalar YAML cannot construct, e.g. the date 2023-02-30
        line, key = _bad_scalar(node, ()) or ("?", "(unknown key)")
        raise ConfigError(f"{path}:{line}: {key}: invalid value ({exc})") from None
    finally:
        loader.dispose()
    return data, lines


def _no_duplicate_keys(path: Path, node, visited: set | None = None) -> None:
    """YAML lets a repeated key silently replace the first; in a config that hides a mistake."""
    visited = set() if visited is None else visited
    if id(node) in visited:  # an alias: its node was checked where it was defined
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                                  f"(first on line {seen[key]}); YAML would silently keep only the last one")
            seen[key] = key_node.start_mark.line + 1
            _no_duplicate_keys(path, value_node, visited)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _no_duplicate_keys(path, item, visited)


def check_expansion(path: Path, root) -> None:
    """Refuse an alias bomb: count anchors re-used (aliases) and the nodes the document
    expands to, sharing work between aliases of one anchor (a few microseconds per node)."""
    sizes: dict[int, int] = {}
    aliases = 0
    stack = set()

    def size(node) -> int:
        nonlocal aliases
        key = id(node)
        if key in sizes:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ConfigError(f"{path}: more than {MAX_ALIASES} aliases (*name); a config file needs few")
            return sizes[key]
        if key in stack:
            raise ConfigError(f"{path}: line {node.start_mark.line + 1}: an alias refers to itself (recursive YAML)")
        stack.add(key)
        children = ([c for kv in node.value for c in kv] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        total = 1 + sum(size(c) for c in children)
        stack.discard(key)
        sizes[key] = total
        if total > MAX_NODES:
            raise ConfigError(f"{path}: expands to more than {MAX_NODES:,} values through its aliases "
                              "(a YAML alias bomb?)")
        return total

    if root is not None:
        size(root)


def _bad_scalar(node, prefix: tuple) -> tuple[int, str] | None:
    """(line, key path) of the first scalar the YAML constructor rejects."""
    if isinstance(node, yaml.ScalarNode):
        try:
            yaml.SafeLoader("").construct_object(node, deep=True)
        except ValueError:
            return node.start_mark.line + 1, ".".join(str(p) for p in prefix) or "(top level)"
        return None
    children = (node.value if isinstance(node, yaml.MappingNode)
                else enumerate(node.value) if isinstance(node, yaml.SequenceNode) else [])
    for k, v in children:
        found = _bad_scalar(v, prefix + (k.value if isinstance(k, yaml.Node) else k,))
        if found:
            return found
    return None


def _key_lines(node, prefix: tuple, visited: set | None = None) -> dict[tuple, int]:
    visited = set() if visited is None else visited
    lines: dict[tuple, int] = {}
    if id(node) in visited:  # an alias: its lines are where the anchor is (no exponential walk)
        return lines
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (key_node.value,)
            lines[path] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, path, visited))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[prefix + (i,)] = item.start_mark.line + 1
            lines.update(_key_lines(item, prefix + (i,), visited))
    return lines


def load_model(path: Path, model: type[M], context: dict | None = None) -> M:
    """Parse `path` into `model`; any problem raises ConfigError naming file, line and key."""
    data, lines = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: file is empty")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(describe_errors(path, exc, lines)) from None


def describe_errors(path: Path, exc: ValidationError, lines: dict[tuple, int]) -> str:
    """One line per problem: `file:line: key.path: message`."""
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        line = _nearest_line(loc, lines)
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here; check the spelling)"
        where = f"{path}:{line}" if line else f"{path}"
        out.append(f"{where}: {key}: {msg}")
    return "\n".join(out)


def _nearest_line(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None

"""Cheap malformed-payload generation (plain ``random``, no shrinking): thousands per second.

Each mutation is either *definitely malformed* (a usage count replaced by a negative, a float, a string,
a bool, a list or null-typed object) or *maybe malformed* (a key deleted, an object replaced by a
scalar, the whole payload replaced). For both, a parser may only return a record / None or raise
UsageError; for definitely malformed ones it must raise UsageError.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from reference.usage import Usage
from suite.usage.corpus import EXPRESSES, GOLDEN, MODELS, render

USAGE_KEYS = ("usage", "usageMetadata")
BAD_COUNTS: tuple[Any, ...] = (-1, -(2**40), 1.5, 3.0, "12", True, False, [1], {"n": 1})
JUNK: tuple[Any, ...] = (None, "usage", 7, 2.5, [], [None], {}, True)


def _count_paths(node: Any, path: tuple[Any, ...] = (), inside: bool = False) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _count_paths(value, (*path, key), inside or key in USAGE_KEYS)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _count_paths(value, (*path, i), inside)
    elif inside and type(node) is int:
        yield path


def _node_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, (dict, list)):
        yield path
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield from _node_paths(value, (*path, key))


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> Any:
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict):
        del parent[path[-1]]
    return root


def seeds(fmt: str, rng: random.Random, n: int = 40) -> list[str]:
    """Valid payloads of ``fmt`` as JSON text (copied by json.loads, the cheapest deep copy)."""
    out = [json.dumps(p) for f, p, u, _ in GOLDEN if f == fmt and u is not None]
    can = EXPRESSES[fmt]
    for _ in range(n):
        output = rng.randrange(0, 5000)
        drawn = {"input_uncached": rng.randrange(0, 10**6), "cache_read": rng.randrange(0, 10**5),
                 "cache_write_5m": rng.randrange(0, 10**4), "cache_write_1h": rng.randrange(0, 10**4),
                 "output": output, "reasoning": rng.randrange(0, output + 1), "web_searches": rng.randrange(0, 3)}
        u = Usage(**{k: v if k in can else 0 for k, v in drawn.items()})  # type: ignore[arg-type]
        out.append(json.dumps(render(u, fmt, MODELS[fmt])))
    return out


def malformed(fmt: str, count: int, seed: int = 0) -> Iterator[tuple[Any, bool]]:
    """``count`` mutated payloads of ``fmt``: (payload, definitely_malformed)."""
    rng = random.Random(f"{fmt}:{seed}")
    texts = seeds(fmt, rng)
    for i in range(count):
        payload = json.loads(rng.choice(texts))
        kind = i % 4
        if kind < 2:  # half of all payloads: a usage count made invalid
            paths = list(_count_paths(payload))
            yield _set(payload, rng.choice(paths), rng.choice(BAD_COUNTS)), True
        elif kind == 2:
            paths = [p for p in _node_paths(payload) if p]
            path = rng.choice(paths) if paths else ()
            yield (_delete(payload, path) if path else payload), False
        else:
            paths = list(_node_paths(payload))
            yield _set(payload, rng.choice(paths), rng.choice(JUNK)), False

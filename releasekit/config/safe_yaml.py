"""The one YAML loader for every file releasekit reads itself.

PyYAML's `safe_load` keeps the last of two equal keys in a mapping without a word, and
builds an alias bomb ("billion laughs": anchors of anchors, nine deep) as shared objects
whose expansion only blows up later, when the document is validated or copied. This
loader refuses both, as `yaml.YAMLError`s carrying the position, so callers report them
like any syntax error:

- a key written twice in one mapping (merge keys `<<` may still be overridden);
- a document whose tree, with every alias expanded, has more than `MAX_EXPANDED_NODES`
  nodes, or an alias that contains itself. Anchors and aliases stay usable for DRY config.
"""

from __future__ import annotations

from typing import IO, Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# A releasekit.yml or profiles.yml has hundreds of nodes; a dbt_project.yml a few thousand.
MAX_EXPANDED_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A mapping holds the same key twice."""


class AliasExpansionError(ConstructorError):
    """Aliases expand the document past MAX_EXPANDED_NODES (or into themselves)."""


class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys and alias bombs."""

    expanded_nodes = 0  # the size of the last document, aliases expanded (read by tests)

    def construct_document(self, node: Node) -> Any:
        self.expanded_nodes = expanded_size(node)
        return super().construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            _refuse_duplicates(self, node)
        return super().construct_mapping(node, deep=deep)


def load_yaml(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """Like `yaml.safe_load`, through `SafeLoader`."""
    loader = SafeLoader(stream)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def expanded_size(root: Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """Nodes in the tree under `root` with every alias expanded; AliasExpansionError past
    `limit`. Each distinct node is measured once, so a bomb costs its written size."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise AliasExpansionError(
                None, None, "an alias refers to a node that contains it", node.start_mark
            )
        in_progress.add(key)
        total = 1 + sum(size(child) for child in _children(node))
        in_progress.discard(key)
        if total > limit:
            raise AliasExpansionError(
                None,
                None,
                f"aliases expand the document past {limit:,} nodes (an alias bomb?)",
                node.start_mark,
            )
        sizes[key] = total
        return total

    return size(root)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _refuse_duplicates(loader: SafeLoader, node: MappingNode) -> None:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
            continue
        key = loader.construct_object(key_node)
        if key in seen:
            raise DuplicateKeyError(
                "while reading a mapping",
                node.start_mark,
                f"key {key!r} appears twice (first at line {seen[key].line + 1}); "
                "YAML would keep only the last",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark

"""Capabilities spread over the escalation graph: which principals reach which capability, and the hop-by-hop path
behind each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from dynamoguard.access.escalation import Graph, Hop, Node


def explore(graph: Graph, starts: Iterable[Node], saturated) -> list[Node]:
    """``starts`` and every node reachable from them; ``saturated(node)``: nothing to gain beyond it."""
    seen = dict.fromkeys(starts)
    queue = list(seen)
    while queue:
        node = queue.pop()
        if saturated(node):
            graph._edges[node] = []
            continue
        for hop in graph.edges(node):
            if hop.family is None and hop.target not in seen:
                seen[hop.target] = None
                queue.append(hop.target)
    return list(seen)


def propagate(graph: Graph, nodes: Sequence[Node], masks: Mapping[Node, int],
              allowed_only: bool) -> tuple[dict[Node, int], dict[Node, dict[int, Hop]]]:
    """What each node can reach (bit masks of terminal capabilities) and, per gained bit, its next hop.

    Rounds of relaxation over the edges (round k finds the paths of k hops), so each path is a
    shortest one; ``allowed_only`` follows only hops allowed without conditions. A family hop gains
    what any of its members has; the hop recorded names the member it goes through.
    """
    best = {n: masks.get(n, 0) for n in nodes}
    via: dict[Node, dict[int, Hop]] = {}
    while True:
        previous = dict(best)
        families: dict[tuple[str, frozenset[str]], tuple[int, dict[int, str]]] = {}
        for node in nodes:
            for hop in graph.edges(node):
                if allowed_only and hop.decision != "allowed":
                    continue
                if hop.family is None:
                    gain = previous.get(hop.target, 0) & ~best[node]
                    members = None
                else:
                    if hop.family not in families:
                        families[hop.family] = _family_mask(graph, hop.family, previous)
                    mask, members = families[hop.family]
                    gain = mask & ~best[node]
                if not gain:
                    continue
                best[node] |= gain
                hops = via.setdefault(node, {})
                for bit in _bits(gain):
                    hops[bit] = hop if members is None else replace(hop, target=Node(members[bit]), family=None)
        if best == previous:
            return best, via


def _family_mask(graph: Graph, family: tuple[str, frozenset[str]],
                 masks: Mapping[Node, int]) -> tuple[int, dict[int, str]]:
    """What the members of a family (but the excluded ones) have, and for each bit the first member having it."""
    key, excluded = family
    mask, members = 0, {}
    for member in graph.estate.families.get(key, ()):
        gain = masks.get(Node(member), 0) & ~mask if member not in excluded else 0
        if gain:
            mask |= gain
            for bit in _bits(gain):
                members[bit] = member
    return mask, members


def _bits(mask: int) -> Iterable[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def path_to(via: Mapping[Node, Mapping[int, Hop]], start: Node, bit: int) -> tuple[Hop, ...]:
    """The hops from ``start`` to the node that has capability ``bit`` itself."""
    path, node = [], start
    while bit in via.get(node, {}):
        hop = via[node][bit]
        path.append(hop)
        node = hop.target
    return tuple(path)


def path_decision(path: Sequence[Hop]) -> str:
    return "allowed" if all(h.decision == "allowed" for h in path) else "conditional"

"""Inclusion proofs over the sealed ledger, built from stored tiles rather than every leaf.

A subtree whose bounds are multiples of the tile size is the Merkle tree of its tiles' roots
(RFC 9162 splits at powers of two, and so at tile bounds). Only the tile holding the event and
the last, incomplete tile are read leaf by leaf: a proof costs three queries whatever the size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from audit import merkle
from audit.models import AuditEvent, MerkleTile, PrunedLeaf, SignedTreeHead

TILE = MerkleTile.TILE_SIZE


def sealed_leaves(first: int, last: int) -> list[bytes]:
    """The leaf hashes of sealed events ``first`` to ``last`` (sequence numbers, both included),
    in order: those of events still held and those of events whose content was pruned."""
    kept = AuditEvent.objects.filter(sequence__gte=first, sequence__lte=last).order_by("sequence")
    leaves = list(kept.values_list("sequence", "leaf_hash"))
    if len(leaves) < last - first + 1:  # some were pruned: merge their kept leaves in
        pruned = PrunedLeaf.objects.filter(sequence__gte=first, sequence__lte=last)
        leaves = sorted(leaves + list(pruned.values_list("sequence", "leaf_hash")), key=lambda row: row[0])
    return [bytes(leaf) for _, leaf in leaves]


class SealedTree:
    """The Merkle tree of the first ``size`` sealed events, as stored."""

    def __init__(self, size: int):
        self.size = size
        self._tile_leaves: dict[int, list[bytes]] = {}

    @cached_property
    def _tiles(self) -> list[bytes]:
        rows = (
            MerkleTile.objects.filter(index__lt=self.size // TILE)
            .order_by("index")
            .values_list("hash", flat=True)
        )
        return [bytes(value) for value in rows]

    def _leaves_of_tile(self, tile: int) -> list[bytes]:
        if tile not in self._tile_leaves:
            self._tile_leaves[tile] = sealed_leaves(tile * TILE + 1, min((tile + 1) * TILE, self.size))
        return self._tile_leaves[tile]

    def subtree_root(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end) (0-based), using tiles wherever the range allows."""
        if start % TILE == 0 and end % TILE == 0 and end > start:
            return merkle.root_from_leaf_hashes(self._tiles[start // TILE : end // TILE])
        if start // TILE == (end - 1) // TILE:
            offset = start // TILE * TILE
            leaves = self._leaves_of_tile(start // TILE)
            return merkle.root_from_leaf_hashes(leaves[start - offset : end - offset])
        split = start + merkle.largest_power_of_two_below(end - start)
        return merkle.node_hash(self.subtree_root(start, split), self.subtree_root(split, end))

    def inclusion_proof(self, sequence: int) -> list[bytes]:
        """PATH for the event with this sequence number (1-based) in this tree."""
        return merkle.inclusion_path(sequence - 1, self.size, self.subtree_root)


@dataclass(frozen=True)
class InclusionEvidence:
    """An event's inclusion proof against a signed tree head, and whether it checks out."""

    head: SignedTreeHead
    leaf_hash: bytes
    proof: list[bytes]
    verified: bool


def event_inclusion(event: AuditEvent) -> InclusionEvidence | None:
    """Prove that a sealed event is in the latest signed tree head (None if no head covers it yet)."""
    if event.sequence is None:
        return None
    head = SignedTreeHead.objects.order_by("-number").first()
    if head is None or head.tree_size < event.sequence:
        return None
    leaf = merkle.leaf_hash(bytes(event.canonical))
    proof = SealedTree(head.tree_size).inclusion_proof(event.sequence)
    verified = merkle.verify_inclusion(leaf, event.sequence - 1, head.tree_size, proof, bytes(head.root_hash))
    return InclusionEvidence(head=head, leaf_hash=leaf, proof=proof, verified=verified)

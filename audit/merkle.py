"""RFC 9162 Merkle trees: tree hashes, inclusion proofs and consistency proofs.

RFC 9162 (Certificate Transparency v2) uses the same tree as RFC 6962: SHA-256, a 0x00 prefix for
leaves and 0x01 for interior nodes, and for n > 1 leaves a left subtree holding the largest power of
two strictly below n. Because the shape depends only on n, an append-only log can be summarised by
the few perfect subtrees along its right edge (see :class:`Frontier`), and any earlier tree head can
be proven a prefix of a later one.

Every function here except :func:`leaf_hash` works on leaf *hashes*, never on raw entries, so a
caller can store the 32-byte leaf hashes once and rebuild roots and proofs from them alone.

The module is deliberately self-contained (hashlib and the standard library only) so that an
external auditor can read and run it without Django.
"""

from __future__ import annotations

import hashlib
import operator
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "Frontier",
    "batch_path",
    "consistency_path",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_batch",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

# Domain separation between leaves and interior nodes: without it an interior node's two children
# could be passed off as a leaf's data (a second-preimage attack on the tree).
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

HASH_SIZE = hashlib.sha256().digest_size

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}): the root of the empty tree, the hash of the empty string (RFC 9162 §2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """Return the hash of a leaf entry: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the hash of an interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of a list of leaf hashes (``EMPTY_ROOT`` for no leaves).

    Runs in O(n) hashes and without recursion, so it copes with millions of leaves.
    """
    return _subtree_root(leaves, 0, len(leaves))


class Frontier:
    """The compact state of an append-only tree: enough to extend it and to compute its root.

    A tree of ``size`` leaves is, by RFC 9162's shape rule, a run of perfect subtrees whose sizes
    are the set bits of ``size`` from the highest to the lowest. ``nodes`` holds their roots in
    that order, so the state is at most 64 hashes however large the log grows, and fits in a
    database row (see :meth:`to_json`).
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self, size: int = 0, nodes: list[bytes] | None = None) -> None:
        """Create a frontier for a tree of ``size`` leaves from its subtree roots.

        Raise ValueError unless ``size`` is a non-negative integer and ``nodes`` holds exactly one
        32-byte hash per set bit of ``size``. Any malformed stored state is a ValueError, whatever
        the offending type, so that loading a damaged row fails in one predictable way.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"Frontier size must be a non-negative integer, not {size!r}.")
        nodes = [] if nodes is None else nodes
        if not isinstance(nodes, list | tuple):
            raise ValueError("Frontier nodes must be a list of hashes.")
        if len(nodes) != size.bit_count():
            raise ValueError(
                f"A tree of {size} leaves has {size.bit_count()} frontier nodes, not {len(nodes)}."
            )
        for node in nodes:
            _require_hash(node, "Frontier node")
        self._size = size
        self._nodes = list(nodes)

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The roots of the perfect subtrees along the right edge, largest (leftmost) first."""
        return tuple(self._nodes)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash (not raw data: hash entries with :func:`leaf_hash` first)."""
        _require_hash(leaf, "Leaf hash")
        carry = leaf
        # Appending is binary increment: every trailing one bit of the size is a perfect subtree
        # of the same height as the carry, so the two merge and carry upwards.
        size = self._size
        while size & 1:
            carry = node_hash(self._nodes.pop(), carry)
            size >>= 1
        self._nodes.append(carry)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append each leaf hash of ``leaves`` in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """Return the Merkle Tree Hash of the tree (``EMPTY_ROOT`` when it has no leaves)."""
        if not self._nodes:
            return EMPTY_ROOT
        # Each subtree is the left child of the node joining it to everything to its right, so
        # the root folds from the smallest (rightmost) subtree towards the largest.
        root = self._nodes[-1]
        for node in reversed(self._nodes[:-1]):
            root = node_hash(node, root)
        return root

    def to_json(self) -> dict[str, Any]:
        """Return the state as a JSON-serialisable dict: ``{"size": int, "nodes": [hex, ...]}``."""
        return {"size": self._size, "nodes": [node.hex() for node in self._nodes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Frontier:
        """Rebuild a frontier from :meth:`to_json` output; raise ValueError if it is malformed."""
        if not isinstance(data, dict) or set(data) != {"size", "nodes"}:
            raise ValueError("Frontier JSON must be an object with exactly 'size' and 'nodes'.")
        hex_nodes = data["nodes"]
        if not isinstance(hex_nodes, list) or not all(isinstance(node, str) for node in hex_nodes):
            raise ValueError("Frontier JSON 'nodes' must be a list of hex strings.")
        try:
            nodes = [bytes.fromhex(node) for node in hex_nodes]
        except ValueError as error:
            raise ValueError(f"Frontier JSON node is not hexadecimal: {error}") from error
        return cls(data["size"], nodes)

    def copy(self) -> Frontier:
        """Return an independent frontier with the same state."""
        return Frontier(self._size, self._nodes)

    def __eq__(self, other: object) -> bool:
        """Frontiers are equal when they describe the same tree."""
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._nodes == other._nodes

    __hash__ = None  # mutable, so unhashable despite defining __eq__

    def __repr__(self) -> str:
        """Show the size and root, which identify the tree."""
        return f"Frontier(size={self._size}, root={self.root().hex()})"


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """Return PATH(index, D[size]), the RFC 9162 §2.1.3.1 inclusion proof of one leaf.

    ``leaves`` are leaf hashes; the tree is made of the first ``size`` of them (all by default).
    The proof lists sibling subtree roots from the leaf upwards and has at most ⌈log2 size⌉
    entries. Raise ValueError unless 0 <= index < size <= len(leaves).
    """
    size = _tree_size(leaves, size)
    return inclusion_path(index, size, lambda start, end: _subtree_root(leaves, start, end))


def inclusion_path(index: int, size: int, subtree_root: Callable[[int, int], bytes]) -> list[bytes]:
    """PATH(index, D[size]) given a function returning MTH of the leaves in [start, end).

    Lets a caller that stores internal nodes (tiles) answer without reading every leaf.
    Raise ValueError unless 0 <= index < size.
    """
    index = operator.index(index)
    if not 0 <= index < size:
        raise ValueError(f"Leaf index {index} is outside a tree of {size} leaves.")

    # PATH recurses into the half holding the leaf and emits the other half's root after the
    # deeper path; walking down the same halves and reversing gives the same list without
    # recursion. Sibling sizes halve at each level, so the whole proof costs O(size) hashes.
    proof = []
    start, end = 0, size
    while end - start > 1:
        split = start + largest_power_of_two_below(end - start)
        if index < split:
            proof.append(subtree_root(split, end))
            end = split
        else:
            proof.append(subtree_root(start, split))
            start = split
    proof.reverse()
    return proof


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Return whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``(size, root)``.

    Implements the RFC 9162 §2.1.3.2 algorithm. Returns False, never raises, for any wrong or
    malformed input, including a proof of the wrong length.

    The result binds the leaf to ``root``, and ``(index, size)`` only through it: proof nodes carry
    no position, so a proof whose left/right pattern is shared by another ``(index, size)`` pair
    verifies for both. Take ``size`` and ``root`` from the same signed tree head.
    """
    path = _hash_list(proof)
    if path is None or not (_is_hash(leaf) and _is_hash(root)):
        return False
    if not (_is_count(index) and _is_count(size)) or index >= size:
        return False

    # fn is the node's index at the current level and sn the last index at that level; they
    # decide on which side each proof node sits, and which levels the node is promoted through
    # unpaired (the right edge of an unbalanced tree).
    fn, sn = index, size - 1
    computed = leaf
    for sibling in path:
        if sn == 0:
            return False  # more proof nodes than levels: the proof is too long
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            computed = node_hash(computed, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and computed == root


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int | None = None) -> list[bytes]:
    """Return PROOF(old_size, D[new_size]), the RFC 9162 §2.1.4.1 consistency proof.

    It proves that the tree of the first ``old_size`` leaf hashes is a prefix of the tree of the
    first ``new_size`` (all by default). The proof is empty when ``old_size`` is 0 or equal to
    ``new_size``, where the RFC defines no proof and none is needed; otherwise it has at most
    ⌈log2 new_size⌉ + 1 entries. Raise ValueError unless 0 <= old_size <= new_size <= len(leaves).
    """
    new_size = _tree_size(leaves, new_size)
    old_size = operator.index(old_size)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"Old size {old_size} is not between 0 and the new size {new_size}.")
    if old_size in (0, new_size):
        return []

    return consistency_path(old_size, new_size, lambda start, end: _subtree_root(leaves, start, end))


def consistency_path(old_size: int, new_size: int, subtree_root: Callable[[int, int], bytes]) -> list[bytes]:
    """PROOF(old_size, D[new_size]) given a function returning MTH of the leaves in [start, end)
    (as :func:`inclusion_path` takes one); empty when ``old_size`` is 0 or ``new_size``."""
    if old_size in (0, new_size):
        return []
    # Iterative SUBPROOF: descend the halves of the new tree that contain the old tree's right
    # edge. ``known`` is SUBPROOF's flag: it stays true while the old tree is still a whole
    # subtree whose root the verifier already holds, i.e. until the walk first turns right.
    proof = []
    start, end = 0, new_size
    remaining = old_size
    known = True
    while remaining != end - start:
        half = largest_power_of_two_below(end - start)
        split = start + half
        if remaining <= half:
            proof.append(subtree_root(split, end))
            end = split
        else:
            proof.append(subtree_root(start, split))
            start = split
            remaining -= half
            known = False
    if not known:
        proof.append(subtree_root(start, end))
    proof.reverse()
    return proof


def batch_path(indices: Sequence[int], size: int, subtree_root: Callable[[int, int], bytes]) -> list[bytes]:
    """The hashes that, with the leaves at ``indices`` (sorted, distinct, 0-based), rebuild the
    root of the tree of ``size`` leaves: the root of every largest subtree holding none of them,
    left to right. One proof for many leaves; its size grows with the number of runs of
    consecutive indices (times log2 size), not with the number of leaves."""
    proof: list[bytes] = []
    for start, end, known in _batch_walk(indices, size):
        if not known:
            proof.append(subtree_root(start, end))
    return proof


def root_from_batch(
    indices: Sequence[int], size: int, leaves: Iterable[bytes], proof: Iterable[bytes]
) -> bytes | None:
    """The root rebuilt from the leaf hashes at ``indices`` (sorted, distinct, 0-based; ``leaves``
    in the same order) and a :func:`batch_path` proof; None when the leaves or the proof run out
    early or are left over (a proof of the wrong shape)."""
    leaf_iter, proof_iter = iter(leaves), iter(proof)
    stack: list[tuple[int, bytes]] = []  # (level, hash) of finished subtrees, merged as they pair
    try:
        for start, end, known in _batch_walk(indices, size):
            node = next(leaf_iter) if known else next(proof_iter)
            if not (isinstance(node, bytes) and len(node) == HASH_SIZE):
                return None
            stack.append((end - start, node))
            _merge(stack)
    except StopIteration:
        return None
    if next(leaf_iter, None) is not None or next(proof_iter, None) is not None:
        return None
    while len(stack) > 1:  # the right edge of an unbalanced tree: fold from the right
        _, right = stack.pop()
        width, left = stack.pop()
        stack.append((width, node_hash(left, right)))
    return stack[0][1] if stack else EMPTY_ROOT


def _merge(stack: list[tuple[int, bytes]]) -> None:
    """Pair the two last subtrees while they are siblings of equal width (a perfect subtree)."""
    while len(stack) >= 2 and stack[-1][0] == stack[-2][0]:
        width, right = stack.pop()
        _, left = stack.pop()
        stack.append((width * 2, node_hash(left, right)))


def _batch_walk(indices: Sequence[int], size: int):
    """The subtrees a batch proof is made of, left to right, as (start, end, is_a_given_leaf):
    each given leaf, and each largest subtree with no given leaf (its root is in the proof).
    The walk descends only into subtrees holding given leaves, so it costs O(k log size) steps
    for k runs of consecutive leaves, each step a bisection of ``indices``."""
    if size == 0:
        return
    pending = [(0, size)]
    while pending:
        start, end = pending.pop()
        at = bisect_left(indices, start)
        if at == len(indices) or indices[at] >= end:
            yield start, end, False
        elif end - start == 1:
            yield start, end, True
        else:
            split = start + largest_power_of_two_below(end - start)
            pending.append((split, end))
            pending.append((start, split))


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether ``proof`` shows tree ``(old_size, old_root)`` is a prefix of ``(new_size, new_root)``.

    Implements the RFC 9162 §2.1.4.2 algorithm for 0 < old_size < new_size. Outside that range
    the only valid proof is empty: equal sizes need equal roots, and an old size of 0 needs
    ``old_root`` to be ``EMPTY_ROOT`` (the empty tree is a prefix of every tree, so ``new_root``
    is then unconstrained unless ``new_size`` is 0 too). Returns False, never raises, for any
    wrong or malformed input.

    As with :func:`verify_inclusion`, the sizes are bound only through the roots: a proof also
    verifies for another ``(old_size, new_size)`` pair whose proof has the same shape, so take
    each size and root from the same signed tree head.
    """
    path = _hash_list(proof)
    if path is None or not (_is_hash(old_root) and _is_hash(new_root)):
        return False
    if not (_is_count(old_size) and _is_count(new_size)) or old_size > new_size:
        return False
    if old_size == 0:
        return not path and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not path and old_root == new_root
    if not path:
        return False

    # When the old tree is a perfect subtree of the new one its root is not in the proof (the
    # verifier already has it), so it is put back in front to start both folds from it.
    if old_size & (old_size - 1) == 0:
        path = [old_root, *path]

    # fn/sn play the same role as in verify_inclusion, tracking the old tree's last leaf. Skipping
    # the trailing one bits of fn starts from the largest perfect subtree ending at that leaf,
    # which is the first proof node. Nodes to the left rebuild both roots; nodes to the right
    # belong only to the new tree.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_computed = new_computed = path[0]
    for node in path[1:]:
        if sn == 0:
            return False  # more proof nodes than levels: the proof is too long
        if fn & 1 or fn == sn:
            old_computed = node_hash(node, old_computed)
            new_computed = node_hash(node, new_computed)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            new_computed = node_hash(new_computed, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and old_computed == old_root and new_computed == new_root


def largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly less than ``n`` (RFC 9162's k), for n >= 2."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """Return MTH(leaves[start:end]) bottom-up, in end - start - 1 hashes and without recursion."""
    if start == end:
        return EMPTY_ROOT
    level = [leaves[i] for i in range(start, end)]
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        # An unpaired last node moves up unchanged rather than being duplicated (as some other
        # Merkle trees do); this is exactly the RFC's "largest power of two" split, level by level.
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def _tree_size(leaves: Sequence[bytes], size: int | None) -> int:
    """Return the requested tree size, defaulting to all leaves; raise ValueError if out of range."""
    if size is None:
        return len(leaves)
    size = operator.index(size)
    if not 0 <= size <= len(leaves):
        raise ValueError(f"Tree size {size} is outside 0..{len(leaves)}, the number of leaves given.")
    return size


def _is_hash(value: object) -> bool:
    """Return whether ``value`` is a bytes object of SHA-256 length."""
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    """Return whether ``value`` is a non-negative int (bool, though an int, is no count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _require_hash(value: object, what: str) -> None:
    """Raise ValueError unless ``value`` is a 32-byte hash."""
    if not _is_hash(value):
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, not {value!r:.80}.")


def _hash_list(proof: object) -> list[bytes] | None:
    """Return ``proof`` as a list of hashes, or None if it is not a sequence of 32-byte hashes."""
    # A lone bytes object is itself a sequence; taking it as a proof would iterate over ints.
    if isinstance(proof, bytes | bytearray | str) or not isinstance(proof, Sequence):
        return None
    path = list(proof)
    return path if all(_is_hash(node) for node in path) else None

"""Tests for audit.merkle against an independent, literal transcription of RFC 9162 §2.1.

The reference functions below follow the RFC's recursive definitions word for word and hash with
hashlib directly, sharing no code with the module, so an agreement between the two is evidence
rather than a tautology. No database is involved.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.merkle import (
    EMPTY_ROOT,
    LEAF_PREFIX,
    NODE_PREFIX,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# Distinct entries of varying length, starting with the empty entry.
ENTRIES = [b""] + [f"audit event #{i}: {'x' * (i % 11)}".encode() for i in range(1, 301)]
LEAVES = [hashlib.sha256(b"\x00" + entry).digest() for entry in ENTRIES]
ROOTS = [root_from_leaf_hashes(LEAVES[:n]) for n in range(len(LEAVES) + 1)]

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)


# --- Reference implementation: RFC 9162 §2.1, transcribed literally -----------------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_k(n: int) -> int:
    """The largest power of two smaller than n (n > 1), found by doubling as the RFC states it."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) over raw entries, §2.1.1."""
    n = len(entries)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + entries[0])
    k = ref_k(n)
    return _sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:]))


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), §2.1.3.1."""
    n = len(entries)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), §2.1.4.1."""
    n = len(entries)
    if m == n:
        return [] if b else [ref_mth(entries)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, entries[:k], b), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def ref_proof(m: int, entries: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]), §2.1.4.1."""
    return ref_subproof(m, entries, True)


@functools.cache
def ref_path_shape(m: int, n: int) -> tuple[str, ...]:
    """Which side each node of PATH(m, D[n]) sits on: all a verifier learns from (index, size)."""
    if n == 1:
        return ()
    k = ref_k(n)
    if m < k:
        return (*ref_path_shape(m, k), "right")
    return (*ref_path_shape(m - k, n - k), "left")


@functools.cache
def ref_proof_shape(m: int, n: int, b: bool = True) -> tuple[str, ...]:
    """The role of each node of PROOF(m, D[n]): all a verifier learns from (old_size, new_size)."""
    if m == n:
        return () if b else ("old subtree",)
    k = ref_k(n)
    if m <= k:
        return (*ref_proof_shape(m, k, b), "new only, right")
    return (*ref_proof_shape(m - k, n - k, False), "shared, left")


def ceil_log2(n: int) -> int:
    return math.ceil(math.log2(n))


# --- Primitives and known answers -----------------------------------------------------------------


def test_prefixes_are_the_rfc_domain_separators():
    """Leaves are hashed under 0x00 and interior nodes under 0x01 (RFC 9162 §2.1.1)."""
    assert LEAF_PREFIX == b"\x00"
    assert NODE_PREFIX == b"\x01"


def test_leaf_and_node_hashes_follow_their_definitions():
    """leaf_hash is SHA-256(0x00 ‖ data) and node_hash is SHA-256(0x01 ‖ left ‖ right)."""
    left, right = LEAVES[1], LEAVES[2]
    assert leaf_hash(b"entry") == hashlib.sha256(b"\x00entry").digest()
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != node_hash(right, left)


def test_empty_tree_root_is_the_hash_of_the_empty_string():
    """GIVEN no leaves THEN every way of computing the root gives SHA-256 of the empty string."""
    expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert hashlib.sha256(b"").hexdigest() == expected
    assert EMPTY_ROOT.hex() == expected
    assert root_from_leaf_hashes([]).hex() == expected
    assert Frontier().root().hex() == expected


def test_root_of_one_empty_leaf_is_the_hash_of_a_zero_byte():
    """GIVEN the single entry b"" THEN the root is its leaf hash, SHA-256(0x00)."""
    expected = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert hashlib.sha256(b"\x00").hexdigest() == expected
    assert root_from_leaf_hashes([leaf_hash(b"")]).hex() == expected


def test_rfc_9162_seven_leaf_example():
    """The worked example of RFC 9162 §2.1.5: the named nodes, proofs and consistency proofs."""
    node = {name: LEAVES[i] for i, name in enumerate("abcdef")}
    node["j"] = LEAVES[6]  # d6 has no sibling, so its leaf hash is the node j
    node["g"] = _sha256(b"\x01" + node["a"] + node["b"])
    node["h"] = _sha256(b"\x01" + node["c"] + node["d"])
    node["i"] = _sha256(b"\x01" + node["e"] + node["f"])
    node["k"] = _sha256(b"\x01" + node["g"] + node["h"])
    node["l"] = _sha256(b"\x01" + node["i"] + node["j"])
    leaves = LEAVES[:7]

    def named(names: str) -> list[bytes]:
        return [node[name] for name in names]

    assert root_from_leaf_hashes(leaves) == _sha256(b"\x01" + node["k"] + node["l"])
    assert inclusion_proof(leaves, 0) == named("bhl")
    assert inclusion_proof(leaves, 3) == named("cgl")
    assert inclusion_proof(leaves, 4) == named("fjk")
    assert inclusion_proof(leaves, 6) == named("ik")
    assert consistency_proof(leaves, 3) == named("cdgl")
    assert consistency_proof(leaves, 4) == named("l")
    assert consistency_proof(leaves, 6) == named("ijk")


# --- Agreement with the reference -----------------------------------------------------------------


@pytest.mark.parametrize("n", range(71))
def test_root_matches_reference(n):
    """GIVEN the first n entries THEN root_from_leaf_hashes equals the RFC's recursive MTH."""
    assert root_from_leaf_hashes(LEAVES[:n]) == ref_mth(ENTRIES[:n])


@pytest.mark.parametrize("n", range(1, 41))
def test_inclusion_proofs_match_reference_and_verify(n):
    """GIVEN a tree of n leaves WHEN proving each leaf THEN the proof is the RFC's PATH and verifies."""
    root = ref_mth(ENTRIES[:n])
    for index in range(n):
        proof = inclusion_proof(LEAVES[:n], index)
        assert proof == ref_path(index, ENTRIES[:n]), index
        assert verify_inclusion(LEAVES[index], index, n, proof, root), index


@pytest.mark.parametrize("n", range(1, 41))
def test_consistency_proofs_match_reference_and_verify(n):
    """GIVEN trees of m <= n leaves THEN the proof is the RFC's PROOF(m, D[n]) and verifies."""
    new_root = ref_mth(ENTRIES[:n])
    for m in range(1, n + 1):
        proof = consistency_proof(LEAVES[:n], m)
        assert proof == ref_proof(m, ENTRIES[:n]), m
        assert verify_consistency(m, n, ref_mth(ENTRIES[:m]), new_root, proof), m


def test_size_argument_proves_against_a_prefix_of_the_leaves():
    """GIVEN more leaves than the tree size THEN only the first `size` leaves make the tree."""
    for n in (1, 5, 16, 37):
        for index in range(n):
            assert inclusion_proof(LEAVES, index, n) == inclusion_proof(LEAVES[:n], index)
        for m in range(n + 1):
            assert consistency_proof(LEAVES, m, n) == consistency_proof(LEAVES[:n], m)


def test_trivial_consistency_needs_an_empty_proof():
    """GIVEN an old size of 0 or equal sizes THEN the proof is empty and only the roots are checked."""
    assert consistency_proof(LEAVES[:9], 0) == []
    assert consistency_proof(LEAVES[:9], 9) == []
    assert consistency_proof([], 0) == []

    assert verify_consistency(0, 9, EMPTY_ROOT, ROOTS[9], [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(9, 9, ROOTS[9], ROOTS[9], [])

    assert not verify_consistency(0, 9, ROOTS[1], ROOTS[9], [])  # the empty tree has one root
    assert not verify_consistency(0, 0, EMPTY_ROOT, ROOTS[1], [])
    assert not verify_consistency(9, 9, ROOTS[9], ROOTS[8], [])
    assert not verify_consistency(9, 9, ROOTS[9], ROOTS[9], [LEAVES[0]])
    assert not verify_consistency(0, 9, EMPTY_ROOT, ROOTS[9], [LEAVES[0]])


# --- Proof sizes -----------------------------------------------------------------------------------


def test_inclusion_proofs_have_at_most_ceil_log2_n_nodes():
    """GIVEN any leaf of a tree of n leaves THEN its proof has at most ⌈log2 n⌉ nodes (one per level)."""
    for n in range(1, 130):
        lengths = [len(inclusion_proof(LEAVES[:n], index)) for index in range(n)]
        assert max(lengths) <= ceil_log2(n), n
        assert lengths[0] == ceil_log2(n), n  # the leftmost leaf is always at full depth


def test_consistency_proofs_have_at_most_ceil_log2_n_plus_one_nodes():
    """GIVEN 0 < m < n THEN PROOF(m, D[n]) has at most ⌈log2 n⌉ + 1 nodes, the bound RFC 9162 states.

    The + 1 is needed: the RFC's own example PROOF(3, D[7]) has 4 nodes while ⌈log2 7⌉ = 3.
    """
    for n in range(2, 130):
        for m in range(1, n):
            assert len(consistency_proof(LEAVES[:n], m)) <= ceil_log2(n) + 1, (m, n)
    assert len(consistency_proof(LEAVES[:7], 3)) == ceil_log2(7) + 1


# --- Frontier --------------------------------------------------------------------------------------


def test_frontier_root_matches_the_full_computation_at_every_size():
    """GIVEN leaves appended one by one THEN after each the root equals the root of that prefix."""
    frontier = Frontier()
    assert frontier.root() == EMPTY_ROOT
    for size, leaf in enumerate(LEAVES, start=1):
        frontier.append(leaf)
        assert frontier.size == size
        assert len(frontier.nodes) == size.bit_count()
        assert frontier.root() == root_from_leaf_hashes(LEAVES[:size]), size


def test_frontier_nodes_are_the_right_edge_subtree_roots():
    """GIVEN 13 = 8 + 4 + 1 leaves THEN the frontier holds the roots of those three perfect subtrees."""
    frontier = Frontier()
    frontier.extend(LEAVES[:13])
    assert frontier.nodes == (ROOTS[8], root_from_leaf_hashes(LEAVES[8:12]), LEAVES[12])
    assert Frontier(13, list(frontier.nodes)).root() == ROOTS[13]


def test_frontier_json_round_trip_resumes_appending():
    """GIVEN a frontier stored as JSON WHEN reloaded and extended THEN it matches one never stored."""
    for size in (0, 1, 2, 7, 64, 100, 255):
        frontier = Frontier()
        frontier.extend(LEAVES[:size])
        stored = json.loads(json.dumps(frontier.to_json()))
        assert stored == {"size": size, "nodes": [node.hex() for node in frontier.nodes]}

        restored = Frontier.from_json(stored)
        assert restored == frontier
        assert restored.root() == ROOTS[size]
        restored.extend(LEAVES[size : size + 45])
        assert restored.root() == ROOTS[size + 45]


def test_frontier_copy_is_independent():
    """GIVEN a copy of a frontier WHEN the copy grows THEN the original is unchanged."""
    frontier = Frontier()
    frontier.extend(LEAVES[:5])
    duplicate = frontier.copy()
    duplicate.append(LEAVES[5])
    assert (frontier.size, frontier.root()) == (5, ROOTS[5])
    assert (duplicate.size, duplicate.root()) == (6, ROOTS[6])
    assert duplicate != frontier


@pytest.mark.parametrize(
    ("size", "nodes"),
    [
        pytest.param(-1, [], id="negative size"),
        pytest.param(True, [LEAVES[0]], id="bool size"),
        pytest.param(1.0, [LEAVES[0]], id="float size"),
        pytest.param("1", [LEAVES[0]], id="string size"),
        pytest.param(0, [LEAVES[0]], id="node for an empty tree"),
        pytest.param(1, None, id="no node for one leaf"),
        pytest.param(3, [LEAVES[0]], id="one node for two subtrees"),
        pytest.param(4, [LEAVES[0], LEAVES[1]], id="two nodes for one subtree"),
        pytest.param(1, [b"short"], id="short node"),
        pytest.param(1, [LEAVES[0] + b"\x00"], id="long node"),
        pytest.param(1, [LEAVES[0].hex()], id="hex string node"),
        pytest.param(2, LEAVES[0], id="bytes instead of a list"),
    ],
)
def test_frontier_rejects_inconsistent_state(size, nodes):
    """GIVEN a size and nodes that cannot describe a tree THEN Frontier raises ValueError."""
    with pytest.raises(ValueError, match=r"[Ff]rontier"):
        Frontier(size, nodes)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([], id="not an object"),
        pytest.param({"size": 1}, id="missing nodes"),
        pytest.param({"nodes": []}, id="missing size"),
        pytest.param({"size": 0, "nodes": [], "root": ""}, id="extra key"),
        pytest.param({"size": 1, "nodes": "00" * 32}, id="nodes not a list"),
        pytest.param({"size": 1, "nodes": [1]}, id="node not a string"),
        pytest.param({"size": 1, "nodes": ["zz" * 32]}, id="node not hex"),
        pytest.param({"size": 1, "nodes": ["00" * 31]}, id="node too short"),
        pytest.param({"size": 2, "nodes": ["00" * 32, "11" * 32]}, id="node count"),
        pytest.param({"size": "1", "nodes": ["00" * 32]}, id="size not an integer"),
    ],
)
def test_frontier_from_json_rejects_malformed_data(data):
    """GIVEN a damaged stored frontier THEN from_json raises ValueError rather than loading it."""
    with pytest.raises(ValueError, match=r"[Ff]rontier"):
        Frontier.from_json(data)


@pytest.mark.parametrize("leaf", [b"", b"raw entry", LEAVES[0][:31], LEAVES[0].hex(), None])
def test_frontier_append_takes_only_leaf_hashes(leaf):
    """GIVEN something other than a 32-byte leaf hash WHEN appended THEN ValueError, state unchanged."""
    frontier = Frontier()
    with pytest.raises(ValueError, match="Leaf hash"):
        frontier.append(leaf)
    assert frontier == Frontier()


# --- Argument checking ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "size"),
    [(-1, None), (10, None), (0, 0), (5, 5), (0, 11), (0, -1)],
)
def test_inclusion_proof_rejects_out_of_range_arguments(index, size):
    """GIVEN an index outside the tree or a size beyond the leaves THEN ValueError."""
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(LEAVES[:10], index, size)


@pytest.mark.parametrize(
    ("old_size", "new_size"),
    [(-1, None), (11, None), (6, 5), (0, 11), (0, -1)],
)
def test_consistency_proof_rejects_out_of_range_arguments(old_size, new_size):
    """GIVEN an old size above the new one or sizes beyond the leaves THEN ValueError."""
    with pytest.raises(ValueError, match=r"outside|between"):
        consistency_proof(LEAVES[:10], old_size, new_size)


def test_verifiers_return_false_for_malformed_input():
    """GIVEN arguments of the wrong type, length or range THEN the verifiers say False, never raise."""
    proof = inclusion_proof(LEAVES[:10], 3)
    good = (LEAVES[3], 3, 10, proof, ROOTS[10])
    assert verify_inclusion(*good)
    for position, bad in [
        (0, b"short"),
        (0, LEAVES[3].hex()),
        (1, -1),
        (1, 10),
        (1, 3.0),
        (1, None),
        (2, 0),
        (2, -10),
        (2, "10"),
        (3, None),
        (3, 5),
        (3, b"".join(proof)),
        (3, [node.hex() for node in proof]),
        (3, [*proof[:-1], proof[-1][:31]]),
        (3, [None, *proof[1:]]),
        (4, None),
        (4, ROOTS[10] + b"\x00"),
    ]:
        args = list(good)
        args[position] = bad
        assert verify_inclusion(*args) is False, (position, bad)

    proof = consistency_proof(LEAVES[:10], 3)
    good = (3, 10, ROOTS[3], ROOTS[10], proof)
    assert verify_consistency(*good)
    for position, bad in [
        (0, -3),
        (0, 11),
        (0, True),
        (1, 2),
        (1, None),
        (2, b""),
        (2, ROOTS[3].hex()),
        (3, None),
        (4, None),
        (4, 7),
        (4, b"".join(proof)),
        (4, [*proof[:-1], bytearray(proof[-1])]),
    ]:
        args = list(good)
        args[position] = bad
        assert verify_consistency(*args) is False, (position, bad)


# --- Tamper detection ------------------------------------------------------------------------------


def _flipped(value: bytes, position: int, mask: int = 0x01) -> bytes:
    altered = bytearray(value)
    altered[position] ^= mask
    return bytes(altered)


def _proof_variants(proof: list[bytes]):
    """Every single-byte flip, dropped node, inserted node and swap of a valid proof."""
    for i, node in enumerate(proof):
        for position in range(len(node)):
            yield f"flip node {i} byte {position}", [*proof[:i], _flipped(node, position), *proof[i + 1 :]]
        yield f"drop node {i}", proof[:i] + proof[i + 1 :]
        yield f"duplicate node {i}", [*proof[: i + 1], node, *proof[i + 1 :]]
    for i in range(len(proof) + 1):
        yield f"insert at {i}", [*proof[:i], LEAVES[-1], *proof[i:]]
    for i in range(len(proof)):
        for j in range(i + 1, len(proof)):
            swapped = list(proof)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            yield f"swap {i} {j}", swapped


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 13])
def test_inclusion_tampering_is_detected(n):
    """GIVEN a valid inclusion proof WHEN any byte, node, leaf, index or root is altered THEN False."""
    root = ROOTS[n]
    for index in range(n):
        leaf = LEAVES[index]
        proof = inclusion_proof(LEAVES[:n], index)
        assert verify_inclusion(leaf, index, n, proof, root)
        for change, bad_proof in _proof_variants(proof):
            assert not verify_inclusion(leaf, index, n, bad_proof, root), (index, change)
        for other in range(n + 1):
            if other != index:
                assert not verify_inclusion(LEAVES[other], index, n, proof, root), (index, other)
                assert not verify_inclusion(leaf, other, n, proof, root), (index, other)
        for size, other_root in enumerate(ROOTS[:20]):
            if size != n:
                assert not verify_inclusion(leaf, index, n, proof, other_root), (index, size)
        for position in range(len(root)):
            assert not verify_inclusion(leaf, index, n, proof, _flipped(root, position)), (index, position)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 17])
def test_consistency_tampering_is_detected(n):
    """GIVEN a valid consistency proof WHEN any byte, node or either root is altered THEN False."""
    for m in range(1, n):
        proof = consistency_proof(LEAVES[:n], m)
        assert verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
        for change, bad_proof in _proof_variants(proof):
            assert not verify_consistency(m, n, ROOTS[m], ROOTS[n], bad_proof), (m, change)
        for size, other_root in enumerate(ROOTS[:20]):
            if size != m:
                assert not verify_consistency(m, n, other_root, ROOTS[n], proof), (m, size)
            if size != n:
                assert not verify_consistency(m, n, ROOTS[m], other_root, proof), (m, size)
        for position in range(32):
            assert not verify_consistency(m, n, _flipped(ROOTS[m], position), ROOTS[n], proof), m
            assert not verify_consistency(m, n, ROOTS[m], _flipped(ROOTS[n], position), proof), m


def test_wrong_size_claims_fail_unless_the_proof_shape_is_identical():
    """GIVEN a valid proof WHEN checked under other sizes THEN it fails unless both give the same shape.

    Proof nodes carry no position, so sizes are bound only through the roots (in practice, the
    signed tree head that carries both). A different (index, size) claim is accepted exactly when
    the RFC's PATH for it has the same left/right pattern, and likewise for consistency proofs; and
    a different index in a tree of the same size is always rejected.
    """
    for n in range(1, 21):
        for index in range(n):
            proof = inclusion_proof(LEAVES[:n], index)
            for size in range(1, 26):
                for claimed in range(size):
                    expected = ref_path_shape(claimed, size) == ref_path_shape(index, n)
                    assert verify_inclusion(LEAVES[index], claimed, size, proof, ROOTS[n]) == expected
                    if size == n and claimed != index:
                        assert not expected

    for n in range(2, 21):
        for m in range(1, n):
            proof = consistency_proof(LEAVES[:n], m)
            for new_size in range(2, 26):
                for old_size in range(1, new_size):
                    expected = ref_proof_shape(old_size, new_size) == ref_proof_shape(m, n)
                    outcome = verify_consistency(old_size, new_size, ROOTS[m], ROOTS[n], proof)
                    assert outcome == expected, (m, n, old_size, new_size)


def test_size_is_bound_through_the_root_only():
    """GIVEN the tree of 3 leaves WHEN its proof for leaf 0 is checked as if the tree had 4 THEN True.

    This is RFC 9162 behaviour, not a flaw of this module: both trees put leaf 0 under two right
    siblings. It is harmless when size and root come from one signed tree head, because the real
    4-leaf root differs; a caller who mixes a size from one head with a root from another loses it.
    """
    proof = inclusion_proof(LEAVES[:3], 0)
    assert verify_inclusion(LEAVES[0], 0, 4, proof, ROOTS[3])
    assert not verify_inclusion(LEAVES[0], 0, 4, proof, ROOTS[4])

    proof = consistency_proof(LEAVES[:2], 1)
    assert verify_consistency(2, 3, ROOTS[1], ROOTS[2], proof)
    assert not verify_consistency(2, 3, ROOTS[2], ROOTS[3], proof)


# --- Property tests --------------------------------------------------------------------------------


def _draw_corrupted_proof(data: st.DataObject, proof: list[bytes]) -> list[bytes]:
    """Draw one corruption of ``proof``: a flipped byte, a dropped, inserted or swapped node."""
    kinds = ["insert"] + (["flip", "drop"] if proof else []) + (["swap"] if len(proof) > 1 else [])
    kind = data.draw(st.sampled_from(kinds), label="corruption")
    corrupted = list(proof)
    if kind == "flip":
        i = data.draw(st.integers(0, len(proof) - 1), label="node")
        position = data.draw(st.integers(0, 31), label="byte")
        mask = data.draw(st.integers(1, 255), label="mask")
        corrupted[i] = _flipped(proof[i], position, mask)
    elif kind == "drop":
        del corrupted[data.draw(st.integers(0, len(proof) - 1), label="node")]
    elif kind == "insert":
        i = data.draw(st.integers(0, len(proof)), label="position")
        corrupted.insert(i, data.draw(st.binary(min_size=32, max_size=32), label="inserted"))
    else:
        i, j = data.draw(st.lists(st.integers(0, len(proof) - 1), min_size=2, max_size=2, unique=True))
        corrupted[i], corrupted[j] = corrupted[j], corrupted[i]
    return corrupted


@PROPERTY_SETTINGS
@given(data=st.data())
def test_property_inclusion_proofs_verify_and_corruptions_do_not(data):
    """GIVEN a random leaf of a random tree (n <= 200) THEN its proof verifies and no corruption does."""
    n = data.draw(st.integers(1, 200), label="n")
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = inclusion_proof(LEAVES[:n], index)
    assert len(proof) <= ceil_log2(n)
    assert verify_inclusion(LEAVES[index], index, n, proof, ROOTS[n])

    target = data.draw(st.sampled_from(["proof", "leaf", "index", "root"]), label="target")
    leaf, claimed, root = LEAVES[index], index, ROOTS[n]
    if target == "proof":
        proof = _draw_corrupted_proof(data, proof)
    elif target == "leaf":
        leaf = data.draw(st.sampled_from(LEAVES).filter(lambda other: other != LEAVES[index]), label="leaf")
    elif target == "index" and n > 1:  # a one-leaf tree has no other index; alter the root instead
        claimed = data.draw(st.integers(0, n - 1).filter(lambda other: other != index), label="claimed")
    else:
        root = _flipped(root, data.draw(st.integers(0, 31)), data.draw(st.integers(1, 255)))
    assert not verify_inclusion(leaf, claimed, n, proof, root)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_property_consistency_proofs_verify_and_corruptions_do_not(data):
    """GIVEN random sizes 0 < m < n <= 200 THEN the proof verifies and no corruption of it does."""
    n = data.draw(st.integers(2, 200), label="n")
    m = data.draw(st.integers(1, n - 1), label="m")
    proof = consistency_proof(LEAVES[:n], m)
    assert len(proof) <= ceil_log2(n) + 1
    assert verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)

    target = data.draw(st.sampled_from(["proof", "old root", "new root"]), label="target")
    old_root, new_root = ROOTS[m], ROOTS[n]
    if target == "proof":
        proof = _draw_corrupted_proof(data, proof)
    elif target == "old root":
        old_root = _flipped(old_root, data.draw(st.integers(0, 31)), data.draw(st.integers(1, 255)))
    else:
        new_root = _flipped(new_root, data.draw(st.integers(0, 31)), data.draw(st.integers(1, 255)))
    assert not verify_consistency(m, n, old_root, new_root, proof)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_property_other_size_claims_verify_only_with_the_same_proof_shape(data):
    """GIVEN a valid proof WHEN claimed for other random sizes THEN True only if the RFC shapes match."""
    n = data.draw(st.integers(2, 200), label="n")
    m = data.draw(st.integers(1, n - 1), label="m")
    new_size = data.draw(st.integers(2, 300), label="claimed new size")
    old_size = data.draw(st.integers(1, new_size - 1), label="claimed old size")

    index_proof = inclusion_proof(LEAVES[:n], m)
    expected = ref_path_shape(old_size, new_size) == ref_path_shape(m, n)
    assert verify_inclusion(LEAVES[m], old_size, new_size, index_proof, ROOTS[n]) == expected

    proof = consistency_proof(LEAVES[:n], m)
    expected = ref_proof_shape(old_size, new_size) == ref_proof_shape(m, n)
    assert verify_consistency(old_size, new_size, ROOTS[m], ROOTS[n], proof) == expected


# --- Scale -------------------------------------------------------------------------------------------


def test_a_hundred_thousand_leaves_agree_across_implementations():
    """GIVEN 100,000 leaves THEN Frontier and root_from_leaf_hashes agree and proofs over them verify."""
    size = 100_000
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    root = root_from_leaf_hashes(leaves)

    frontier = Frontier()
    frontier.extend(leaves)
    assert frontier.size == size
    assert frontier.root() == root

    index = 77_777
    proof = inclusion_proof(leaves, index)
    assert len(proof) <= ceil_log2(size)
    assert verify_inclusion(leaves[index], index, size, proof, root)

    old_size = 65_537
    proof = consistency_proof(leaves, old_size)
    assert len(proof) <= ceil_log2(size) + 1
    assert verify_consistency(old_size, size, root_from_leaf_hashes(leaves[:old_size]), root, proof)

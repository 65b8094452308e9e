"""Merkle tree hashing, inclusion and consistency proofs, after RFC 6962 / RFC 9162 §2.1.

Pure functions over lists of leaf hashes. The audit log's leaves are the canonical JSON bodies of
its entries (``station.audit.log.entry_body``); a checkpoint signs the root of the first N of them,
and a consistency proof shows that a later log still starts with exactly those N entries (R7):
an entry edited or removed after a checkpoint changes that root.

Leaf hash ``SHA-256(0x00 || data)``, node hash ``SHA-256(0x01 || left || right)`` — the two prefixes
keep a leaf from being passed off as an inner node. The empty tree's root is ``SHA-256("")``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(leaves: Sequence[bytes], lo: int = 0, hi: int | None = None) -> bytes:
    """MTH of ``leaves[lo:hi]`` (leaf hashes), bottom up: a lone last node moves up unchanged,
    which gives exactly the RFC 6962 tree shape."""
    hi = len(leaves) if hi is None else hi
    if hi <= lo:
        return EMPTY_ROOT
    level = list(leaves[lo:hi])
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root(leaves: Sequence[bytes]) -> bytes:
    return subtree_root(leaves)


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 §2.1.1, leaf-to-root order."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} outside a tree of {n}")
    proof: list[bytes] = []

    def path(m: int, lo: int, hi: int) -> None:
        if hi - lo <= 1:
            return
        k = _split(hi - lo)
        if m < k:
            path(m, lo, lo + k)
            proof.append(subtree_root(leaves, lo + k, hi))
        else:
            path(m - k, lo + k, hi)
            proof.append(subtree_root(leaves, lo, lo + k))

    path(index, 0, n)
    return proof


def consistency_proof(leaves: Sequence[bytes], size1: int) -> list[bytes]:
    """PROOF(size1, D[n]) of RFC 6962 §2.1.2 for the tree of all ``leaves``."""
    n = len(leaves)
    if not 0 <= size1 <= n:
        raise ValueError(f"old size {size1} outside 0..{n}")
    if size1 in (0, n):
        return []
    proof: list[bytes] = []

    def subproof(m: int, lo: int, hi: int, whole: bool) -> None:
        if m == hi - lo:
            if not whole:
                proof.append(subtree_root(leaves, lo, hi))
            return
        k = _split(hi - lo)
        if m <= k:
            subproof(m, lo, lo + k, whole)
            proof.append(subtree_root(leaves, lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            proof.append(subtree_root(leaves, lo, lo + k))

    subproof(size1, 0, n, True)
    return proof


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf hash ``leaf`` at ``index`` in ``root_hash``?"""
    if not 0 <= index < size or len(leaf) != HASH_SIZE or len(root_hash) != HASH_SIZE:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0 or len(p) != HASH_SIZE:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (size2, root2) an append-only extension of (size1, root1)?"""
    if size1 < 0 or size2 < size1:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is a node of the new tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


def prefix_roots(leaves: Sequence[bytes], sizes: Sequence[int]) -> dict[int, bytes]:
    """The root of ``leaves[:m]`` for every ``m`` in ``sizes``, in one pass over the leaves.

    Keeps the compact range (the perfect subtrees of the prefix read so far, largest first);
    the root of a prefix folds that range right to left. O(n + k log n), so a verify can check
    every stored checkpoint against the log without one full tree per checkpoint.
    """
    wanted = sorted({m for m in sizes if 0 <= m <= len(leaves)})
    out: dict[int, bytes] = {}
    stack: list[tuple[int, bytes]] = []  # (height, hash)
    pos = 0

    def fold() -> bytes:
        if not stack:
            return EMPTY_ROOT
        acc = stack[-1][1]
        for _, h in reversed(stack[:-1]):
            acc = node_hash(h, acc)
        return acc

    for m in wanted:
        while pos < m:
            height, h = 0, leaves[pos]
            while stack and stack[-1][0] == height:
                _, left = stack.pop()
                h = node_hash(left, h)
                height += 1
            stack.append((height, h))
            pos += 1
        out[m] = fold()
    return out

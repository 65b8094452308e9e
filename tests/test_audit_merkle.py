"""RFC 6962 Merkle tree: roots, inclusion and consistency proofs against the published vectors
(transparency-dev/merkle, the reference Go implementation used by Certificate Transparency)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.audit import merkle

_LEAF_HEX = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]  # fmt: skip
LEAVES = [bytes.fromhex(h) for h in _LEAF_HEX]
ROOTS = [
    merkle.EMPTY_ROOT.hex(),
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index 0-based, tree size, proof)
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 1, []),
]  # fmt: skip
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
HASHES = [merkle.leaf_hash(x) for x in LEAVES]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_published_vectors(size: int) -> None:
    assert merkle.root(HASHES[:size]).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_vectors(index: int, size: int, proof: list[str]) -> None:
    got = merkle.inclusion_proof(HASHES[:size], index)
    assert [p.hex() for p in got] == proof
    root = bytes.fromhex(ROOTS[size])
    assert merkle.verify_inclusion(index, size, HASHES[index], got, root)
    # Corrupted probes, after the reference suite: each must be refused.
    bad = [
        (index + 1, size, HASHES[index], got, root),
        (index, size * 2, HASHES[index], got, root),
        (index, size, merkle.leaf_hash(b"wrong"), got, root),
        (index, size, HASHES[index], got, merkle.EMPTY_ROOT),
        (index, size, HASHES[index], [*got, root], root),
        (index, size, HASHES[index], [root, *got], root),
    ]
    for i in range(len(got)):
        flipped = list(got)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        bad.append((index, size, HASHES[index], flipped, root))
    if got:
        bad.append((index, size, HASHES[index], got[:-1], root))
    for probe in bad:
        assert not merkle.verify_inclusion(*probe), probe


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_proofs_match_vectors(size1: int, size2: int, proof: list[str]) -> None:
    got = merkle.consistency_proof(HASHES[:size2], size1)
    assert [p.hex() for p in got] == proof
    r1, r2 = bytes.fromhex(ROOTS[size1]), bytes.fromhex(ROOTS[size2])
    assert merkle.verify_consistency(size1, size2, got, r1, r2)
    if not got:
        return
    bad = [
        (size1 - 1, size2, got, r1, r2),
        (size1 + 1, size2, got, r1, r2),
        (size1, size2 * 2, got, r1, r2),
        (size1, size2, got, r2, r1),
        (size1, size2, [], r1, r2),
        (size1, size2, [*got, r1], r1, r2),
        (size1, size2, [got[0], *got], r1, r2),
        (size1, size2, got[:-1], r1, r2),
    ]
    for i in range(len(got)):
        flipped = list(got)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        bad.append((size1, size2, flipped, r1, r2))
    for probe in bad:
        assert not merkle.verify_consistency(*probe), probe


def test_consistency_edge_cases() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.verify_consistency(0, 0, [], a, a)
    assert merkle.verify_consistency(0, 1, [], a, b)
    assert not merkle.verify_consistency(1, 1, [], a, b)
    assert not merkle.verify_consistency(2, 1, [], a, b)
    assert not merkle.verify_consistency(1, 1, [merkle.EMPTY_ROOT], a, a)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.data())
def test_proofs_round_trip_for_any_sizes(n: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    root = merkle.root(leaves)
    i = data.draw(st.integers(0, n - 1))
    assert merkle.verify_inclusion(i, n, leaves[i], merkle.inclusion_proof(leaves, i), root)
    m = data.draw(st.integers(0, n))
    proof = merkle.consistency_proof(leaves, m)
    assert merkle.verify_consistency(m, n, proof, merkle.root(leaves[:m]), root)
    # A history rewritten before m (one leaf replaced) is never consistent (R7).
    if m:
        j = data.draw(st.integers(0, m - 1))
        forged = list(leaves)
        forged[j] = merkle.leaf_hash(b"forged")
        assert not merkle.verify_consistency(
            m, n, merkle.consistency_proof(forged, m), merkle.root(leaves[:m]), merkle.root(forged)
        )


def test_prefix_roots_equal_full_roots() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(100)]
    sizes = [0, 1, 2, 3, 7, 8, 9, 64, 65, 99, 100, 101]
    got = merkle.prefix_roots(leaves, sizes)
    assert set(got) == {m for m in sizes if m <= 100}  # a size past the end has no root
    for m, r in got.items():
        assert r == merkle.root(leaves[:m])
    assert merkle.prefix_roots(HASHES, [8])[8].hex() == ROOTS[8]

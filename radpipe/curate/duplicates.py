"""Exact duplicates (same decoded pixels) and near duplicates (close perceptual hashes)."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

# A 256-bit DCT hash: chest radiographs share their coarse layout, so 64-bit hashes put different
# patients within a few bits of each other; at 256 bits, re-windowed or re-sampled copies stay within
# 4 bits while the nearest different image on the synthetic archive is 12+ bits away (make demo data).
HASH_SIDE = 16
HASH_BITS = HASH_SIDE * HASH_SIDE


def perceptual_hash(pixels: np.ndarray) -> int:
    """pHash: signs of the 16 x 16 lowest DCT frequencies of the 64 x 64 image against their median."""
    small = cv2.resize(pixels.astype(np.float32), (4 * HASH_SIDE, 4 * HASH_SIDE), interpolation=cv2.INTER_AREA)
    frequencies = cv2.dct(small)[:HASH_SIDE, :HASH_SIDE].flatten()
    bits = frequencies > np.median(frequencies[1:])  # the DC term says only how bright the image is
    bits[0] = False
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def near_duplicate_groups(hashes: Iterable[tuple[str, int]], threshold: int) -> dict[str, str]:
    """Map each near-duplicate item to its representative (the first in key order), Hamming <= threshold.

    Candidates are found by multi-index hashing: with the 256 bits cut into threshold + 1 blocks,
    two hashes within the threshold agree exactly on at least one block (pigeonhole), so only items
    sharing a block are compared.
    """
    items = sorted(hashes)
    blocks = threshold + 1
    width = HASH_BITS // blocks
    index: dict[tuple[int, int], list[int]] = {}
    representative: dict[str, str] = {}
    for position, (key, value) in enumerate(items):
        match = None
        candidates: set[int] = set()
        for block in range(blocks):
            part = (value >> (block * width)) & ((1 << width) - 1)
            candidates.update(index.get((block, part), ()))
        for other in sorted(candidates):
            other_key, other_value = items[other]
            if hamming(value, other_value) <= threshold:
                match = representative.get(other_key, other_key)
                break
        if match is not None:
            representative[key] = match
        for block in range(blocks):
            part = (value >> (block * width)) & ((1 << width) - 1)
            index.setdefault((block, part), []).append(position)
    return representative

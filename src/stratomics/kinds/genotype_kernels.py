"""Compiled genotype kernels: genotype counts from PLINK 1 two-bit codes and the Hardy-Weinberg exact test.

Codes as in a .bed (four samples to a byte, the first in the lowest bits): 0 = two copies of A1,
1 = missing, 2 = heterozygous, 3 = no copy of A1. The counts look up whole bytes in tables (four samples at
a time) and add them in packed lanes, as plink counts words of codes instead of single calls.
"""

from __future__ import annotations

import numba
import numpy as np

#: Relative tolerance under which a heterozygote count counts as no more likely than the observed one (as plink).
TOLERANCE = 1e-7
#: Heterozygote counts less likely than this (relative to the most likely one) are left out: they cannot change p.
NEGLIGIBLE = 1e-300
#: A walk away from the observed count stops at probabilities below this share of the observed one's: the rest of
#: that tail adds less than 1e-15 of p (the probabilities fall faster than geometrically beyond it).
TAIL_EPSILON = 1e-17


def _byte_codes() -> np.ndarray:
    """The four codes of every byte value: 256 x 4."""
    values = np.arange(256)
    return np.stack([(values >> (2 * sample)) & 3 for sample in range(4)], axis=1)


#: Per byte value, how many of its four samples have code 0, 1 and 2, in 16-bit fields of one int64.
BYTE_CODE_COUNTS = sum((_byte_codes() == code).sum(axis=1).astype(np.int64) << (16 * code) for code in range(3))
#: Per byte value, whether each of its four samples is called (code other than 1), in the 8-bit lanes of one int64.
BYTE_CALLED = ((_byte_codes() != 1).astype(np.int64) << (8 * np.arange(4))).sum(axis=1)
#: Per byte value, whether each of its four samples is heterozygous (code 2), in 8-bit lanes.
BYTE_HETEROZYGOUS = ((_byte_codes() == 2).astype(np.int64) << (8 * np.arange(4))).sum(axis=1)
#: Bytes summed in 16-bit fields before they are emptied (4 samples each: at most 65,532 < 2^16).
FIELD_BYTES = 16_383
#: SNPs summed in 8-bit lanes before they are emptied.
LANE_SNPS = 255


@numba.njit(cache=True, nogil=True)
def exact_p_values(n_het: np.ndarray, n_hom1: np.ndarray, n_hom2: np.ndarray) -> np.ndarray:
    """HWE exact p of each SNP from its genotype counts (int64 arrays); 1 for a monomorphic SNP.

    The probabilities of the heterozygote counts, given the samples and minor alleles, follow from the
    recurrence between neighbouring counts, starting from the most likely one (no factorials): first towards
    the observed count and on until they fall below :data:`TAIL_EPSILON` of its probability, then the other way
    as far. A count less likely than :data:`NEGLIGIBLE` of the most likely one gets p 0.
    """
    p_values = np.ones(len(n_het))
    minors = np.minimum(2 * n_hom1 + n_het, 2 * n_hom2 + n_het)
    probabilities = np.zeros(max(minors.max(), 0) + 1) if len(n_het) else np.zeros(1)
    for snp in range(len(n_het)):
        het, minor = n_het[snp], minors[snp]
        n = het + n_hom1[snp] + n_hom2[snp]
        if minor == 0:
            continue
        middle = minor * (2 * n - minor) // (2 * n)
        middle += (middle % 2) != (minor % 2)
        probabilities[middle] = 1.0
        towards = 2 if het > middle else -2
        first = _walk(probabilities, middle, towards, het, minor, n)
        if probabilities[first] < NEGLIGIBLE and (het - first) * towards > 0:  # p below 1e-290
            p_values[snp] = 0.0
            continue
        second = _walk(probabilities, middle, -towards, het, minor, n)
        lowest, highest = min(first, second), max(first, second)
        threshold = probabilities[het] * (1 + TOLERANCE)
        total, tail = 0.0, 0.0
        for count in range(lowest, highest + 1, 2):
            total += probabilities[count]
            if probabilities[count] <= threshold:
                tail += probabilities[count]
        p_values[snp] = min(tail / total, 1.0)
    return p_values


@numba.njit(cache=True, nogil=True)
def _walk(probabilities, middle, step, het, minor, n):
    """Fill ``probabilities`` (relative to the count ``middle``) count by count from ``middle`` in the direction
    ``step`` (+2 or -2) until past ``het`` and below :data:`TAIL_EPSILON` of its probability, or below
    :data:`NEGLIGIBLE`, or at the end; return the last count filled."""
    h, rare = middle, (minor - middle) // 2
    common = n - h - rare
    while (h >= 2) if step < 0 else (h <= minor - 2):
        if step < 0:  # one heterozygote pair fewer
            probabilities[h - 2] = probabilities[h] * h * (h - 1.0) / (4.0 * (rare + 1.0) * (common + 1.0))
            rare, common = rare + 1, common + 1
        else:
            probabilities[h + 2] = probabilities[h] * 4.0 * rare * common / ((h + 2.0) * (h + 1.0))
            rare, common = rare - 1, common - 1
        h += step
        past = (h - het) * step > 0
        if probabilities[h] < NEGLIGIBLE or (past and probabilities[h] < TAIL_EPSILON * probabilities[het]):
            break
    return h


def code_counts(packed: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per SNP (row of ``packed``, SNPs x bytes), how many of the samples at ``rows`` (unique) have each code:
    SNPs x 4. Bytes whose four samples are all at ``rows`` are counted by table lookup, the others one by one."""
    members = np.bincount(rows >> 2, minlength=packed.shape[1])
    return _count_codes(packed, np.flatnonzero(members == 4), rows[members[rows >> 2] < 4], BYTE_CODE_COUNTS)


@numba.njit(cache=True, nogil=True)
def _count_codes(packed, whole_bytes, single_rows, byte_code_counts):
    counts = np.zeros((packed.shape[0], 4), dtype=np.int64)
    for snp in range(packed.shape[0]):
        codes = packed[snp]
        for start in range(0, len(whole_bytes), FIELD_BYTES):
            fields = 0
            for byte in whole_bytes[start : start + FIELD_BYTES]:
                fields += byte_code_counts[codes[byte]]
            for code in range(3):
                counts[snp, code] += (fields >> (16 * code)) & 0xFFFF
        for row in single_rows:
            code = (codes[row >> 2] >> ((row & 3) << 1)) & 3
            if code < 3:
                counts[snp, code] += 1
        counts[snp, 3] = 4 * len(whole_bytes) + len(single_rows) - counts[snp, 0] - counts[snp, 1] - counts[snp, 2]
    return counts


def add_sample_counts(packed: np.ndarray, rows: np.ndarray, selected: np.ndarray, *, on_x: np.ndarray,
                      x_expected_het: np.ndarray, counts: np.ndarray, x_expected: np.ndarray) -> None:  # fmt: skip
    """Add each sample's counts over the selected SNPs: to ``counts`` (int32, 4 x samples) its called genotypes,
    called and heterozygous autosomal genotypes and heterozygous X genotypes, to ``x_expected`` the expected
    number of the latter (``x_expected_het`` per X SNP, where the sample is called). Autosomal SNPs are added a
    byte (four samples) at a time in 8-bit lanes, emptied every :data:`LANE_SNPS` SNPs."""
    _add_sample_counts(packed, rows, selected, on_x, x_expected_het, counts, x_expected, BYTE_CALLED,
                       BYTE_HETEROZYGOUS)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _add_sample_counts(packed, rows, selected, on_x, x_expected_het, counts, x_expected, byte_called, byte_het):
    called_lanes, het_lanes = np.zeros(packed.shape[1], np.int64), np.zeros(packed.shape[1], np.int64)
    pending = 0
    for snp in range(packed.shape[0]):
        if not selected[snp]:
            continue
        codes = packed[snp]
        if on_x[snp]:
            for sample in range(len(rows)):
                code = (codes[rows[sample] >> 2] >> ((rows[sample] & 3) << 1)) & 3
                counts[0, sample] += code != 1
                counts[3, sample] += code == 2
                x_expected[sample] += x_expected_het[snp] * (code != 1)
            continue
        for byte in range(len(codes)):
            called_lanes[byte] += byte_called[codes[byte]]
            het_lanes[byte] += byte_het[codes[byte]]
        pending += 1
        if pending == LANE_SNPS:
            _empty_lanes(called_lanes, het_lanes, rows, counts)
            pending = 0
    _empty_lanes(called_lanes, het_lanes, rows, counts)


@numba.njit(cache=True, nogil=True)
def _empty_lanes(called_lanes, het_lanes, rows, counts):
    """Add the lanes to the samples' called (rows 0 and 1 of ``counts``) and heterozygous (row 2) counts; zero them."""
    for sample in range(len(rows)):
        byte, shift = rows[sample] >> 2, (rows[sample] & 3) << 3
        called = (called_lanes[byte] >> shift) & 255
        counts[0, sample] += called
        counts[1, sample] += called
        counts[2, sample] += (het_lanes[byte] >> shift) & 255
    called_lanes[:] = 0
    het_lanes[:] = 0

"""Compiled genotype kernels: genotype counts from PLINK 1 two-bit codes and the Hardy-Weinberg exact test.

Codes as in a .bed (four samples to a byte, the first in the lowest bits): 0 = two copies of A1,
1 = missing, 2 = heterozygous, 3 = no copy of A1.
"""

from __future__ import annotations

import numba
import numpy as np

#: Relative tolerance under which a heterozygote count counts as no more likely than the observed one (as plink).
TOLERANCE = 1e-7
#: Heterozygote counts less likely than this (relative to the most likely one) are left out: they cannot change p.
NEGLIGIBLE = 1e-300


@numba.njit(cache=True, nogil=True)
def exact_p_values(n_het: np.ndarray, n_hom1: np.ndarray, n_hom2: np.ndarray) -> np.ndarray:
    """HWE exact p of each SNP from its genotype counts (int64 arrays); 1 for a monomorphic SNP.

    The probabilities of every heterozygote count, given the samples and minor alleles, follow from the
    recurrence between neighbouring counts, starting from the most likely one (no factorials), and stop
    where they fall below :data:`NEGLIGIBLE` of it.
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
        total = 1.0
        h, rare = middle, (minor - middle) // 2
        common = n - h - rare
        while h >= 2 and probabilities[h] > NEGLIGIBLE:  # fewer heterozygotes, until the tail vanishes
            probabilities[h - 2] = probabilities[h] * h * (h - 1.0) / (4.0 * (rare + 1.0) * (common + 1.0))
            total += probabilities[h - 2]
            h, rare, common = h - 2, rare + 1, common + 1
        lowest = h
        h, rare = middle, (minor - middle) // 2
        common = n - h - rare
        while h <= minor - 2 and probabilities[h] > NEGLIGIBLE:  # more heterozygotes
            probabilities[h + 2] = probabilities[h] * 4.0 * rare * common / ((h + 2.0) * (h + 1.0))
            total += probabilities[h + 2]
            h, rare, common = h + 2, rare - 1, common - 1
        if het < lowest or het > h:  # less likely than NEGLIGIBLE: p below 1e-290
            p_values[snp] = 0.0
            continue
        threshold = probabilities[het] * (1 + TOLERANCE)
        tail = 0.0
        for count in range(lowest, h + 1, 2):
            if probabilities[count] <= threshold:
                tail += probabilities[count]
        p_values[snp] = min(tail / total, 1.0)
    return p_values


@numba.njit(cache=True, nogil=True)
def code_counts(packed: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per SNP (row of ``packed``, SNPs x bytes), how many of the samples at ``rows`` have each code: SNPs x 4."""
    counts = np.zeros((packed.shape[0], 4), dtype=np.int64)
    for snp in range(packed.shape[0]):
        codes = packed[snp]
        two, missing, het = 0, 0, 0
        for row in rows:  # scalar sums: the loop vectorises
            code = (codes[row >> 2] >> ((row & 3) << 1)) & 3
            two += code == 0
            missing += code == 1
            het += code == 2
        counts[snp, 0], counts[snp, 1], counts[snp, 2] = two, missing, het
        counts[snp, 3] = len(rows) - two - missing - het
    return counts


@numba.njit(cache=True, nogil=True)
def add_sample_counts(packed, rows, selected, on_x, x_expected_het, counts, x_expected) -> None:
    """Add each sample's counts over the selected SNPs: to ``counts`` (int32, 4 x samples) its called genotypes,
    called and heterozygous autosomal genotypes and heterozygous X genotypes, to ``x_expected`` the expected
    number of the latter (``x_expected_het`` per X SNP, where the sample is called)."""
    called, autosomal_called, autosomal_het, x_het = counts[0], counts[1], counts[2], counts[3]
    for snp in range(packed.shape[0]):
        if not selected[snp]:
            continue
        codes = packed[snp]
        if on_x[snp]:
            expected = x_expected_het[snp]
            for sample in range(len(rows)):
                code = (codes[rows[sample] >> 2] >> ((rows[sample] & 3) << 1)) & 3
                called[sample] += code != 1
                x_het[sample] += code == 2
                x_expected[sample] += expected * (code != 1)
        else:  # integer counters: the loop vectorises
            for sample in range(len(rows)):
                code = (codes[rows[sample] >> 2] >> ((rows[sample] & 3) << 1)) & 3
                called[sample] += code != 1
                autosomal_called[sample] += code != 1
                autosomal_het[sample] += code == 2

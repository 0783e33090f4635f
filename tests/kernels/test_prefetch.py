"""The prefetch hint: emitted into compiled code, changes no value, harmless past an array's end."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba.core.errors import TypingError

from brainsim.kernels.prefetch import prefetch


@numba.njit
def _sum_prefetching(values: np.ndarray, ahead: int) -> float:
    total = 0.0
    for i in range(values.shape[0]):
        prefetch(values, i + ahead)  # past the end for the last ``ahead`` elements
        total += values[i]
    return total


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int64, np.float32])
def test_values_are_unchanged_with_hints_past_the_end(dtype: type) -> None:
    values = np.arange(1000).astype(dtype)
    for ahead in (0, 4, 64, 10**6):
        assert _sum_prefetching(values, ahead) == float(values.astype(np.float64).sum())
    assert _sum_prefetching(np.zeros(0, dtype), 3) == 0.0


def test_the_hint_is_emitted_as_llvm_prefetch() -> None:
    values = np.arange(10, dtype=np.uint16)
    _sum_prefetching(values, 2)
    ir = next(iter(_sum_prefetching.inspect_llvm().values()))
    assert "llvm.prefetch" in ir


def test_only_one_dimensional_arrays_and_integer_indices_are_accepted() -> None:
    @numba.njit
    def on_matrix(values: np.ndarray) -> None:
        prefetch(values, 0)

    @numba.njit
    def float_index(values: np.ndarray) -> None:
        prefetch(values, 0.5)

    with pytest.raises(TypingError):
        on_matrix(np.zeros((2, 2)))
    with pytest.raises(TypingError):
        float_index(np.zeros(2))

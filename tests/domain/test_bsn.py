import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terugkeer.domain.bsn import generate_bsn, is_valid_bsn


@pytest.mark.parametrize("value", ["999993653", "999990019", "10000008", "111222333"])
def test_known_valid_numbers(value: str) -> None:
    assert is_valid_bsn(value)


@pytest.mark.parametrize(
    "value", ["999993654", "123456789", "000000000", "99999366", "9999936530", "99999365a", ""]
)
def test_invalid_numbers(value: str) -> None:
    assert not is_valid_bsn(value)


@given(st.integers(min_value=0, max_value=2**32))
def test_generated_numbers_pass_the_11_proef_and_are_in_the_test_range(seed: int) -> None:
    value = generate_bsn(random.Random(seed))
    assert len(value) == 9
    assert value.startswith("9")
    assert is_valid_bsn(value)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_changing_one_digit_breaks_the_check(value: str) -> None:
    # Every weight and every change of a digit lies in 1..9, so their product is never a
    # multiple of 11: the 11-proef catches every single-digit typing error.
    if not is_valid_bsn(value):
        return
    for i in range(9):
        changed = value[:i] + str((int(value[i]) + 1) % 10) + value[i + 1 :]
        assert not is_valid_bsn(changed)

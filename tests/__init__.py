import pytest

# The shared helpers of the trigger tests assert too: have pytest explain their failures.
pytest.register_assert_rewrite("tests.event_zaps")

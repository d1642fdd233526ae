"""The token tests skip without SoftHSM only off CI: under CI a missing SoftHSM is a failure."""

from __future__ import annotations

import pytest

from tests.helpers import softhsm


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), (None, pytest.skip.Exception)])
def test_missing_softhsm_fails_under_ci_and_skips_elsewhere(
    ci: str | None, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(softhsm, "MODULE_PATHS", ())
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="SoftHSM is not installed"):
        softhsm.find_softhsm()

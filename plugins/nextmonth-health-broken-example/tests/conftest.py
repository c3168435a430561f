from __future__ import annotations

import pytest

ENV_VARS = (
    "NEXTMONTH_HEALTH_LOAD_PLUGINS",
    "NEXTMONTH_HEALTH_DISABLE_PLUGINS",
    "NEXTMONTH_HEALTH_STRICT_PLUGINS",
    "NEXTMONTH_HEALTH_TRACE_HOOKS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param

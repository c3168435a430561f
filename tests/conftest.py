import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _memory_store_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Monitors built without ``store=`` use memory here; the SQLite default has its own test."""
    monkeypatch.setenv("NEXTMONTH_HEALTH_STORE", "memory://")

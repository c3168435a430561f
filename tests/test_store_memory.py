from pathlib import Path

import pytest

from nextmonth_health.errors import ConfigError
from nextmonth_health.store import MemoryStore, SQLiteStore, Store, open_store

from .store_contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Store:
        return open_store("memory://")


def test_the_default_store_is_a_sqlite_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEXTMONTH_HEALTH_STORE")
    store = open_store(None)
    try:
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / "nextmonth-health.db").exists()
    finally:
        store.close()
    monkeypatch.setenv("NEXTMONTH_HEALTH_STORE", "memory://")
    assert isinstance(open_store(None), MemoryStore)


def test_stores_are_chosen_by_url_or_object() -> None:
    given = MemoryStore()
    assert open_store(given) is given
    with pytest.raises(ConfigError, match="unknown store URL 'postgres://x'"):
        open_store("postgres://x")
    with pytest.raises(ConfigError, match="store must be a URL string"):
        open_store(42)  # type: ignore[arg-type]

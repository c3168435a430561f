import pytest

from nextmonth_health.errors import ConfigError
from nextmonth_health.store import MemoryStore, Store, open_store

from .store_contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Store:
        return open_store("memory://")


def test_stores_are_chosen_by_url_or_object() -> None:
    assert isinstance(open_store(None), MemoryStore)
    given = MemoryStore()
    assert open_store(given) is given
    with pytest.raises(ConfigError, match="unknown store URL 'postgres://x'"):
        open_store("postgres://x")
    with pytest.raises(ConfigError, match="store must be a URL string"):
        open_store(42)  # type: ignore[arg-type]

"""The backends to run on; the loopback receiver is the kit's ``http_receiver``
(``nextmonth_health.testing``)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param

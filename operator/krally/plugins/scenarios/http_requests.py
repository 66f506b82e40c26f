"""Rally's ``HttpRequests.*`` scenarios: real HTTP requests (``requests``), status checked."""

from __future__ import annotations

import random
from typing import Any

from krally.task import atomic, scenario


class HttpRequestsBase(scenario.Scenario):
    @atomic.action_timer("requests.check_request")
    def _check_request(self, url: str, method: str, status_code: int, **kwargs: Any) -> None:
        import requests  # noqa: PLC0415 (lazy: imported on first use: importing it costs ~100 ms)

        response = requests.request(method, url, **kwargs)
        if response.status_code != status_code:
            raise ValueError(
                f"Expected HTTP request code is `{status_code}` actual `{response.status_code}`"
            )


@scenario.configure(name="HttpRequests.check_request")
class HttpRequestCheck(HttpRequestsBase):
    """Send one request (``requests.request(method, url, **kwargs)``); fail unless the response
    has ``status_code``."""

    def run(self, url: str, method: str, status_code: int, **kwargs: Any) -> None:
        self._check_request(url, method, status_code, **kwargs)


@scenario.configure(name="HttpRequests.check_random_request")
class HttpRandomRequestCheck(HttpRequestsBase):
    """Send one request chosen at random from ``requests`` (each ``{url, method, ...}``); its
    expected code is its own ``status_code`` or else ``status_code``."""

    def run(self, requests: list[dict[str, Any]], status_code: int) -> None:
        request = dict(random.choice(requests))
        request.setdefault("status_code", status_code)
        self._check_request(**request)

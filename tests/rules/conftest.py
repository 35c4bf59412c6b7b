from __future__ import annotations

from typing import Any, Callable

import pytest

from tests.support import Session, world


@pytest.fixture
def start(make_engine: Callable[[], Any]) -> Callable[..., Session]:
    """start(*entities, **world_kw): a Session of a fresh engine on that world."""
    def start(*entities: dict[str, Any], **kw: Any) -> Session:
        return Session(make_engine(), world(*entities, **kw))
    return start

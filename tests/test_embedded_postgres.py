"""The embedded PostgreSQL default: started on demand, and started again after it stops."""

import pytest

from willow_core.config import Settings
from willow_core.control import ControlRoom
from willow_core.errors import StoreError
from willow_core.store.embedded import embedded_cluster_dir, stop_embedded_postgres


def test_embedded_server_restarts_after_stop() -> None:
    room = ControlRoom(Settings())
    try:
        assert room.progress() is None
        assert embedded_cluster_dir().is_dir()
        assert stop_embedded_postgres()

        with pytest.raises(StoreError):
            room.progress()

        assert room.progress() is None
        assert (embedded_cluster_dir() / "postmaster.pid").is_file()
    finally:
        room.close()
        stop_embedded_postgres()

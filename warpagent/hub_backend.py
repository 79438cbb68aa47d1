"""The hub's medallion backend under the name earlier releases configured it by: a medallion
configuration that names module `warpagent.hub_backend` still loads (the backend itself lives in
warpagent.hub.backend, which the hub now names)."""

from warpagent.hub.backend import HubBackend

__all__ = ["HubBackend"]

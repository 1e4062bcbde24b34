"""Moved to harness/servers.py. This re-export stays only until tests/support/local_topology.py
(rewritten in parallel) imports `free_port` from harness; then it goes."""

from harness.servers import free_port

__all__ = ["free_port"]

"""The container hosts a stack names: modes, servers, and what an address or a key may be."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

HostMode = Literal["existing", "hcloud", "local"]
NodeRole = Literal["manager", "worker"]
# More nodes than this is another project (and another Hetzner quota); the swarm would
# manage it, the firewall and the private subnet's fixed addresses would too.
MAX_NODES = 16
# The second octet of the hcloud private network, 10.254.0.0/16 (host.py's PRIVATE_NETWORK).
PRIVATE_NETWORK_OCTET = 254

HOST_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
SSH_KEY = re.compile(
    r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( \S.*)?"
)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# sshUser goes into sshd_config (AllowUsers), cloud-init and ssh:// URLs; hostAddress
# into ssh:// URLs and known_hosts lines: one word each, nothing ssh could read as more.
SSH_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_DNS_NAME = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)


@dataclass(frozen=True)
class ExistingServer:
    """One entry of jobsearch:servers: a server this stack deploys to but does not create."""

    address: str
    host_key: str
    role: NodeRole


def parse_server(entry: str) -> ExistingServer:
    """'address keytype base64 [manager|worker]' (the role is optional: manager for the first
    server, the next two when there are three or more, workers after; see
    StackConfig.existing_servers)."""
    words = entry.split()
    if len(words) not in (3, 4):
        raise ValueError(
            f"{entry!r} is not 'address hostKey [manager|worker]' "
            "(the host key as ssh-keyscan -t ed25519 prints it: type and base64)"
        )
    role = words[3] if len(words) == 4 else ""
    if role not in ("", "manager", "worker"):
        raise ValueError(f"{entry!r}: the role must be manager or worker (got {role!r})")
    return ExistingServer(words[0], f"{words[1]} {words[2]}", role or "worker")  # type: ignore[arg-type]


def is_host_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return _DNS_NAME.fullmatch(value) is not None and not value.startswith("-")
    return True

"""The API's DNS record, in Cloudflare, pointing straight at the host.

Not proxied through Cloudflare: Caddy on the host answers the ACME HTTP and
TLS-ALPN challenges itself and terminates TLS with its own certificate.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

COMPONENT_TYPE = "jobsearch:platform:Domain"
TTL_SECONDS = 300


def record_type(address: str) -> str:
    """A for IPv4, AAAA for IPv6, CNAME for a host name."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "CNAME"
    return "A" if parsed.version == 4 else "AAAA"


@dataclass(frozen=True)
class DomainArgs:
    zone_id: str
    hostname: str
    # The host's address: an IP (hcloud output or config) or a DNS name (config).
    address: pulumi.Input[str]
    # A, AAAA or CNAME: record_type of the address, once it is known.
    address_type: pulumi.Input[str]
    api_token: pulumi.Input[str]
    environment: str


class Domain(pulumi.ComponentResource):
    record: cloudflare.Record
    hostname: pulumi.Output[str]

    def __init__(
        self, name: str, args: DomainArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        provider = cloudflare.Provider(
            f"{name}-cloudflare",
            api_token=args.api_token,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.record = cloudflare.Record(
            f"{name}-record",
            zone_id=args.zone_id,
            name=args.hostname,
            type=args.address_type,
            content=args.address,
            proxied=False,
            ttl=TTL_SECONDS,
            comment=f"jobsearch API ({args.environment}), managed by Pulumi",
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.hostname = pulumi.Output.from_input(args.hostname)
        self.register_outputs({"hostname": self.hostname})

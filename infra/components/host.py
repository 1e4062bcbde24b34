"""The container host: an existing server, a Hetzner Cloud VM, or this machine's engine.

Every stack reaches Docker the same way, through a pulumi-docker provider: over
SSH (`ssh://deploy@host`) for a server, over the local socket for a dev stack.
The server's SSH host key is pinned, never learned on first use: an existing
server's comes from config, and a VM's is generated here and handed to it by
cloud-init, so the first connection is already verified.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_hcloud as hcloud
import pulumi_tls as tls

from infra.config import HostMode

COMPONENT_TYPE = "jobsearch:platform:Host"
# How long `docker` waits for a reboot-fresh VM's SSH before giving up.
_DIAL_ATTEMPTS = 40


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials for pulling private images, from the service image's registry."""

    address: str
    username: str
    password: pulumi.Input[str]


@dataclass(frozen=True)
class HostArgs:
    mode: HostMode
    environment: str
    ssh_user: str = "deploy"
    ssh_port: int = 22
    # existing
    address: str = ""
    host_key: str = ""
    # hcloud
    ssh_public_key: str = ""
    # The smoke tests' restricted login (SMOKE_USER); empty: no such user.
    smoke_public_key: str = ""
    server_type: str = "cx22"
    location: str = "fsn1"
    image: str = "debian-12"
    hcloud_token: pulumi.Input[str] | None = None
    # Ports the firewall opens besides SSH.
    public_ports: tuple[int, ...] = (80, 443)
    # local
    docker_host: str = "unix:///var/run/docker.sock"
    registry: RegistryLogin | None = None
    # Refuse to delete or rebuild the VM by accident (prod).
    protect: bool = False


# The Hetzner metadata service serves the VM's user data, which holds its SSH
# host private key, to any process that asks. Containers must not reach it;
# the host itself (cloud-init) still does: DOCKER-USER sees only routed traffic.
METADATA_ADDRESS = "169.254.169.254"
BLOCK_METADATA_SCRIPT = "/usr/local/sbin/jobsearch-block-metadata"
BLOCK_METADATA_UNIT = "jobsearch-block-metadata.service"
_BLOCK_METADATA = f"""#!/bin/sh
# Drop what containers send to the metadata service ({METADATA_ADDRESS}).
# Docker leaves the DOCKER-USER chain to us and sends all forwarded traffic
# through it first; run after every Docker start ({BLOCK_METADATA_UNIT}).
set -eu
iptables -N DOCKER-USER 2>/dev/null || true
if ! iptables -C DOCKER-USER -d {METADATA_ADDRESS}/32 -j DROP 2>/dev/null; then
  iptables -I DOCKER-USER 1 -d {METADATA_ADDRESS}/32 -j DROP
fi
"""
_BLOCK_METADATA_UNIT = f"""[Unit]
Description=Keep containers away from the metadata service
After=docker.service
PartOf=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={BLOCK_METADATA_SCRIPT}

[Install]
WantedBy=docker.service
"""


# The smoke tests' own login. The deploy user is in the docker group, so its key
# is root on the host; the smoke tests' key is not: it can run one root-owned
# report (sudo, that command only, no arguments) and nothing else, no shell.
SMOKE_USER = "smoke"
SMOKE_REPORT = "/usr/local/sbin/jobsearch-smoke-report"
SMOKE_SUDOERS = "/etc/sudoers.d/jobsearch-smoke"
SMOKE_REPORT_SCRIPT = """#!/usr/bin/python3
\"\"\"What the smoke tests check of this host, and nothing more (JSON on stdout).

Each container of the project: its name, image, user, jobsearch labels, state and
hardening; never its environment, mounts or health-check output, which can hold
secrets. Also: whether Docker runs, the TCP ports listening, and the groups of
the user who ran this through sudo (the smoke login must have no root powers).
\"\"\"
import json
import os
import subprocess


def run(*command):
    return subprocess.run(command, capture_output=True, text=True, check=False)


def container(document):
    config, state, host = document["Config"], document["State"], document["HostConfig"]
    labels = config.get("Labels") or {}
    return {
        "Name": document["Name"],
        "Image": document["Image"],
        "Config": {
            "User": config.get("User", ""),
            "Labels": {k: v for k, v in labels.items() if k.startswith("org.jobsearch.")},
        },
        "State": {
            "Running": state.get("Running", False),
            "Health": {"Status": (state.get("Health") or {}).get("Status", "")},
        },
        "HostConfig": {
            "ReadonlyRootfs": host.get("ReadonlyRootfs", False),
            "CapDrop": host.get("CapDrop") or [],
            "SecurityOpt": host.get("SecurityOpt") or [],
            "PortBindings": host.get("PortBindings") or {},
        },
    }


def listening():
    sockets = []
    for line in run("ss", "-Htln").stdout.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        address, _, port = fields[3].rpartition(":")
        address = address.strip("[]").partition("%")[0]
        sockets.append(f"tcp://{address}:{port}")
    return sockets


ids = run("docker", "ps", "-aq", "--filter", "label=org.jobsearch.project=jobsearch").stdout.split()
documents = json.loads(run("docker", "inspect", *ids).stdout) if ids else []
caller = os.environ.get("SUDO_USER", "")
print(json.dumps({
    "caller": caller,
    "caller_groups": run("id", "-Gn", caller).stdout.split() if caller else [],
    "docker_running": run("systemctl", "is-active", "--quiet", "docker").returncode == 0,
    "listening": listening(),
    "containers": [container(document) for document in documents],
}))
"""


def docker_ssh_options(host_key: str) -> list[str]:
    """ssh(1) options that accept exactly this host key and nothing else.

    KnownHostsCommand (OpenSSH 8.5+) prints the pinned key as the only known
    host; the deployer's own known_hosts is not read or written.
    """
    return [
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", f"KnownHostsCommand=/bin/echo %H {host_key}",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=15",
    ]  # fmt: skip


def cloud_init(
    *,
    user: str,
    user_public_key: str,
    host_private_key: str,
    host_public_key: str,
    ssh_port: int,
    public_ports: Sequence[int],
    smoke_public_key: str = "",
) -> str:
    """First-boot setup of a VM: Docker, the deploy user, upgrades, SSH and a firewall
    (ufw for what comes in; a DOCKER-USER rule keeps containers from the metadata service).

    With `smoke_public_key`, the smoke tests' restricted user (SMOKE_USER) too.
    JSON is valid YAML, so the document is written with json and needs no YAML library.
    """
    allowed = [ssh_port, *public_ports]
    users: list[dict[str, object]] = [
        {
            "name": user,
            "shell": "/bin/bash",
            "lock_passwd": True,
            "ssh_authorized_keys": [user_public_key],
        }
    ]
    smoke_files: list[dict[str, str]] = []
    if smoke_public_key:
        users.append(
            {
                "name": SMOKE_USER,
                "shell": "/bin/sh",
                "lock_passwd": True,
                "ssh_authorized_keys": [
                    f'restrict,command="sudo -n {SMOKE_REPORT}" {smoke_public_key}'
                ],
            }
        )
        smoke_files = [
            {"path": SMOKE_REPORT, "permissions": "0755", "content": SMOKE_REPORT_SCRIPT},
            {
                "path": SMOKE_SUDOERS,
                "permissions": "0440",
                # "" after the command: it may be run with no arguments only.
                "content": f'{SMOKE_USER} ALL=(root) NOPASSWD: {SMOKE_REPORT} ""\n',
            },
        ]
    allowed_users = " ".join(str(u["name"]) for u in users)
    document = {
        # The host key the deployer already pins; no other key is generated.
        "ssh_deletekeys": True,
        "ssh_genkeytypes": [],
        "ssh_keys": {"ed25519_private": host_private_key, "ed25519_public": host_public_key},
        "disable_root": True,
        "ssh_pwauth": False,
        "users": users,
        "package_update": True,
        "package_upgrade": True,
        "packages": ["docker.io", "unattended-upgrades", "ufw"],
        "write_files": [
            {
                "path": "/etc/apt/apt.conf.d/20auto-upgrades",
                "permissions": "0644",
                "content": 'APT::Periodic::Update-Package-Lists "1";\n'
                'APT::Periodic::Unattended-Upgrade "1";\n',
            },
            {
                "path": "/etc/ssh/sshd_config.d/10-jobsearch.conf",
                "permissions": "0644",
                "content": f"Port {ssh_port}\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nPermitRootLogin no\n"
                f"AllowUsers {allowed_users}\n",
            },
            {
                # Every container's logs rotate even if its own options were lost.
                "path": "/etc/docker/daemon.json",
                "permissions": "0644",
                "content": json.dumps(
                    {
                        "log-driver": "json-file",
                        "log-opts": {"max-size": "10m", "max-file": "5"},
                        "live-restore": True,
                    }
                ),
            },
            {"path": BLOCK_METADATA_SCRIPT, "permissions": "0755", "content": _BLOCK_METADATA},
            {
                "path": f"/etc/systemd/system/{BLOCK_METADATA_UNIT}",
                "permissions": "0644",
                "content": _BLOCK_METADATA_UNIT,
            },
            *smoke_files,
        ],
        "runcmd": [
            # The docker group exists only once the package is installed.
            ["usermod", "-aG", "docker", user],
            ["systemctl", "enable", "--now", "docker"],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", BLOCK_METADATA_UNIT],
            ["systemctl", "enable", "--now", "unattended-upgrades"],
            ["ufw", "default", "deny", "incoming"],
            ["ufw", "default", "allow", "outgoing"],
            *[["ufw", "allow", f"{port}/tcp"] for port in allowed],
            ["ufw", "--force", "enable"],
            ["systemctl", "restart", "ssh"],
        ],
    }
    return "#cloud-config\n" + json.dumps(document, indent=2) + "\n"


def firewall_rules(ports: Sequence[int]) -> list[hcloud.FirewallRuleArgs]:
    return [
        hcloud.FirewallRuleArgs(
            direction="in",
            protocol="tcp",
            port=str(port),
            source_ips=["0.0.0.0/0", "::/0"],
            description=f"tcp {port}",
        )
        for port in ports
    ]


class Host(pulumi.ComponentResource):
    """Where the containers run, and how the deployer reaches it."""

    address: pulumi.Output[str]
    # The SSH host key deploys pin (not a secret: it is the server's public key).
    host_key: pulumi.Output[str]
    docker: docker.Provider

    def __init__(
        self, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._mode = args.mode
        self._docker_host = args.docker_host
        self._connection: command.remote.ConnectionArgs | None = None
        ready: list[pulumi.Resource] = []
        registry_auth = (
            [
                docker.ProviderRegistryAuthArgs(
                    address=args.registry.address,
                    username=args.registry.username,
                    password=args.registry.password,
                )
            ]
            if args.registry is not None
            else None
        )

        if args.mode == "local":
            self.address = pulumi.Output.from_input("127.0.0.1")
            self.host_key = pulumi.Output.from_input("")
            self.docker = docker.Provider(
                f"{name}-docker",
                host=args.docker_host,
                registry_auth=registry_auth,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.register_outputs({"address": self.address, "host_key": self.host_key})
            return

        host_key: pulumi.Input[str]
        server: hcloud.Server | None = None
        if args.mode == "existing":
            self.address = pulumi.Output.from_input(args.address)
            host_key = args.host_key
        else:
            server, host_key = self._create_server(name, args)
            self.address = server.ipv4_address
        self.host_key = pulumi.Output.from_input(host_key)
        self._connection = self._ssh(args, host_key)
        if server is not None:
            # The deploy user may use Docker only once cloud-init has finished.
            ready.append(
                command.remote.Command(
                    f"{name}-cloud-init",
                    connection=self._connection,
                    create="cloud-init status --wait >/dev/null; cloud-init status",
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[server]),
                )
            )
        self.docker = docker.Provider(
            f"{name}-docker",
            host=pulumi.Output.concat(
                "ssh://", args.ssh_user, "@", self.address, ":", str(args.ssh_port)
            ),
            ssh_opts=pulumi.Output.from_input(host_key).apply(docker_ssh_options),
            registry_auth=registry_auth,
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )
        self.register_outputs({"address": self.address, "host_key": self.host_key})

    def _ssh(self, args: HostArgs, host_key: pulumi.Input[str]) -> command.remote.ConnectionArgs:
        return command.remote.ConnectionArgs(
            host=self.address,
            port=args.ssh_port,
            user=args.ssh_user,
            host_key=host_key,
            dial_error_limit=_DIAL_ATTEMPTS,
        )

    def _create_server(self, name: str, args: HostArgs) -> tuple[hcloud.Server, pulumi.Output[str]]:
        child = pulumi.ResourceOptions(parent=self)
        provider = hcloud.Provider(f"{name}-hcloud", token=args.hcloud_token, opts=child)
        in_hcloud = pulumi.ResourceOptions(parent=self, provider=provider)
        labels = {"project": "jobsearch", "environment": args.environment}
        host_key = tls.PrivateKey(f"{name}-ssh-host-key", algorithm="ED25519", opts=child)
        deploy_key = hcloud.SshKey(
            f"{name}-deploy-key",
            public_key=args.ssh_public_key,
            labels=labels,
            opts=in_hcloud,
        )
        firewall = hcloud.Firewall(
            f"{name}-firewall",
            rules=firewall_rules([args.ssh_port, *args.public_ports]),
            labels=labels,
            opts=in_hcloud,
        )

        def render(keys: list[str]) -> str:
            return cloud_init(
                user=args.ssh_user,
                user_public_key=args.ssh_public_key,
                host_private_key=keys[0],
                host_public_key=keys[1].strip(),
                ssh_port=args.ssh_port,
                public_ports=args.public_ports,
                smoke_public_key=args.smoke_public_key,
            )

        rendered: pulumi.Output[str] = pulumi.Output.all(
            host_key.private_key_openssh, host_key.public_key_openssh
        ).apply(render)
        # The private host key makes user data a secret; it reaches only the VM.
        user_data: pulumi.Output[str] = pulumi.Output.secret(rendered)
        server = hcloud.Server(
            f"{name}-server",
            name=f"jobsearch-{args.environment}",
            server_type=args.server_type,
            image=args.image,
            location=args.location,
            ssh_keys=[deploy_key.id],
            firewall_ids=[firewall.id.apply(int)],
            public_nets=[hcloud.ServerPublicNetArgs(ipv4_enabled=True, ipv6_enabled=True)],
            user_data=user_data,
            labels=labels,
            delete_protection=args.protect,
            rebuild_protection=args.protect,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=provider,
                protect=args.protect,
                # User data runs at first boot only; a change to it must not
                # replace a running server.
                ignore_changes=["user_data", "image"],
            ),
        )
        return server, host_key.public_key_openssh.apply(str.strip)

    def run(
        self,
        name: str,
        *,
        script: pulumi.Input[str],
        stdin: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions,
    ) -> pulumi.CustomResource:
        """Run a shell script on the host, on create and again whenever an input changes."""
        if self._connection is None:
            return command.local.Command(
                name,
                create=script,
                update=script,
                stdin=stdin,
                interpreter=["/bin/sh", "-c"],
                environment={"DOCKER_HOST": self._docker_host},
                opts=opts,
            )
        return command.remote.Command(
            name,
            connection=self._connection,
            create=script,
            update=script,
            stdin=stdin,
            opts=opts,
        )

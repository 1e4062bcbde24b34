"""The container host: a swarm of existing servers or Hetzner Cloud VMs, or this machine's
engine.

Every stack reaches Docker the same way, through a pulumi-docker provider: over
SSH (`ssh://deploy@host`) to the first manager, over the local socket for a dev
stack. Every server's SSH host key is pinned, never learned on first use: an
existing server's comes from config, and a VM's is generated here and handed to
it by cloud-init, so the first connection is already verified.

With more than one node (jobsearch:nodes), the first manager inits the swarm on
its private address, the others join it with a join token read from it and held
as a Pulumi secret (one manager, or three from three nodes), and the first
manager carries the labels that pin the proxy and Redis to it. Each extra node
has a membership command on the first manager whose delete drains the node, waits
for its tasks to run elsewhere and removes it from the swarm: it depends on the
node, so Pulumi deletes it (and drains) before it deletes the server.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_hcloud as hcloud
import pulumi_tls as tls

from infra.config.hosts import ExistingServer, HostMode, NodeRole
from infra.topology import DATASTORE_LABEL, EDGE_LABEL, NODE_MARKER, NOFILE_LIMIT, manager_count

COMPONENT_TYPE = "jobsearch:platform:Host"
# Daily, as root: prunes the images no container uses (see cloud_init).
IMAGE_PRUNE_CRON = "/etc/cron.daily/jobsearch-docker-image-prune"
# How long `docker` waits for a reboot-fresh VM's SSH before giving up.
_DIAL_ATTEMPTS = 40
# The nodes' private network (hcloud); node i gets PRIVATE_SUBNET's .(10 + i).
PRIVATE_NETWORK = "10.254.0.0/16"
PRIVATE_SUBNET = "10.254.1.0/24"
# What the swarm's nodes say to each other, only ever from the private network:
# cluster management, the nodes' gossip, and the overlay network's VXLAN.
SWARM_PORTS: tuple[tuple[str, int], ...] = (
    ("tcp", 2377),
    ("tcp", 7946),
    ("udp", 7946),
    ("udp", 4789),
)
# How long removing a node waits for its tasks to run elsewhere.
DRAIN_TIMEOUT_SECONDS = 300


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
    # existing: one server (address and host_key), or `servers`, the first a manager
    address: str = ""
    host_key: str = ""
    servers: tuple[ExistingServer, ...] = ()
    # hcloud: how many servers to create (existing: len(servers))
    nodes: int = 1
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


def private_address(index: int) -> str:
    """Node `index`'s fixed address on the private subnet (.10, .11, ...)."""
    return PRIVATE_SUBNET.rsplit(".", 1)[0] + f".{10 + index}"


def network_zone(location: str) -> str:
    """The Hetzner network zone of a location (a subnet lives in one zone)."""
    zones = {"ash": "us-east", "hil": "us-west", "sin": "ap-southeast"}
    return zones.get(location.rstrip("0123456789"), "eu-central")


def node_name(environment: str, index: int) -> str:
    """The server's (and its swarm node's) name; the first keeps a one-node stack's name."""
    return f"jobsearch-{environment}" if index == 0 else f"jobsearch-{environment}-{index + 1}"


def cloud_init(
    *,
    user: str,
    user_public_key: str,
    host_private_key: str,
    host_public_key: str,
    ssh_port: int,
    public_ports: Sequence[int],
    smoke_public_key: str = "",
    swarm_source: str = "",
) -> str:
    """First-boot setup of a VM: Docker, the deploy user, upgrades, SSH and a firewall
    (ufw for what comes in; a DOCKER-USER rule keeps containers from the metadata service).

    With `smoke_public_key`, the smoke tests' restricted user (SMOKE_USER) too. With
    `swarm_source` (the private network's range), the swarm's ports from there only.
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
        # cron: the replicas heartbeat (infra/components/replica_watch.py).
        "packages": ["docker.io", "unattended-upgrades", "ufw", "cron"],
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
                # Every container's logs rotate even if its own options were lost, and
                # every container gets the topology's open-files limit (pulumi-docker's
                # Service cannot set ulimits). No live-restore: swarm mode refuses it.
                "path": "/etc/docker/daemon.json",
                "permissions": "0644",
                "content": json.dumps(
                    {
                        "log-driver": "json-file",
                        "log-opts": {"max-size": "10m", "max-file": "5"},
                        "default-ulimits": {
                            "nofile": {"Name": "nofile", "Soft": NOFILE_LIMIT, "Hard": NOFILE_LIMIT}
                        },
                    }
                ),
            },
            {
                # Images no container uses, older than ten days, go: each deploy pulls a
                # new digest. The swarm keeps its last tasks' containers, so the image a
                # rollback needs is in use and stays.
                "path": IMAGE_PRUNE_CRON,
                "permissions": "0755",
                "content": "#!/bin/sh\nexec docker image prune --all --force --filter until=240h\n",
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
            *_ufw_swarm_rules(swarm_source),
            ["ufw", "--force", "enable"],
            ["systemctl", "restart", "ssh"],
        ],
    }
    return "#cloud-config\n" + json.dumps(document, indent=2) + "\n"


def _ufw_swarm_rules(source: str) -> list[list[str]]:
    if not source:
        return []
    return [
        ["ufw", "allow", "from", source, "to", "any", "port", str(port), "proto", protocol]
        for protocol, port in SWARM_PORTS
    ]


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


def swarm_firewall_rules(source: str) -> list[hcloud.FirewallRuleArgs]:
    """The swarm's ports, from the private network only (and ufw on each VM says the same:
    Hetzner's firewall filters the public interface, ufw every interface)."""
    return [
        hcloud.FirewallRuleArgs(
            direction="in",
            protocol=protocol,
            port=str(port),
            source_ips=[source],
            description=f"swarm {protocol} {port}",
        )
        for protocol, port in SWARM_PORTS
    ]


_NODE_ID = "docker info --format '{{.Swarm.NodeID}}'"
_NODE_STATE = "docker info --format '{{.Swarm.LocalNodeState}}'"


def _script(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"


def init_swarm_script(node: str, advertise: str, *, readvertise: bool) -> str:
    """On the first manager: swarm mode on its (private) address, and the labels that pin
    the proxy and Redis to it. Prints the node's ID. Safe to run again.

    `readvertise`: a one-node swarm that advertises another address (a stack that grew
    from one VM, initialised on its public address) is re-created on the private one with
    `--force-new-cluster`, which keeps its services, secrets and configs."""
    address = shlex.quote(advertise)
    lines = [
        f"{NODE_MARKER}{node}",
        "set -eu",
        f'if [ "$({_NODE_STATE})" != active ]; then',
        f"  docker swarm init --advertise-addr {address} >/dev/null",
    ]
    if readvertise:
        lines += [
            "elif [ \"$(docker info --format '{{.Swarm.NodeAddr}}')\" != " + address + " ] \\",
            '    && [ "$(docker node ls -q | wc -l)" -eq 1 ]; then',
            f"  docker swarm init --force-new-cluster --advertise-addr {address} >/dev/null",
        ]
    labels = f"--label-add {DATASTORE_LABEL}=true --label-add {EDGE_LABEL}=true"
    lines += ["fi", f'docker node update {labels} "$({_NODE_ID})" >/dev/null', _NODE_ID]
    return _script(lines)


def join_script(node: str, advertise: str, manager: str) -> str:
    """On a node: join the swarm (the token in SWARM_JOIN_TOKEN), unless it is in one;
    print the node's ID."""
    join = (
        f'docker swarm join --token "$SWARM_JOIN_TOKEN" --advertise-addr'
        f" {shlex.quote(advertise)} {shlex.quote(manager)}:2377"
    )
    state = f'if [ "$({_NODE_STATE})" != active ]; then'
    return _script(
        [f"{NODE_MARKER}{node}", "set -eu", state, f"  {join} >/dev/null", "fi", _NODE_ID]
    )


def membership_script(node: str, node_id: str, role: NodeRole) -> str:
    """On the first manager: the node's role (promoted or demoted to it). Safe to run again."""
    verb = "promote" if role == "manager" else "demote"
    return _script(
        [f"# {node}", "set -eu", f"docker node {verb} {shlex.quote(node_id)} >/dev/null"]
    )


# Tasks of the node still running, and services of the project short of replicas.
_ON_NODE = "docker node ps \"$node\" --format '{{.CurrentState}}' | grep -c '^Running' || true"
_SHORT = (
    "docker service ls --filter label=org.jobsearch.project=jobsearch --format '{{.Replicas}}'"
    " | awk '{split($1, r, \"/\"); if (r[1] != r[2]) n++} END {print n + 0}'"
)


def drain_script(node_id: str, timeout_seconds: int = DRAIN_TIMEOUT_SECONDS) -> str:
    """On the first manager, before a node's server is deleted: drain it, wait until none
    of its tasks runs and every service of the project has all its replicas running again
    (elsewhere), then demote it if it is a manager and remove it from the swarm."""
    return _script(
        [
            "set -eu",
            f"node={shlex.quote(node_id)}",
            'if ! docker node inspect "$node" >/dev/null 2>&1; then exit 0; fi',
            'docker node update --availability drain "$node" >/dev/null',
            f"deadline=$(( $(date +%s) + {timeout_seconds} ))",
            "while :; do",
            f"  on_node=$({_ON_NODE})",
            f"  short=$({_SHORT})",
            '  if [ "$on_node" -eq 0 ] && [ "$short" -eq 0 ]; then break; fi',
            '  if [ "$(date +%s)" -ge "$deadline" ]; then',
            f'    echo "node $node: tasks still there or services short after {timeout_seconds} s"'
            " >&2",
            "    exit 1",
            "  fi",
            "  sleep 5",
            "done",
            "role=$(docker node inspect --format '{{.Spec.Role}}' \"$node\")",
            'if [ "$role" = manager ]; then docker node demote "$node" >/dev/null; fi',
            'docker node rm --force "$node" >/dev/null',
        ]
    )


@dataclass
class Node:
    """One server of the swarm, as the deployer reaches it."""

    index: int
    name: str
    role: NodeRole
    address: pulumi.Output[str]
    host_key: pulumi.Input[str]
    # Where the swarm reaches it: its private address (hcloud), else its address.
    advertise: str
    connection: command.remote.ConnectionArgs
    # What must be done before anything runs on it (cloud-init).
    ready: list[pulumi.Resource] = field(default_factory=list)
    # A new value (a server created again) joins the node to the swarm again.
    identity: list[pulumi.Input[str]] = field(default_factory=list)


class Host(pulumi.ComponentResource):
    """Where the containers run, and how the deployer reaches it: the first manager's
    engine, and every node over SSH."""

    address: pulumi.Output[str]
    # The SSH host key deploys pin (not a secret: it is the server's public key).
    host_key: pulumi.Output[str]
    # Where the first manager's swarm listens (its private address with hcloud).
    advertise_address: pulumi.Output[str]
    # The first manager's engine as DOCKER_HOST takes it (`ops status` asks it).
    docker_host: pulumi.Output[str]
    docker: docker.Provider
    nodes: list[Node]
    # What forms the swarm (init, joins, roles): the services wait for all of it.
    members: list[pulumi.Resource]
    # The join tokens, Pulumi secrets (only with more than one node).
    join_tokens: dict[NodeRole, pulumi.Output[str]]

    def __init__(
        self, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._mode = args.mode
        self._docker_host = args.docker_host
        self._connection: command.remote.ConnectionArgs | None = None
        self.nodes = []
        self.members = []
        self.join_tokens = {}
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
            self.advertise_address = self.address
            self.docker_host = pulumi.Output.from_input(args.docker_host)
            self.docker = docker.Provider(
                f"{name}-docker",
                host=args.docker_host,
                registry_auth=registry_auth,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.register_outputs({"address": self.address, "host_key": self.host_key})
            return

        if args.mode == "existing":
            self.nodes = self._existing_nodes(args)
        else:
            self.nodes = self._create_servers(name, args)
        for node in self.nodes:
            if args.mode == "hcloud":
                # The deploy user may use Docker only once cloud-init has finished.
                node.ready.append(
                    command.remote.Command(
                        _indexed(f"{name}-cloud-init", node.index),
                        connection=node.connection,
                        create="cloud-init status --wait >/dev/null; cloud-init status",
                        opts=pulumi.ResourceOptions(parent=self, depends_on=node.ready),
                    )
                )
        first = self.nodes[0]
        self.address = first.address
        self.host_key = pulumi.Output.from_input(first.host_key)
        self.advertise_address = pulumi.Output.from_input(first.advertise)
        self._connection = first.connection
        self.docker_host = pulumi.Output.concat(
            "ssh://", args.ssh_user, "@", self.address, ":", str(args.ssh_port)
        )
        self.docker = docker.Provider(
            f"{name}-docker",
            host=self.docker_host,
            ssh_opts=pulumi.Output.from_input(first.host_key).apply(docker_ssh_options),
            registry_auth=registry_auth,
            opts=pulumi.ResourceOptions(parent=self, depends_on=first.ready),
        )
        self._form_swarm(name, args)
        self.register_outputs(
            {
                "address": self.address,
                "host_key": self.host_key,
                "nodes": [node.name for node in self.nodes],
            }
        )

    @property
    def managers(self) -> list[Node]:
        return [node for node in self.nodes if node.role == "manager"]

    def _existing_nodes(self, args: HostArgs) -> list[Node]:
        servers = args.servers or (ExistingServer(args.address, args.host_key, "manager"),)
        return [
            Node(
                index=index,
                name=node_name(args.environment, index),
                role=server.role,
                address=pulumi.Output.from_input(server.address),
                host_key=server.host_key,
                advertise=server.address,
                connection=self._ssh(args, server.address, server.host_key),
            )
            for index, server in enumerate(servers)
        ]

    def _ssh(
        self, args: HostArgs, address: pulumi.Input[str], host_key: pulumi.Input[str]
    ) -> command.remote.ConnectionArgs:
        return command.remote.ConnectionArgs(
            host=address,
            port=args.ssh_port,
            user=args.ssh_user,
            host_key=host_key,
            dial_error_limit=_DIAL_ATTEMPTS,
        )

    def _form_swarm(self, name: str, args: HostArgs) -> None:
        """The first manager inits the swarm; every other node joins it and is given its
        role by a membership command whose delete drains and removes it."""
        first = self.nodes[0]
        init = command.remote.Command(
            f"{name}-swarm",
            connection=first.connection,
            # Plain text, known at preview (the policy pack counts the nodes by it).
            create=init_swarm_script(
                first.name, first.advertise, readvertise=args.mode == "hcloud"
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=first.ready),
        )
        self.members.append(init)
        if len(self.nodes) == 1:
            return
        roles: list[NodeRole] = ["worker"]
        if any(node.role == "manager" for node in self.nodes[1:]):
            roles.append("manager")
        for role in roles:
            reader = command.remote.Command(
                f"{name}-join-token-{role}",
                connection=first.connection,
                create=f"docker swarm join-token -q {role}",
                # Anyone with it joins the swarm (a manager's runs every container):
                # encrypted in state, [secret] in every preview and log.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[init], additional_secret_outputs=["stdout"]
                ),
            )
            token: pulumi.Output[str] = pulumi.Output.secret(reader.stdout.apply(_stripped))
            self.join_tokens[role] = token
        for node in self.nodes[1:]:
            joined = command.remote.Command(
                _indexed(f"{name}-join", node.index),
                connection=node.connection,
                create=join_script(node.name, node.advertise, first.advertise),
                environment={"SWARM_JOIN_TOKEN": self.join_tokens[node.role]},
                triggers=node.identity or None,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*node.ready, init],
                    additional_secret_outputs=["environment"],
                ),
            )
            node_id = joined.stdout.apply(_stripped)
            member = command.remote.Command(
                _indexed(f"{name}-node", node.index),
                connection=first.connection,
                create=node_id.apply(partial(membership_script, node.name, role=node.role)),
                # Before the server goes (this depends on it, so Pulumi deletes it first).
                delete=node_id.apply(drain_script),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[joined, init]),
            )
            self.members += [joined, member]

    def _create_servers(self, name: str, args: HostArgs) -> list[Node]:
        child = pulumi.ResourceOptions(parent=self)
        provider = hcloud.Provider(f"{name}-hcloud", token=args.hcloud_token, opts=child)
        in_hcloud = pulumi.ResourceOptions(parent=self, provider=provider)
        labels = {"project": "jobsearch", "environment": args.environment}
        deploy_key = hcloud.SshKey(
            f"{name}-deploy-key",
            public_key=args.ssh_public_key,
            labels=labels,
            opts=in_hcloud,
        )
        network = hcloud.Network(
            f"{name}-network",
            name=f"jobsearch-{args.environment}",
            ip_range=PRIVATE_NETWORK,
            labels=labels,
            opts=in_hcloud,
        )
        subnet = hcloud.NetworkSubnet(
            f"{name}-subnet",
            network_id=network.id.apply(int),
            type="cloud",
            network_zone=network_zone(args.location),
            ip_range=PRIVATE_SUBNET,
            opts=in_hcloud,
        )
        firewall = hcloud.Firewall(
            f"{name}-firewall",
            rules=[
                *firewall_rules([args.ssh_port, *args.public_ports]),
                *swarm_firewall_rules(PRIVATE_NETWORK),
            ],
            labels=labels,
            opts=in_hcloud,
        )
        managers = manager_count(args.nodes)
        nodes = []
        for index in range(args.nodes):
            host_key = tls.PrivateKey(
                _indexed(f"{name}-ssh-host-key", index), algorithm="ED25519", opts=child
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
                    swarm_source=PRIVATE_NETWORK,
                )

            rendered: pulumi.Output[str] = pulumi.Output.all(
                host_key.private_key_openssh, host_key.public_key_openssh
            ).apply(render)
            # The private host key makes user data a secret; it reaches only the VM.
            user_data: pulumi.Output[str] = pulumi.Output.secret(rendered)
            server = hcloud.Server(
                _indexed(f"{name}-server", index),
                name=node_name(args.environment, index),
                server_type=args.server_type,
                image=args.image,
                location=args.location,
                ssh_keys=[deploy_key.id],
                firewall_ids=[firewall.id.apply(int)],
                public_nets=[hcloud.ServerPublicNetArgs(ipv4_enabled=True, ipv6_enabled=True)],
                user_data=user_data,
                labels={**labels, "role": "manager" if index < managers else "worker"},
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
            attached = hcloud.ServerNetwork(
                _indexed(f"{name}-private", index),
                server_id=server.id.apply(int),
                subnet_id=subnet.id,
                ip=private_address(index),
                opts=in_hcloud,
            )
            public_key = host_key.public_key_openssh.apply(str.strip)
            nodes.append(
                Node(
                    index=index,
                    name=node_name(args.environment, index),
                    role="manager" if index < managers else "worker",
                    address=server.ipv4_address,
                    host_key=public_key,
                    advertise=private_address(index),
                    connection=self._ssh(args, server.ipv4_address, public_key),
                    ready=[server, attached],
                    identity=[server.id],
                )
            )
        return nodes

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


def _indexed(name: str, index: int) -> str:
    """A per-node resource name: the first node's keeps a one-node stack's name."""
    return name if index == 0 else f"{name}-{index + 1}"


def _stripped(output: str | None) -> str:
    """A command's stdout, trimmed (None until the command has run)."""
    return (output or "").strip()

"""What JobSearchReplicasMissing observes: whether every service runs all its replicas.

The engine knows it, and only a manager's engine can say it (`docker service ls`:
running/desired per service). Nothing outside the swarm can ask it without a
new endpoint in the service, so every manager pings a Checkly heartbeat once a
minute while every service of the stack has all its replicas running, and
stays silent otherwise. The heartbeat monitor (infra/components/monitoring.py)
alerts when no ping arrived for REPLICAS_MISSING_MINUTES: replicas short for
that long, or no manager left to say otherwise (which is worse).

The check runs from the deploy user's crontab (the deploy user is in the
docker group; no root needed), every minute, as a script in its home. A server
without cron gets a warning at deploy, not a failed deploy: the heartbeat then
stays silent and the alert itself says so. The ping
URL holds the heartbeat's token: it is a Pulumi secret, written to a file only
the deploy user reads, never on a command line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from infra.components.host import Host
from infra.components.monitoring import HEARTBEAT_PING_URL
from infra.topology import ENVIRONMENT_LABEL, PROJECT

COMPONENT_TYPE = "jobsearch:platform:ReplicaWatch"


def watch_name(environment: str) -> str:
    return f"{PROJECT}-{environment}-replicas-heartbeat"


def heartbeat_script(environment: str) -> str:
    """Run by cron each minute on a manager: ping the heartbeat when every service of the
    stack runs all its replicas (running >= desired in `docker service ls`: a start-first
    rollout runs one more than desired for a moment, and is not short)."""
    label = shlex.quote(f"{ENVIRONMENT_LABEL}={environment}")
    url_file = f'"$HOME/.config/{watch_name(environment)}.url"'
    return f"""#!/bin/sh
# JobSearchReplicasMissing: silence here for 5 minutes raises the alert.
set -eu
[ "$(docker info --format '{{{{.Swarm.ControlAvailable}}}}')" = true ] || exit 0
replicas=$(docker service ls --filter label={label} --format '{{{{.Replicas}}}}')
[ -n "$replicas" ] || exit 0
short=$(printf '%s\\n' "$replicas" \\
  | awk '{{split($1, r, "/"); if (r[1] + 0 < r[2] + 0) n++}} END {{print n + 0}}')
[ "$short" -eq 0 ] || exit 0
python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' \\
  "$(cat {url_file})"
"""


def install_script(environment: str) -> str:
    """Install the heartbeat script and its crontab line for the deploy user (the URL comes
    in HEARTBEAT_URL). Safe to run again."""
    name = watch_name(environment)
    return f"""set -eu
if ! command -v crontab >/dev/null; then
  # Not fatal: a deploy must not stop for its monitoring. With no heartbeat here,
  # JobSearchReplicasMissing fires within minutes and its runbook says this.
  echo "warning: cron is not installed on $(hostname): no replicas heartbeat from it;" \
    "install cron there (sudo apt-get install cron), then pulumi up" >&2
  exit 0
fi
mkdir -p "$HOME/.local/bin" "$HOME/.config"
umask 077
printf '%s\\n' "$HEARTBEAT_URL" > "$HOME/.config/{name}.url"
cat > "$HOME/.local/bin/{name}" <<'SCRIPT'
{heartbeat_script(environment)}SCRIPT
chmod 0700 "$HOME/.local/bin/{name}"
{{ crontab -l 2>/dev/null | grep -v '{name}' || true; \\
  echo "* * * * * $HOME/.local/bin/{name} >/dev/null 2>&1"; }} | crontab -
"""


def uninstall_script(environment: str) -> str:
    name = watch_name(environment)
    return f"""set -eu
{{ crontab -l 2>/dev/null | grep -v '{name}' || true; }} | crontab -
rm -f "$HOME/.local/bin/{name}" "$HOME/.config/{name}.url"
"""


@dataclass(frozen=True)
class ReplicaWatchArgs:
    host: Host
    environment: str
    # The heartbeat monitor's ping token (a Pulumi secret).
    ping_token: pulumi.Input[str]
    # What must exist first (the services).
    after: tuple[pulumi.Resource, ...] = ()


class ReplicaWatch(pulumi.ComponentResource):
    """The heartbeat check on every manager (none on a dev stack's local engine)."""

    commands: list[command.remote.Command]

    def __init__(
        self, name: str, args: ReplicaWatchArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.concat(HEARTBEAT_PING_URL, args.ping_token)
        )
        self.commands = [
            command.remote.Command(
                f"{name}-{manager.name}",
                connection=manager.connection,
                create=install_script(args.environment),
                delete=uninstall_script(args.environment),
                environment={"HEARTBEAT_URL": url},
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*manager.ready, *args.host.members, *args.after],
                    additional_secret_outputs=["environment"],
                ),
            )
            for manager in args.host.managers
        ]
        self.register_outputs({"managers": [manager.name for manager in args.host.managers]})

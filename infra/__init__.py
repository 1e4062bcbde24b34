"""The platform: Pulumi program, topology, local runner, migrations and ops CLI."""

"""The topology of infra/topology.py on the local Docker engine.

- engine: install and start Docker when the machine has none;
- images: the service image, and bases built from Debian packages for
  machines that reach no container registry;
- translate: one ContainerSpec to docker SDK arguments (the drift test compares
  it with the Pulumi translation);
- state: where a local instance keeps its Caddyfile, secrets and history;
- runner: up, rollout, rollback, down and status.
"""

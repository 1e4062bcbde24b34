"""The Pulumi components of a stack, one per module.

host (where containers run), database (migrations and the service's login),
service (infra/topology.py as pulumi-docker resources), domain (DNS),
monitoring (checks and alerts from infra/alerts.py) and frontend (the Vercel
project's BACKEND_URL). infra/__main__.py wires them.
"""

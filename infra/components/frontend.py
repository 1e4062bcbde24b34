"""The frontend link: the Vercel project's BACKEND_URL points at this stack's API, and
its BACKEND_API_KEY (sensitive) is the key the API requires (frontendApiKeys).

The service's CORS_ORIGINS comes from the same config key (frontendOrigins),
so what the frontend is told and what the API allows cannot disagree; the
same holds for the key (docs/frontend.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumiverse_vercel as vercel

COMPONENT_TYPE = "jobsearch:platform:Frontend"
BACKEND_URL = "BACKEND_URL"
BACKEND_API_KEY = "BACKEND_API_KEY"
# Which Vercel deployments talk to which stack.
VERCEL_TARGETS = {"prod": ["production"], "staging": ["preview"], "dev": ["development"]}


@dataclass(frozen=True)
class FrontendArgs:
    environment: str
    project_id: str
    api_token: pulumi.Input[str]
    backend_url: pulumi.Input[str]
    team_id: str = ""
    # The first of the API's FRONTEND_API_KEYS (a secret); None: the API is open.
    backend_api_key: pulumi.Input[str] | None = None


class Frontend(pulumi.ComponentResource):
    backend_url: vercel.ProjectEnvironmentVariable
    backend_api_key: vercel.ProjectEnvironmentVariable | None

    def __init__(
        self, name: str, args: FrontendArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        provider = vercel.Provider(
            f"{name}-vercel",
            api_token=args.api_token,
            team=args.team_id or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.backend_url = vercel.ProjectEnvironmentVariable(
            f"{name}-backend-url",
            project_id=args.project_id,
            team_id=args.team_id or None,
            key=BACKEND_URL,
            value=args.backend_url,
            targets=VERCEL_TARGETS[args.environment],
            # A public URL: readable in the dashboard on purpose.
            sensitive=False,
            comment=f"The jobsearch API ({args.environment}), managed by Pulumi",
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.backend_api_key = None
        if args.backend_api_key is not None:
            self.backend_api_key = vercel.ProjectEnvironmentVariable(
                f"{name}-backend-api-key",
                project_id=args.project_id,
                team_id=args.team_id or None,
                key=BACKEND_API_KEY,
                value=pulumi.Output.secret(args.backend_api_key),
                targets=VERCEL_TARGETS[args.environment],
                # A credential: write-only in Vercel's dashboard and API.
                sensitive=True,
                comment=f"Key for the jobsearch API ({args.environment}), managed by Pulumi",
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
        self.register_outputs({})

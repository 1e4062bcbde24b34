"""The jobsearch guardrails, as a pulumi-policy pack; mandatory for prod.

    pulumi preview -s prod --policy-pack infra/policy
    pulumi up -s prod --policy-pack infra/policy

Starting this module serves the pack to the Pulumi engine (it blocks); the
checks live in infra.policy.policies, where they are tested.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from infra.policy.policies import build_policies

PolicyPack(
    name="jobsearch-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
)

"""The policy pack every prod deployment must pass (PulumiPolicy.yaml, __main__.py).

The checks themselves are plain functions in infra.policy.policies.
"""

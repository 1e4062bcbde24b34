"""The stack's configuration, declared once in `model.StackConfig`.

- `keys`: how a field declares its key (camelCase name, description, example,
  secret-ness, the service setting it sets) and the `Key` view derived from it;
- `model`: `StackConfig`, every key as a typed field, and `KEYS`;
- `load`: reading the running stack's values into a `StackConfig`, or one
  message naming each bad key and the `pulumi config` command that fixes it;
- `rules`: the checks that span keys; `hosts`, `database`, `standins`: the
  rules of one concern each; `problems`: the message;
- `images`: which images the stack runs (infra/promotion.py holds the rule);
- `pulumi_yaml`: Pulumi.yaml's `config:` block, rendered from the model.
"""

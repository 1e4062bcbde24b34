"""Stand-ins never reach staging or prod.

The service can serve sample results (SAMPLE_SOURCES) and talk to local
stand-ins instead of the real APIs (the *_BASE_URL settings): for `make local`
and the tests only. A stack may not set them (infra/config/load.py refuses the
keys), and the policy pack refuses a workload whose environment does
(infra/policy/policies.py). The real APIs' URLs are the service's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic.alias_generators import to_camel

from infra.config.keys import Key
from jobsearch.settings import Settings

SAMPLE_SOURCES = "SAMPLE_SOURCES"
_BASE_URL = "_BASE_URL"


def real_api_urls() -> dict[str, str]:
    """Each *_BASE_URL setting and the real API it defaults to (no trailing slash)."""
    return {
        name.upper(): str(field.default).rstrip("/")
        for name, field in Settings.model_fields.items()
        if name.upper().endswith(_BASE_URL)
    }


def stand_in_setting_names() -> tuple[str, ...]:
    """The service settings that point it at stand-ins."""
    return (SAMPLE_SOURCES, *real_api_urls())


def refused_stack_keys() -> tuple[str, ...]:
    """The stack config keys (camelCase) that would set them: no stack may carry one."""
    return tuple(to_camel(name.lower()) for name in stand_in_setting_names())


def stand_in_settings(env: Mapping[str, str]) -> list[str]:
    """The settings in `env` that point the service at stand-ins, as `NAME=value` messages:
    SAMPLE_SOURCES at all, a *_BASE_URL other than its real API's."""
    real = real_api_urls()
    found = []
    for name, value in env.items():
        if name == SAMPLE_SOURCES:
            found.append(f"{name}={value!r}")
        elif name.endswith(_BASE_URL) and value.rstrip("/") != real.get(name):
            found.append(f"{name}={value!r} (the real API: {real.get(name, 'none')})")
    return found


def refuse_stand_in_keys(keys: Iterable[Key]) -> None:
    """Raise if a declared key would hand the service a stand-in setting: the settings a
    stack hands the service never contain one (infra/config/model.py runs this at import)."""
    names = stand_in_setting_names()
    for key in keys:
        if key.setting in names:
            raise TypeError(
                f"{key.full_name} sets {key.setting}, which only local stand-ins use: "
                "no stack may set it"
            )

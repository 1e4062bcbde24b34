"""External monitoring: one Checkly check or Sentry rule per alert in infra/alerts.py.

The alert's `probe` says what watches it:
- an HTTP probe (health, ready, ready_body, quota, budget; infra/alerts.py
  HTTP_PROBES declares each one's path and assertions, with the JSON paths taken
  from the service's response models): a Checkly API check, every minute, from
  every configured location in parallel; it alerts when it fails from two or
  more locations;
- certificate: a Checkly SSL monitor on the domain;
- error_rate: a Sentry metric alert (only when the stack configures Sentry);
- replicas: a Checkly heartbeat monitor, which the managers ping every minute
  while every service of the stack runs all its replicas
  (infra/components/replica_watch.py); it alerts when no ping came for
  REPLICAS_MISSING_MINUTES (only when the stack is given the ping token).

Where each alert's runbook_url, summary and severity go: a Checkly check
carries them in its description ("[severity] summary Runbook: url") and its
tags (`severity:...`, `alert:...`, `runbook:...`), and the webhook channel's
payload forwards the tags; a Sentry metric alert carries them in its name,
its trigger label is the severity (Sentry's own labels are critical and
warning).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pulumi
import pulumi_checkly as checkly
import pulumiverse_sentry as sentry

from infra.alerts import (
    ALERTS,
    CERTIFICATE_DAYS,
    HTTP_PROBES,
    REPLICAS_MISSING_MINUTES,
    Alert,
)
from infra.topology import https_origin

COMPONENT_TYPE = "jobsearch:platform:Monitoring"
FREQUENCY_MINUTES = 1
# The error-rate alert's threshold (its summary states it; tests check they agree).
ERROR_RATE_COUNT = 20
ERROR_RATE_WINDOW_MINUTES = 5
SENTRY_NAME_LIMIT = 256
# Each HTTP probe (infra/alerts.py declares what it asserts) is a Checkly API check.
CHECKLY_PROBES = tuple(HTTP_PROBES)
# Where a heartbeat monitor with a given ping token is pinged.
HEARTBEAT_PING_URL = "https://ping.checklyhq.com/"
# The managers ping every minute while the stack is whole; the alert fires once
# pings stopped for the period and the grace together.
HEARTBEAT_PERIOD_MINUTES = 1
HEARTBEAT_GRACE_MINUTES = REPLICAS_MISSING_MINUTES - HEARTBEAT_PERIOD_MINUTES

WEBHOOK_TEMPLATE = json.dumps(
    {
        "title": "{{ALERT_TITLE}}",
        "type": "{{ALERT_TYPE}}",
        "check": "{{CHECK_NAME}}",
        "result": "{{RESULT_LINK}}",
        "started_at": "{{STARTED_AT}}",
        "region": "{{REGION}}",
        "tags": "TAGS",
    },
    indent=2,
).replace('"TAGS"', '[{{#each TAGS}}"{{this}}"{{#unless @last}},{{/unless}}{{/each}}]')


def alert_description(alert: Alert, runbook_base_url: str) -> str:
    return f"[{alert.severity}] {alert.summary} Runbook: {alert.runbook_url(runbook_base_url)}"


def alert_tags(alert: Alert, environment: str, runbook_base_url: str) -> list[str]:
    return [
        "jobsearch",
        f"env:{environment}",
        f"severity:{alert.severity}",
        f"alert:{alert.name}",
        f"runbook:{alert.runbook_url(runbook_base_url)}",
    ]


def sentry_alert_name(alert: Alert, environment: str, runbook_base_url: str) -> str:
    name = (
        f"[{alert.severity}] {alert.name} ({environment}): {alert.summary} "
        f"Runbook: {alert.runbook_url(runbook_base_url)}"
    )
    if len(name) > SENTRY_NAME_LIMIT:
        raise ValueError(f"{alert.name}: the Sentry alert name is over {SENTRY_NAME_LIMIT} chars")
    return name


def failure_percentage(locations: int, failing: int = 2) -> int:
    """Checkly's parallel-run threshold for "fails from `failing` or more locations"."""
    needed = math.ceil(100 * min(failing, locations) / locations)
    return min(100, math.ceil(needed / 10) * 10)


@dataclass(frozen=True)
class SentryAlerting:
    organization: str
    project: str
    team_id: str
    auth_token: pulumi.Input[str]


@dataclass(frozen=True)
class MonitoringArgs:
    environment: str
    # The Sentry environment the service reports (its APP_ENV).
    app_env: str
    domain: str
    locations: tuple[str, ...]
    account_id: str
    api_key: pulumi.Input[str]
    emails: tuple[str, ...] = ()
    webhook_url: pulumi.Input[str] | None = None
    runbook_base_url: str = ""
    # Where the proxy answers HTTPS on the host (httpsPort).
    https_port: int = 443
    sentry: SentryAlerting | None = None
    # The replicas heartbeat's ping token (a secret); None: no heartbeat monitor.
    heartbeat_token: pulumi.Input[str] | None = None
    alerts: tuple[Alert, ...] = ALERTS


class Monitoring(pulumi.ComponentResource):
    channels: list[checkly.AlertChannel]
    checks: dict[str, pulumi.CustomResource]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        provider = checkly.Provider(
            f"{name}-checkly",
            account_id=args.account_id,
            api_key=args.api_key,
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_checkly = pulumi.ResourceOptions(parent=self, provider=provider)
        self.channels = self._channels(name, args, in_checkly)
        self.checks = {}
        for alert in args.alerts:
            if alert.probe in CHECKLY_PROBES:
                self.checks[alert.name] = self._api_check(name, alert, args, in_checkly)
            elif alert.probe == "certificate":
                self.checks[alert.name] = self._certificate(name, alert, args, in_checkly)
            elif alert.probe == "error_rate":
                if args.sentry is not None:
                    self.checks[alert.name] = self._error_rate(name, alert, args, args.sentry)
            elif alert.probe == "replicas":
                if args.heartbeat_token is not None:
                    self.checks[alert.name] = self._heartbeat(
                        name, alert, args, args.heartbeat_token, in_checkly
                    )
            else:
                raise ValueError(f"{alert.name}: no monitor knows the probe {alert.probe!r}")
        self.register_outputs({"monitored_alerts": sorted(self.checks)})

    def _channels(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions
    ) -> list[checkly.AlertChannel]:
        channels = [
            _channel(
                f"{name}-email-{index}",
                opts,
                email=checkly.AlertChannelEmailArgs(address=address),
            )
            for index, address in enumerate(args.emails, start=1)
        ]
        if args.webhook_url is not None:
            channels.append(
                _channel(
                    f"{name}-webhook",
                    opts,
                    webhook=checkly.AlertChannelWebhookArgs(
                        name=f"jobsearch {args.environment}",
                        url=args.webhook_url,
                        method="POST",
                        template=WEBHOOK_TEMPLATE,
                    ),
                )
            )
        return channels

    def _subscriptions(self) -> list[checkly.CheckAlertChannelSubscriptionArgs]:
        return [
            checkly.CheckAlertChannelSubscriptionArgs(
                channel_id=channel.id.apply(int), activated=True
            )
            for channel in self.channels
        ]

    def _api_check(
        self, name: str, alert: Alert, args: MonitoringArgs, opts: pulumi.ResourceOptions
    ) -> checkly.Check:
        probe = HTTP_PROBES[alert.probe]
        # A warning waits for a second failed run; a critical alert pages at once.
        failed_runs = 1 if alert.severity == "critical" else 2
        return checkly.Check(
            f"{name}-{alert.name}",
            name=f"{alert.name} ({args.environment})",
            type="API",
            activated=True,
            frequency=FREQUENCY_MINUTES,
            locations=list(args.locations),
            run_parallel=True,
            request=checkly.CheckRequestArgs(
                url=https_origin(args.domain, args.https_port) + probe.path,
                method="GET",
                follow_redirects=False,
                skip_ssl=False,
                assertions=[
                    checkly.CheckRequestAssertionArgs(
                        source=assertion.source,
                        comparison=assertion.comparison,
                        target=assertion.target,
                        property=assertion.property or None,
                    )
                    for assertion in probe.assertions
                ],
            ),
            degraded_response_time=5000,
            max_response_time=10000,
            use_global_alert_settings=False,
            alert_settings=checkly.CheckAlertSettingsArgs(
                escalation_type="RUN_BASED",
                run_based_escalations=[
                    checkly.CheckAlertSettingsRunBasedEscalationArgs(
                        failed_run_threshold=failed_runs
                    )
                ],
                parallel_run_failure_thresholds=[
                    checkly.CheckAlertSettingsParallelRunFailureThresholdArgs(
                        enabled=True, percentage=failure_percentage(len(args.locations))
                    )
                ],
            ),
            alert_channel_subscriptions=self._subscriptions(),
            description=alert_description(alert, args.runbook_base_url),
            tags=alert_tags(alert, args.environment, args.runbook_base_url),
            opts=opts,
        )

    def _certificate(
        self, name: str, alert: Alert, args: MonitoringArgs, opts: pulumi.ResourceOptions
    ) -> checkly.SslMonitor:
        return checkly.SslMonitor(
            f"{name}-{alert.name}",
            name=f"{alert.name} ({args.environment})",
            activated=True,
            frequency=60,
            locations=list(args.locations),
            request=checkly.SslMonitorRequestArgs(
                hostname=args.domain,
                port=args.https_port,
                alert_days_before_expiry=CERTIFICATE_DAYS,
            ),
            alert_channel_subscriptions=[
                checkly.SslMonitorAlertChannelSubscriptionArgs(
                    channel_id=channel.id.apply(int), activated=True
                )
                for channel in self.channels
            ],
            description=alert_description(alert, args.runbook_base_url),
            tags=alert_tags(alert, args.environment, args.runbook_base_url),
            opts=opts,
        )

    def _heartbeat(
        self,
        name: str,
        alert: Alert,
        args: MonitoringArgs,
        token: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
    ) -> checkly.HeartbeatMonitor:
        return checkly.HeartbeatMonitor(
            f"{name}-{alert.name}",
            name=f"{alert.name} ({args.environment})",
            activated=True,
            heartbeat=checkly.HeartbeatMonitorHeartbeatArgs(
                period=HEARTBEAT_PERIOD_MINUTES,
                period_unit="minutes",
                grace=HEARTBEAT_GRACE_MINUTES,
                grace_unit="minutes",
                ping_token=token,
            ),
            use_global_alert_settings=False,
            alert_channel_subscriptions=[
                checkly.HeartbeatMonitorAlertChannelSubscriptionArgs(
                    channel_id=channel.id.apply(int), activated=True
                )
                for channel in self.channels
            ],
            description=alert_description(alert, args.runbook_base_url),
            tags=alert_tags(alert, args.environment, args.runbook_base_url),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["heartbeat"])
            ),
        )

    def _error_rate(
        self, name: str, alert: Alert, args: MonitoringArgs, settings: SentryAlerting
    ) -> sentry.SentryMetricAlert:
        provider = sentry.Provider(
            f"{name}-sentry", token=settings.auth_token, opts=pulumi.ResourceOptions(parent=self)
        )
        above = 0  # Sentry's threshold_type: 0 is "above"
        return sentry.SentryMetricAlert(
            f"{name}-{alert.name}",
            name=sentry_alert_name(alert, args.environment, args.runbook_base_url),
            organization=settings.organization,
            project=settings.project,
            environment=args.app_env,
            dataset="events",
            event_types=["error"],
            query="",
            aggregate="count()",
            time_window=ERROR_RATE_WINDOW_MINUTES,
            threshold_type=above,
            triggers=[
                sentry.SentryMetricAlertTriggerArgs(
                    label=alert.severity,
                    alert_threshold=ERROR_RATE_COUNT,
                    threshold_type=above,
                    actions=[
                        sentry.SentryMetricAlertTriggerActionArgs(
                            type="email", target_type="team", target_identifier=settings.team_id
                        )
                    ],
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )


def _channel(
    resource_name: str,
    opts: pulumi.ResourceOptions,
    *,
    email: checkly.AlertChannelEmailArgs | None = None,
    webhook: checkly.AlertChannelWebhookArgs | None = None,
) -> checkly.AlertChannel:
    return checkly.AlertChannel(
        resource_name,
        email=email,
        webhook=webhook,
        send_failure=True,
        send_recovery=True,
        send_degraded=True,
        ssl_expiry=True,
        ssl_expiry_threshold=CERTIFICATE_DAYS,
        opts=opts,
    )

"""The policy pack as the Pulumi engine runs it: a process serving the analyzer
gRPC API, asked about resources the way the engine asks."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

PACK_DIR = Path(__file__).resolve().parents[3] / "infra" / "policy"


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    message: str
    mandatory: bool


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(props))
    return struct


class Analyzer:
    def __init__(self, stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
        self.stub = stub

    def info(self) -> Any:
        return self.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)

    def analyze(
        self, resource_type: str, props: Mapping[str, Any], secret_outputs: Sequence[str] = ()
    ) -> list[Diagnostic]:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource_type,
            properties=_struct(props),
            urn=f"urn:pulumi:prod::jobsearch::{resource_type}::under-test",
            name="under-test",
            options=analyzer_pb2.AnalyzerResourceOptions(
                additionalSecretOutputs=list(secret_outputs)
            ),
        )
        return self._diagnostics(self.stub.Analyze(request, timeout=30))

    def analyze_stack(
        self, resources: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> list[Diagnostic]:
        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=kind,
                    properties=_struct(props),
                    urn=f"urn:pulumi:prod::jobsearch::{kind}::{name}",
                    name=name,
                )
                for kind, name, props in resources
            ]
        )
        return self._diagnostics(self.stub.AnalyzeStack(request, timeout=60))

    @staticmethod
    def _diagnostics(response: Any) -> list[Diagnostic]:
        return [
            Diagnostic(
                d.policyName,
                d.message,
                d.enforcementLevel == analyzer_pb2.EnforcementLevel.MANDATORY,
            )
            for d in response.diagnostics
        ]


@contextlib.contextmanager
def running_pack() -> Iterator[Analyzer]:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environment["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir(), "jobsearch-pycache"))
    process = subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            raise AssertionError(
                f"the policy pack did not start: {process.stderr.read() if process.stderr else ''}"
            )
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Analyzer(analyzer_pb2_grpc.AnalyzerStub(channel))
    finally:
        process.terminate()
        process.wait(timeout=10)

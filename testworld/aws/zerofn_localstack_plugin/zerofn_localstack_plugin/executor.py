"""A LocalStack Lambda runtime executor that never runs code.

zerofn reads and changes function configuration (role, VPC, tracing, logging,
resource policy, URL, code signing, layers, tags); it never invokes. Without
Docker, LocalStack's default executor ("docker") cannot prepare a function
version, so the function goes to State=Failed and configuration updates are
refused. This executor prepares nothing, so every version becomes
State=Active / LastUpdateStatus=Successful at once.

ZEROFN_LAMBDA_PREPARE_DELAY_MS (default 0) keeps each new version Pending /
InProgress for that long before it becomes Active / Successful, as AWS takes
a few seconds; LocalStack answers 409 ResourceConflictException to an update
that arrives meanwhile (see ../README.md for what it gets wrong then).

Invocations never run code: each one answers at once with a function error
(HTTP 200, X-Amz-Function-Error: Unhandled, the payload below).

Selected with LAMBDA_RUNTIME_EXECUTOR=zerofn-noop; found by LocalStack through
the entry point in pyproject.toml (plux namespace
``localstack.lambda.runtime_executor``).
"""

import json
import time

from localstack.services.lambda_.invocation.lambda_models import InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor

NAME = "zerofn-noop"

from . import PREPARE_DELAY_S

NOT_EXECUTED = json.dumps(
    {
        "errorType": "ZerofnNotExecuted",
        "errorMessage": "zerofn test stand-in: Lambda functions are never executed",
    }
).encode()


class NoopRuntimeExecutor(RuntimeExecutor):
    """One execution environment: nothing is started, nothing is run."""

    def start(self, env_vars):
        pass

    def stop(self):
        pass

    def get_address(self):
        return "127.0.0.1"

    def get_endpoint_from_executor(self):
        return "127.0.0.1"

    def get_runtime_endpoint(self):
        return f"http://127.0.0.1/_localstack_lambda/{self.id}"

    def invoke(self, payload):
        return InvocationResult(
            request_id=payload.get("invoke-id", ""),
            payload=NOT_EXECUTED,
            is_error=True,
            logs="",
        )

    def get_logs(self):
        return ""

    @classmethod
    def prepare_version(cls, function_version):
        # The docker executor downloads its init binary and pulls an image
        # here; we need neither. Runs in LocalStack's task executor, not in
        # the API request.
        if PREPARE_DELAY_S:
            time.sleep(PREPARE_DELAY_S)

    @classmethod
    def cleanup_version(cls, function_version):
        pass

    @classmethod
    def validate_environment(cls):
        return True


class NoopRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = NAME

    def load(self, *args, **kwargs):
        return NoopRuntimeExecutor

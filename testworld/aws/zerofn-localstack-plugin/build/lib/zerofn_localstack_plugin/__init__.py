"""A Lambda runtime executor that never runs code.

zerofn only reads and changes function configuration (role, VPC, tracing,
logging, resource policy, URL, code signing, tags); it never invokes. Without
Docker, LocalStack's default executor cannot prepare a function, which then
goes to State=Failed and refuses configuration updates. This executor prepares
nothing and answers every invocation with an error, so functions become Active
and their configuration behaves as on AWS.
"""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)


class NoopRuntimeExecutor(RuntimeExecutor):
    def start(self, env_vars):
        raise LambdaRuntimeException("zerofn test stand-in: functions are never executed")

    def stop(self):
        pass

    def get_address(self):
        return "127.0.0.1"

    def get_endpoint_from_executor(self):
        return "127.0.0.1"

    def get_runtime_endpoint(self):
        return "http://127.0.0.1:0/_localstack_lambda/" + self.id

    def invoke(self, payload):
        raise LambdaRuntimeException("zerofn test stand-in: functions are never executed")

    def get_logs(self):
        return ""

    @classmethod
    def prepare_version(cls, function_version):
        pass

    @classmethod
    def cleanup_version(cls, function_version):
        pass

    @classmethod
    def validate_environment(cls):
        return True


class NoopRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "zerofn-noop"

    def load(self, *args, **kwargs):
        return NoopRuntimeExecutor

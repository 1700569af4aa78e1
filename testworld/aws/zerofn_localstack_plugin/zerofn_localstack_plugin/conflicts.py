"""AWS-like 409s for configuration/code updates while a function is Pending or
an update is InProgress. Active only with ZEROFN_LAMBDA_PREPARE_DELAY_MS > 0
(without a delay LocalStack finishes every update before it answers, so there
is nothing to conflict with).

Without this, LocalStack 2026.3 stores the new configuration first and only
then notices the running update: an update during InProgress answers 409 but
is applied anyway, and one during Pending answers 500 InternalError ("cannot
be updated if an old one is not running") and is applied anyway. AWS refuses
both with 409 ResourceConflictException and changes nothing. We check first.

Registered as a LocalStack on_infra_start hook (entry point in
pyproject.toml), so it runs before the Lambda provider is created, however
LocalStack is launched.
"""

import functools

from localstack.runtime import hooks

from . import PREPARE_DELAY_S


def _check(context, request):
    from localstack.aws.api.lambda_ import LastUpdateStatus, ResourceConflictException, State
    from localstack.services.lambda_ import api_utils
    from localstack.services.lambda_.invocation.lambda_service import lambda_stores

    name = request.get("FunctionName")
    account_id, region = api_utils.get_account_and_region(name, context)
    function_name, _ = api_utils.get_name_and_qualifier(name, None, context)
    function = lambda_stores[account_id][region].functions.get(function_name)
    if function is None:
        return  # the provider answers 404
    config = function.latest().config
    if config.state and config.state.state == State.Pending:
        raise ResourceConflictException(
            "The operation cannot be performed at this time. "
            "The function is currently in the following state: Pending",
            Type="User",
        )
    if config.last_update and config.last_update.status == LastUpdateStatus.InProgress:
        arn = api_utils.unqualified_lambda_arn(function_name, account_id, region)
        raise ResourceConflictException(
            "The operation cannot be performed at this time. "
            f"An update is in progress for resource: {arn}",
            Type="User",
        )


@hooks.on_infra_start(priority=50, should_load=lambda: PREPARE_DELAY_S > 0)
def zerofn_lambda_update_conflicts():
    from localstack.services.lambda_.provider import LambdaProvider

    for op in ("update_function_configuration", "update_function_code"):
        original = getattr(LambdaProvider, op)
        if getattr(original, "zerofn_checked", False):
            continue

        def checked(self, context, request, _original=original):
            _check(context, request)
            return _original(self, context, request)

        # keeps the @handler markers (operation name etc.) LocalStack dispatches on
        checked = functools.wraps(original)(checked)
        checked.zerofn_checked = True
        setattr(LambdaProvider, op, checked)

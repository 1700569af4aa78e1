"""Fault injection for retry/backoff tests: make chosen AWS operations fail a
given number of times (LocalStack's community edition has no such feature for
Lambda, IAM, STS or EC2; its chaos API is in the paid edition).

    POST   /_zerofn/faults   add a rule (JSON body below); answers the rule
    GET    /_zerofn/faults   {"faults": [rules with their remaining count]}
    DELETE /_zerofn/faults   remove every rule

    {"service": "lambda",          # as in the endpoint: lambda, iam, sts, ec2, sqs
     "operation": "GetPolicy",     # API operation name, or "*"
     "count": 2,                   # fail this many matching requests (default 1)
     "code": "...", "status": 429, "message": "..."}   # optional; defaults below

Defaults are each service's throttling error: lambda TooManyRequestsException
(429), iam and sts Throttling (400), ec2 RequestLimitExceeded (503), others
ThrottlingException (400); message "Rate exceeded". Requests are matched in
rule order; a rule stops matching when its count is used up. With no rules
(the default) nothing changes. The error is serialised like any LocalStack
service error, in the service's own protocol.
"""

import threading

from localstack.runtime import hooks

PATH = "/_zerofn/faults"

DEFAULTS = {
    "lambda": ("TooManyRequestsException", 429),
    "iam": ("Throttling", 400),
    "sts": ("Throttling", 400),
    "ec2": ("RequestLimitExceeded", 503),
}

_rules = []
_lock = threading.Lock()


def _take(service, operation):
    with _lock:
        for rule in _rules:
            if rule["remaining"] > 0 and rule["service"] == service and rule["operation"] in ("*", operation):
                rule["remaining"] -= 1
                return dict(rule)
    return None


def inject(chain, context, response):
    """A request handler, run after LocalStack has parsed the operation."""
    if not _rules or context.service is None or context.operation is None:
        return
    rule = _take(context.service.service_name, context.operation.name)
    if rule:
        from localstack.aws.api import CommonServiceException

        raise CommonServiceException(rule["code"], rule["message"], status_code=rule["status"], sender_fault=True)


class FaultsResource:
    def on_get(self, request):
        with _lock:
            return {"faults": [dict(r) for r in _rules]}

    def on_post(self, request):
        body = request.get_json(force=True) or {}
        service = str(body.get("service", ""))
        code, status = DEFAULTS.get(service, ("ThrottlingException", 400))
        rule = {
            "service": service,
            "operation": str(body.get("operation", "*")),
            "code": str(body.get("code") or code),
            "status": int(body.get("status") or status),
            "message": str(body.get("message") or "Rate exceeded"),
            "remaining": int(body.get("count", 1)),
        }
        with _lock:
            _rules.append(rule)
        return rule

    def on_delete(self, request):
        with _lock:
            _rules.clear()
        return {"faults": []}


@hooks.on_infra_start()
def zerofn_faults():
    from localstack.aws import handlers
    from localstack.http import Resource
    from localstack.services.internal import get_internal_apis

    get_internal_apis().add(Resource(PATH, FaultsResource()))
    handlers.serve_custom_service_request_handlers.append(inject)

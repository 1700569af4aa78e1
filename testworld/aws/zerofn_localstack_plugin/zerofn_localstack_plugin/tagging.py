"""The Resource Groups Tagging API's GetResources for Lambda functions.

LocalStack 2026.3 answers GetResources from moto's backends, and its Lambda
is not moto's: no Lambda function is ever in the answer. For a request whose
every resource type is Lambda's ("lambda" or "lambda:function"), this answers
from LocalStack's own Lambda store instead, as the API reference describes
GetResources:

- only resources that are tagged or were tagged once, of the request's
  account and Region;
- TagFilters: a resource matches when it matches every filter; a filter
  matches a tag with its Key and, when it lists Values, one of them;
- ResourcesPerPage from 1 to 100 (otherwise InvalidParameterException), and a
  PaginationToken that is empty on the last page;
- each mapping has ResourceARN and Tags as a list of Key/Value.

Any other request goes to moto as before. Registered as a LocalStack
on_infra_start hook (entry point in pyproject.toml).
"""

import functools

from localstack.runtime import hooks

LAMBDA_TYPES = ("lambda", "lambda:function")
PER_PAGE_MAX = 100


def _matches(tags, tag_filters):
    for f in tag_filters or []:
        key, values = f.get("Key"), f.get("Values") or []
        if key not in tags or (values and tags[key] not in values):
            return False
    return True


def _lambda_resources(context, tag_filters):
    from localstack.services.lambda_ import api_utils
    from localstack.services.lambda_.invocation.lambda_service import lambda_stores

    store = lambda_stores[context.account_id][context.region]
    found = []
    for name in sorted(store.functions):
        arn = api_utils.unqualified_lambda_arn(name, context.account_id, context.region)
        if arn not in store.tags._tags:
            continue
        tags = store.tags.get_tags(arn)
        if _matches(tags, tag_filters):
            found.append((arn, tags))
    return found


def _page(found, pagination_token, resources_per_page):
    from localstack.aws.api.resourcegroupstaggingapi import InvalidParameterException

    per_page = PER_PAGE_MAX if resources_per_page is None else resources_per_page
    if not 1 <= per_page <= PER_PAGE_MAX:
        raise InvalidParameterException(
            f"ResourcesPerPage must be between 1 and {PER_PAGE_MAX}, got {per_page}"
        )
    try:
        start = int(pagination_token) if pagination_token else 0
    except ValueError:
        raise InvalidParameterException("The PaginationToken is not valid") from None
    end = start + per_page
    mappings = [
        {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
        for arn, tags in found[start:end]
    ]
    return {
        "ResourceTagMappingList": mappings,
        "PaginationToken": str(end) if end < len(found) else "",
    }


@hooks.on_infra_start(priority=50)
def zerofn_tagging_lambda_resources():
    from localstack.services.resourcegroupstaggingapi.provider import (
        ResourcegroupstaggingapiProvider,
    )

    original = ResourcegroupstaggingapiProvider.get_resources
    if getattr(original, "zerofn_lambda", False):
        return

    def get_resources(self, context, *args, **kwargs):
        types = kwargs.get("resource_type_filters") or []
        if args or not types or any(t not in LAMBDA_TYPES for t in types):
            return original(self, context, *args, **kwargs)
        found = _lambda_resources(context, kwargs.get("tag_filters"))
        return _page(found, kwargs.get("pagination_token"), kwargs.get("resources_per_page"))

    # keeps the @handler markers (operation name etc.) LocalStack dispatches on
    get_resources = functools.wraps(original)(get_resources)
    get_resources.zerofn_lambda = True
    ResourcegroupstaggingapiProvider.get_resources = get_resources

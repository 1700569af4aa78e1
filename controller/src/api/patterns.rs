//! Patterns shared by the CRD schema (so the API server rejects bad input)
//! and by `validate` (so the CLI rejects the same input with the same words).

pub const AWS_FUNCTION_NAME: &str = r"^[a-zA-Z0-9_-]{1,64}$";
pub const AWS_REGION: &str = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$";
pub const AWS_ACCOUNT_ID: &str = r"^[0-9]{12}$";
pub const AWS_SUBNET_ID: &str = r"^subnet-[0-9a-f]{8,17}$";
/// An API Gateway id (REST/HTTP API, authorizer, request validator).
pub const API_ID: &str = r"^[a-zA-Z0-9]{1,64}$";
/// An API resource path.
pub const API_PATH: &str = r"^/[^\s]*$";
pub const HTTP_METHOD: &str = r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY)$";
pub const AWS_SECURITY_GROUP_ID: &str = r"^sg-[0-9a-f]{8,17}$";
/// A CloudWatch Logs group name.
pub const LOG_GROUP: &str = r"^[\.\-_/#A-Za-z0-9]{1,512}$";
pub const AWS_PREFIX_LIST_ID: &str = r"^pl-[0-9a-f]{8,17}$";
/// An IPv4 or IPv6 CIDR block.
pub const CIDR: &str = r"^([0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}|[0-9a-fA-F:]+/[0-9]{1,3})$";
/// Any ARN: `arn:partition:service:region:account:resource`.
pub const ARN: &str = r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12}|aws)?:.+$";
pub const IAM_POLICY_ARN: &str =
    r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::([0-9]{12}|aws):policy/[A-Za-z0-9_+=,.@/-]+$";
pub const IAM_ROLE_ARN: &str = r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$";
pub const LAMBDA_LAYER_ARN: &str =
    r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:lambda:[a-z0-9-]+:[0-9]{12}:layer:[a-zA-Z0-9_-]{1,140}(:[0-9]+)?$";
/// A layer ARN pattern: a layer (version) ARN in which `*` may stand for
/// the Region, the account, part of the name or the version.
pub const LAMBDA_LAYER_PATTERN: &str =
    r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:lambda:[a-z0-9*-]+:([0-9]{12}|\*):layer:[a-zA-Z0-9_*-]{1,140}(:([0-9]+|\*))?$";
pub const LAMBDA_CSC_ARN: &str =
    r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:lambda:[a-z0-9-]+:[0-9]{12}:code-signing-config:csc-[a-z0-9]{17}$";
/// An IAM action such as `s3:GetObject` or `s3:Get*`; `*` alone is refused by
/// a CEL rule with a clearer message.
pub const IAM_ACTION: &str = r"^([a-z0-9-]+:[A-Za-z0-9*?]+|\*)$";
/// A resource-policy principal: a service, an account id, or an IAM ARN.
pub const AWS_PRINCIPAL: &str = r"^([a-z0-9.-]+\.amazonaws\.com(\.cn)?|[0-9]{12}|arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:(root|role/.+|user/.+))$";

pub const AZURE_NAME: &str = r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,58}[a-zA-Z0-9]$|^[a-zA-Z0-9]$";
pub const AZURE_RESOURCE_GROUP: &str = r"^[-\w._()]{1,90}$";
pub const UUID: &str = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
pub const AZURE_RESOURCE_ID: &str = r"^/subscriptions/[0-9a-fA-F-]{36}(/.+)?$";
pub const AZURE_SUBNET_ID: &str = r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/subnets/[^/]+$";

pub const GCP_PROJECT_ID: &str = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$";
pub const GCP_LOCATION: &str = r"^[a-z]+-[a-z]+[0-9]+$";
pub const GCP_FUNCTION_NAME: &str = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$";
pub const GCP_ROLE: &str = r"^(roles/[a-zA-Z0-9_.]+|projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/roles/[a-zA-Z0-9_.]+|organizations/[0-9]+/roles/[a-zA-Z0-9_.]+)$";
pub const GCP_MEMBER: &str = r"^(serviceAccount|user|group|domain|principal|principalSet):.+$";
pub const GCP_CONNECTOR: &str = r"^projects/[^/]+/locations/[^/]+/connectors/[a-z][a-z0-9-]{0,23}$";
pub const GCP_SERVICE_ACCOUNT_EMAIL: &str = r"^[a-z0-9-]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com$|^[0-9]+-compute@developer\.gserviceaccount\.com$|^[a-z0-9-]+@appspot\.gserviceaccount\.com$";

/// Binary Authorization for a Cloud Run service: `default` or a named
/// platform policy.
pub const GCP_BINAUTHZ: &str =
    r"^(default|projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/platforms/cloudrun/policies/[a-zA-Z0-9_.-]{1,63})$";
/// Go-style duration as the API server shows them: `30s`, `5m`, `1h30m`.
pub const DURATION: &str = r"^([0-9]+(s|m|h))+$";
/// A look-back window or refresh period: like `DURATION`, with days
/// (`90d`), and every part more than zero, so the whole is never zero.
pub const WINDOW: &str = r"^([0-9]*[1-9][0-9]*(s|m|h|d))+$";
/// A URL on this machine: 127.0.0.0/8, `[::1]` or `localhost`. A token or
/// signature may go there over plain HTTP, but only when the credentials are
/// static test credentials (see `validate::account_violations`).
pub const LOOPBACK_URL: &str =
    r"^https?://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?$";
/// An endpoint that carries a token or a signature: `https://`, or plain
/// HTTP on loopback only.
pub const TOKEN_ENDPOINT: &str =
    r"^(https://\S+|http://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/\S*)?)$";
/// An SQS queue URL: the public endpoint of a Region, or a loopback stand-in.
pub const SQS_QUEUE_URL: &str = r"^(https://sqs\.[a-z0-9-]+\.amazonaws\.com(\.cn)?|http://(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?)/[0-9]{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$";
/// A Storage queue a CloudAccount may read events from: one of the public
/// Azure clouds' queue hosts, or a loopback stand-in (path-style).
pub const AZURE_PUBLIC_QUEUE: &str = r"^https://([a-z0-9]{3,24}\.queue\.core\.(windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)|(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|localhost)(:[0-9]{1,5})?(/[a-z0-9]{3,24})?)/[a-z0-9-]{3,63}$";
/// A Storage queue's URL (the queue name last).
pub const AZURE_QUEUE_URL: &str = r"^https://\S+/[a-z0-9](-?[a-z0-9]){2,62}$";
/// A Pub/Sub subscription's resource name.
pub const GCP_SUBSCRIPTION: &str =
    r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/subscriptions/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$";
pub const K8S_NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A function-name pattern of a PosturePolicy: the characters any cloud's
/// function names use, and the wildcards `*` and `?`.
pub const NAME_GLOB: &str = r"^[A-Za-z0-9_*?-]+$";
/// A namespace: a DNS-1123 label.
pub const K8S_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// What each pattern stands for, and a value it accepts: every pattern
/// error shows one (`expected an IAM role ARN such as arn:aws:iam::…`).
const EXAMPLES: &[(&str, &str, &str)] = &[
    (AWS_FUNCTION_NAME, "a Lambda function name", "orders-api"),
    (AWS_REGION, "an AWS region", "eu-west-1"),
    (AWS_ACCOUNT_ID, "a 12-digit AWS account id", "123456789012"),
    (AWS_SUBNET_ID, "a subnet id", "subnet-0a1b2c3d"),
    (AWS_SECURITY_GROUP_ID, "a security group id", "sg-0a1b2c3d"),
    (AWS_PREFIX_LIST_ID, "a managed prefix list id", "pl-6fa54006"),
    (API_ID, "an API Gateway id", "a1b2c3d4e5"),
    (API_PATH, "an API resource path", "/orders/{id}"),
    (HTTP_METHOD, "an HTTP method", "POST"),
    (LOG_GROUP, "a log group name", "/vpc/flow-logs"),
    (CIDR, "a CIDR block", "10.0.0.0/16"),
    (ARN, "an ARN", "arn:aws:s3:::orders-in"),
    (
        IAM_POLICY_ARN,
        "an IAM policy ARN",
        "arn:aws:iam::aws:policy/AWSLambdaExecute",
    ),
    (IAM_ROLE_ARN, "an IAM role ARN", "arn:aws:iam::123456789012:role/name"),
    (
        LAMBDA_LAYER_ARN,
        "a Lambda layer ARN",
        "arn:aws:lambda:eu-west-1:123456789012:layer:otel:3",
    ),
    (
        LAMBDA_CSC_ARN,
        "a code signing config ARN",
        "arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-0123456789abcdef0",
    ),
    (IAM_ACTION, "an IAM action", "s3:GetObject"),
    (
        AWS_PRINCIPAL,
        "a service principal, an account id or an IAM ARN",
        "s3.amazonaws.com",
    ),
    (AZURE_NAME, "an Azure app name", "orders-api"),
    (AZURE_RESOURCE_GROUP, "a resource group name", "rg-shop"),
    (UUID, "a GUID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
    (
        AZURE_RESOURCE_ID,
        "an Azure resource id",
        "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-shop",
    ),
    (
        AZURE_SUBNET_ID,
        "a subnet resource id",
        "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/functions",
    ),
    (GCP_PROJECT_ID, "a GCP project id", "shop-prod"),
    (GCP_LOCATION, "a GCP region", "europe-west1"),
    (GCP_FUNCTION_NAME, "a Cloud Functions name", "orders-api"),
    (NAME_GLOB, "a name pattern (letters, digits, -, _, * and ?)", "orders-*"),
    (GCP_ROLE, "an IAM role", "roles/pubsub.subscriber"),
    (
        GCP_MEMBER,
        "an IAM member",
        "serviceAccount:caller@shop-prod.iam.gserviceaccount.com",
    ),
    (
        GCP_CONNECTOR,
        "a VPC connector",
        "projects/shop-prod/locations/europe-west1/connectors/shop-vpc",
    ),
    (
        GCP_SERVICE_ACCOUNT_EMAIL,
        "a service account email",
        "orders@shop-prod.iam.gserviceaccount.com",
    ),
    (DURATION, "a duration", "5m"),
    (WINDOW, "a duration such as 90d (every part more than zero)", "90d"),
    (
        GCP_BINAUTHZ,
        "default or projects/P/platforms/cloudrun/policies/NAME",
        "projects/shop-prod/platforms/cloudrun/policies/signed-only",
    ),
    (
        LAMBDA_LAYER_PATTERN,
        "a layer ARN pattern",
        "arn:aws:lambda:eu-west-1:123456789012:layer:security-agent:*",
    ),
    (LOOPBACK_URL, "a loopback URL", "http://127.0.0.1:4566"),
    (
        TOKEN_ENDPOINT,
        "an https:// URL (plain http only on loopback)",
        "https://lambda.eu-west-1.amazonaws.com",
    ),
    (
        SQS_QUEUE_URL,
        "an SQS queue URL",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/zerofn-events",
    ),
    (
        AZURE_QUEUE_URL,
        "a Storage queue URL",
        "https://shopevents.queue.core.windows.net/zerofn-events",
    ),
    (
        AZURE_PUBLIC_QUEUE,
        "a queue of the public Azure clouds",
        "https://shopevents.queue.core.windows.net/zerofn-events",
    ),
    (
        GCP_SUBSCRIPTION,
        "a Pub/Sub subscription",
        "projects/shop-prod/subscriptions/zerofn-events",
    ),
    (K8S_NAME, "a Kubernetes name", "orders-api"),
    (K8S_LABEL, "a Kubernetes namespace", "shop"),
    // Written out where the field is declared.
    (r"^[\w+=,.@-]{2,64}$", "an STS session name", "zerofn-shop"),
    (r"^https://.+$", "an https:// URL", "https://management.azure.com"),
    (r"^[0-9]{1,20}$", "a GCP project number", "123456789012"),
    (r"^[A-Za-z0-9]{1,64}$", "a statement id", "ReadOrders"),
];

/// `expected <what> such as <example>` for one of the patterns above.
pub fn expected(pattern: &str) -> Option<String> {
    EXAMPLES
        .iter()
        .find(|(p, _, _)| *p == pattern)
        .map(|(_, what, example)| format!("expected {what} such as {example}"))
}

use regex::Regex;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Whether `value` matches `pattern` (a constant above or a pattern from a
/// CRD schema). Compiled patterns are cached; a pattern that does not compile
/// matches nothing, and a test proves every constant compiles.
pub fn matches(pattern: &str, value: &str) -> bool {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Regex>>>> = LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if !cache.contains_key(pattern) {
        cache.insert(pattern.to_string(), Regex::new(pattern).ok());
    }
    cache
        .get(pattern)
        .and_then(|r| r.as_ref())
        .is_some_and(|re| re.is_match(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for p in [
            AWS_FUNCTION_NAME,
            AWS_REGION,
            AWS_ACCOUNT_ID,
            AWS_SUBNET_ID,
            AWS_SECURITY_GROUP_ID,
            AWS_PREFIX_LIST_ID,
            API_ID,
            API_PATH,
            HTTP_METHOD,
            LOG_GROUP,
            CIDR,
            ARN,
            IAM_POLICY_ARN,
            IAM_ROLE_ARN,
            LAMBDA_LAYER_ARN,
            LAMBDA_CSC_ARN,
            IAM_ACTION,
            AWS_PRINCIPAL,
            AZURE_NAME,
            AZURE_RESOURCE_GROUP,
            UUID,
            AZURE_RESOURCE_ID,
            AZURE_SUBNET_ID,
            GCP_PROJECT_ID,
            GCP_LOCATION,
            GCP_FUNCTION_NAME,
            GCP_ROLE,
            GCP_MEMBER,
            GCP_CONNECTOR,
            GCP_SERVICE_ACCOUNT_EMAIL,
            DURATION,
            WINDOW,
            LAMBDA_LAYER_PATTERN,
            GCP_BINAUTHZ,
            K8S_NAME,
            K8S_LABEL,
            NAME_GLOB,
            LOOPBACK_URL,
            TOKEN_ENDPOINT,
            SQS_QUEUE_URL,
            AZURE_QUEUE_URL,
            AZURE_PUBLIC_QUEUE,
            GCP_SUBSCRIPTION,
        ] {
            assert!(Regex::new(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn every_example_is_accepted_by_its_own_pattern() {
        for (p, what, example) in EXAMPLES {
            assert!(matches(p, example), "{what}: {example} does not match {p}");
        }
        assert_eq!(
            expected(IAM_ROLE_ARN).as_deref(),
            Some("expected an IAM role ARN such as arn:aws:iam::123456789012:role/name")
        );
    }

    /// Every pattern the CRDs carry has an example, so no pattern error
    /// comes without one.
    #[test]
    fn every_pattern_in_the_crds_has_an_example() {
        fn walk(v: &serde_json::Value, missing: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(p) = m.get("pattern").and_then(|p| p.as_str())
                        && expected(p).is_none()
                    {
                        missing.push(p.to_string());
                    }
                    m.values().for_each(|v| walk(v, missing));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, missing)),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        for crd in crate::api::crds() {
            walk(&serde_json::to_value(&crd).unwrap(), &mut missing);
        }
        assert!(missing.is_empty(), "patterns without an example: {missing:?}");
    }

    #[test]
    fn loopback_means_this_machine_only() {
        for u in [
            "http://127.0.0.1:4566",
            "http://127.8.9.10/",
            "https://[::1]:8443/v2",
            "http://localhost",
            "http://localhost:80/x/@y",
        ] {
            assert!(matches(LOOPBACK_URL, u), "{u}");
            assert!(matches(TOKEN_ENDPOINT, u), "{u}");
        }
        for u in [
            "http://127.0.0.1@evil.example",
            "http://127.0.0.1:80@evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example/",
            "http://[::1].evil.example",
            "http://128.0.0.1",
            "http://127.0.0.1\\@evil.example",
            "ftp://127.0.0.1",
        ] {
            assert!(!matches(LOOPBACK_URL, u), "{u}");
        }
        assert!(matches(TOKEN_ENDPOINT, "https://lambda.eu-west-1.amazonaws.com"));
        for u in [
            "http://lambda.eu-west-1.amazonaws.com",
            "http://10.0.0.1",
            "http://127.0.0.1@evil.example",
        ] {
            assert!(!matches(TOKEN_ENDPOINT, u), "{u}");
        }
    }

    #[test]
    fn arns() {
        assert!(matches(ARN, "arn:aws:s3:::my-bucket"));
        assert!(matches(ARN, "arn:aws:sqs:eu-west-1:123456789012:q"));
        assert!(!matches(ARN, "arn:aws:s3"));
        assert!(!matches(ARN, "bucket"));
        assert!(matches(IAM_POLICY_ARN, "arn:aws:iam::aws:policy/AWSLambdaExecute"));
        assert!(matches(IAM_POLICY_ARN, "arn:aws:iam::123456789012:policy/team/p"));
        assert!(!matches(IAM_POLICY_ARN, "arn:aws:iam::policy/x"));
        assert!(matches(
            LAMBDA_LAYER_ARN,
            "arn:aws:lambda:eu-west-1:123456789012:layer:otel:3"
        ));
        assert!(matches(
            LAMBDA_LAYER_ARN,
            "arn:aws:lambda:eu-west-1:123456789012:layer:otel"
        ));
        assert!(matches(
            LAMBDA_CSC_ARN,
            "arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-0123456789abcdef0"
        ));
    }

    #[test]
    fn regions_and_names() {
        for r in ["eu-west-1", "us-gov-west-1", "ap-southeast-2", "cn-north-1"] {
            assert!(matches(AWS_REGION, r), "{r}");
        }
        assert!(!matches(AWS_REGION, "europe"));
        assert!(matches(AWS_FUNCTION_NAME, "orders-api_v2"));
        assert!(!matches(AWS_FUNCTION_NAME, "orders api"));
        assert!(matches(DURATION, "1h30m"));
        assert!(!matches(DURATION, "5 minutes"));
        assert!(matches(WINDOW, "90d") && matches(WINDOW, "1d12h") && matches(WINDOW, "10d"));
        assert!(!matches(WINDOW, "0d") && !matches(WINDOW, "90d0h") && !matches(WINDOW, "90"));
    }
}

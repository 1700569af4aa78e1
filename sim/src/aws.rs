//! Seeding the AWS stand-in: functions, roles, queues, a VPC, code signing
//! configs — and the misconfigured fleet the acceptance tests and the README
//! demo start from.

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

pub struct Aws {
    pub endpoint: String,
    pub region: String,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub apigateway: aws_sdk_apigateway::Client,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn err(e: impl std::fmt::Display) -> BoxError {
    e.to_string().into()
}

impl Aws {
    pub async fn new(endpoint: &str, region: &str) -> Aws {
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "zerofn-sim"))
            .load()
            .await;
        Aws {
            endpoint: endpoint.to_string(),
            region: region.to_string(),
            lambda: aws_sdk_lambda::Client::new(&conf),
            iam: aws_sdk_iam::Client::new(&conf),
            apigateway: aws_sdk_apigateway::Client::new(&conf),
        }
    }

    /// A Query-protocol call (EC2, SQS) without their SDKs; the stand-in
    /// routes it by the credential scope.
    pub fn query(&self, service: &str, params: &[(&str, &str)]) -> Result<String, BoxError> {
        let body: String = params
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.post(service, "Content-Type: application/x-www-form-urlencoded", &body)
            .map_err(|e| format!("{service} {params:?}: {e}").into())
    }

    /// A JSON-protocol call (CloudWatch Logs) without its SDK: `target` is
    /// the X-Amz-Target, e.g. `Logs_20140328.CreateLogGroup`.
    pub fn json(&self, service: &str, target: &str, body: &serde_json::Value) -> Result<String, BoxError> {
        let headers = format!("Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: {target}");
        self.post(service, &headers, &body.to_string())
            .map_err(|e| format!("{service} {target}: {e}").into())
    }

    /// POST `body` to the stand-in with `headers`, signed for `service`
    /// (the stand-in routes by the credential scope); the whole answer, or
    /// the answer that was not a 200.
    fn post(&self, service: &str, headers: &str, body: &str) -> Result<String, String> {
        let host = self.endpoint.trim_start_matches("http://").trim_end_matches('/');
        let mut s = TcpStream::connect(host).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/{}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.region,
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
        if !resp.starts_with("HTTP/1.1 200") {
            return Err(resp);
        }
        Ok(resp)
    }

    /// A VPC with two subnets and a security group: (subnets, security group).
    pub fn create_network(&self) -> Result<(Vec<String>, String), BoxError> {
        let vpc = tag(
            &self.query(
                "ec2",
                &[
                    ("Action", "CreateVpc"),
                    ("Version", "2016-11-15"),
                    ("CidrBlock", "10.20.0.0/16"),
                ],
            )?,
            "vpcId",
        )?;
        let mut subnets = Vec::new();
        for cidr in ["10.20.1.0/24", "10.20.2.0/24"] {
            let r = self.query(
                "ec2",
                &[
                    ("Action", "CreateSubnet"),
                    ("Version", "2016-11-15"),
                    ("VpcId", &vpc),
                    ("CidrBlock", cidr),
                ],
            )?;
            subnets.push(tag(&r, "subnetId")?);
        }
        let name = format!("zerofn-{}", fastrand::u32(..));
        let sg = tag(
            &self.query(
                "ec2",
                &[
                    ("Action", "CreateSecurityGroup"),
                    ("Version", "2016-11-15"),
                    ("GroupName", &name),
                    ("GroupDescription", "zerofn test"),
                    ("VpcId", &vpc),
                ],
            )?,
            "groupId",
        )?;
        Ok((subnets, sg))
    }

    /// Makes `subnet` public, as a VPC wizard does: an internet gateway on
    /// its VPC and a route table of its own sending 0.0.0.0/0 there.
    /// Returns (route table, internet gateway).
    pub fn make_public(&self, subnet: &str) -> Result<(String, String), BoxError> {
        let ec2 = |params: &[(&str, &str)]| {
            let mut all = vec![("Version", "2016-11-15")];
            all.extend_from_slice(params);
            self.query("ec2", &all)
        };
        let vpc = self.vpc_of(subnet)?;
        let igw = tag(&ec2(&[("Action", "CreateInternetGateway")])?, "internetGatewayId")?;
        ec2(&[
            ("Action", "AttachInternetGateway"),
            ("InternetGatewayId", &igw),
            ("VpcId", &vpc),
        ])?;
        let rtb = tag(
            &ec2(&[("Action", "CreateRouteTable"), ("VpcId", &vpc)])?,
            "routeTableId",
        )?;
        ec2(&[
            ("Action", "CreateRoute"),
            ("RouteTableId", &rtb),
            ("DestinationCidrBlock", "0.0.0.0/0"),
            ("GatewayId", &igw),
        ])?;
        ec2(&[
            ("Action", "AssociateRouteTable"),
            ("RouteTableId", &rtb),
            ("SubnetId", subnet),
        ])?;
        Ok((rtb, igw))
    }

    /// A flow log of all traffic of `resource` (a VPC or a subnet) to a
    /// CloudWatch Logs group; returns its id.
    pub fn create_flow_log(&self, resource: &str, role_arn: &str) -> Result<String, BoxError> {
        let kind = if resource.starts_with("vpc-") { "VPC" } else { "Subnet" };
        let group = format!("/zerofn/flow/{resource}");
        // Delivery to a group that does not exist fails (FAILED status).
        self.json(
            "logs",
            "Logs_20140328.CreateLogGroup",
            &serde_json::json!({ "logGroupName": group }),
        )?;
        let r = self.query(
            "ec2",
            &[
                ("Action", "CreateFlowLogs"),
                ("Version", "2016-11-15"),
                ("ResourceId.1", resource),
                ("ResourceType", kind),
                ("TrafficType", "ALL"),
                ("LogDestinationType", "cloud-watch-logs"),
                ("LogGroupName", &group),
                ("DeliverLogsPermissionArn", role_arn),
            ],
        )?;
        tag(&r, "item")
    }

    /// The VPC of a subnet.
    pub fn vpc_of(&self, subnet: &str) -> Result<String, BoxError> {
        let r = self.query(
            "ec2",
            &[
                ("Action", "DescribeSubnets"),
                ("Version", "2016-11-15"),
                ("SubnetId.1", subnet),
            ],
        )?;
        tag(&r, "vpcId")
    }

    pub fn create_queue(&self, name: &str) -> Result<String, BoxError> {
        self.query(
            "sqs",
            &[
                ("Action", "CreateQueue"),
                ("Version", "2012-11-05"),
                ("QueueName", name),
            ],
        )?;
        Ok(format!(
            "arn:aws:sqs:{}:{}:{name}",
            self.region,
            crate::localstack::ACCOUNT_ID
        ))
    }

    /// The URL of queue `name` at the stand-in.
    pub fn queue_url(&self, name: &str) -> String {
        format!(
            "{}/{}/{name}",
            self.endpoint.trim_end_matches('/'),
            crate::localstack::ACCOUNT_ID
        )
    }

    /// Send `body` to queue `name` (what an EventBridge rule's SQS target
    /// does with each event it matches).
    pub fn send_message(&self, name: &str, body: &str) -> Result<(), BoxError> {
        let url = self.queue_url(name);
        self.query(
            "sqs",
            &[
                ("Action", "SendMessage"),
                ("Version", "2012-11-05"),
                ("QueueUrl", &url),
                ("MessageBody", body),
            ],
        )
        .map(drop)
    }

    pub async fn create_role(&self, name: &str) -> Result<String, BoxError> {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        let out = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .map_err(|e| err(aws_sdk_iam::error::DisplayErrorContext(e)))?;
        Ok(out.role().map(|r| r.arn().to_string()).unwrap_or_default())
    }

    pub async fn create_function(&self, name: &str, role: &str) -> Result<String, BoxError> {
        let code = aws_sdk_lambda::types::FunctionCode::builder()
            .zip_file(aws_sdk_lambda::primitives::Blob::new(zip_one(
                "handler.py",
                b"def handler(event, context):\n    return {}\n",
            )))
            .build();
        let out = self
            .lambda
            .create_function()
            .function_name(name)
            .runtime(aws_sdk_lambda::types::Runtime::Python312)
            .role(role)
            .handler("handler.handler")
            .code(code)
            .send()
            .await
            .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;
        self.wait_ready(name).await?;
        Ok(out.function_arn().unwrap_or_default().to_string())
    }

    /// A layer version of a one-file layer: its version ARN.
    pub async fn publish_layer(&self, name: &str) -> Result<String, BoxError> {
        let content = aws_sdk_lambda::types::LayerVersionContentInput::builder()
            .zip_file(aws_sdk_lambda::primitives::Blob::new(zip_one(
                "python/agent.py",
                b"ENABLED = True\n",
            )))
            .build();
        let out = self
            .lambda
            .publish_layer_version()
            .layer_name(name)
            .content(content)
            .send()
            .await
            .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;
        Ok(out.layer_version_arn().unwrap_or_default().to_string())
    }

    /// The function's layer version ARNs, in order.
    pub async fn layers_of(&self, name: &str) -> Result<Vec<String>, BoxError> {
        let c = self
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;
        Ok(c.layers().iter().filter_map(|l| l.arn().map(str::to_string)).collect())
    }

    /// Wait until the function is Active and not being updated.
    pub async fn wait_ready(&self, name: &str) -> Result<(), BoxError> {
        for _ in 0..200 {
            let c = self
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;
            let active = c.state().map(|s| s.as_str()) == Some("Active");
            let idle = c.last_update_status().map(|s| s.as_str()) != Some("InProgress");
            if active && idle {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{name} did not become Active").into())
    }

    pub async fn create_code_signing_config(&self, policy: &str) -> Result<String, BoxError> {
        let out = self
            .lambda
            .create_code_signing_config()
            .allowed_publishers(
                aws_sdk_lambda::types::AllowedPublishers::builder()
                    .signing_profile_version_arns(format!(
                        "arn:aws:signer:{}:{}:/signing-profiles/zerofn/0123456789",
                        self.region,
                        crate::localstack::ACCOUNT_ID
                    ))
                    .build()
                    .map_err(err)?,
            )
            .code_signing_policies(
                aws_sdk_lambda::types::CodeSigningPolicies::builder()
                    .untrusted_artifact_on_deployment(policy.into())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;
        Ok(out
            .code_signing_config()
            .map(|c| c.code_signing_config_arn().to_string())
            .unwrap_or_default())
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of the first `<name>` element of an XML response.
fn tag(xml: &str, name: &str) -> Result<String, BoxError> {
    let open = format!("<{name}>");
    let start = xml.find(&open).ok_or_else(|| format!("no <{name}> in {xml}"))? + open.len();
    let end = xml[start..].find('<').ok_or("unterminated element")? + start;
    Ok(xml[start..end].to_string())
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

/// A zip archive holding one stored (uncompressed) file.
pub fn zip_one(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = crc32(data);
    let (n, len) = (name.len() as u16, data.len() as u32);
    let mut z = Vec::new();
    let header = |z: &mut Vec<u8>, sig: u32, central: bool| {
        z.extend(sig.to_le_bytes());
        if central {
            z.extend(20u16.to_le_bytes()); // version made by
        }
        z.extend(20u16.to_le_bytes()); // version needed
        z.extend(0u16.to_le_bytes()); // flags
        z.extend(0u16.to_le_bytes()); // stored
        z.extend(0u16.to_le_bytes()); // time
        z.extend(0x21u16.to_le_bytes()); // date: 1980-01-01
        z.extend(crc.to_le_bytes());
        z.extend(len.to_le_bytes());
        z.extend(len.to_le_bytes());
        z.extend(n.to_le_bytes());
        z.extend(0u16.to_le_bytes()); // extra
    };
    header(&mut z, 0x0403_4b50, false);
    z.extend(name.as_bytes());
    z.extend(data);
    let central_at = z.len() as u32;
    header(&mut z, 0x0201_4b50, true);
    z.extend([0u8; 10]); // comment len, disk, internal attrs (2 each), external attrs (4)
    z.extend(0u32.to_le_bytes()); // local header offset
    z.extend(name.as_bytes());
    let central_len = z.len() as u32 - central_at;
    z.extend(0x0605_4b50u32.to_le_bytes());
    z.extend([0u8; 4]); // disk numbers
    z.extend(1u16.to_le_bytes());
    z.extend(1u16.to_le_bytes());
    z.extend(central_len.to_le_bytes());
    z.extend(central_at.to_le_bytes());
    z.extend(0u16.to_le_bytes());
    z
}

/// The misconfigured estate of the acceptance criteria, with a prefix so
/// several can live in one stand-in.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub prefix: String,
    pub shared_role: String,
    /// Enforce; shares its role; `*` invoker; S3 invoker without
    /// SourceAccount; URL with AuthType NONE; no VPC; PassThrough tracing;
    /// text logs; no code signing.
    pub orders: String,
    /// Enforce; shares the role; enabled mapping from an undeclared queue.
    pub billing: String,
    /// Audit; its own role; `*` invoker; PassThrough tracing.
    pub reports: String,
    pub subnets: Vec<String>,
    pub security_group: String,
    pub code_signing_config: String,
    pub orders_queue: String,
    pub legacy_queue: String,
}

impl Fleet {
    pub async fn seed(aws: &Aws, prefix: &str) -> Result<Fleet, BoxError> {
        let shared_role = format!("{prefix}fleet-shared");
        let shared_arn = aws.create_role(&shared_role).await?;
        let admin =
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*:*", "Resource": "*"}]});
        aws.iam
            .put_role_policy()
            .role_name(&shared_role)
            .policy_name("legacy-admin")
            .policy_document(admin.to_string())
            .send()
            .await
            .map_err(|e| err(aws_sdk_iam::error::DisplayErrorContext(e)))?;
        aws.iam
            .attach_role_policy()
            .role_name(&shared_role)
            .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
            .send()
            .await
            .map_err(|e| err(aws_sdk_iam::error::DisplayErrorContext(e)))?;

        let orders = format!("{prefix}orders-api");
        let billing = format!("{prefix}billing-worker");
        let reports = format!("{prefix}reports");
        aws.create_function(&orders, &shared_arn).await?;
        aws.create_function(&billing, &shared_arn).await?;
        let reports_role = aws.create_role(&format!("{prefix}reports-role")).await?;
        aws.create_function(&reports, &reports_role).await?;

        let add = |f: &str, sid: &str, principal: &str, arn: Option<&str>| {
            aws.lambda
                .add_permission()
                .function_name(f)
                .statement_id(sid)
                .action("lambda:InvokeFunction")
                .principal(principal)
                .set_source_arn(arn.map(str::to_string))
                .send()
        };
        add(&orders, "public-invoke", "*", None)
            .await
            .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;
        add(
            &orders,
            "s3-no-account",
            "s3.amazonaws.com",
            Some(&format!("arn:aws:s3:::{prefix}orders-in")),
        )
        .await
        .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;
        add(&reports, "anyone", "*", None)
            .await
            .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;
        aws.lambda
            .create_function_url_config()
            .function_name(&orders)
            .auth_type(aws_sdk_lambda::types::FunctionUrlAuthType::None)
            .send()
            .await
            .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;

        let orders_queue = aws.create_queue(&format!("{prefix}orders-in"))?;
        let legacy_queue = aws.create_queue(&format!("{prefix}legacy"))?;
        aws.lambda
            .create_event_source_mapping()
            .function_name(&billing)
            .event_source_arn(&legacy_queue)
            .enabled(true)
            .send()
            .await
            .map_err(|e| err(aws_sdk_lambda::error::DisplayErrorContext(e)))?;

        let (subnets, security_group) = aws.create_network()?;
        let code_signing_config = aws.create_code_signing_config("Enforce").await?;
        Ok(Fleet {
            prefix: prefix.to_string(),
            shared_role,
            orders,
            billing,
            reports,
            subnets,
            security_group,
            code_signing_config,
            orders_queue,
            legacy_queue,
        })
    }

    /// Manifests declaring the fleet's Zero Trust posture, in `dir`:
    /// `account.yaml` (CloudAccount + Secret for the stand-in),
    /// `enforce.yaml` (orders-api and billing-worker, Enforce) and
    /// `audit.yaml` (reports, Audit).
    pub fn write_manifests(&self, dir: &Path, endpoint: &str) -> std::io::Result<FleetManifests> {
        let p = &self.prefix;
        let acct = crate::localstack::ACCOUNT_ID;
        let subnets = self.subnets.join(", ");
        let sg = &self.security_group;
        let csc = &self.code_signing_config;
        let orders_queue = &self.orders_queue;
        let network = format!("  network:\n    aws: {{subnetIds: [{subnets}], securityGroupIds: [{sg}]}}\n");
        let observability = "  observability: {tracing: Active, structuredLogs: true}\n";
        let account = format!(
            r#"apiVersion: zerofn.dev/v1alpha1
kind: CloudAccount
metadata: {{name: stand-in, namespace: shop}}
spec:
  aws:
    accountId: "{acct}"
    region: eu-west-1
    endpoint: {endpoint}
    credentialsSecretRef: {{name: stand-in-credentials}}
    maxRequestsPerSecond: 200
---
apiVersion: v1
kind: Secret
metadata: {{name: stand-in-credentials, namespace: shop}}
stringData: {{aws_access_key_id: test, aws_secret_access_key: test}}
"#
        );
        let enforce = format!(
            r#"apiVersion: zerofn.dev/v1alpha1
kind: FunctionPosture
metadata: {{name: orders-api, namespace: shop}}
spec:
  accountRef: {{name: stand-in}}
  function: {{aws: {{name: {p}orders-api}}}}
  mode: Enforce
  identity:
    createIfShared: true
    aws:
      permissions:
        - actions: [dynamodb:GetItem, dynamodb:Query]
          resources: ["arn:aws:dynamodb:eu-west-1:{acct}:table/{p}orders"]
  triggers:
    publicAccess: RequireAuth
    aws:
      invokers:
        - {{principal: s3.amazonaws.com, sourceArn: "arn:aws:s3:::{p}orders-in", sourceAccount: "{acct}"}}
      eventSources: ["{orders_queue}"]
{network}  supplyChain:
    aws: {{codeSigningConfigArn: "{csc}", allowedLayers: []}}
{observability}---
apiVersion: zerofn.dev/v1alpha1
kind: FunctionPosture
metadata: {{name: billing-worker, namespace: shop}}
spec:
  accountRef: {{name: stand-in}}
  function: {{aws: {{name: {p}billing-worker}}}}
  mode: Enforce
  identity:
    createIfShared: true
    aws:
      permissions:
        - actions: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes]
          resources: ["{orders_queue}"]
  triggers:
    aws:
      eventSources: ["{orders_queue}"]
{network}{observability}"#
        );
        let audit = format!(
            r#"apiVersion: zerofn.dev/v1alpha1
kind: FunctionPosture
metadata: {{name: reports, namespace: shop}}
spec:
  accountRef: {{name: stand-in}}
  function: {{aws: {{name: {p}reports}}}}
  mode: Audit
  triggers: {{}}
{observability}"#
        );
        std::fs::create_dir_all(dir)?;
        let files = FleetManifests {
            account: dir.join("account.yaml"),
            enforce: dir.join("enforce.yaml"),
            audit: dir.join("audit.yaml"),
        };
        std::fs::write(&files.account, account)?;
        std::fs::write(&files.enforce, enforce)?;
        std::fs::write(&files.audit, audit)?;
        Ok(files)
    }
}

#[derive(Debug, Clone)]
pub struct FleetManifests {
    pub account: std::path::PathBuf,
    pub enforce: std::path::PathBuf,
    pub audit: std::path::PathBuf,
}

/// A CloudTrail management event as EventBridge delivers it to an SQS
/// target ("AWS API Call via CloudTrail"): the envelope of the EventBridge
/// reference around a record of the CloudTrail record-contents reference.
pub fn cloudtrail_event(source: &str, name: &str, params: serde_json::Value, actor_arn: &str, region: &str) -> String {
    let now = jiff_now();
    json!({
        "version": "0",
        "id": format!("{:032x}", fastrand::u128(..)),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{}", source.trim_end_matches(".amazonaws.com")),
        "account": crate::localstack::ACCOUNT_ID,
        "time": now,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": if actor_arn.contains(":assumed-role/") { "AssumedRole" } else { "IAMUser" },
                "arn": actor_arn,
                "accountId": crate::localstack::ACCOUNT_ID
            },
            "eventTime": now,
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": "192.0.2.1",
            "userAgent": "aws-cli/2.15",
            "requestParameters": params,
            "responseElements": null,
            "requestID": format!("{:032x}", fastrand::u128(..)),
            "eventID": format!("{:032x}", fastrand::u128(..)),
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": crate::localstack::ACCOUNT_ID,
            "eventCategory": "Management"
        }
    })
    .to_string()
}

/// A REST API in front of a function, as the API front-door tests need it.
#[derive(Clone, Debug)]
pub struct FrontDoor {
    pub api_id: String,
    /// `POST /orders`: no authorization, no validator, a body model.
    pub open: (String, String),
    /// `GET /admin`: AWS_IAM.
    pub guarded: (String, String),
    /// Validates body and parameters.
    pub validator: String,
    pub stage: String,
}

impl Aws {
    /// A REST API with two methods integrated with `function_arn` (one
    /// without authorization, one with AWS_IAM), a request validator, and
    /// stage `prod` deployed; the function's resource policy lets the open
    /// method invoke it (SourceArn and SourceAccount pinned).
    pub async fn front_door(&self, name: &str, function_arn: &str, account: &str) -> Result<FrontDoor, BoxError> {
        let gw = &self.apigateway;
        let api = gw.create_rest_api().name(name).send().await.map_err(err)?;
        let api_id = api.id().ok_or("CreateRestApi: no id")?.to_string();
        let resources = gw.get_resources().rest_api_id(&api_id).send().await.map_err(err)?;
        let root = resources
            .items()
            .iter()
            .find(|r| r.path() == Some("/"))
            .and_then(|r| r.id())
            .ok_or("no root resource")?
            .to_string();
        let uri = format!(
            "arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
            self.region
        );
        let mut made = Vec::new();
        for (part, verb, auth) in [("orders", "POST", "NONE"), ("admin", "GET", "AWS_IAM")] {
            let r = gw
                .create_resource()
                .rest_api_id(&api_id)
                .parent_id(&root)
                .path_part(part)
                .send()
                .await
                .map_err(err)?;
            let rid = r.id().ok_or("CreateResource: no id")?.to_string();
            let mut put = gw
                .put_method()
                .rest_api_id(&api_id)
                .resource_id(&rid)
                .http_method(verb)
                .authorization_type(auth);
            if verb == "POST" {
                put = put.request_models("application/json", "Empty");
            }
            put.send().await.map_err(err)?;
            gw.put_integration()
                .rest_api_id(&api_id)
                .resource_id(&rid)
                .http_method(verb)
                .r#type(aws_sdk_apigateway::types::IntegrationType::AwsProxy)
                .integration_http_method("POST")
                .uri(&uri)
                .send()
                .await
                .map_err(err)?;
            made.push((rid, verb.to_string()));
        }
        let validator = gw
            .create_request_validator()
            .rest_api_id(&api_id)
            .name("all")
            .validate_request_body(true)
            .validate_request_parameters(true)
            .send()
            .await
            .map_err(err)?
            .id()
            .ok_or("CreateRequestValidator: no id")?
            .to_string();
        gw.create_deployment()
            .rest_api_id(&api_id)
            .stage_name("prod")
            .send()
            .await
            .map_err(err)?;
        self.lambda
            .add_permission()
            .function_name(function_arn)
            .statement_id("apigw-orders")
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn(format!(
                "arn:aws:execute-api:{}:{account}:{api_id}/prod/POST/orders",
                self.region
            ))
            .source_account(account)
            .send()
            .await
            .map_err(err)?;
        Ok(FrontDoor {
            api_id,
            open: made[0].clone(),
            guarded: made[1].clone(),
            validator,
            stage: "prod".into(),
        })
    }

    /// A method's authorizationType and requestValidatorId.
    pub async fn method_guard(
        &self,
        api_id: &str,
        resource_id: &str,
        verb: &str,
    ) -> Result<(String, Option<String>), BoxError> {
        let m = self
            .apigateway
            .get_method()
            .rest_api_id(api_id)
            .resource_id(resource_id)
            .http_method(verb)
            .send()
            .await
            .map_err(err)?;
        Ok((
            m.authorization_type().unwrap_or_default().to_string(),
            m.request_validator_id().map(str::to_string),
        ))
    }

    /// How many deployments the API has.
    pub async fn deployments(&self, api_id: &str) -> Result<usize, BoxError> {
        let d = self
            .apigateway
            .get_deployments()
            .rest_api_id(api_id)
            .send()
            .await
            .map_err(err)?;
        Ok(d.items().len())
    }
}

/// Now, as CloudTrail writes times (whole seconds, UTC).
fn jiff_now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn zip_layout_is_exact() {
        let (name, data) = ("a.py", b"x = 1\n");
        let z = zip_one(name, data);
        let local = 30 + name.len() + data.len();
        let central = 46 + name.len();
        assert_eq!(z.len(), local + central + 22);
        assert_eq!(&z[..4], &[0x50, 0x4b, 0x03, 0x04]);
        assert_eq!(&z[local..local + 4], &[0x50, 0x4b, 0x01, 0x02]);
        let eocd = &z[local + central..];
        assert_eq!(&eocd[..4], &[0x50, 0x4b, 0x05, 0x06]);
        assert_eq!(u32::from_le_bytes(eocd[12..16].try_into().unwrap()) as usize, central);
        assert_eq!(u32::from_le_bytes(eocd[16..20].try_into().unwrap()) as usize, local);
    }
}

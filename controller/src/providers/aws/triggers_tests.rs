//! Who may invoke: every invocation path (the function, its aliases, its
//! published versions) judged alike. A table of open configurations that must
//! be found and fixed, a table of scoped ones that must pass, and a generated
//! sweep that checks, with a resource-policy evaluator of its own (it shares
//! nothing with the planner's statement model), that enforcing never lets a
//! request in that was kept out before, other than the declared invokers.

use super::*;
use crate::api::*;
use crate::fixtures::{SpecExt, aws_spec, sweep};
use crate::providers::aws::model::*;
use crate::providers::aws::policy::parse_resource_policy;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use std::cell::{Cell, RefCell};

const ACCT: &str = "123456789012";
const FN_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:orders";
const BUCKET: &str = "arn:aws:s3:::orders-in";
const PARTNER: &str = "210987654321";
const OWNER: &str = "test/team/orders";

// ------------------------------------------------------------ a small world

/// The function's invocation paths as the cloud holds them: raw policy
/// statements (JSON, as GetPolicy returns them) and the URL's AuthType.
#[derive(Clone, Debug, Default)]
struct World {
    paths: BTreeMap<Option<String>, PathState>,
}

#[derive(Clone, Debug, Default)]
struct PathState {
    kind: Option<QualifierKind>,
    statements: Vec<Value>,
    url: Option<String>,
}

impl World {
    fn new() -> World {
        let mut w = World::default();
        w.paths.insert(None, PathState::default());
        w
    }

    fn path(&mut self, q: Option<&str>) -> &mut PathState {
        let kind = q.map(|q| {
            if q.bytes().all(|b| b.is_ascii_digit()) {
                QualifierKind::Version
            } else {
                QualifierKind::Alias
            }
        });
        self.paths.entry(q.map(str::to_string)).or_insert_with(|| PathState {
            kind,
            ..PathState::default()
        })
    }

    fn with(mut self, q: Option<&str>, statement: Value) -> World {
        self.path(q).statements.push(statement);
        self
    }

    fn with_url(mut self, q: Option<&str>, auth: &str) -> World {
        self.path(q).url = Some(auth.to_string());
        self
    }

    /// What the observer would hand the planner.
    fn observe(&self) -> ObservedFunction {
        let policy = |p: &PathState| {
            (!p.statements.is_empty()).then(|| {
                parse_resource_policy(&json!({"Version": "2012-10-17", "Statement": p.statements}).to_string())
                    .expect("generated policies parse")
            })
        };
        let url = |p: &PathState| {
            p.url.as_ref().map(|a| FunctionUrl {
                auth_type: a.clone(),
                url: "https://x.lambda-url.eu-west-1.on.aws/".into(),
            })
        };
        let own = &self.paths[&None];
        ObservedFunction {
            arn: FN_ARN.into(),
            name: "orders".into(),
            region: "eu-west-1".into(),
            role_arn: "arn:aws:iam::123456789012:role/orders-role".into(),
            resource_policy: policy(own),
            url: url(own),
            qualifiers: self
                .paths
                .iter()
                .filter_map(|(q, p)| {
                    Some(ObservedQualifier {
                        kind: p.kind?,
                        name: q.clone()?,
                        resource_policy: policy(p),
                        url: url(p),
                    })
                })
                .collect(),
            tags: Some([(names::OWNER_TAG.to_string(), OWNER.to_string())].into()),
            ..ObservedFunction::default()
        }
    }

    /// Apply the planned writes the way Lambda does (AddPermission builds
    /// the statement from its parameters; RemovePermission drops the Sid).
    fn apply(&mut self, actions: &[&AwsAction]) {
        for a in actions {
            match a {
                AwsAction::AddPermission {
                    qualifier,
                    statement_id,
                    principal,
                    action,
                    source_arn,
                    source_account,
                    ..
                } => {
                    let principal = if principal.bytes().all(|b| b.is_ascii_digit()) {
                        json!({"AWS": format!("arn:aws:iam::{principal}:root")})
                    } else if principal.starts_with("arn:") {
                        json!({"AWS": principal})
                    } else {
                        json!({"Service": principal})
                    };
                    let mut cond = Map::new();
                    if let Some(acct) = source_account {
                        cond.insert("StringEquals".into(), json!({"AWS:SourceAccount": acct}));
                    }
                    if let Some(arn) = source_arn {
                        cond.insert("ArnLike".into(), json!({"AWS:SourceArn": arn}));
                    }
                    if action == "lambda:InvokeFunctionUrl" {
                        let e = cond.entry("StringEquals").or_insert_with(|| json!({}));
                        e["lambda:FunctionUrlAuthType"] = json!("AWS_IAM");
                    }
                    let p = self.path(qualifier.as_deref());
                    assert!(
                        !p.statements.iter().any(|s| s["Sid"] == json!(statement_id)),
                        "AddPermission {statement_id} on {qualifier:?}: the Sid is taken (Lambda refuses)"
                    );
                    let mut st = json!({"Sid": statement_id, "Effect": "Allow", "Principal": principal,
                                        "Action": action, "Resource": FN_ARN});
                    if !cond.is_empty() {
                        st["Condition"] = Value::Object(cond);
                    }
                    p.statements.push(st);
                }
                AwsAction::RemovePermission {
                    qualifier,
                    statement_id,
                    ..
                } => {
                    self.path(qualifier.as_deref())
                        .statements
                        .retain(|s| s["Sid"] != json!(statement_id));
                }
                AwsAction::UpdateFunctionUrlAuthType {
                    qualifier, auth_type, ..
                } => {
                    let p = self.path(qualifier.as_deref());
                    assert!(p.url.is_some(), "URL update on {qualifier:?} without a URL");
                    p.url = Some(auth_type.clone());
                }
                AwsAction::DeleteFunctionUrl { qualifier, .. } => {
                    self.path(qualifier.as_deref()).url = None;
                }
                AwsAction::TagFunction { .. } | AwsAction::DisableEventSourceMapping { .. } => {}
                other => panic!("a triggers-only posture planned {other:?}"),
            }
        }
    }
}

fn spec(public: PublicAccess, remove_unlisted: bool, invokers: Vec<AwsInvoker>) -> FunctionPostureSpec {
    aws_spec("orders").with_triggers(TriggerControl {
        public_access: public,
        remove_unlisted,
        aws: Some(AwsTriggers {
            invokers,
            event_sources: vec![],
            function_url: None,
            api_gateway: None,
        }),
        azure: None,
        gcp: None,
    })
}

fn s3_invoker() -> AwsInvoker {
    AwsInvoker {
        principal: "s3.amazonaws.com".into(),
        source_arn: Some(BUCKET.into()),
        source_account: Some(ACCT.into()),
        action: InvokeAction::InvokeFunction,
    }
}

fn partner_invoker() -> AwsInvoker {
    AwsInvoker {
        principal: PARTNER.into(),
        source_arn: None,
        source_account: None,
        action: InvokeAction::InvokeFunctionUrl,
    }
}

fn posture(s: FunctionPostureSpec) -> Posture {
    Posture::new("test", "team", "orders", s)
}

fn ctx() -> AccountContext {
    AccountContext {
        account_id: ACCT.into(),
        partition: "aws".into(),
    }
}

fn aws_actions(p: &Plan<AwsAction>) -> Vec<&AwsAction> {
    p.actions.iter().collect()
}

/// The statement AddPermission writes for the declared S3 invoker.
fn declared_s3(sid: &str) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
           "Action": "lambda:InvokeFunction", "Resource": FN_ARN,
           "Condition": {"StringEquals": {"AWS:SourceAccount": ACCT}, "ArnLike": {"AWS:SourceArn": BUCKET}}})
}

fn s3_with(sid: &str, principal: &str, condition: Value) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Principal": {"Service": principal},
           "Action": "lambda:InvokeFunction", "Resource": FN_ARN, "Condition": condition})
}

fn public(sid: &str) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction", "Resource": FN_ARN})
}

// ------------------------------------------------------------ tables

struct Open {
    case: &'static str,
    public_access: PublicAccess,
    world: World,
    check: &'static str,
    field: &'static str,
    severity: Severity,
    /// The fixing write, with the qualifier it goes to.
    fix: (&'static str, Option<&'static str>),
}

/// The open configurations, one row each. Long because it is a table: the
/// rows read best side by side.
fn open_configurations() -> Vec<Open> {
    let fine = || World::new().with(None, declared_s3("s3"));
    vec![
        Open {
            case: "negated operators (any bucket of any account except one)",
            public_access: PublicAccess::Deny,
            world: World::new().with(
                None,
                s3_with(
                    "neg",
                    "s3.amazonaws.com",
                    json!({"StringNotEquals": {"AWS:SourceAccount": "999999999999"}, "ArnNotLike": {"AWS:SourceArn": "arn:aws:s3:::other"}}),
                ),
            ),
            check: "aws.triggers.unscopedInvoker",
            field: "Policy.Statement[neg].Condition",
            severity: Severity::Critical,
            fix: ("RemovePermission", None),
        },
        Open {
            case: "IfExists operators",
            public_access: PublicAccess::Deny,
            world: World::new().with(
                None,
                s3_with(
                    "ifexists",
                    "s3.amazonaws.com",
                    json!({"StringEqualsIfExists": {"AWS:SourceAccount": ACCT}, "ArnLikeIfExists": {"AWS:SourceArn": BUCKET}}),
                ),
            ),
            check: "aws.triggers.unscopedInvoker",
            field: "Policy.Statement[ifexists].Condition",
            severity: Severity::Critical,
            fix: ("RemovePermission", None),
        },
        Open {
            case: "Null check instead of a value",
            public_access: PublicAccess::Deny,
            world: World::new().with(
                None,
                s3_with(
                    "null",
                    "s3.amazonaws.com",
                    json!({"Null": {"AWS:SourceAccount": "false", "AWS:SourceArn": "false"}}),
                ),
            ),
            check: "aws.triggers.unscopedInvoker",
            field: "Policy.Statement[null].Condition",
            severity: Severity::Critical,
            fix: ("RemovePermission", None),
        },
        Open {
            case: "wildcard SourceArn",
            public_access: PublicAccess::Deny,
            world: World::new().with(
                None,
                s3_with(
                    "wild",
                    "s3.amazonaws.com",
                    json!({"StringEquals": {"AWS:SourceAccount": ACCT}, "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::*"}}),
                ),
            ),
            check: "aws.triggers.unscopedInvoker",
            field: "Policy.Statement[wild].Condition",
            severity: Severity::High,
            fix: ("RemovePermission", None),
        },
        Open {
            case: "China-partition service principal without conditions",
            public_access: PublicAccess::Deny,
            world: fine().with(
                None,
                json!({"Sid": "cn", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com.cn"},
                       "Action": "lambda:InvokeFunction", "Resource": FN_ARN}),
            ),
            check: "aws.triggers.unscopedInvoker",
            field: "Policy.Statement[cn].Condition",
            severity: Severity::Critical,
            fix: ("RemovePermission", None),
        },
        Open {
            case: "alias policy public",
            public_access: PublicAccess::Deny,
            world: fine().with(Some("live"), public("open")),
            check: "aws.triggers.publicPrincipal",
            field: "Alias[live].Policy.Statement[open].Principal",
            severity: Severity::Critical,
            fix: ("RemovePermission", Some("live")),
        },
        Open {
            case: "version policy public",
            public_access: PublicAccess::Deny,
            world: fine().with(
                Some("3"),
                json!({"Sid": "open", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "lambda:InvokeFunction", "Resource": FN_ARN}),
            ),
            check: "aws.triggers.publicPrincipal",
            field: "Version[3].Policy.Statement[open].Principal",
            severity: Severity::Critical,
            fix: ("RemovePermission", Some("3")),
        },
        Open {
            case: "alias URL without authentication",
            public_access: PublicAccess::RequireAuth,
            world: fine().with_url(Some("live"), "NONE"),
            check: "aws.triggers.publicUrl",
            field: "Alias[live].FunctionUrlConfig.AuthType",
            severity: Severity::Critical,
            fix: ("UpdateFunctionUrlConfig", Some("live")),
        },
        Open {
            case: "alias URL under publicAccess Deny",
            public_access: PublicAccess::Deny,
            world: fine().with_url(Some("live"), "NONE"),
            check: "aws.triggers.functionUrl",
            field: "Alias[live].FunctionUrlConfig",
            severity: Severity::Critical,
            fix: ("DeleteFunctionUrlConfig", Some("live")),
        },
        Open {
            case: "alias grant to the declared service without its account",
            public_access: PublicAccess::Deny,
            world: fine().with(
                Some("live"),
                s3_with("loose", "s3.amazonaws.com", json!({"ArnLike": {"AWS:SourceArn": BUCKET}})),
            ),
            check: "aws.triggers.unscopedInvoker",
            field: "Alias[live].Policy.Statement[loose].Condition",
            severity: Severity::Critical,
            fix: ("AddPermission", Some("live")),
        },
    ]
}

#[test]
fn every_open_path_is_found_and_enforce_closes_it() {
    for c in open_configurations() {
        let p = posture(spec(c.public_access, true, vec![s3_invoker()]));
        let plan = plan(&p, &ctx(), &c.world.observe());
        let f = plan
            .findings
            .iter()
            .find(|f| f.check == c.check && f.field == c.field)
            .unwrap_or_else(|| panic!("{}: no {} at {}: {:#?}", c.case, c.check, c.field, plan.findings));
        assert_eq!(f.severity, c.severity, "{}: {f:?}", c.case);
        assert!(f.remediable, "{}", c.case);
        let actions = aws_actions(&plan);
        assert!(
            actions.iter().any(|a| {
                let q = match a {
                    AwsAction::AddPermission { qualifier, .. }
                    | AwsAction::RemovePermission { qualifier, .. }
                    | AwsAction::UpdateFunctionUrlAuthType { qualifier, .. }
                    | AwsAction::DeleteFunctionUrl { qualifier, .. } => qualifier.as_deref(),
                    _ => None,
                };
                a.op() == c.fix.0 && q == c.fix.1
            }),
            "{}: no {:?} in {actions:#?}",
            c.case,
            c.fix
        );
        // Enforce, then observe again: nothing left to find or to write.
        let mut world = c.world.clone();
        world.apply(&actions);
        let again = plan_for(&p, &world);
        assert!(
            again.findings.is_empty() && again.actions.is_empty(),
            "{}: after enforce: {:#?} {:#?}",
            c.case,
            again.findings,
            again.actions
        );
    }
}

fn plan_for(p: &Posture, w: &World) -> Plan<AwsAction> {
    plan(p, &ctx(), &w.observe())
}

/// A table of scoped configurations (long for that reason), each planned
/// alone and together: none is reported.
#[test]
fn scoped_configurations_raise_no_alarm() {
    let partner_url = json!({"Sid": "partner", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{PARTNER}:root")}, "Action": "lambda:InvokeFunctionUrl",
        "Resource": FN_ARN, "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}});
    let both = || vec![s3_invoker(), partner_invoker()];
    let cases: Vec<(&str, PublicAccess, Vec<AwsInvoker>, World)> = vec![
        (
            "the declared grant as AddPermission writes it",
            PublicAccess::Deny,
            vec![s3_invoker()],
            World::new().with(None, declared_s3("s3")),
        ),
        (
            "ArnEquals and lower-case keys",
            PublicAccess::Deny,
            vec![s3_invoker()],
            World::new().with(
                None,
                s3_with(
                    "s3",
                    "s3.amazonaws.com",
                    json!({"StringEquals": {"aws:sourceaccount": ACCT}, "ArnEquals": {"aws:sourcearn": BUCKET}}),
                ),
            ),
        ),
        (
            "a negated condition on top of the scoped ones only narrows",
            PublicAccess::Deny,
            vec![s3_invoker()],
            World::new().with(
                None,
                s3_with(
                    "s3",
                    "s3.amazonaws.com",
                    json!({"StringEquals": {"AWS:SourceAccount": ACCT}, "ArnLike": {"AWS:SourceArn": BUCKET},
                           "StringNotEquals": {"aws:SourceVpc": "vpc-0"}}),
                ),
            ),
        ),
        (
            "a Deny statement is kept and is no finding",
            PublicAccess::Deny,
            vec![s3_invoker()],
            World::new().with(None, declared_s3("s3")).with(
                None,
                json!({"Sid": "guard", "Effect": "Deny", "Principal": "*", "Action": "lambda:InvokeFunction",
                       "Resource": FN_ARN, "Condition": {"StringNotEquals": {"AWS:SourceAccount": ACCT}}}),
            ),
        ),
        (
            "an alias carrying the declared grant, a version without a policy",
            PublicAccess::RequireAuth,
            vec![s3_invoker()],
            World::new()
                .with(None, declared_s3("s3"))
                .with(Some("live"), declared_s3("s3"))
                .with_url(None, "AWS_IAM")
                .with_url(Some("live"), "AWS_IAM")
                .with_path(Some("3")),
        ),
        (
            "authenticated URLs and a declared account on function and alias",
            PublicAccess::RequireAuth,
            both(),
            World::new()
                .with(None, declared_s3("s3"))
                .with(None, partner_url.clone())
                .with(Some("live"), partner_url)
                .with_url(None, "AWS_IAM")
                .with_url(Some("live"), "AWS_IAM"),
        ),
    ];
    for (case, public_access, invokers, world) in cases {
        let p = posture(spec(public_access, true, invokers));
        let plan = plan_for(&p, &world);
        assert!(
            plan.findings.is_empty() && plan.actions.is_empty(),
            "{case}: {:#?} {:#?}",
            plan.findings,
            plan.actions
        );
    }
}

impl World {
    fn with_path(mut self, q: Option<&str>) -> World {
        self.path(q);
        self
    }
}

// ------------------------------------------------------------ evaluator

/// One request to invoke the function, as Lambda authorizes it against the
/// resource policy of the path it names.
#[derive(Clone, Debug)]
struct Request {
    principal: &'static str,
    source_arn: Option<&'static str>,
    source_account: Option<&'static str>,
    qualifier: Option<&'static str>,
    action: &'static str,
}

/// Anyone on the internet: only `"*"` admits it, and only through a URL
/// without authentication.
const ANONYMOUS: &str = "anonymous";

fn requests() -> Vec<Request> {
    let mut out = Vec::new();
    for principal in [
        "s3.amazonaws.com",
        "s3.amazonaws.com.cn",
        "sns.amazonaws.com",
        "arn:aws:iam::210987654321:root",
        "arn:aws:iam::555555555555:role/r",
        ANONYMOUS,
    ] {
        for source_arn in [
            None,
            Some(BUCKET),
            Some("arn:aws:s3:::other"),
            Some("arn:aws:s3:::orders-in2"),
        ] {
            for source_account in [None, Some(ACCT), Some("999999999999")] {
                for qualifier in [None, Some("live"), Some("3")] {
                    for action in ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"] {
                        out.push(Request {
                            principal,
                            source_arn,
                            source_account,
                            qualifier,
                            action,
                        });
                    }
                }
            }
        }
    }
    out
}

/// IAM's `*`/`?` matching, case-sensitive (the identity sweep's evaluator's:
/// neither is the planner's).
fn glob(pattern: &str, value: &str) -> bool {
    super::tests::iam::glob(pattern, value, false)
}

/// ArnLike / ArnEquals: each of the six colon-separated parts on its own.
fn arn_match(pattern: &str, value: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let v: Vec<&str> = value.splitn(6, ':').collect();
    p.len() == 6 && v.len() == 6 && p.iter().zip(&v).all(|(p, v)| glob(p, v))
}

fn values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    }
}

/// One condition operator on one key, as the IAM reference defines it.
fn condition_holds(op: &str, present: Option<&str>, wanted: &[String]) -> bool {
    let (set, op) = match op.split_once(':') {
        Some((set, op)) => (Some(set), op),
        None => (None, op),
    };
    if op == "Null" {
        let absent = present.is_none();
        return wanted.iter().any(|w| (w == "true") == absent);
    }
    let (op, if_exists) = match op.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (op, false),
    };
    let negated = op.contains("Not");
    let Some(value) = present else {
        // An absent key: only IfExists, negated operators and
        // ForAllValues (vacuously) hold.
        return if_exists || negated || set == Some("ForAllValues");
    };
    let one = |w: &String| {
        match op {
            "StringEquals" | "StringNotEquals" => w == value,
            "StringEqualsIgnoreCase" | "StringNotEqualsIgnoreCase" => w.eq_ignore_ascii_case(value),
            "StringLike" | "StringNotLike" => glob(w, value),
            "ArnEquals" | "ArnLike" | "ArnNotEquals" | "ArnNotLike" => arn_match(w, value),
            // Operator names are case-sensitive; IAM knows no other.
            _ => return None,
        }
        .into()
    };
    let mut any = false;
    for w in wanted {
        match one(w) {
            Some(true) => any = true,
            Some(false) => {}
            None => return false,
        }
    }
    if negated { !any } else { any }
}

fn principal_admits(p: &Value, who: &str) -> bool {
    match p {
        Value::String(s) => s == "*",
        Value::Object(m) => m.iter().any(|(kind, v)| {
            values(v).iter().any(|name| match kind.as_str() {
                "AWS" if name == "*" => true,
                "AWS" if who == ANONYMOUS => false,
                "AWS" => {
                    let account = name
                        .strip_prefix("arn:aws:iam::")
                        .and_then(|r| r.strip_suffix(":root"))
                        .unwrap_or(name);
                    name == who
                        || who
                            .strip_prefix("arn:aws:iam::")
                            .is_some_and(|r| r.starts_with(&format!("{account}:")))
                }
                "Service" => name == who,
                _ => false,
            })
        }),
        _ => false,
    }
}

fn statement_applies(st: &Value, r: &Request, url_auth: Option<&str>) -> bool {
    let admits = match (st.get("Principal"), st.get("NotPrincipal")) {
        (Some(p), _) => principal_admits(p, r.principal),
        (None, Some(np)) => !principal_admits(np, r.principal),
        (None, None) => false,
    };
    let acts = |k: &str| {
        st.get(k)
            .map(values)
            .unwrap_or_default()
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &r.action.to_ascii_lowercase()))
    };
    let action = if st.get("NotAction").is_some() {
        !acts("NotAction")
    } else {
        acts("Action")
    };
    if !admits || !action {
        return false;
    }
    let context = |key: &str| match key.to_ascii_lowercase().as_str() {
        "aws:sourcearn" => r.source_arn,
        "aws:sourceaccount" => r.source_account,
        "lambda:functionurlauthtype" => url_auth,
        _ => None,
    };
    st.get("Condition")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(op, keys)| {
            keys.as_object()
                .into_iter()
                .flatten()
                .all(|(k, v)| condition_holds(op, context(k), &values(v)))
        })
}

/// Whether the world lets the request invoke.
fn allows(w: &World, r: &Request) -> bool {
    let Some(path) = w.paths.get(&r.qualifier.map(str::to_string)) else {
        return false;
    };
    let url_auth = if r.action == "lambda:InvokeFunctionUrl" {
        // Without a URL there is no URL request; without authentication the
        // caller is whoever it claims to be, so only "*" grants count.
        match path.url.as_deref() {
            None => return false,
            Some(a) => Some(a),
        }
    } else {
        None
    };
    // A URL without authentication does not know who calls: everyone is
    // anonymous there. Only a signed request (AuthType AWS_IAM) has a name.
    let r = &Request {
        principal: if url_auth == Some("NONE") {
            ANONYMOUS
        } else {
            r.principal
        },
        ..r.clone()
    };
    if r.principal == ANONYMOUS && url_auth != Some("NONE") {
        return false;
    }
    let mut allowed = false;
    for st in &path.statements {
        if statement_applies(st, r, url_auth) {
            if st["Effect"] == "Deny" {
                return false;
            }
            allowed = true;
        }
    }
    allowed
}

/// Whether the request is one the posture declares.
fn declared(invokers: &[AwsInvoker], r: &Request) -> bool {
    invokers.iter().any(|i| {
        let who = if i.principal.bytes().all(|b| b.is_ascii_digit()) {
            r.principal.starts_with(&format!("arn:aws:iam::{}:", i.principal))
        } else {
            r.principal == i.principal
        };
        who && i.action.as_str() == r.action
            && i.source_arn.as_deref().is_none_or(|a| r.source_arn == Some(a))
            && i.source_account.as_deref().is_none_or(|a| r.source_account == Some(a))
    })
}

#[test]
fn the_evaluator_reads_policies_as_iam_does() {
    let w = World::new().with(
        None,
        s3_with(
            "neg",
            "s3.amazonaws.com",
            json!({"StringNotEquals": {"AWS:SourceAccount": "999999999999"}}),
        ),
    );
    let r = |arn, acct| Request {
        principal: "s3.amazonaws.com",
        source_arn: arn,
        source_account: acct,
        qualifier: None,
        action: "lambda:InvokeFunction",
    };
    assert!(allows(&w, &r(Some("arn:aws:s3:::any"), Some("111111111111"))));
    assert!(allows(&w, &r(None, None)), "a negated operator holds for an absent key");
    assert!(!allows(&w, &r(None, Some("999999999999"))));
    let w = World::new().with(None, declared_s3("s3"));
    assert!(allows(&w, &r(Some(BUCKET), Some(ACCT))));
    assert!(!allows(&w, &r(Some("arn:aws:s3:::orders-in2"), Some(ACCT))));
    assert!(!allows(&w, &r(Some(BUCKET), None)));
    let w = World::new().with(None, public("p")).with(
        None,
        json!({"Sid": "d", "Effect": "Deny", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "lambda:*", "Resource": FN_ARN}),
    );
    assert!(!allows(&w, &r(Some(BUCKET), Some(ACCT))), "Deny wins");
    assert!(arn_match("arn:aws:s3:::orders-*", "arn:aws:s3:::orders-in"));
    assert!(!arn_match("arn:aws:s3:::orders-in", "arn:aws:s3:::orders-in2"));
    assert!(!condition_holds("stringequals", Some("x"), &["x".to_string()]));
    assert!(condition_holds("ForAllValues:StringEquals", None, &["x".to_string()]));
}

// ------------------------------------------------------------ the sweep

const CONDITION_OPERATORS: [&str; 15] = [
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "StringEqualsIfExists",
    "ArnLikeIfExists",
    "StringNotEqualsIfExists",
    "Null",
    "ForAllValues:StringEquals",
    "ForAnyValue:StringLike",
    "stringequals",
];

const CONDITION_KEYS: [&str; 5] = [
    "AWS:SourceArn",
    "aws:sourcearn",
    "AWS:SourceAccount",
    "aws:SourceAccount",
    "lambda:FunctionUrlAuthType",
];

/// The values a generated condition compares its key with: matching,
/// other, and wildcard ones.
fn condition_values(op: &str, key: &str) -> Vec<&'static str> {
    let key = key.to_ascii_lowercase();
    if op == "Null" {
        vec!["true", "false"]
    } else if key.ends_with("arn") {
        vec![
            BUCKET,
            "arn:aws:s3:::other",
            "arn:aws:s3:::*",
            "arn:aws:s3:::orders-*",
            "arn:aws:s3:::orders-in?",
        ]
    } else if key.ends_with("account") {
        vec![ACCT, "999999999999", "*", "12345678901?"]
    } else {
        vec!["NONE", "AWS_IAM"]
    }
}

/// Up to three (operator, key, value) entries, negated and IfExists
/// operators and key case variants included; a later entry on the same
/// operator and key replaces an earlier one, as in a JSON object.
fn any_condition() -> impl Strategy<Value = Value> {
    let entry = (select(CONDITION_OPERATORS.to_vec()), select(CONDITION_KEYS.to_vec()))
        .prop_flat_map(|(op, key)| (Just(op), Just(key), select(condition_values(op, key))));
    proptest::collection::vec(entry, 0..4).prop_map(|entries| {
        let mut cond = Map::new();
        for (op, key, value) in entries {
            let entry = cond.entry(op.to_string()).or_insert_with(|| json!({}));
            entry[key] = json!(value);
        }
        Value::Object(cond)
    })
}

/// A statement as GetPolicy returns it (its Sid set by the caller): the
/// declared grant (or one to a look-alike principal), or any principal,
/// NotPrincipal, Allow or Deny, action spelling and condition.
fn any_statement() -> impl Strategy<Value = Value> {
    let declared = any::<bool>().prop_map(|look_alike| {
        let mut st = declared_s3("");
        if look_alike {
            st["Principal"] = json!({"Service": "s3.amazonaws.com.cn"});
        }
        st
    });
    let principal = select(vec![
        json!("*"),
        json!({"AWS": "*"}),
        json!({"Service": "s3.amazonaws.com"}),
        json!({"Service": "s3.amazonaws.com.cn"}),
        json!({"Service": "sns.amazonaws.com"}),
        json!({"AWS": format!("arn:aws:iam::{PARTNER}:root")}),
        json!({"AWS": "555555555555"}),
        json!({"AWS": format!("arn:aws:iam::{PARTNER}:root"), "Service": "s3.amazonaws.com"}),
    ]);
    let other = (
        principal,
        proptest::bool::weighted(0.2),
        select(vec![
            "lambda:InvokeFunction",
            "lambda:InvokeFunctionUrl",
            "lambda:*",
            "lambda:invokefunction",
        ]),
        proptest::bool::weighted(0.1),
        any_condition(),
    )
        .prop_map(|(principal, deny, action, not_principal, cond)| {
            let mut st = json!({
                "Sid": "",
                "Effect": if deny { "Deny" } else { "Allow" },
                "Action": action,
                "Resource": FN_ARN,
            });
            st[if not_principal { "NotPrincipal" } else { "Principal" }] = principal;
            if cond.as_object().is_some_and(|c| !c.is_empty()) {
                st["Condition"] = cond;
            }
            st
        });
    prop_oneof![1 => declared, 5 => other]
}

/// One invocation path as generated: its statements, whether the first
/// takes the Sid zerofn would use, and its URL's AuthType.
type PathShape = (Vec<Value>, bool, Option<String>);

fn any_path() -> impl Strategy<Value = PathShape> {
    (
        proptest::collection::vec(any_statement(), 0..4),
        proptest::bool::weighted(0.2),
        select(vec![None, Some("NONE".to_string()), Some("AWS_IAM".to_string())]),
    )
}

/// The unqualified path, and perhaps an alias and a version (which has no URL).
type Paths = (PathShape, Option<PathShape>, Option<PathShape>);

fn any_paths() -> impl Strategy<Value = Paths> {
    (
        any_path(),
        proptest::option::of(any_path()),
        proptest::option::of(any_path()),
    )
}

fn world_of((bare, alias, version): Paths, invokers: &[AwsInvoker]) -> World {
    let taken = grant_sid(
        &grants(
            &AwsTriggers {
                invokers: invokers.to_vec(),
                ..AwsTriggers::default()
            },
            &ctx(),
        )[0],
    );
    let mut w = World::new();
    for (q, shape) in [(None, Some(bare)), (Some("live"), alias), (Some("3"), version)] {
        let Some((statements, take_sid, url)) = shape else {
            continue;
        };
        let path = w.path(q);
        for (i, mut st) in statements.into_iter().enumerate() {
            st["Sid"] = json!(if i == 0 && take_sid {
                taken.clone()
            } else {
                format!("s{i}")
            });
            path.statements.push(st);
        }
        if q != Some("3") {
            path.url = url;
        }
    }
    w
}

/// A generated case: the declared invokers (the partner's or not), the
/// posture, and the function's paths before enforcing.
fn any_triggers_case() -> impl Strategy<Value = (Vec<AwsInvoker>, Posture, World)> {
    (
        any::<bool>(),
        select(vec![PublicAccess::Deny, PublicAccess::RequireAuth]),
        any::<bool>(),
        any_paths(),
    )
        .prop_map(|(partner, public, remove_unlisted, paths)| {
            let mut invokers = vec![s3_invoker()];
            if partner {
                invokers.push(partner_invoker());
            }
            let p = posture(spec(public, remove_unlisted, invokers.clone()));
            let world = world_of(paths, &invokers);
            (invokers, p, world)
        })
}

#[test]
fn enforcing_never_admits_a_request_that_was_kept_out_except_the_declared_ones() {
    let reqs = requests();
    let seen: RefCell<BTreeSet<(&'static str, bool)>> = RefCell::default();
    let narrowed = Cell::new(0);
    sweep(1500, any_triggers_case(), |(invokers, p, before)| {
        let plan = plan_for(&p, &before);
        let actions = aws_actions(&plan);
        for a in &actions {
            let qualified = match a {
                AwsAction::AddPermission { qualifier, .. }
                | AwsAction::RemovePermission { qualifier, .. }
                | AwsAction::UpdateFunctionUrlAuthType { qualifier, .. }
                | AwsAction::DeleteFunctionUrl { qualifier, .. } => qualifier.is_some(),
                _ => false,
            };
            seen.borrow_mut().insert((a.op(), qualified));
        }
        let mut after = before.clone();
        after.apply(&actions);

        for (q, path) in &before.paths {
            for st in path.statements.iter().filter(|s| s["Effect"] == "Deny") {
                prop_assert!(
                    after.paths[q].statements.contains(st),
                    "Deny {st} on {q:?} was removed\nactions: {actions:#?}"
                );
            }
        }
        for req in &reqs {
            let (was, is) = (allows(&before, req), allows(&after, req));
            if is && !was {
                prop_assert!(
                    declared(&invokers, req),
                    "{req:?} is let in by enforcing\nactions: {actions:#?}"
                );
            }
            if was && !is {
                narrowed.set(narrowed.get() + 1);
            }
        }
        Ok(())
    });
    let seen = seen.into_inner();
    for op in [
        ("AddPermission", false),
        ("AddPermission", true),
        ("RemovePermission", false),
        ("RemovePermission", true),
        ("UpdateFunctionUrlConfig", true),
        ("DeleteFunctionUrlConfig", true),
    ] {
        assert!(seen.contains(&op), "the sweep never produced {op:?}: {seen:?}");
    }
    assert!(narrowed.get() > 0, "the sweep never closed anything");
}

#[test]
fn a_url_is_not_switched_to_iam_when_that_would_wake_a_kept_undeclared_grant() {
    // Without authentication every URL caller is anonymous, so this grant to
    // another account is dormant; with AWS_IAM it would let that account in.
    let kept = json!({"Sid": "other-account", "Effect": "Allow", "Principal": {"AWS": "555555555555"},
                      "Action": "lambda:*", "Resource": FN_ARN});
    let world = World::new()
        .with(None, declared_s3("s3"))
        .with(None, kept)
        .with_url(None, "NONE");
    let p = posture(spec(PublicAccess::RequireAuth, false, vec![s3_invoker()]));
    let plan = plan_for(&p, &world);
    let url = plan
        .findings
        .iter()
        .find(|f| f.check == "aws.triggers.publicUrl")
        .expect("the open URL is reported");
    assert_eq!(url.severity, Severity::Critical);
    assert!(!url.remediable, "{url:?}");
    assert!(url.message.contains("other-account"), "{}", url.message);
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    // With removeUnlisted the grant goes first, and the URL is switched.
    let p = posture(spec(PublicAccess::RequireAuth, true, vec![s3_invoker()]));
    let ops: Vec<_> = aws_actions(&plan_for(&p, &world)).iter().map(|a| a.op()).collect();
    assert_eq!(ops, vec!["RemovePermission", "UpdateFunctionUrlConfig"]);
}

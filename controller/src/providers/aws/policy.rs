//! IAM policy documents and Lambda resource-policy statements.
//!
//! Documents are compared by meaning, not by text: statement order, `Sid`,
//! string-vs-list, action case and duplicate entries do not count as drift.

use crate::api::arn::{has_wide_part, is_account_id};
use crate::api::{Effect, InvokeAction, PolicyStatement};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const POLICY_VERSION: &str = "2012-10-17";

/// Condition block: operator → key (lower-cased, IAM keys are case-insensitive) → values.
pub type Conditions = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principal>,
    pub actions: BTreeSet<String>,
    pub not_actions: BTreeSet<String>,
    pub resources: BTreeSet<String>,
    pub not_resources: BTreeSet<String>,
    pub conditions: Conditions,
}

/// A parsed policy document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyDocument {
    pub statements: Vec<Statement>,
}

/// Who a statement names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// `"*"` or `{"AWS": "*"}`: anyone.
    Anyone,
    Service(BTreeSet<String>),
    /// IAM ARNs (account roots, roles, users).
    Aws(BTreeSet<String>),
    Other(String),
}

impl Principal {
    /// The principal a declared invoker names, in the form Lambda stores.
    pub fn from_declared(p: &str, partition: &str) -> Principal {
        if p == "*" {
            Principal::Anyone
        } else if crate::api::arn::is_service_principal(p) {
            Principal::Service(BTreeSet::from([p.to_string()]))
        } else if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
            Principal::Aws(BTreeSet::from([format!("arn:{partition}:iam::{p}:root")]))
        } else {
            Principal::Aws(BTreeSet::from([p.to_string()]))
        }
    }

    fn parse(v: &Value) -> Principal {
        match v {
            Value::String(s) if s == "*" => Principal::Anyone,
            Value::Object(m) => {
                // `{"AWS": "*"}` is anyone, whatever else the block names.
                if m.get("AWS").is_some_and(|aws| strings(aws).contains("*")) {
                    return Principal::Anyone;
                }
                if m.len() != 1 {
                    // A block naming several kinds of principal (AWS and
                    // Service, ...) is kept whole: reading only one kind
                    // would judge the statement narrower than it is.
                    return Principal::Other(v.to_string());
                }
                if let Some(aws) = m.get("AWS") {
                    let set = strings(aws);
                    if set.contains("*") {
                        return Principal::Anyone;
                    }
                    return Principal::Aws(set.into_iter().map(|a| expand_account(&a)).collect());
                }
                if let Some(svc) = m.get("Service") {
                    return Principal::Service(strings(svc));
                }
                Principal::Other(v.to_string())
            }
            other => Principal::Other(other.to_string()),
        }
    }

    pub fn is_anyone(&self) -> bool {
        matches!(self, Principal::Anyone)
    }

    pub fn is_service(&self) -> bool {
        matches!(self, Principal::Service(_))
    }

    fn to_json(&self) -> Value {
        match self {
            Principal::Anyone => json!("*"),
            Principal::Service(s) => json!({ "Service": one_or_many(s) }),
            Principal::Aws(s) => json!({ "AWS": one_or_many(s) }),
            Principal::Other(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Anyone => f.write_str("*"),
            Principal::Service(s) | Principal::Aws(s) => f.write_str(&s.iter().cloned().collect::<Vec<_>>().join(",")),
            Principal::Other(s) => f.write_str(s),
        }
    }
}

/// Account ids in a principal mean the account root.
fn expand_account(a: &str) -> String {
    if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) {
        format!("arn:aws:iam::{a}:root")
    } else {
        a.to_string()
    }
}

/// IAM's `*` / `?` matching of action names.
pub(crate) fn wildcard_match(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.len() == value.len() && pattern.chars().zip(value.chars()).all(|(p, v)| p == '?' || p == v),
        Some((head, rest)) => {
            value.len() >= head.len()
                && value.is_char_boundary(head.len())
                && wildcard_match(head, &value[..head.len()])
                && (head.len()..=value.len())
                    .filter(|i| value.is_char_boundary(*i))
                    .any(|i| wildcard_match(rest, &value[i..]))
        }
    }
}

fn strings(v: &Value) -> BTreeSet<String> {
    match v {
        Value::String(s) => BTreeSet::from([s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::Null => BTreeSet::new(),
        other => BTreeSet::from([other.to_string()]),
    }
}

fn one_or_many(s: &BTreeSet<String>) -> Value {
    if s.len() == 1 {
        json!(s.iter().next())
    } else {
        json!(s.iter().collect::<Vec<_>>())
    }
}

fn parse_conditions(v: Option<&Value>) -> Conditions {
    let mut out = Conditions::new();
    if let Some(Value::Object(ops)) = v {
        for (op, keys) in ops {
            if let Value::Object(keys) = keys {
                let entry = out.entry(op.clone()).or_default();
                for (k, vals) in keys {
                    entry.entry(k.to_ascii_lowercase()).or_default().extend(strings(vals));
                }
            }
        }
    }
    out
}

fn conditions_json(c: &Conditions) -> Value {
    let mut ops = Map::new();
    for (op, keys) in c {
        let mut m = Map::new();
        for (k, vals) in keys {
            m.insert(k.clone(), one_or_many(vals));
        }
        ops.insert(op.clone(), Value::Object(m));
    }
    Value::Object(ops)
}

impl Statement {
    fn parse(v: &Value) -> Statement {
        let effect = match v.get("Effect").and_then(Value::as_str) {
            Some("Deny") => Effect::Deny,
            _ => Effect::Allow,
        };
        // An Allow with NotPrincipal admits everyone it does not name.
        let principal = match (v.get("Principal"), v.get("NotPrincipal")) {
            (Some(p), _) => Some(Principal::parse(p)),
            (None, Some(_)) if effect == Effect::Allow => Some(Principal::Anyone),
            (None, _) => None,
        };
        Statement {
            sid: v.get("Sid").and_then(Value::as_str).map(str::to_string),
            effect,
            principal,
            actions: v.get("Action").map(strings).unwrap_or_default(),
            not_actions: v.get("NotAction").map(strings).unwrap_or_default(),
            resources: v.get("Resource").map(strings).unwrap_or_default(),
            not_resources: v.get("NotResource").map(strings).unwrap_or_default(),
            conditions: parse_conditions(v.get("Condition")),
        }
    }

    /// The statement without its Sid and with actions lower-cased (IAM
    /// action names are case-insensitive), for comparison by meaning.
    fn meaning(&self) -> Statement {
        let lower = |s: &BTreeSet<String>| s.iter().map(|a| a.to_ascii_lowercase()).collect();
        Statement {
            sid: None,
            actions: lower(&self.actions),
            not_actions: lower(&self.not_actions),
            ..self.clone()
        }
    }

    /// Whether the statement's Action (or NotAction) covers `action`.
    pub fn covers_action(&self, action: &str) -> bool {
        let action = action.to_ascii_lowercase();
        let hit = |set: &BTreeSet<String>| set.iter().any(|a| wildcard_match(&a.to_ascii_lowercase(), &action));
        if self.not_actions.is_empty() {
            hit(&self.actions)
        } else {
            !hit(&self.not_actions)
        }
    }

    /// The actions, lower-cased.
    pub fn actions_lower(&self) -> BTreeSet<String> {
        self.actions.iter().map(|a| a.to_ascii_lowercase()).collect()
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(sid) = &self.sid {
            m.insert("Sid".into(), json!(sid));
        }
        m.insert(
            "Effect".into(),
            json!(if self.effect == Effect::Deny { "Deny" } else { "Allow" }),
        );
        if let Some(p) = &self.principal {
            m.insert("Principal".into(), p.to_json());
        }
        let list = |s: &BTreeSet<String>| json!(s.iter().collect::<Vec<_>>());
        if !self.actions.is_empty() {
            m.insert("Action".into(), list(&self.actions));
        }
        if !self.not_actions.is_empty() {
            m.insert("NotAction".into(), list(&self.not_actions));
        }
        if !self.resources.is_empty() {
            m.insert("Resource".into(), list(&self.resources));
        }
        if !self.not_resources.is_empty() {
            m.insert("NotResource".into(), list(&self.not_resources));
        }
        if !self.conditions.is_empty() {
            m.insert("Condition".into(), conditions_json(&self.conditions));
        }
        Value::Object(m)
    }

    /// Statement from the posture's declaration.
    pub fn from_declared(s: &PolicyStatement) -> Statement {
        Statement {
            sid: s.sid.clone(),
            effect: s.effect,
            principal: None,
            actions: s.actions.iter().cloned().collect(),
            not_actions: BTreeSet::new(),
            resources: s.resources.iter().cloned().collect(),
            not_resources: BTreeSet::new(),
            conditions: s
                .conditions
                .iter()
                .map(|(op, keys)| {
                    (
                        op.clone(),
                        keys.iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v.iter().cloned().collect()))
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    /// Allows every action on every resource.
    pub fn grants_everything(&self) -> bool {
        self.effect == Effect::Allow
            && (self.actions.contains("*") || self.actions.contains("*:*"))
            && self.resources.contains("*")
    }

    /// Values of a condition key under any operator, with the operator.
    pub fn condition(&self, key: &str) -> Option<(&str, &BTreeSet<String>)> {
        let key = key.to_ascii_lowercase();
        self.conditions
            .iter()
            .find_map(|(op, keys)| keys.get(&key).map(|v| (op.as_str(), v)))
    }
}

impl PolicyDocument {
    /// Parse a policy document as IAM returns it (URL-encoded JSON) or as
    /// Lambda returns it (plain JSON).
    pub fn parse(text: &str) -> Result<PolicyDocument, String> {
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(first) => {
                let decoded = percent_encoding::percent_decode_str(text)
                    .decode_utf8()
                    .map_err(|e| format!("policy document is neither JSON nor URL-encoded JSON: {e}"))?;
                serde_json::from_str(&decoded).map_err(|_| format!("policy document is not JSON: {first}"))?
            }
        };
        Ok(PolicyDocument::from_value(&v))
    }

    pub fn from_value(v: &Value) -> PolicyDocument {
        let statements = match v.get("Statement") {
            Some(Value::Array(a)) => a.iter().map(Statement::parse).collect(),
            Some(obj @ Value::Object(_)) => vec![Statement::parse(obj)],
            _ => Vec::new(),
        };
        PolicyDocument { statements }
    }

    pub fn from_statements(statements: Vec<Statement>) -> PolicyDocument {
        PolicyDocument { statements }
    }

    /// Same meaning: the same set of statements, ignoring order and Sids.
    pub fn same_as(&self, other: &PolicyDocument) -> bool {
        let a: BTreeSet<Statement> = self.statements.iter().map(Statement::meaning).collect();
        let b: BTreeSet<Statement> = other.statements.iter().map(Statement::meaning).collect();
        a == b
    }

    pub fn grants_everything(&self) -> bool {
        self.statements.iter().any(Statement::grants_everything)
    }

    pub fn to_json(&self) -> String {
        json!({
            "Version": POLICY_VERSION,
            "Statement": self.statements.iter().map(Statement::to_json).collect::<Vec<_>>(),
        })
        .to_string()
    }

    /// Every action any Allow statement grants (lower-cased).
    pub fn allowed_actions(&self) -> BTreeSet<String> {
        self.statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .flat_map(|s| s.actions_lower())
            .collect()
    }

    /// Whether the trust policy lets exactly the Lambda service assume the role.
    pub fn trusts_only_lambda(&self) -> bool {
        !self.statements.is_empty()
            && self.statements.iter().all(|s| {
                s.effect == Effect::Deny
                    || (s.principal == Some(Principal::Service(BTreeSet::from(["lambda.amazonaws.com".to_string()])))
                        && s.actions_lower().iter().all(|a| a == "sts:assumerole"))
            })
    }
}

/// The trust policy of a role zerofn creates: Lambda, and only Lambda.
pub fn lambda_trust_policy() -> PolicyDocument {
    PolicyDocument::from_statements(vec![Statement {
        effect: Effect::Allow,
        principal: Some(Principal::Service(BTreeSet::from(["lambda.amazonaws.com".to_string()]))),
        actions: BTreeSet::from(["sts:AssumeRole".to_string()]),
        ..Statement::default()
    }])
}

/// One statement of a function's resource-based policy (GetPolicy).
pub type ResourceStatement = Statement;

/// The resource policy of a function, as Lambda returns it.
pub fn parse_resource_policy(text: &str) -> Result<Vec<ResourceStatement>, String> {
    PolicyDocument::parse(text).map(|d| d.statements)
}

/// The condition keys that pin where an invocation comes from (lower-cased:
/// IAM condition keys are case-insensitive).
pub const SOURCE_ARN: &str = "aws:sourcearn";
pub const SOURCE_ACCOUNT: &str = "aws:sourceaccount";

/// Operators that pin a key to the values they list. IAM operator names are
/// case-sensitive, so `stringequals` is not one of them. Negated operators
/// (`StringNotEquals`, `ArnNotLike`, ...), `...IfExists`, `Null` and the set
/// operators (`ForAllValues:`, `ForAnyValue:`) never pin: each is true for a
/// request whose key is absent or holds some other value.
const PINNING_OPERATORS: [&str; 4] = ["StringEquals", "StringLike", "ArnEquals", "ArnLike"];

/// Why a statement naming a service principal does not scope it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gap {
    /// No pinning operator holds the key. `operators` are the ones that
    /// mention it without pinning it (empty: the key is absent).
    NotPinned { key: &'static str, operators: Vec<String> },
    /// Pinned only to a pattern that matches other accounts or resources.
    Wildcard { key: &'static str, value: String },
    /// The principal is missing or of a kind zerofn cannot judge.
    UnknownPrincipal,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |k: &str| {
            if k == SOURCE_ARN {
                "AWS:SourceArn"
            } else {
                "AWS:SourceAccount"
            }
        };
        match self {
            Gap::NotPinned { key, operators } if operators.is_empty() => write!(f, "without {}", name(key)),
            Gap::NotPinned { key, operators } => write!(
                f,
                "with {} only under {} (true when the key is absent or differs)",
                name(key),
                operators.join(", ")
            ),
            Gap::Wildcard { key, value } => write!(f, "with {} {value} (a wildcard)", name(key)),
            Gap::UnknownPrincipal => f.write_str("with a principal zerofn cannot judge"),
        }
    }
}

/// What one resource-policy statement lets through, judged by its effect,
/// its principal and the operators of its conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A Deny only takes access away: it is never removed.
    Deny,
    /// Anyone may use it: `"*"`, `{"AWS": "*"}`, or an Allow with NotPrincipal.
    Public,
    /// Named accounts or identities, or a service principal pinned to
    /// literal sources. The sets hold the pinned values (empty when the
    /// principal alone scopes it).
    Scoped {
        source_arns: BTreeSet<String>,
        source_accounts: BTreeSet<String>,
    },
    /// A service principal (or an unknown one) whose source is left open.
    /// `any_account`: not even the account is pinned.
    Unscoped { gaps: Vec<Gap>, any_account: bool },
}

impl Verdict {
    /// How bad the statement is on its own, before comparing it with what
    /// the posture declares.
    pub fn severity(&self) -> Option<crate::findings::Severity> {
        use crate::findings::Severity;
        match self {
            Verdict::Deny | Verdict::Scoped { .. } => None,
            Verdict::Public => Some(Severity::Critical),
            Verdict::Unscoped { any_account: true, .. } => Some(Severity::Critical),
            Verdict::Unscoped { .. } => Some(Severity::High),
        }
    }

    /// The gaps, as words.
    pub fn gaps(&self) -> String {
        match self {
            Verdict::Unscoped { gaps, .. } => gaps.iter().map(Gap::to_string).collect::<Vec<_>>().join(" and "),
            _ => String::new(),
        }
    }
}

/// Judge one statement of a function's resource policy.
pub fn judge(st: &ResourceStatement) -> Verdict {
    if st.effect == Effect::Deny {
        return Verdict::Deny;
    }
    match &st.principal {
        Some(Principal::Anyone) => Verdict::Public,
        None | Some(Principal::Other(_)) => Verdict::Unscoped {
            gaps: vec![Gap::UnknownPrincipal],
            any_account: true,
        },
        // Accounts and IAM identities are named one by one; conditions on
        // them can only narrow further.
        Some(Principal::Aws(_)) => Verdict::Scoped {
            source_arns: st.pinned(SOURCE_ARN, |v| !has_wide_part(v)).unwrap_or_default(),
            source_accounts: st.pinned(SOURCE_ACCOUNT, is_account_id).unwrap_or_default(),
        },
        Some(Principal::Service(_)) => {
            let arn = st.pinned(SOURCE_ARN, |v| !has_wide_part(v));
            let account = st.pinned(SOURCE_ACCOUNT, is_account_id);
            match (arn, account) {
                (Ok(source_arns), Ok(source_accounts)) => Verdict::Scoped {
                    source_arns,
                    source_accounts,
                },
                (arn, account) => {
                    // An ARN that carries a literal account pins the account
                    // even without AWS:SourceAccount (S3 ARNs carry none).
                    let account_in_arn = arn
                        .as_ref()
                        .is_ok_and(|arns| arns.iter().all(|a| a.split(':').nth(4).is_some_and(is_account_id)));
                    let any_account = account.is_err() && !account_in_arn;
                    Verdict::Unscoped {
                        gaps: [arn.err(), account.err()].into_iter().flatten().collect(),
                        any_account,
                    }
                }
            }
        }
    }
}

impl Statement {
    /// The values `key` is pinned to: the intersection of every pinning
    /// operator's values that all pass `literal` (conditions are ANDed, so
    /// one literal pin is enough to scope the key).
    fn pinned(&self, key: &'static str, literal: impl Fn(&str) -> bool) -> Result<BTreeSet<String>, Gap> {
        let mut pins: Option<BTreeSet<String>> = None;
        let mut wide: Option<String> = None;
        let mut others = Vec::new();
        for (op, keys) in &self.conditions {
            let Some(values) = keys.get(key) else { continue };
            if !PINNING_OPERATORS.contains(&op.as_str()) {
                others.push(op.clone());
                continue;
            }
            match values.iter().find(|v| !literal(v)) {
                Some(v) => wide = Some(v.clone()),
                None if values.is_empty() => others.push(op.clone()),
                None => {
                    pins = Some(match pins {
                        Some(p) => p.intersection(values).cloned().collect(),
                        None => values.clone(),
                    })
                }
            }
        }
        match (pins, wide) {
            (Some(p), _) => Ok(p),
            (None, Some(value)) => Err(Gap::Wildcard { key, value }),
            (None, None) => Err(Gap::NotPinned { key, operators: others }),
        }
    }
}

/// What a compliant invoke statement for a declared invoker looks like.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InvokeGrant {
    pub principal: Principal,
    /// The principal as passed to AddPermission.
    pub principal_param: String,
    pub action: InvokeAction,
    pub source_arn: Option<String>,
    pub source_account: Option<String>,
}

impl InvokeGrant {
    /// How a judged statement relates to this grant.
    pub fn compare(&self, st: &ResourceStatement, verdict: &Verdict) -> GrantMatch {
        if st.principal.as_ref() != Some(&self.principal) {
            return GrantMatch::Other;
        }
        let action = self.action.as_str().to_ascii_lowercase();
        if !st.not_actions.is_empty() || st.actions_lower() != BTreeSet::from([action]) {
            return GrantMatch::Other;
        }
        match verdict {
            Verdict::Deny | Verdict::Public => GrantMatch::Other,
            Verdict::Scoped {
                source_arns,
                source_accounts,
            } => {
                let fits = |declared: &Option<String>, pinned: &BTreeSet<String>| {
                    declared
                        .as_ref()
                        .is_none_or(|d| pinned.len() == 1 && pinned.contains(d))
                };
                let arn_fits = fits(&self.source_arn, source_arns);
                if arn_fits && fits(&self.source_account, source_accounts) {
                    GrantMatch::Exact
                } else if !arn_fits && !source_arns.is_empty() {
                    // Scoped to another source: a different grant, not a
                    // sloppy copy of this one.
                    GrantMatch::Other
                } else {
                    GrantMatch::Loose
                }
            }
            Verdict::Unscoped { .. } => GrantMatch::Loose,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantMatch {
    /// The declared grant, scoped as declared.
    Exact,
    /// The declared principal and action, but the source is not pinned as
    /// declared: replaced by the declared grant.
    Loose,
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_documents_parse_like_plain_ones() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        let encoded: String =
            percent_encoding::utf8_percent_encode(plain, percent_encoding::NON_ALPHANUMERIC).to_string();
        assert_eq!(
            PolicyDocument::parse(plain).unwrap(),
            PolicyDocument::parse(&encoded).unwrap()
        );
    }

    #[test]
    fn meaning_ignores_order_sid_case_and_list_shape() {
        let a = PolicyDocument::parse(
            r#"{"Statement":[
            {"Sid":"A","Effect":"Allow","Action":["S3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Allow","Action":"logs:PutLogEvents","Resource":["x"]}]}"#,
        )
        .unwrap();
        let b = PolicyDocument::parse(r#"{"Statement":[
            {"Effect":"Allow","Action":["logs:PutLogEvents"],"Resource":"x"},
            {"Sid":"Other","Effect":"Allow","Action":["s3:PutObject","s3:getobject","s3:PutObject"],"Resource":["arn:aws:s3:::b/*"]}]}"#)
        .unwrap();
        assert!(a.same_as(&b));
        let c =
            PolicyDocument::parse(r#"{"Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"x"}]}"#)
                .unwrap();
        assert!(!a.same_as(&c));
    }

    #[test]
    fn wildcard_admin_is_recognised() {
        let d = PolicyDocument::parse(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).unwrap();
        assert!(d.grants_everything());
        let d = PolicyDocument::parse(r#"{"Statement":{"Effect":"Allow","Action":"*:*","Resource":"*"}}"#).unwrap();
        assert!(d.grants_everything());
        let d = PolicyDocument::parse(r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#).unwrap();
        assert!(!d.grants_everything());
    }

    #[test]
    fn rendering_round_trips() {
        let d = PolicyDocument::parse(r#"{"Statement":[{"Sid":"S","Effect":"Allow","Action":["s3:GetObject"],"Resource":"r","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}"#).unwrap();
        let again = PolicyDocument::parse(&d.to_json()).unwrap();
        assert_eq!(d, again);
        assert!(lambda_trust_policy().trusts_only_lambda());
        // IAM validates action names as written: rendering keeps their case.
        assert!(lambda_trust_policy().to_json().contains(r#""sts:AssumeRole""#));
        assert!(d.to_json().contains(r#""s3:GetObject""#));
    }

    fn grant(principal: &str, arn: Option<&str>, acct: Option<&str>) -> InvokeGrant {
        InvokeGrant {
            principal: Principal::from_declared(principal, "aws"),
            principal_param: principal.into(),
            action: InvokeAction::InvokeFunction,
            source_arn: arn.map(Into::into),
            source_account: acct.map(Into::into),
        }
    }

    fn statement(json: &str) -> ResourceStatement {
        parse_resource_policy(&format!(r#"{{"Version":"2012-10-17","Statement":[{json}]}}"#))
            .unwrap()
            .remove(0)
    }

    fn compare(g: &InvokeGrant, st: &ResourceStatement) -> GrantMatch {
        g.compare(st, &judge(st))
    }

    #[test]
    fn grants_match_exactly_loosely_or_not() {
        let g = grant("s3.amazonaws.com", Some("arn:aws:s3:::in"), Some("123456789012"));
        let exact = statement(
            r#"{"Sid":"a","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"f",
               "Condition":{"StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::in"}}}"#,
        );
        assert_eq!(compare(&g, &exact), GrantMatch::Exact);
        let no_account = statement(
            r#"{"Sid":"b","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"f",
               "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::in"}}}"#,
        );
        assert_eq!(compare(&g, &no_account), GrantMatch::Loose);
        let other_bucket = statement(
            r#"{"Sid":"c","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"f",
               "Condition":{"StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::other"}}}"#,
        );
        assert_eq!(compare(&g, &other_bucket), GrantMatch::Other);
        let public = statement(
            r#"{"Sid":"d","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"f"}"#,
        );
        assert_eq!(compare(&g, &public), GrantMatch::Other);
        assert!(public.principal.as_ref().unwrap().is_anyone());
    }

    fn s3(conditions: &str) -> ResourceStatement {
        statement(&format!(
            r#"{{"Sid":"x","Effect":"Allow","Principal":{{"Service":"s3.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"f","Condition":{conditions}}}"#
        ))
    }

    #[test]
    fn only_positive_literal_conditions_scope_a_service_principal() {
        let scoped = [
            r#"{"StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::in"}}"#,
            r#"{"StringEquals":{"aws:sourceaccount":"123456789012"},"ArnEquals":{"aws:SOURCEARN":"arn:aws:s3:::in"}}"#,
            r#"{"StringLike":{"AWS:SourceAccount":"123456789012"},"StringEquals":{"AWS:SourceArn":"arn:aws:s3:::in"}}"#,
            // Extra negated conditions are ANDed: they only narrow.
            r#"{"StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::in"},"ArnNotLike":{"AWS:SourceArn":"arn:aws:s3:::other"}}"#,
        ];
        for c in scoped {
            assert!(matches!(judge(&s3(c)), Verdict::Scoped { .. }), "{c}");
        }
        let unscoped = [
            (
                r#"{"StringNotEquals":{"AWS:SourceAccount":"999999999999"},"ArnNotLike":{"AWS:SourceArn":"arn:aws:s3:::x"}}"#,
                true,
            ),
            (
                r#"{"StringEqualsIfExists":{"AWS:SourceAccount":"123456789012"},"ArnLikeIfExists":{"AWS:SourceArn":"arn:aws:s3:::in"}}"#,
                true,
            ),
            (
                r#"{"StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::*"}}"#,
                false,
            ),
            (
                r#"{"StringEquals":{"AWS:SourceAccount":"12345678901*"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::in"}}"#,
                true,
            ),
            (
                r#"{"Null":{"AWS:SourceAccount":"false","AWS:SourceArn":"false"}}"#,
                true,
            ),
            (
                r#"{"ForAllValues:StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::in"}}"#,
                true,
            ),
            // Operator names are case-sensitive: this is no StringEquals.
            (
                r#"{"stringequals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::in"}}"#,
                true,
            ),
        ];
        for (c, any_account) in unscoped {
            let v = judge(&s3(c));
            assert!(
                matches!(v, Verdict::Unscoped { any_account: a, .. } if a == any_account),
                "{c}: {v:?}"
            );
        }
        // A topic ARN carries its account: not any account, merely unscoped.
        let sns = statement(
            r#"{"Sid":"x","Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"f","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:sns:eu-west-1:123456789012:t"}}}"#,
        );
        assert_eq!(judge(&sns).severity(), Some(crate::findings::Severity::High));
    }

    #[test]
    fn public_deny_and_mixed_principals() {
        let st =
            statement(r#"{"Sid":"x","Effect":"Deny","Principal":"*","Action":"lambda:InvokeFunction","Resource":"f"}"#);
        assert_eq!(judge(&st), Verdict::Deny);
        let st = statement(
            r#"{"Sid":"x","Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"lambda:InvokeFunction","Resource":"f"}"#,
        );
        assert_eq!(judge(&st), Verdict::Public);
        let st = statement(
            r#"{"Sid":"x","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root","Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"f"}"#,
        );
        assert!(matches!(judge(&st), Verdict::Unscoped { any_account: true, .. }));
        // The China partition's service principal is a service principal.
        let st = statement(
            r#"{"Sid":"x","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com.cn"},"Action":"lambda:InvokeFunction","Resource":"f"}"#,
        );
        assert!(matches!(judge(&st), Verdict::Unscoped { any_account: true, .. }));
    }

    #[test]
    fn account_principals_normalise_to_root_arns() {
        let g = grant("123456789012", None, None);
        let st = statement(
            r#"{"Sid":"x","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"lambda:InvokeFunction","Resource":"f"}"#,
        );
        assert_eq!(compare(&g, &st), GrantMatch::Exact);
        let st = statement(
            r#"{"Sid":"x","Effect":"Allow","Principal":{"AWS":"*"},"Action":"lambda:InvokeFunction","Resource":"f"}"#,
        );
        assert!(st.principal.unwrap().is_anyone());
    }
}

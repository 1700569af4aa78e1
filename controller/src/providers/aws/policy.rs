//! IAM policy documents and Lambda resource-policy statements.
//!
//! Documents are compared by meaning, not by text: statement order, `Sid`,
//! string-vs-list, action case and duplicate entries do not count as drift.

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
        } else if p.ends_with(".amazonaws.com") || p.ends_with(".amazonaws.com.cn") {
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
        Statement {
            sid: v.get("Sid").and_then(Value::as_str).map(str::to_string),
            effect,
            principal: v.get("Principal").map(Principal::parse),
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
    /// How a statement relates to this grant.
    pub fn compare(&self, st: &ResourceStatement) -> GrantMatch {
        if st.effect != Effect::Allow || st.principal.as_ref() != Some(&self.principal) {
            return GrantMatch::Other;
        }
        let action = self.action.as_str().to_ascii_lowercase();
        if st.actions_lower() != BTreeSet::from([action]) {
            return GrantMatch::Other;
        }
        let arn = st.condition("AWS:SourceArn").map(|(_, v)| v);
        let acct = st.condition("AWS:SourceAccount").map(|(_, v)| v);
        let want = |w: &Option<String>, got: Option<&BTreeSet<String>>| match (w, got) {
            (Some(w), Some(g)) => g.len() == 1 && g.contains(w),
            (None, None) => true,
            (None, Some(_)) => true, // narrower than declared: fine
            (Some(_), None) => false,
        };
        let arn_ok = want(&self.source_arn, arn);
        let acct_ok = want(&self.source_account, acct);
        // A statement naming another source is a different grant, not a
        // sloppy copy of this one.
        let other_source = self.source_arn.is_some() && arn.is_some() && !arn_ok;
        if arn_ok && acct_ok {
            GrantMatch::Exact
        } else if other_source {
            GrantMatch::Other
        } else {
            GrantMatch::Loose { arn_ok, acct_ok }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantMatch {
    Exact,
    /// The declared principal and action, but a missing or different
    /// SourceArn / SourceAccount.
    Loose {
        arn_ok: bool,
        acct_ok: bool,
    },
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

    #[test]
    fn grants_match_exactly_loosely_or_not() {
        let g = grant("s3.amazonaws.com", Some("arn:aws:s3:::in"), Some("123456789012"));
        let exact = statement(
            r#"{"Sid":"a","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"f",
               "Condition":{"StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::in"}}}"#,
        );
        assert_eq!(g.compare(&exact), GrantMatch::Exact);
        let no_account = statement(
            r#"{"Sid":"b","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"f",
               "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::in"}}}"#,
        );
        assert_eq!(
            g.compare(&no_account),
            GrantMatch::Loose {
                arn_ok: true,
                acct_ok: false
            }
        );
        let other_bucket = statement(
            r#"{"Sid":"c","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"f",
               "Condition":{"StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::other"}}}"#,
        );
        assert_eq!(g.compare(&other_bucket), GrantMatch::Other);
        let public = statement(
            r#"{"Sid":"d","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"f"}"#,
        );
        assert_eq!(g.compare(&public), GrantMatch::Other);
        assert!(public.principal.as_ref().unwrap().is_anyone());
    }

    #[test]
    fn account_principals_normalise_to_root_arns() {
        let g = grant("123456789012", None, None);
        let st = statement(
            r#"{"Sid":"x","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"lambda:InvokeFunction","Resource":"f"}"#,
        );
        assert_eq!(g.compare(&st), GrantMatch::Exact);
        let st = statement(
            r#"{"Sid":"x","Effect":"Allow","Principal":{"AWS":"*"},"Action":"lambda:InvokeFunction","Resource":"f"}"#,
        );
        assert!(st.principal.unwrap().is_anyone());
    }
}

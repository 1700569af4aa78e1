//! `PosturePolicy`: one posture for every function of an account that a
//! selector matches.
//!
//! The controller keeps one child FunctionPosture per matched function,
//! built from the policy's template (`PosturePolicySpec::posture_for`);
//! which policy governs a function, if any, is decided by `fleet::assign`.

// kube's `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as
// a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use super::patterns;
use super::posture::*;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One posture for every function of an account that the selector matches.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "zerofn.dev",
    version = "v1alpha1",
    kind = "PosturePolicy",
    plural = "posturepolicies",
    shortname = "pp",
    category = "zerofn",
    namespaced,
    status = "PosturePolicyStatus",
    doc = "One Zero Trust posture for every function of an account that a selector matches. zerofn keeps a child FunctionPosture per matched function, unless a hand-written FunctionPosture or a policy of higher priority governs it.",
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.accountRef.name"),
    printcolumn(name = "Matched", type_ = "integer", json_path = ".status.matched"),
    printcolumn(name = "Compliant", type_ = "integer", json_path = ".status.compliant"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.template.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("!has(self.template.identity) || !has(self.template.identity.aws) || has(self.selector.aws)").message("identity.aws is set but the function is not on AWS").field_path(".template.identity.aws"))]
#[x_kube(validation = Rule::new("!has(self.template.identity) || !has(self.template.identity.azure) || has(self.selector.azure)").message("identity.azure is set but the function is not on Azure").field_path(".template.identity.azure"))]
#[x_kube(validation = Rule::new("!has(self.template.identity) || !has(self.template.identity.gcp) || has(self.selector.gcp)").message("identity.gcp is set but the function is not on GCP").field_path(".template.identity.gcp"))]
#[x_kube(validation = Rule::new("!has(self.template.triggers) || !has(self.template.triggers.aws) || has(self.selector.aws)").message("triggers.aws is set but the function is not on AWS").field_path(".template.triggers.aws"))]
#[x_kube(validation = Rule::new("!has(self.template.triggers) || !has(self.template.triggers.azure) || has(self.selector.azure)").message("triggers.azure is set but the function is not on Azure").field_path(".template.triggers.azure"))]
#[x_kube(validation = Rule::new("!has(self.template.triggers) || !has(self.template.triggers.gcp) || has(self.selector.gcp)").message("triggers.gcp is set but the function is not on GCP").field_path(".template.triggers.gcp"))]
#[x_kube(validation = Rule::new("!has(self.template.network) || !has(self.template.network.aws) || has(self.selector.aws)").message("network.aws is set but the function is not on AWS").field_path(".template.network.aws"))]
#[x_kube(validation = Rule::new("!has(self.template.network) || !has(self.template.network.azure) || has(self.selector.azure)").message("network.azure is set but the function is not on Azure").field_path(".template.network.azure"))]
#[x_kube(validation = Rule::new("!has(self.template.network) || !has(self.template.network.gcp) || has(self.selector.gcp)").message("network.gcp is set but the function is not on GCP").field_path(".template.network.gcp"))]
#[x_kube(validation = Rule::new("!has(self.template.supplyChain) || !has(self.template.supplyChain.aws) || has(self.selector.aws)").message("supplyChain.aws is set but the function is not on AWS").field_path(".template.supplyChain.aws"))]
#[x_kube(validation = Rule::new("!has(self.template.supplyChain) || !has(self.template.supplyChain.azure) || has(self.selector.azure)").message("supplyChain.azure is set but the function is not on Azure").field_path(".template.supplyChain.azure"))]
#[x_kube(validation = Rule::new("!has(self.template.supplyChain) || !has(self.template.supplyChain.gcp) || has(self.selector.gcp)").message("supplyChain.gcp is set but the function is not on GCP").field_path(".template.supplyChain.gcp"))]
#[x_kube(validation = Rule::new("!has(self.template.observability) || !has(self.template.observability.aws) || has(self.selector.aws)").message("observability.aws is set but the function is not on AWS").field_path(".template.observability.aws"))]
#[x_kube(validation = Rule::new("!has(self.template.observability) || !has(self.template.observability.azure) || has(self.selector.azure)").message("observability.azure is set but the function is not on Azure").field_path(".template.observability.azure"))]
#[x_kube(validation = Rule::new("!has(self.template.observability) || !has(self.template.observability.gcp) || has(self.selector.gcp)").message("observability.gcp is set but the function is not on GCP").field_path(".template.observability.gcp"))]
#[x_kube(validation = Rule::new("!has(self.template.identity) || !(has(self.template.identity.createIfShared) && self.template.identity.createIfShared) || !has(self.selector.aws) || (has(self.template.identity.aws) && has(self.template.identity.aws.permissions))").message("identity.createIfShared on AWS needs identity.aws.permissions: the new role gets exactly the declared permissions").field_path(".template.identity.aws"))]
#[x_kube(validation = Rule::new("!has(self.template.identity) || !(has(self.template.identity.createIfShared) && self.template.identity.createIfShared) || !has(self.selector.gcp) || (has(self.template.identity.gcp) && has(self.template.identity.gcp.roles))").message("identity.createIfShared on GCP needs identity.gcp.roles: the new service account gets exactly the declared roles").field_path(".template.identity.gcp"))]
#[x_kube(validation = Rule::new("!has(self.template.identity) || !has(self.template.identity.unusedPermissions) || (has(self.selector.aws) && has(self.template.identity.aws) && has(self.template.identity.aws.permissions)) || (has(self.selector.gcp) && has(self.template.identity.gcp) && has(self.template.identity.gcp.roles))").message("identity.unusedPermissions compares declared permissions with their recorded use: declare identity.aws.permissions (AWS) or identity.gcp.roles (GCP); not observable on Azure, where role assignments carry no record of use").field_path(".template.identity.unusedPermissions"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PosturePolicySpec {
    /// The CloudAccount (same namespace) or ClusterCloudAccount whose
    /// functions are selected, under the same tenancy rules as a
    /// FunctionPosture's.
    pub account_ref: AccountRef,
    /// Which functions of the account the policy governs. Exactly one of
    /// aws, azure or gcp.
    pub selector: FunctionSelector,
    /// Between policies that select the same function, the higher priority
    /// governs it; on a tie, the older policy. A hand-written
    /// FunctionPosture always wins over any policy.
    #[serde(default)]
    pub priority: i32,
    /// The posture each selected function gets: the mode and control blocks
    /// of a FunctionPosture.
    pub template: PostureTemplate,
}

/// The functions a policy selects, in exactly one cloud.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("(has(self.aws) ? 1 : 0) + (has(self.azure) ? 1 : 0) + (has(self.gcp) ? 1 : 0) == 1").message("exactly one of selector.aws, selector.azure or selector.gcp must be set"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionSelector {
    /// Lambda functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSelector>,
    /// Function apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSelector>,
    /// Cloud Functions (2nd gen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpSelector>,
}

/// Lambda functions by Region, name and tags. Every field narrows; an empty
/// selector selects every function of the account's Regions.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsSelector {
    /// Regions to select in; empty: the account's region and regions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub regions: Vec<AwsRegion>,
    /// Function-name globs (`*` any run of characters, `?` one); empty:
    /// every name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub names: Vec<NameGlob>,
    /// The function's tags.
    #[serde(default, skip_serializing_if = "TagSelector::is_empty")]
    pub tags: TagSelector,
}

/// Function apps by resource group, name and tags.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureSelector {
    /// Resource groups to select in; empty: every resource group of the
    /// subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub resource_groups: Vec<AzureResourceGroup>,
    /// Function-app name globs; empty: every name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub names: Vec<NameGlob>,
    /// The function app's tags.
    #[serde(default, skip_serializing_if = "TagSelector::is_empty")]
    pub tags: TagSelector,
}

/// Cloud Functions by location, name and labels.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpSelector {
    /// Locations to select in; empty: every location of the project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub locations: Vec<GcpLocation>,
    /// Function-name globs; empty: every name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub names: Vec<NameGlob>,
    /// The function's labels.
    #[serde(default, skip_serializing_if = "TagSelector::is_empty")]
    pub labels: TagSelector,
}

/// An AWS Region, e.g. eu-west-1.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AwsRegion(#[schemars(regex(pattern = patterns::AWS_REGION))] pub String);

/// A resource group name.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AzureResourceGroup(
    #[schemars(regex(pattern = patterns::AZURE_RESOURCE_GROUP), length(max = 90))] pub String,
);

/// A GCP location, e.g. europe-west1.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GcpLocation(#[schemars(regex(pattern = patterns::GCP_LOCATION), length(max = 64))] pub String);

/// A name pattern: `*` stands for any run of characters, `?` for one.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NameGlob(#[schemars(regex(pattern = patterns::NAME_GLOB), length(min = 1, max = 128))] pub String);

/// Tags (or labels) a function must carry, in the shape of a Kubernetes
/// label selector: every entry of `matchTags` and every expression must
/// hold.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagSelector {
    /// Tags that must be present with exactly this value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 32))]
    pub match_tags: BTreeMap<String, String>,
    /// Further requirements on tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub match_expressions: Vec<TagRequirement>,
}

impl TagSelector {
    pub fn is_empty(&self) -> bool {
        self.match_tags.is_empty() && self.match_expressions.is_empty()
    }
}

/// One requirement on a tag.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)").message("values: required, and only allowed, with In and NotIn").field_path(".values"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagRequirement {
    /// The tag key.
    #[schemars(length(min = 1, max = 128))]
    pub key: String,
    /// In, NotIn, Exists or DoesNotExist.
    pub operator: TagOperator,
    /// The values for In and NotIn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub values: Vec<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagOperator {
    /// The tag is present with one of the values.
    In,
    /// The tag is absent, or present with none of the values.
    NotIn,
    /// The tag is present, with any value.
    Exists,
    /// The tag is absent.
    DoesNotExist,
}

/// The posture every selected function gets: a FunctionPosture's mode and
/// control blocks, without its account and function.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostureTemplate {
    /// Enforce fixes drift; Audit only reports it. Defaults to Audit.
    #[serde(default)]
    pub mode: Mode,
    /// Which identity the function runs as and what it may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityControl>,
    /// Who may invoke the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<TriggerControl>,
    /// Which network the function sits in and how its egress leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkControl>,
    /// Code signing and dependency provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supply_chain: Option<SupplyChainControl>,
    /// Tracing and structured logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilityControl>,
    /// As a FunctionPosture's `resyncInterval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::DURATION), length(max = 32))]
    pub resync_interval: Option<String>,
}

/// What the policy governs and how it stands, summed over its children.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PosturePolicyStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready: every function the policy governs has a child FunctionPosture
    /// and every child is Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<super::status::Condition>,
    /// Functions of the account the selector matches, governed by this
    /// policy or superseded.
    #[serde(default)]
    pub matched: u32,
    /// Functions this policy governs: one child FunctionPosture each.
    #[serde(default)]
    pub governed: u32,
    /// Children whose every declared control is compliant.
    #[serde(default)]
    pub compliant: u32,
    /// Children with findings.
    #[serde(default)]
    pub drifted: u32,
    /// Children that could not observe or judge their function.
    #[serde(default)]
    pub errors: u32,
    /// Matched functions that a hand-written FunctionPosture or a policy of
    /// higher precedence governs instead.
    #[serde(default, rename = "superseded")]
    pub superseded_count: u32,
    /// The superseded functions and what governs each (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded_by: Vec<SupersededFunction>,
    /// The most severe findings of the children (at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worst_findings: Vec<ChildFinding>,
    /// RFC 3339 time the account's functions were last listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_listed_time: Option<String>,
}

/// A matched function another governor holds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SupersededFunction {
    /// The function, as region/name, resource group/name or location/name.
    pub function: String,
    /// What governs it: `FunctionPosture ns/name` or `PosturePolicy ns/name`.
    pub governed_by: String,
}

/// One child's finding, named by the child.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChildFinding {
    /// The child FunctionPosture.
    pub posture: String,
    /// The function, as the child's status names it.
    pub function: String,
    /// Critical, High, Medium or Low.
    pub severity: crate::findings::Severity,
    /// The cloud API field that differs.
    pub field: String,
    /// What a person can act on.
    pub message: String,
}

impl PosturePolicySpec {
    /// The cloud the selector is on (None when it names none, which
    /// validation refuses).
    pub fn cloud(&self) -> Option<super::Cloud> {
        let s = &self.selector;
        match (&s.aws, &s.azure, &s.gcp) {
            (Some(_), None, None) => Some(super::Cloud::Aws),
            (None, Some(_), None) => Some(super::Cloud::Azure),
            (None, None, Some(_)) => Some(super::Cloud::Gcp),
            _ => None,
        }
    }

    /// The FunctionPosture spec the policy gives `function`.
    pub fn posture_for(&self, function: FunctionTarget) -> FunctionPostureSpec {
        let t = self.template.clone();
        FunctionPostureSpec {
            account_ref: self.account_ref.clone(),
            function,
            mode: t.mode,
            identity: t.identity,
            triggers: t.triggers,
            network: t.network,
            supply_chain: t.supply_chain,
            observability: t.observability,
            resync_interval: t.resync_interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    const POLICY: &str = r#"
accountRef: {name: prod}
selector:
  aws:
    regions: [eu-west-1]
    names: ["orders-*"]
    tags:
      matchTags: {zerofn: governed}
      matchExpressions: [{key: tier, operator: In, values: [web]}]
priority: 10
template:
  mode: Enforce
  triggers: {publicAccess: RequireAuth}
"#;

    #[test]
    fn a_child_carries_the_template_the_account_and_its_function() {
        let spec: PosturePolicySpec = serde_saphyr::from_str(POLICY).unwrap();
        assert_eq!(spec.cloud(), Some(crate::api::Cloud::Aws));
        let target = FunctionTarget {
            aws: Some(AwsFunctionRef {
                name: "orders-api".into(),
                region: Some("eu-west-1".into()),
            }),
            azure: None,
            gcp: None,
        };
        let child = spec.posture_for(target.clone());
        assert_eq!(child.account_ref, spec.account_ref);
        assert_eq!(child.function, target);
        assert_eq!(child.mode, Mode::Enforce);
        assert_eq!(child.triggers, spec.template.triggers);
        assert!(crate::api::validate::posture(&child).is_empty());
    }

    #[test]
    fn validation_names_the_template_field_and_the_selector() {
        let mut spec: PosturePolicySpec = serde_saphyr::from_str(POLICY).unwrap();
        assert!(crate::api::validate::policy(&spec).is_empty());
        spec.template.identity = Some(IdentityControl {
            create_if_shared: true,
            ..serde_saphyr::from_str("{}").unwrap()
        });
        let errors = crate::api::validate::policy(&spec);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "spec.template.identity.aws");
        spec.selector.gcp = Some(GcpSelector::default());
        assert_eq!(crate::api::validate::policy(&spec)[0].path, "spec.selector");
    }

    #[test]
    fn the_crd_carries_the_selector_and_template_rules() {
        let crd = serde_json::to_string(&PosturePolicy::crd()).unwrap();
        assert!(crd.contains("exactly one of selector.aws, selector.azure or selector.gcp must be set"));
        assert!(crd.contains("triggers.aws is set but the function is not on AWS"));
        assert!(crd.contains("values: required, and only allowed, with In and NotIn"));
    }
}

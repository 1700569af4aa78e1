//! The account-wide reads, cached per account and shared by every posture.
//!
//! ListFunctions with every version (each function's configuration, its
//! published versions, and who runs as each role), GetAccountAuthorizationDetails
//! (roles and their policies), ListEventSourceMappings, the owner markers
//! of every function from the Resource Groups Tagging API, and, for postures
//! that opt in to editing a role in place, DescribeRegions. Each page is paced
//! on the quota it spends.

use super::client::{Clients, map_err};
use super::model::*;
use super::names;
use super::policy::PolicyDocument;
use super::quota::{Pacers, Quota};
use crate::providers::ProviderError;
use crate::providers::cache::Cached;
use crate::providers::pace::Pacer;
use aws_sdk_lambda::types::{FunctionConfiguration, FunctionVersion};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// One function as ListFunctions reports it.
#[derive(Clone, Debug)]
pub struct FunctionSummary {
    pub arn: String,
    pub name: String,
    pub role: String,
    pub vpc: Option<Vpc>,
    pub tracing_mode: Option<String>,
    pub logging: Logging,
    pub layers: Vec<String>,
}

/// Every function of the regions in scope, from one paged ListFunctions
/// with every version per Region.
#[derive(Default, Debug)]
pub struct FunctionIndex {
    pub by_region_name: HashMap<(String, String), FunctionSummary>,
    /// The functions (`$LATEST`) by the role they run as.
    pub by_role: HashMap<String, Vec<String>>,
    /// The published versions of each function, by its unqualified ARN.
    pub versions: HashMap<String, Vec<String>>,
    /// Every version (`arn:version`, `$LATEST` included) by the role it runs
    /// as: a version keeps the role it was published with.
    pub uses_by_role: HashMap<String, Vec<String>>,
    pub regions: BTreeSet<String>,
}

#[derive(Default, Debug)]
pub struct RoleIndex {
    pub by_arn: HashMap<String, ObservedRole>,
    pub by_name: HashMap<String, String>,
}

/// The regions enabled for the account, or why they could not be listed
/// (then exclusivity across regions is not proved, and findings say why).
#[derive(Debug)]
pub struct EnabledRegions(pub Result<BTreeSet<String>, String>);

/// Event source mappings by function ARN (unqualified).
#[derive(Default, Debug)]
pub struct MappingIndex(pub HashMap<String, Vec<EventSourceMapping>>);

/// The owner marker of every function that carries one, by Region, from
/// the Resource Groups Tagging API; or, for a Region where that API could
/// not be read, why (then each function's tags are read with ListTags).
#[derive(Default, Debug)]
pub struct TagIndex(pub HashMap<String, Result<Tagged, String>>);

/// Tags by unqualified function ARN.
pub type Tagged = HashMap<String, BTreeMap<String, String>>;

#[derive(Default)]
pub struct Inventory {
    pub functions: Cached<FunctionIndex>,
    pub roles: Cached<RoleIndex>,
    pub mappings: Cached<MappingIndex>,
    /// Read only for postures in Enforce mode.
    pub tags: Cached<TagIndex>,
    /// Every function's tags; read only to list the account's functions
    /// (policies, discovery).
    pub all_tags: Cached<TagIndex>,
    /// Whether the fallback from the tagging API has been reported: once
    /// per account, not once per load.
    pub tagging_fallback_reported: AtomicBool,
    /// Read only for postures that opt in to editing a role in place.
    pub regions_enabled: Cached<EnabledRegions>,
    /// Code signing config ARN → when read, and its
    /// UntrustedArtifactOnDeployment (None: no such config).
    pub signing_policies: std::sync::Mutex<HashMap<String, (Instant, Option<String>)>>,
    /// Managed policy ARN → when read, and its default-version document.
    /// A document is read only for a role whose policies zerofn may change
    /// or replace, and once per account and TTL however many roles hold it.
    pub managed_documents: std::sync::Mutex<HashMap<String, (Instant, ManagedDocument)>>,
    /// IAM last-accessed reports by role: kept for the posture's refresh
    /// interval and, unlike the rest, not dropped by `invalidate` (zerofn's
    /// own writes change nothing a report says, and each is a job IAM runs).
    pub last_accessed: super::usage::ReportCache,
}

impl Inventory {
    pub fn invalidate(&self) {
        self.functions.invalidate();
        self.roles.invalidate();
        self.mappings.invalidate();
        self.tags.invalidate();
        self.all_tags.invalidate();
        self.regions_enabled.invalidate();
        self.signing_policies.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.managed_documents.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Report, once per account, that owner markers are read per function.
    pub fn report_tagging_fallback(&self, region: &str, reason: &str) {
        if !self.tagging_fallback_reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                region,
                reason,
                "the Resource Groups Tagging API could not be read: ownership markers are read with ListTags, one more read per function in Enforce mode"
            );
        }
    }
}

pub fn summarize(f: &FunctionConfiguration) -> FunctionSummary {
    let vpc = f.vpc_config().map(|v| Vpc {
        vpc_id: v.vpc_id().filter(|id| !id.is_empty()).map(str::to_string),
        subnet_ids: v.subnet_ids().iter().cloned().collect(),
        security_group_ids: v.security_group_ids().iter().cloned().collect(),
        ipv6_allowed_for_dual_stack: v.ipv6_allowed_for_dual_stack(),
    });
    let logging = f
        .logging_config()
        .map(|l| Logging {
            log_format: l.log_format().map(|x| x.as_str().to_string()),
            log_group: l.log_group().map(str::to_string),
            application_log_level: l.application_log_level().map(|x| x.as_str().to_string()),
            system_log_level: l.system_log_level().map(|x| x.as_str().to_string()),
        })
        .unwrap_or_default();
    FunctionSummary {
        arn: f.function_arn().unwrap_or_default().to_string(),
        name: f.function_name().unwrap_or_default().to_string(),
        role: f.role().unwrap_or_default().to_string(),
        vpc,
        tracing_mode: f
            .tracing_config()
            .and_then(|t| t.mode())
            .map(|m| m.as_str().to_string()),
        logging,
        layers: f.layers().iter().filter_map(|l| l.arn().map(str::to_string)).collect(),
    }
}

/// ListFunctions with every version, in every region in scope.
pub async fn load_functions(clients: &Clients, pacers: &Pacers) -> Result<FunctionIndex, ProviderError> {
    let mut idx = FunctionIndex::default();
    for (region, lambda) in &clients.lambda {
        idx.regions.insert(region.clone());
        let versions = paged(pacers.get(Quota::LambdaControlPlane, region), |marker| async move {
            let page = lambda
                .list_functions()
                .function_version(FunctionVersion::All)
                .max_items(50)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| map_err("ListFunctions", region, e))?;
            Ok((page.functions().to_vec(), page.next_marker().map(str::to_string)))
        });
        for f in versions.await? {
            idx.add(region, &f);
        }
    }
    Ok(idx)
}

impl FunctionIndex {
    fn add(&mut self, region: &str, f: &FunctionConfiguration) {
        let (Some(arn), Some(role)) = (f.function_arn(), f.role()) else {
            return;
        };
        let base = unqualified(arn);
        let version = f.version().unwrap_or("$LATEST");
        self.uses_by_role
            .entry(role.to_string())
            .or_default()
            .push(format!("{base}:{version}"));
        if version != "$LATEST" {
            self.versions.entry(base).or_default().push(version.to_string());
            return;
        }
        let mut s = summarize(f);
        s.arn = base;
        self.by_role.entry(s.role.clone()).or_default().push(s.arn.clone());
        self.by_region_name.insert((region.to_string(), s.name.clone()), s);
    }
}

pub async fn load_roles(clients: &Clients, pacers: &Pacers) -> Result<RoleIndex, ProviderError> {
    let mut idx = RoleIndex::default();
    let iam = &clients.iam;
    let details = paged(pacers.get(Quota::Iam, ""), |marker| async move {
        let page = iam
            .get_account_authorization_details()
            .filter(aws_sdk_iam::types::EntityType::Role)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| map_err("GetAccountAuthorizationDetails", "Role", e))?;
        let next = page.is_truncated().then(|| page.marker().map(str::to_string)).flatten();
        Ok((page.role_detail_list().to_vec(), next))
    });
    for r in details.await? {
        if let Some(role) = observed_role(&r)? {
            idx.by_name.insert(role.name.clone(), role.arn.clone());
            idx.by_arn.insert(role.arn.clone(), role);
        }
    }
    Ok(idx)
}

/// A role as GetAccountAuthorizationDetails reports it; None for an entry
/// without an ARN or name.
fn observed_role(r: &aws_sdk_iam::types::RoleDetail) -> Result<Option<ObservedRole>, ProviderError> {
    let (Some(arn), Some(name)) = (r.arn(), r.role_name()) else {
        return Ok(None);
    };
    let mut inline = BTreeMap::new();
    for p in r.role_policy_list() {
        if let (Some(n), Some(doc)) = (p.policy_name(), p.policy_document()) {
            let parsed = PolicyDocument::parse(doc)
                .map_err(|e| ProviderError::Cloud(format!("inline policy {n} of {name}: {e}")))?;
            inline.insert(n.to_string(), parsed);
        }
    }
    let trust = match r.assume_role_policy_document() {
        Some(doc) => {
            PolicyDocument::parse(doc).map_err(|e| ProviderError::Cloud(format!("trust policy of {name}: {e}")))?
        }
        None => PolicyDocument::default(),
    };
    Ok(Some(ObservedRole {
        arn: arn.to_string(),
        name: name.to_string(),
        role_id: r.role_id().unwrap_or_default().to_string(),
        instance_profiles: r
            .instance_profile_list()
            .iter()
            .map(|ip| ip.arn().to_string())
            .collect(),
        inline_policies: inline,
        managed_documents: BTreeMap::new(),
        attached_policies: r
            .attached_managed_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect(),
        permissions_boundary: r
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string),
        tags: r
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        trust,
    }))
}

/// EC2 DescribeRegions without `AllRegions`: the regions enabled for the
/// account. A region whose `OptInStatus` is `not-opted-in` is left out in
/// case a stand-in lists it anyway. Any failure (denied, timed out) is kept
/// as the reason, never an error: it only leaves exclusivity unproved.
pub async fn load_enabled_regions(clients: &Clients) -> Result<EnabledRegions, ProviderError> {
    let out = match clients.ec2_home.describe_regions().send().await {
        Ok(out) => out,
        Err(e) => return Ok(EnabledRegions(Err(map_err("DescribeRegions", "", e).to_string()))),
    };
    Ok(EnabledRegions(Ok(out
        .regions()
        .iter()
        .filter(|r| r.opt_in_status() != Some("not-opted-in"))
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect())))
}

pub async fn load_mappings(clients: &Clients, pacers: &Pacers) -> Result<MappingIndex, ProviderError> {
    let mut idx = MappingIndex::default();
    for (region, lambda) in &clients.lambda {
        let mappings = paged(pacers.get(Quota::LambdaControlPlane, region), |marker| async move {
            let page = lambda
                .list_event_source_mappings()
                .max_items(100)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| map_err("ListEventSourceMappings", region, e))?;
            Ok((
                page.event_source_mappings().to_vec(),
                page.next_marker().map(str::to_string),
            ))
        });
        for m in mappings.await? {
            let Some(function_arn) = m.function_arn() else { continue };
            idx.0
                .entry(unqualified(function_arn))
                .or_default()
                .push(EventSourceMapping {
                    uuid: m.uuid().unwrap_or_default().to_string(),
                    event_source_arn: m.event_source_arn().map(str::to_string),
                    state: m.state().unwrap_or_default().to_string(),
                });
        }
    }
    Ok(idx)
}

/// The owner markers of the functions of every region in scope: GetResources
/// filtered to Lambda functions that carry the owner tag, 100 per page, so
/// the reads grow with the functions zerofn claimed, not with the account.
/// A Region where the API is denied or refused is kept with the reason
/// (ownership is then read per function); an unreachable one fails the load.
pub async fn load_tags(clients: &Clients, pacers: &Pacers) -> Result<TagIndex, ProviderError> {
    load_tagged(clients, pacers, Some(names::OWNER_TAG)).await
}

/// Every tag of every tagged function of the regions in scope (what a
/// PosturePolicy selects on): GetResources filtered to Lambda functions
/// only, 100 per page. Kept apart from the owner markers, whose read grows
/// with the functions zerofn claimed, not with the account.
pub async fn load_all_tags(clients: &Clients, pacers: &Pacers) -> Result<TagIndex, ProviderError> {
    load_tagged(clients, pacers, None).await
}

async fn load_tagged(clients: &Clients, pacers: &Pacers, key: Option<&str>) -> Result<TagIndex, ProviderError> {
    let mut idx = TagIndex::default();
    for (region, tagging) in &clients.tagging {
        let read = paged(pacers.get(Quota::Tagging, region), |token| async move {
            let filter = key.map(|k| {
                aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                    .key(k)
                    .build()
            });
            let page = tagging
                .get_resources()
                .resource_type_filters("lambda:function")
                .set_tag_filters(filter.map(|f| vec![f]))
                .resources_per_page(100)
                .set_pagination_token(token)
                .send()
                .await
                .map_err(|e| map_err("GetResources", region, e))?;
            let tagged = page.resource_tag_mapping_list().iter().filter_map(|m| {
                let tags = m.tags().iter().map(|t| (t.key().to_string(), t.value().to_string()));
                Some((unqualified(m.resource_arn()?), tags.collect()))
            });
            // The last page carries an empty token, not none.
            let next = page.pagination_token().filter(|t| !t.is_empty()).map(str::to_string);
            Ok((tagged.collect::<Vec<_>>(), next))
        });
        let found = match read.await {
            Ok(tagged) => Ok(tagged.into_iter().collect()),
            Err(e @ (ProviderError::Unreachable(_) | ProviderError::Timeout(_))) => return Err(e),
            Err(e) => Err(e.to_string()),
        };
        idx.0.insert(region.clone(), found);
    }
    Ok(idx)
}

/// Every item of a list paged with a marker or token, each page paced:
/// `page` reads the page at a marker and returns its items and the next
/// marker.
pub async fn paged<T, F, Fut>(pacer: Arc<Pacer>, mut page: F) -> Result<Vec<T>, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), ProviderError>>,
{
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        pacer.ready().await;
        let (items, next) = page(marker).await?;
        out.extend(items);
        match next {
            Some(next) => marker = Some(next),
            None => return Ok(out),
        }
    }
}

/// `arn:aws:lambda:r:a:function:name[:qualifier]` → without the qualifier.
pub fn unqualified(arn: &str) -> String {
    arn.split(':').take(7).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paged_lists_follow_the_marker_to_the_last_page() {
        let pacer = Arc::new(Pacer::per_second(1000));
        let asked = std::sync::Mutex::new(Vec::new());
        let items = paged(pacer, |marker: Option<String>| {
            asked.lock().map(|mut a| a.push(marker.clone())).ok();
            async move {
                Ok(match marker.as_deref() {
                    None => (vec!["a", "b"], Some("m1".to_string())),
                    Some("m1") => (vec![], Some("m2".to_string())),
                    _ => (vec!["c"], None),
                })
            }
        })
        .await;
        assert_eq!(items.ok(), Some(vec!["a", "b", "c"]));
        let asked = asked.into_inner().unwrap_or_default();
        assert_eq!(asked, vec![None, Some("m1".to_string()), Some("m2".to_string())]);
    }

    #[test]
    fn qualifiers_are_stripped_from_mapping_function_arns() {
        assert_eq!(
            unqualified("arn:aws:lambda:eu-west-1:123456789012:function:f:live"),
            "arn:aws:lambda:eu-west-1:123456789012:function:f"
        );
        assert_eq!(
            unqualified("arn:aws:lambda:eu-west-1:123456789012:function:f"),
            "arn:aws:lambda:eu-west-1:123456789012:function:f"
        );
    }

    fn version(name: &str, version: &str, role: &str) -> FunctionConfiguration {
        let arn = format!("arn:aws:lambda:eu-west-1:123456789012:function:{name}");
        let arn = if version == "$LATEST" {
            arn
        } else {
            format!("{arn}:{version}")
        };
        FunctionConfiguration::builder()
            .function_name(name)
            .function_arn(arn)
            .version(version)
            .role(role)
            .build()
    }

    #[test]
    fn one_listing_of_every_version_gives_functions_versions_and_role_uses() {
        let mut idx = FunctionIndex::default();
        for f in [
            version("a", "$LATEST", "r1"),
            version("a", "1", "r0"),
            version("a", "2", "r1"),
            version("b", "$LATEST", "r1"),
        ] {
            idx.add("eu-west-1", &f);
        }
        let a = "arn:aws:lambda:eu-west-1:123456789012:function:a";
        let b = "arn:aws:lambda:eu-west-1:123456789012:function:b";
        let summary = &idx.by_region_name[&("eu-west-1".to_string(), "a".to_string())];
        assert_eq!(summary.arn, a, "a function is known by its unqualified ARN");
        assert_eq!(idx.by_role["r1"], vec![a.to_string(), b.to_string()]);
        assert_eq!(idx.versions[a], vec!["1".to_string(), "2".to_string()]);
        assert!(!idx.versions.contains_key(b), "no published version, no entry");
        assert_eq!(
            idx.uses_by_role["r0"],
            vec![format!("{a}:1")],
            "a version keeps its role"
        );
        assert_eq!(
            idx.uses_by_role["r1"],
            vec![format!("{a}:$LATEST"), format!("{a}:2"), format!("{b}:$LATEST")]
        );
    }
}

//! Reading one function's state from AWS.
//!
//! Account-wide reads (ListFunctions in every region in scope,
//! GetAccountAuthorizationDetails, ListEventSourceMappings; for postures that
//! opt in to editing a role in place, ListFunctions with every version and
//! DescribeRegions) are cached per account and shared by every posture. Only what has no account-wide form is
//! read per function, and only when the posture declares the control that
//! needs it: GetPolicy, ListFunctionUrlConfigs, ListAliases and
//! ListVersionsByFunction (triggers; then GetPolicy per alias and published
//! version, none when there are none), ListTags (Enforce mode, for
//! ownership), GetFunctionCodeSigningConfig (code signing), and GetPolicy
//! and GetPolicyVersion per managed policy attached to the role (declared
//! permissions; cached per account, so a policy many roles hold is read
//! once).

use super::client::{Clients, map_err};
use super::model::*;
use super::names;
use super::policy::{PolicyDocument, parse_resource_policy};
use crate::api::Mode;
use crate::providers::cache::Cached;
use crate::providers::pace::Pacer;
use crate::providers::{Posture, ProviderError};
use aws_sdk_lambda::types::FunctionConfiguration;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

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

#[derive(Default, Debug)]
pub struct FunctionIndex {
    by_region_name: HashMap<(String, String), FunctionSummary>,
    by_role: HashMap<String, Vec<String>>,
}

#[derive(Default, Debug)]
pub struct RoleIndex {
    by_arn: HashMap<String, ObservedRole>,
    by_name: HashMap<String, String>,
}

/// Every function version of the account (regions in scope) by the role it
/// runs as: who else a role's permissions reach.
#[derive(Default, Debug)]
pub struct RoleUseIndex {
    by_role: HashMap<String, Vec<String>>,
    regions: std::collections::BTreeSet<String>,
}

/// The regions enabled for the account, or why they could not be listed
/// (then exclusivity across regions is not proved, and findings say why).
#[derive(Debug)]
pub struct EnabledRegions(pub Result<std::collections::BTreeSet<String>, String>);

/// Event source mappings by function ARN (unqualified).
#[derive(Default, Debug)]
pub struct MappingIndex(HashMap<String, Vec<EventSourceMapping>>);

#[derive(Default)]
pub struct Inventory {
    pub functions: Cached<FunctionIndex>,
    pub roles: Cached<RoleIndex>,
    pub mappings: Cached<MappingIndex>,
    /// Read only for postures that opt in to editing a role in place.
    pub role_uses: Cached<RoleUseIndex>,
    /// Read only for postures that opt in to editing a role in place.
    pub regions_enabled: Cached<EnabledRegions>,
    /// Code signing config ARN → when read, and its
    /// UntrustedArtifactOnDeployment (None: no such config).
    pub signing_policies: std::sync::Mutex<HashMap<String, (Instant, Option<String>)>>,
    /// Managed policy ARN → when read, and its default-version document.
    /// A document is read only for a role whose policies zerofn may change
    /// or replace, and once per account and TTL however many roles hold it.
    pub managed_documents: std::sync::Mutex<HashMap<String, (Instant, ManagedDocument)>>,
}

impl Inventory {
    pub fn invalidate(&self) {
        self.functions.invalidate();
        self.roles.invalidate();
        self.mappings.invalidate();
        self.role_uses.invalidate();
        self.regions_enabled.invalidate();
        self.signing_policies.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.managed_documents.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

fn summarize(f: &FunctionConfiguration) -> FunctionSummary {
    let vpc = f.vpc_config().map(|v| Vpc {
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

pub async fn load_functions(clients: &Clients) -> Result<FunctionIndex, ProviderError> {
    let mut idx = FunctionIndex::default();
    for (region, lambda) in &clients.lambda {
        let mut pages = lambda.list_functions().max_items(50).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_err("ListFunctions", region, e))?;
            for f in page.functions() {
                let s = summarize(f);
                idx.by_role.entry(s.role.clone()).or_default().push(s.arn.clone());
                idx.by_region_name.insert((region.clone(), s.name.clone()), s);
            }
        }
    }
    Ok(idx)
}

pub async fn load_roles(clients: &Clients) -> Result<RoleIndex, ProviderError> {
    let mut idx = RoleIndex::default();
    let mut pages = clients
        .iam
        .get_account_authorization_details()
        .filter(aws_sdk_iam::types::EntityType::Role)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| map_err("GetAccountAuthorizationDetails", "Role", e))?;
        for r in page.role_detail_list() {
            let (Some(arn), Some(name)) = (r.arn(), r.role_name()) else {
                continue;
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
                Some(doc) => PolicyDocument::parse(doc)
                    .map_err(|e| ProviderError::Cloud(format!("trust policy of {name}: {e}")))?,
                None => PolicyDocument::default(),
            };
            let role = ObservedRole {
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
            };
            idx.by_name.insert(name.to_string(), arn.to_string());
            idx.by_arn.insert(arn.to_string(), role);
        }
    }
    Ok(idx)
}

/// ListFunctions with every published version, in every region in scope:
/// a version keeps the role it was published with.
pub async fn load_role_uses(clients: &Clients) -> Result<RoleUseIndex, ProviderError> {
    let mut idx = RoleUseIndex::default();
    for (region, lambda) in &clients.lambda {
        idx.regions.insert(region.clone());
        let mut pages = lambda
            .list_functions()
            .function_version(aws_sdk_lambda::types::FunctionVersion::All)
            .max_items(50)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_err("ListFunctions", region, e))?;
            for f in page.functions() {
                let (Some(role), Some(arn)) = (f.role(), f.function_arn()) else {
                    continue;
                };
                let qualified = match f.version() {
                    Some(v) if !arn.ends_with(&format!(":{v}")) => format!("{arn}:{v}"),
                    _ => arn.to_string(),
                };
                idx.by_role.entry(role.to_string()).or_default().push(qualified);
            }
        }
    }
    Ok(idx)
}

/// EC2 DescribeRegions without `AllRegions`: the regions enabled for the
/// account. A region whose `OptInStatus` is `not-opted-in` is left out in
/// case a stand-in lists it anyway. Any failure (denied, timed out) is kept
/// as the reason, never an error: it only leaves exclusivity unproved.
pub async fn load_enabled_regions(clients: &Clients) -> Result<EnabledRegions, ProviderError> {
    let out = match clients.ec2.describe_regions().send().await {
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

pub async fn load_mappings(clients: &Clients) -> Result<MappingIndex, ProviderError> {
    let mut idx = MappingIndex::default();
    for (region, lambda) in &clients.lambda {
        let mut pages = lambda
            .list_event_source_mappings()
            .max_items(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_err("ListEventSourceMappings", region, e))?;
            for m in page.event_source_mappings() {
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
    }
    Ok(idx)
}

/// The qualifier of `arn:aws:lambda:r:a:function:name[:qualifier]`, if any.
fn qualifier_of(arn: &str) -> Option<String> {
    arn.split(':')
        .nth(7)
        .filter(|q| !q.is_empty() && *q != "$LATEST")
        .map(str::to_string)
}

/// How messages name a function or one of its qualifiers.
fn qualified(arn: &str, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("{arn}:{q}"),
        None => arn.to_string(),
    }
}

/// `arn:aws:lambda:r:a:function:name[:qualifier]` → without the qualifier.
fn unqualified(arn: &str) -> String {
    arn.split(':').take(7).collect::<Vec<_>>().join(":")
}

pub struct Observer<'a> {
    pub clients: &'a Clients,
    pub inventory: &'a Inventory,
    pub pacer: &'a Pacer,
    pub ttl: Duration,
}

impl Observer<'_> {
    pub async fn observe(&self, p: &Posture, region: &str, name: &str) -> Result<ObservedFunction, ProviderError> {
        let spec = &p.spec;
        let functions = self
            .inventory
            .functions
            .get_or_load(self.ttl, || load_functions(self.clients))
            .await?;
        let summary = match functions.by_region_name.get(&(region.to_string(), name.to_string())) {
            Some(s) => s.clone(),
            // Created after the inventory was taken, or gone.
            None => self.read_function(region, name).await?,
        };
        let fn_arn = summary.arn.clone();
        let role_shared_with: Vec<String> = functions
            .by_role
            .get(&summary.role)
            .map(|v| v.iter().filter(|a| **a != fn_arn).cloned().collect())
            .unwrap_or_default();

        let mut o = ObservedFunction {
            arn: fn_arn.clone(),
            name: summary.name.clone(),
            region: region.to_string(),
            role_arn: summary.role.clone(),
            role_shared_with,
            vpc: summary.vpc.clone(),
            tracing_mode: summary.tracing_mode.clone(),
            logging: summary.logging.clone(),
            layers: summary.layers.clone(),
            ..ObservedFunction::default()
        };

        if let Some(identity) = &spec.identity {
            self.observe_identity(&mut o, identity).await?;
        }
        let lambda = self.clients.lambda(region)?;
        if spec.triggers.is_some() {
            self.observe_triggers(&mut o, lambda).await?;
        }
        if p.mode() == Mode::Enforce {
            o.tags = Some(self.tags(lambda, &fn_arn).await?);
        }
        if let Some(csc) = spec
            .supply_chain
            .as_ref()
            .and_then(|s| s.aws.as_ref())
            .and_then(|s| s.code_signing_config_arn.as_ref())
        {
            o.code_signing = Some(self.code_signing(lambda, &fn_arn, csc).await?);
        }
        Ok(o)
    }

    /// The role and its policies, the dedicated role if it exists, and who
    /// else runs as the role when editing it in place is asked for.
    async fn observe_identity(
        &self,
        o: &mut ObservedFunction,
        identity: &crate::api::IdentityControl,
    ) -> Result<(), ProviderError> {
        let roles = self
            .inventory
            .roles
            .get_or_load(self.ttl, || load_roles(self.clients))
            .await?;
        o.role = roles.by_arn.get(&o.role_arn).cloned();
        if identity.edit_in_place_if_exclusive {
            o.role_users = Some(self.role_users(&o.arn, &o.role_arn).await?);
        }
        let dedicated = names::dedicated_role_name(&o.name, &o.arn);
        o.dedicated_role = roles
            .by_name
            .get(&dedicated)
            .and_then(|arn| roles.by_arn.get(arn))
            .cloned();
        // Only a declared policy makes zerofn detach, or carry, anything.
        if identity.aws.as_ref().is_some_and(|a| a.permissions.is_some()) {
            for role in [o.role.as_mut(), o.dedicated_role.as_mut()].into_iter().flatten() {
                for arn in role.attached_policies.clone() {
                    let doc = self.managed_document(&arn).await;
                    role.managed_documents.insert(arn, doc);
                }
            }
        }
        Ok(())
    }

    /// Every way to invoke the function: event source mappings, and the
    /// resource policy and URL of the function and of each alias and version.
    async fn observe_triggers(
        &self,
        o: &mut ObservedFunction,
        lambda: &aws_sdk_lambda::Client,
    ) -> Result<(), ProviderError> {
        let mappings = self
            .inventory
            .mappings
            .get_or_load(self.ttl, || load_mappings(self.clients))
            .await?;
        o.event_source_mappings = mappings.0.get(&o.arn).cloned().unwrap_or_default();
        o.resource_policy = self.policy(lambda, &o.arn, None).await?;
        let mut urls = self.urls(lambda, &o.arn).await?;
        o.url = urls.remove(&None);
        o.qualifiers = self.qualifiers(lambda, &o.arn, urls).await?;
        Ok(())
    }

    /// Who else runs as the role: every version of every function in scope
    /// but this function's `$LATEST`.
    async fn role_users(&self, fn_arn: &str, role_arn: &str) -> Result<RoleUsers, ProviderError> {
        let uses = self
            .inventory
            .role_uses
            .get_or_load(self.ttl, || load_role_uses(self.clients))
            .await?;
        let enabled = self
            .inventory
            .regions_enabled
            .get_or_load(self.ttl, || load_enabled_regions(self.clients))
            .await?;
        let own = [fn_arn.to_string(), format!("{fn_arn}:$LATEST")];
        Ok(RoleUsers {
            others: uses
                .by_role
                .get(role_arn)
                .map(|v| v.iter().filter(|a| !own.contains(a)).cloned().collect())
                .unwrap_or_default(),
            regions_scanned: uses.regions.clone(),
            regions_enabled: enabled.0.clone(),
        })
    }

    /// The default-version document of a managed policy (GetPolicy, then
    /// GetPolicyVersion), cached per account for the TTL. A read that fails
    /// for any reason is kept as `Unreadable` with the reason: the planner
    /// then treats the policy as possibly holding a Deny.
    async fn managed_document(&self, arn: &str) -> ManagedDocument {
        let cached = self
            .inventory
            .managed_documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(arn)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, d)| d.clone());
        if let Some(doc) = cached {
            return doc;
        }
        let doc = match self.read_managed_document(arn).await {
            Ok(doc) => ManagedDocument::Read(doc),
            Err(e) => ManagedDocument::Unreadable(e.to_string()),
        };
        self.inventory
            .managed_documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(arn.to_string(), (Instant::now(), doc.clone()));
        doc
    }

    async fn read_managed_document(&self, arn: &str) -> Result<PolicyDocument, ProviderError> {
        self.pacer.ready().await;
        let policy = self
            .clients
            .iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| map_err("GetPolicy", arn, e))?;
        let version = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .ok_or_else(|| ProviderError::Cloud(format!("GetPolicy {arn}: no DefaultVersionId")))?;
        self.pacer.ready().await;
        let out = self
            .clients
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| map_err("GetPolicyVersion", arn, e))?;
        let text = out
            .policy_version()
            .and_then(|v| v.document())
            .ok_or_else(|| ProviderError::Cloud(format!("GetPolicyVersion {arn} {version}: no Document")))?;
        PolicyDocument::parse(text)
            .map_err(|e| ProviderError::Cloud(format!("managed policy {arn} version {version}: {e}")))
    }

    async fn read_function(&self, region: &str, name: &str) -> Result<FunctionSummary, ProviderError> {
        self.pacer.ready().await;
        let out = self
            .clients
            .lambda(region)?
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|e| map_err("GetFunctionConfiguration", name, e))?;
        // Build the summary from the same fields ListFunctions carries.
        let mut b = FunctionConfiguration::builder()
            .set_function_name(out.function_name().map(str::to_string))
            .set_function_arn(out.function_arn().map(str::to_string))
            .set_role(out.role().map(str::to_string))
            .set_vpc_config(out.vpc_config().cloned())
            .set_tracing_config(out.tracing_config().cloned())
            .set_logging_config(out.logging_config().cloned());
        for l in out.layers() {
            b = b.layers(l.clone());
        }
        Ok(summarize(&b.build()))
    }

    async fn policy(
        &self,
        lambda: &aws_sdk_lambda::Client,
        arn: &str,
        qualifier: Option<&str>,
    ) -> Result<Option<Vec<super::policy::ResourceStatement>>, ProviderError> {
        self.pacer.ready().await;
        let target = qualified(arn, qualifier);
        match lambda
            .get_policy()
            .function_name(arn)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
        {
            Ok(out) => match out.policy() {
                Some(text) => parse_resource_policy(text)
                    .map(Some)
                    .map_err(|e| ProviderError::Cloud(format!("resource policy of {target}: {e}"))),
                None => Ok(None),
            },
            Err(e) => match map_err("GetPolicy", &target, e) {
                ProviderError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Every function URL of the function, by qualifier (None: the
    /// function's own): one list instead of one read per alias.
    async fn urls(
        &self,
        lambda: &aws_sdk_lambda::Client,
        arn: &str,
    ) -> Result<BTreeMap<Option<String>, FunctionUrl>, ProviderError> {
        let urls = paged(self.pacer, |marker| async move {
            let page = lambda
                .list_function_url_configs()
                .function_name(arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| map_err("ListFunctionUrlConfigs", arn, e))?;
            let urls = page.function_url_configs().iter().map(|c| {
                let url = FunctionUrl {
                    auth_type: c.auth_type().as_str().to_string(),
                    url: c.function_url().to_string(),
                };
                (qualifier_of(c.function_arn()), url)
            });
            Ok((urls.collect(), page.next_marker().map(str::to_string)))
        });
        Ok(urls.await?.into_iter().collect())
    }

    /// Every alias and published version, each with its own resource policy
    /// and URL. When there are none (the common case) this costs the two
    /// list calls and nothing more.
    async fn qualifiers(
        &self,
        lambda: &aws_sdk_lambda::Client,
        arn: &str,
        mut urls: BTreeMap<Option<String>, FunctionUrl>,
    ) -> Result<Vec<ObservedQualifier>, ProviderError> {
        let aliases = paged(self.pacer, |marker| async move {
            let page = lambda
                .list_aliases()
                .function_name(arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| map_err("ListAliases", arn, e))?;
            let names = page.aliases().iter().filter_map(|a| a.name());
            let found = names.map(|n| (QualifierKind::Alias, n.to_string()));
            Ok((found.collect(), page.next_marker().map(str::to_string)))
        });
        let mut found: Vec<(QualifierKind, String)> = aliases.await?;
        let versions = paged(self.pacer, |marker| async move {
            let page = lambda
                .list_versions_by_function()
                .function_name(arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| map_err("ListVersionsByFunction", arn, e))?;
            let published = page
                .versions()
                .iter()
                .filter_map(|v| v.version())
                .filter(|v| *v != "$LATEST");
            let found = published.map(|v| (QualifierKind::Version, v.to_string()));
            Ok((found.collect(), page.next_marker().map(str::to_string)))
        });
        found.extend(versions.await?);
        // A URL on an alias created after the alias list was read is still
        // an invocation path.
        for q in urls.keys().flatten() {
            if !found.iter().any(|(_, n)| n == q) {
                found.push((QualifierKind::Alias, q.clone()));
            }
        }
        let mut out = Vec::with_capacity(found.len());
        for (kind, name) in found {
            let resource_policy = self.policy(lambda, arn, Some(&name)).await?;
            out.push(ObservedQualifier {
                kind,
                url: urls.remove(&Some(name.clone())),
                name,
                resource_policy,
            });
        }
        Ok(out)
    }

    async fn tags(
        &self,
        lambda: &aws_sdk_lambda::Client,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        self.pacer.ready().await;
        let out = lambda
            .list_tags()
            .resource(arn)
            .send()
            .await
            .map_err(|e| map_err("ListTags", arn, e))?;
        Ok(out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn code_signing(
        &self,
        lambda: &aws_sdk_lambda::Client,
        arn: &str,
        declared: &str,
    ) -> Result<CodeSigning, ProviderError> {
        self.pacer.ready().await;
        let attached = match lambda
            .get_function_code_signing_config()
            .function_name(arn)
            .send()
            .await
        {
            Ok(out) => Some(out.code_signing_config_arn().to_string()).filter(|a| !a.is_empty()),
            Err(e) => match map_err("GetFunctionCodeSigningConfig", arn, e) {
                ProviderError::NotFound(_) => None,
                other => return Err(other),
            },
        };
        let cached = self
            .inventory
            .signing_policies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(declared)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, p)| p.clone());
        let policy = match cached {
            Some(p) => p,
            None => {
                self.pacer.ready().await;
                let policy = match lambda
                    .get_code_signing_config()
                    .code_signing_config_arn(declared)
                    .send()
                    .await
                {
                    Ok(out) => Some(
                        out.code_signing_config()
                            .and_then(|c| c.code_signing_policies())
                            .and_then(|p| p.untrusted_artifact_on_deployment())
                            .map(|x| x.as_str().to_string())
                            .unwrap_or_else(|| "Warn".into()),
                    ),
                    Err(e) => match map_err("GetCodeSigningConfig", declared, e) {
                        ProviderError::NotFound(_) => None,
                        other => return Err(other),
                    },
                };
                self.inventory
                    .signing_policies
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(declared.to_string(), (Instant::now(), policy.clone()));
                policy
            }
        };
        Ok(CodeSigning {
            attached_arn: attached,
            declared_exists: policy.is_some(),
            declared_policy: policy,
        })
    }
}

/// Every item of a list Lambda pages with `Marker`, each page paced:
/// `page` reads the page at a marker and returns its items and the next
/// marker.
async fn paged<T, F, Fut>(pacer: &Pacer, mut page: F) -> Result<Vec<T>, ProviderError>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paged_lists_follow_the_marker_to_the_last_page() {
        let pacer = Pacer::per_second(1000);
        let asked = std::sync::Mutex::new(Vec::new());
        let items = paged(&pacer, |marker: Option<String>| {
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

    #[test]
    fn url_arns_name_their_alias() {
        assert_eq!(
            qualifier_of("arn:aws:lambda:eu-west-1:123456789012:function:f:live"),
            Some("live".to_string())
        );
        assert_eq!(qualifier_of("arn:aws:lambda:eu-west-1:123456789012:function:f"), None);
        assert_eq!(
            qualifier_of("arn:aws:lambda:eu-west-1:123456789012:function:f:$LATEST"),
            None
        );
    }
}

//! Reading one function's state from AWS.
//!
//! What has an account-wide form comes from the account's inventory
//! (`inventory.rs`). Only what has none is read per function, and only
//! when the posture declares the control that needs it: GetPolicy,
//! ListFunctionUrlConfigs and ListAliases (triggers; then GetPolicy per
//! alias and published version, none when there are none),
//! GetFunctionCodeSigningConfig (code signing), and GetPolicy and
//! GetPolicyVersion per managed policy attached to the role (declared
//! permissions; cached per account, so a policy many roles hold is read
//! once). Ownership markers come from the tagging API, or from ListTags
//! where that API cannot be read.

use super::client::{Clients, map_err};
use super::inventory::*;
use super::model::*;
use super::names;
use super::policy::{PolicyDocument, parse_resource_policy};
use super::quota::{Pacers, Quota};
use crate::api::Mode;
use crate::providers::{Posture, ProviderError};
use aws_sdk_lambda::types::FunctionConfiguration;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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

/// APIs read per function: more than this in front of one function is
/// reported, not read.
const MAX_APIS: usize = 20;

pub struct Observer<'a> {
    pub clients: &'a Clients,
    pub inventory: &'a Inventory,
    pub pacers: &'a Pacers,
    pub ttl: Duration,
    /// The Region of the function observed.
    pub region: &'a str,
}

/// Every function of the regions in scope with its tags: the shared
/// ListFunctions and the tagging API's full index. Where the tagging API
/// is denied, each function's tags are read with ListTags (paced, reported
/// once per account), never guessed.
pub async fn listed(
    clients: &Clients,
    inventory: &Inventory,
    pacers: &Pacers,
    ttl: Duration,
) -> Result<Vec<crate::fleet::Listed>, ProviderError> {
    let functions = inventory
        .functions
        .get_or_load(ttl, || load_functions(clients, pacers))
        .await?;
    let tags = inventory
        .all_tags
        .get_or_load(ttl, || load_all_tags(clients, pacers))
        .await?;
    let mut keys: Vec<_> = functions.by_region_name.keys().collect();
    keys.sort();
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let (region, name) = key;
        let arn = &functions.by_region_name[key].arn;
        let tags = match tags.0.get(region) {
            Some(Ok(tagged)) => tagged.get(arn).cloned().unwrap_or_default(),
            Some(Err(reason)) => {
                inventory.report_tagging_fallback(region, reason);
                let observer = Observer {
                    clients,
                    inventory,
                    pacers,
                    ttl,
                    region,
                };
                observer.listed_tags(arn).await?
            }
            None => {
                return Err(ProviderError::Config(format!(
                    "no tagging client for region {region}: its functions cannot be listed with their tags"
                )));
            }
        };
        out.push(crate::fleet::Listed {
            target: crate::api::FunctionTarget {
                aws: Some(crate::api::AwsFunctionRef {
                    name: name.clone(),
                    region: Some(region.clone()),
                }),
                azure: None,
                gcp: None,
            },
            owner: tags.get(names::OWNER_TAG).cloned(),
            identity: functions.by_region_name[key]
                .role
                .rsplit('/')
                .next()
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            tags,
        });
    }
    Ok(out)
}

impl Observer<'_> {
    pub async fn observe(&self, p: &Posture, name: &str) -> Result<ObservedFunction, ProviderError> {
        let spec = &p.spec;
        let functions = self
            .inventory
            .functions
            .get_or_load(self.ttl, || load_functions(self.clients, self.pacers))
            .await?;
        let (summary, versions) = match functions
            .by_region_name
            .get(&(self.region.to_string(), name.to_string()))
        {
            Some(s) => (
                s.clone(),
                Some(functions.versions.get(&s.arn).cloned().unwrap_or_default()),
            ),
            // Created after the inventory was taken, or gone: its versions
            // are read with it.
            None => (self.read_function(name).await?, None),
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
            region: self.region.to_string(),
            role_arn: summary.role.clone(),
            role_shared_with,
            vpc: summary.vpc.clone(),
            tracing_mode: summary.tracing_mode.clone(),
            logging: summary.logging.clone(),
            layers: summary.layers.clone(),
            ..ObservedFunction::default()
        };

        if let Some(identity) = &spec.identity {
            self.observe_identity(&mut o, identity, &functions).await?;
        }
        if let Some(t) = &spec.triggers {
            self.observe_triggers(&mut o, versions).await?;
            if t.aws.as_ref().is_some_and(|a| a.api_gateway.is_some()) {
                o.front_doors = Some(self.front_doors(&o).await);
            }
        }
        if p.mode() == Mode::Enforce {
            let indexed = self.indexed_tags(&fn_arn).await?;
            o.tags_may_lag = indexed.is_some();
            o.tags = Some(match indexed {
                Some(tags) => tags,
                None => self.listed_tags(&fn_arn).await?,
            });
        }
        if let Some(csc) = spec
            .supply_chain
            .as_ref()
            .and_then(|s| s.aws.as_ref())
            .and_then(|s| s.code_signing_config_arn.as_ref())
        {
            o.code_signing = Some(self.code_signing(&fn_arn, csc).await?);
        }
        self.observe_network(&mut o, spec.network.as_ref().and_then(|n| n.aws.as_ref()), &functions)
            .await?;
        if let Some(aws) = spec.observability.as_ref().and_then(|x| x.aws.as_ref())
            && (aws.log_retention_days.is_some() || aws.central_destination.is_some())
        {
            let name = super::logs::group_name(&o);
            let logs = self.clients.logs(self.region)?;
            o.log_group = Some(super::logs::observe(logs, &name, aws.central_destination.is_some()).await);
        }
        Ok(o)
    }

    /// The route tables and flow logs over the function's subnets, when the
    /// posture asks about them and the function is in a VPC.
    async fn observe_network(
        &self,
        o: &mut ObservedFunction,
        declared: Option<&crate::api::AwsNetwork>,
        functions: &super::inventory::FunctionIndex,
    ) -> Result<(), ProviderError> {
        let (Some(n), Some(vpc)) = (declared, o.vpc.as_ref().filter(|v| !v.subnet_ids.is_empty())) else {
            return Ok(());
        };
        if n.egress.is_some() {
            let groups: Vec<String> = vpc.security_group_ids.iter().cloned().collect();
            // Another function of the account in the same group shares it.
            let users = |group: &str| {
                functions
                    .by_region_name
                    .values()
                    .filter(|f| f.arn != o.arn)
                    .filter(|f| f.vpc.as_ref().is_some_and(|v| v.security_group_ids.contains(group)))
                    .map(|f| format!("function {}", f.name))
                    .collect()
            };
            o.egress = Some(super::routes::egress(self.clients.ec2(self.region)?, &groups, users).await);
        }
        if n.require_private_subnets {
            o.subnet_routes = Some(super::routes::subnet_routes(self.clients.ec2(self.region)?, vpc).await);
        }
        if n.require_flow_logs {
            o.flow_logs = Some(super::routes::flow_logs(self.clients.ec2(self.region)?, vpc).await);
        }
        Ok(())
    }

    /// The APIs the resource policies of the function, its aliases and its
    /// versions name for `apigateway.amazonaws.com`, each read on its own
    /// (at most `MAX_APIS`; the rest are reported as not read).
    async fn front_doors(&self, o: &ObservedFunction) -> FrontDoors {
        let labels: Vec<(String, &[super::policy::ResourceStatement])> = std::iter::once((
            "the function".to_string(),
            o.resource_policy.as_deref().unwrap_or_default(),
        ))
        .chain(o.qualifiers.iter().map(|q| {
            (
                format!("{} {}", q.kind.as_str().to_ascii_lowercase(), q.name),
                q.resource_policy.as_deref().unwrap_or_default(),
            )
        }))
        .collect();
        let (named, unnamed) = super::front_doors::named_apis(labels.iter().map(|(l, s)| (l.as_str(), *s)));
        let mut apis = Vec::new();
        for (i, (region, id)) in named.into_iter().enumerate() {
            let read = if i < MAX_APIS {
                super::apigw::read(
                    self.clients,
                    &self.pacers.get(Quota::ApiGateway, &region),
                    &region,
                    &id,
                    &o.arn,
                )
                .await
            } else {
                ApiRead::NotObserved(format!("over the {MAX_APIS} APIs read per function"))
            };
            apis.push(ObservedApi { id, region, read });
        }
        FrontDoors { apis, unnamed }
    }

    fn lambda(&self) -> Result<&aws_sdk_lambda::Client, ProviderError> {
        self.clients.lambda(self.region)
    }

    /// Wait for a slot of `quota` in the function's Region.
    async fn pace(&self, quota: Quota) {
        self.pacers.get(quota, self.region).ready().await;
    }

    /// The role and its policies, the dedicated role if it exists, and who
    /// else runs as the role when editing it in place is asked for.
    async fn observe_identity(
        &self,
        o: &mut ObservedFunction,
        identity: &crate::api::IdentityControl,
        functions: &FunctionIndex,
    ) -> Result<(), ProviderError> {
        let roles = self
            .inventory
            .roles
            .get_or_load(self.ttl, || load_roles(self.clients, self.pacers))
            .await?;
        o.role = roles.by_arn.get(&o.role_arn).cloned();
        if identity.edit_in_place_if_exclusive {
            o.role_users = Some(self.role_users(&o.arn, &o.role_arn, functions).await?);
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
        versions: Option<Vec<String>>,
    ) -> Result<(), ProviderError> {
        let mappings = self
            .inventory
            .mappings
            .get_or_load(self.ttl, || load_mappings(self.clients, self.pacers))
            .await?;
        o.event_source_mappings = mappings.0.get(&o.arn).cloned().unwrap_or_default();
        o.resource_policy = self.policy(&o.arn, None).await?;
        let mut urls = self.urls(&o.arn).await?;
        o.url = urls.remove(&None);
        let versions = match versions {
            Some(v) => v,
            None => self.versions(&o.arn).await?,
        };
        o.qualifiers = self.qualifiers(&o.arn, versions, urls).await?;
        Ok(())
    }

    /// Who else runs as the role: every version of every function in scope
    /// but this function's `$LATEST`.
    async fn role_users(
        &self,
        fn_arn: &str,
        role_arn: &str,
        functions: &FunctionIndex,
    ) -> Result<RoleUsers, ProviderError> {
        let enabled = self
            .inventory
            .regions_enabled
            .get_or_load(self.ttl, || load_enabled_regions(self.clients))
            .await?;
        let own = [fn_arn.to_string(), format!("{fn_arn}:$LATEST")];
        Ok(RoleUsers {
            others: functions
                .uses_by_role
                .get(role_arn)
                .map(|v| v.iter().filter(|a| !own.contains(a)).cloned().collect())
                .unwrap_or_default(),
            regions_scanned: functions.regions.clone(),
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
        self.pace(Quota::Iam).await;
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
        self.pace(Quota::Iam).await;
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

    async fn read_function(&self, name: &str) -> Result<FunctionSummary, ProviderError> {
        self.pace(Quota::LambdaControlPlane).await;
        let out = self
            .lambda()?
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
        arn: &str,
        qualifier: Option<&str>,
    ) -> Result<Option<Vec<super::policy::ResourceStatement>>, ProviderError> {
        self.pace(Quota::GetPolicy).await;
        let target = qualified(arn, qualifier);
        match self
            .lambda()?
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
    async fn urls(&self, arn: &str) -> Result<BTreeMap<Option<String>, FunctionUrl>, ProviderError> {
        let lambda = self.lambda()?;
        let urls = paged(
            self.pacers.get(Quota::LambdaControlPlane, self.region),
            |marker| async move {
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
            },
        );
        Ok(urls.await?.into_iter().collect())
    }

    /// Every alias and published version, each with its own resource policy
    /// and URL. The versions come from the inventory; the aliases have no
    /// account-wide list, so they cost one ListAliases, and nothing more
    /// when there are none (the common case).
    async fn qualifiers(
        &self,
        arn: &str,
        versions: Vec<String>,
        mut urls: BTreeMap<Option<String>, FunctionUrl>,
    ) -> Result<Vec<ObservedQualifier>, ProviderError> {
        let lambda = self.lambda()?;
        let aliases = paged(
            self.pacers.get(Quota::LambdaControlPlane, self.region),
            |marker| async move {
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
            },
        );
        let mut found: Vec<(QualifierKind, String)> = aliases.await?;
        found.extend(versions.into_iter().map(|v| (QualifierKind::Version, v)));
        // A URL on an alias created after the alias list was read is still
        // an invocation path.
        for q in urls.keys().flatten() {
            if !found.iter().any(|(_, n)| n == q) {
                found.push((QualifierKind::Alias, q.clone()));
            }
        }
        let mut out = Vec::with_capacity(found.len());
        for (kind, name) in found {
            let resource_policy = self.policy(arn, Some(&name)).await?;
            out.push(ObservedQualifier {
                kind,
                url: urls.remove(&Some(name.clone())),
                name,
                resource_policy,
            });
        }
        Ok(out)
    }

    /// The published versions of a function the inventory does not hold yet.
    async fn versions(&self, arn: &str) -> Result<Vec<String>, ProviderError> {
        let lambda = self.lambda()?;
        paged(
            self.pacers.get(Quota::LambdaControlPlane, self.region),
            |marker| async move {
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
                    .filter(|v| *v != "$LATEST")
                    .map(str::to_string);
                Ok((published.collect(), page.next_marker().map(str::to_string)))
            },
        )
        .await
    }

    /// The function's owner marker from the tagging API's index, or None
    /// where that API could not be read in the Region (reported once per
    /// account).
    async fn indexed_tags(&self, arn: &str) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
        let index = self
            .inventory
            .tags
            .get_or_load(self.ttl, || load_tags(self.clients, self.pacers))
            .await?;
        match index.0.get(self.region) {
            Some(Ok(tagged)) => Ok(Some(tagged.get(arn).cloned().unwrap_or_default())),
            Some(Err(reason)) => {
                self.inventory.report_tagging_fallback(self.region, reason);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The function's own tags (ListTags): what a write decides ownership
    /// on, since the tagging API may lag behind a TagResource.
    pub async fn listed_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        self.pace(Quota::LambdaControlPlane).await;
        let out = self
            .lambda()?
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

    async fn code_signing(&self, arn: &str, declared: &str) -> Result<CodeSigning, ProviderError> {
        self.pace(Quota::LambdaControlPlane).await;
        let lambda = self.lambda()?;
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
                self.pace(Quota::LambdaControlPlane).await;
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

#[cfg(test)]
mod tests {
    use super::*;

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

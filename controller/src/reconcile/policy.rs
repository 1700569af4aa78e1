//! Reconciling one PosturePolicy, as named steps: validate → resolve the
//! account → connect → list the account's functions (the shared inventory)
//! → decide what governs each (`fleet::assign`) → create, update and delete
//! the policy's children → report.
//!
//! A child is an ordinary FunctionPosture (the posture reconciler enforces
//! it, writes its status and events, and releases its ownership marker when
//! it is deleted), with an ownerReference to the policy and the
//! `zerofn.dev/policy` label. Deleting the policy deletes its children
//! first (its finalizer waits until they are gone), so every marker is
//! released even where no garbage collector runs.

use super::account_status::{self, Reach};
use super::connect::{Unusable, connect};
use super::context::{Context, MANAGER, synced};
use super::error::Error;
use super::posture::{each_live_posture, resolve_account};
use crate::accounts::{self, ResolvedAccount};
use crate::api::{
    API_VERSION, FunctionPosture, PosturePolicy, PosturePolicyStatus, SupersededFunction, duration, validate,
};
use crate::fleet::children::{self, Changes, Existing, POLICY_LABEL};
use crate::fleet::{self, Assignment, Candidate, Governor, Listed, PolicyId, summary};
use crate::providers::ProviderError;
use crate::reason::Reason;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Held until every child is gone.
pub const FINALIZER: &str = "zerofn.dev/delete-children";
/// Field manager of the children's spec (the policy's, not the posture
/// reconciler's: its status writes never touch the spec).
pub const CHILD_MANAGER: &str = "zerofn-policy";
/// Child writes in flight at once.
const WRITES_AT_ONCE: usize = 16;
/// How soon a policy whose children are not all Ready looks again: its
/// status sums theirs.
const SETTLING: Duration = Duration::from_secs(5);
/// Children per list page.
const PAGE: u32 = 500;

/// What a policy reconcile shares: the controller's context and the
/// policies (for precedence between them).
pub struct PolicyContext {
    pub ctx: Arc<Context>,
    pub policies: Store<PosturePolicy>,
}

pub async fn reconcile(policy: Arc<PosturePolicy>, pctx: Arc<PolicyContext>) -> Result<Action, Error> {
    let api: Api<PosturePolicy> = Api::namespaced(pctx.ctx.client.clone(), &policy.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, policy, |event| async {
        match event {
            Finalizer::Apply(p) => apply(&p, &pctx).await,
            Finalizer::Cleanup(p) => cleanup(&p, &pctx.ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

pub fn error_policy(policy: Arc<PosturePolicy>, err: &Error, _: Arc<PolicyContext>) -> Action {
    tracing::warn!(policy = %policy.name_any(), error = %err, "policy reconcile failed");
    Action::requeue(Duration::from_secs(5).mul_f64(0.8 + fastrand::f64() * 0.4))
}

/// Why a policy's reconcile ended before its children were synced.
struct NotListed {
    reason: Reason,
    message: String,
    /// Retry with backoff instead of waiting for the resync.
    retry: Option<ProviderError>,
}

impl NotListed {
    fn new(reason: Reason, message: String) -> Self {
        NotListed {
            reason,
            message,
            retry: None,
        }
    }
}

async fn apply(policy: &PosturePolicy, pctx: &PolicyContext) -> Result<Action, Error> {
    let ctx = &pctx.ctx;
    let resync = policy
        .spec
        .template
        .resync_interval
        .as_deref()
        .and_then(duration::parse)
        .unwrap_or(ctx.settings.resync);
    match steps(policy, pctx).await? {
        Ok(ready) => Ok(Action::requeue(if ready { resync } else { SETTLING.min(resync) })),
        Err(n) => {
            let now = jiff::Timestamp::now().to_string();
            let status = summary::not_listed(
                policy.status.as_ref(),
                policy.metadata.generation,
                &now,
                n.reason,
                n.message,
            );
            write_status(ctx, policy, status).await?;
            match n.retry {
                Some(e) => Err(e.into()),
                None => Ok(Action::requeue(resync)),
            }
        }
    }
}

/// The steps; Ok(Ok(ready)) when the children were synced.
async fn steps(policy: &PosturePolicy, pctx: &PolicyContext) -> Result<Result<bool, NotListed>, Error> {
    let ctx = &pctx.ctx;
    if let Err(n) = check_spec(policy) {
        return Ok(Err(n));
    }
    let account = match resolve(ctx, policy).await {
        Ok(a) => a,
        Err(n) => return Ok(Err(n)),
    };
    let listed = match list_functions(ctx, &account).await {
        Ok(l) => l,
        Err(n) => return Ok(Err(n)),
    };
    // Precedence needs every hand-written posture and every other policy:
    // before the first full lists, a child could be made for a function a
    // posture already governs.
    tokio::join!(synced(&ctx.postures), synced(&pctx.policies));
    let plan = govern(pctx, policy, &account, &listed);
    let id = policy_id(policy);
    let governed = plan.assignment.children_of(&id).map(|i| listed[i].target.clone());
    let desired = children::desired(&policy.name_any(), &policy.spec, governed);
    let governed_count = desired.len();
    let (existing, tally) = list_children(ctx, policy).await?;
    let changes = children::changes(desired, &existing);
    drop(existing);
    sync_children(ctx, policy, &changes).await?;
    let tally = if changes.is_empty() {
        tally
    } else {
        list_children(ctx, policy).await?.1
    };
    let superseded = plan.superseded_of(&id, &listed);
    let now = jiff::Timestamp::now().to_string();
    let status = summary::build(summary::Input {
        generation: policy.metadata.generation,
        now: &now,
        previous: policy.status.as_ref(),
        matched: governed_count + superseded.len(),
        governed: governed_count,
        superseded,
        children: tally,
    });
    let ready = status.conditions.iter().any(|c| c.status == "True");
    write_status(ctx, policy, status).await?;
    Ok(Ok(ready))
}

/// Rules the API server may not have enforced (an older CRD, a stand-in).
fn check_spec(policy: &PosturePolicy) -> Result<(), NotListed> {
    let errors = validate::policy(&policy.spec);
    if errors.is_empty() {
        return Ok(());
    }
    let message = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
    Err(NotListed::new(Reason::InvalidSpec, message))
}

/// The policy's account, under a posture's tenancy rules and ceiling.
async fn resolve(ctx: &Context, policy: &PosturePolicy) -> Result<ResolvedAccount, NotListed> {
    ctx.accounts_synced().await;
    let ns = policy.namespace().unwrap_or_default();
    let child = policy.spec.posture_for(fleet::placeholder(&policy.spec));
    let account = resolve_account(ctx, &ns, &child).map_err(|r| NotListed::new(r.reason, r.message))?;
    accounts::within_ceiling(&account, &child).map_err(|r| NotListed::new(r.reason, r.message))?;
    Ok(account)
}

/// The account's functions, from its shared inventory.
async fn list_functions(ctx: &Context, account: &ResolvedAccount) -> Result<Vec<Listed>, NotListed> {
    let provider = match connect(ctx, account).await {
        Ok(p) => p,
        Err(Unusable::Cloud(e)) => {
            return Err(NotListed {
                reason: e.reason(),
                message: e.to_string(),
                retry: Some(e),
            });
        }
        Err(u) => return Err(NotListed::new(u.reason(), u.to_string())),
    };
    match provider.functions().await {
        Ok(l) => Ok(l),
        Err(e) => {
            if account_status::is_account_error(&e) {
                account_status::report(ctx, account, Reach::Failed(&e)).await;
            }
            Err(NotListed {
                reason: e.reason(),
                message: format!("listing the functions of {}: {e}", account.key),
                retry: Some(e),
            })
        }
    }
}

fn policy_id(p: &PosturePolicy) -> PolicyId {
    PolicyId {
        namespace: p.namespace().unwrap_or_default(),
        name: p.name_any(),
    }
}

/// What governs each listed function, and the hand-written postures.
struct Plan {
    assignment: Assignment,
    /// The hand-written posture of each function it governs, by index.
    postures: HashMap<usize, String>,
}

impl Plan {
    fn superseded_of(&self, id: &PolicyId, listed: &[Listed]) -> Vec<SupersededFunction> {
        self.assignment
            .superseded
            .iter()
            .filter(|s| &s.policy == id)
            .map(|s| SupersededFunction {
                function: fleet::function_label(&listed[s.function].target),
                governed_by: match &s.winner {
                    Governor::Posture => self
                        .postures
                        .get(&s.function)
                        .cloned()
                        .unwrap_or_else(|| s.winner.to_string()),
                    Governor::Policy(p) => format!("PosturePolicy {p}"),
                },
            })
            .collect()
    }
}

/// One assignment over the account's functions: the hand-written postures
/// that target them (through any account object that reaches the same
/// real account), and every policy that can select them.
fn govern(pctx: &PolicyContext, me: &PosturePolicy, account: &ResolvedAccount, listed: &[Listed]) -> Plan {
    let ctx = &pctx.ctx;
    let keys: Vec<String> = listed.iter().map(|f| fleet::function_key(account, &f.target)).collect();
    let index: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let mut postures = HashMap::new();
    each_live_posture(ctx, |p, ns, spec, acct| {
        if is_child(&p.metadata) {
            return;
        }
        if let Some(i) = index.get(fleet::function_key(&acct, &spec.function).as_str()) {
            postures.insert(*i, format!("FunctionPosture {ns}/{}", p.name_any()));
        }
    });
    let hand_written: BTreeSet<usize> = postures.keys().copied().collect();
    let others: Vec<(Arc<PosturePolicy>, BTreeSet<usize>)> = pctx
        .policies
        .state()
        .into_iter()
        .filter(|p| p.uid() != me.uid() && p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.spec.cloud() == me.spec.cloud())
        .filter_map(|p| {
            let ns = p.namespace().unwrap_or_default();
            let child = p.spec.posture_for(fleet::placeholder(&p.spec));
            let acct = resolve_account(ctx, &ns, &child).ok()?;
            let scope: BTreeSet<usize> = listed
                .iter()
                .enumerate()
                .filter(|(i, f)| fleet::function_key(&acct, &f.target) == keys[*i])
                .map(|(i, _)| i)
                .collect();
            Some((p, scope))
        })
        .collect();
    let created = |p: &PosturePolicy| p.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string());
    let mut candidates = vec![Candidate {
        id: policy_id(me),
        priority: me.spec.priority,
        created: created(me),
        selector: &me.spec.selector,
        scope: None,
    }];
    candidates.extend(others.iter().map(|(p, scope)| Candidate {
        id: policy_id(p),
        priority: p.spec.priority,
        created: created(p),
        selector: &p.spec.selector,
        scope: Some(scope),
    }));
    Plan {
        assignment: fleet::assign(listed, &hand_written, &candidates),
        postures,
    }
}

/// Whether a posture is a policy's child: it names the policy as its
/// controlling owner.
pub fn is_child(meta: &ObjectMeta) -> bool {
    meta.owner_references.as_ref().is_some_and(|o| {
        o.iter()
            .any(|r| r.kind == "PosturePolicy" && r.controller == Some(true))
    })
}

fn owned_by(meta: &ObjectMeta, policy: &PosturePolicy) -> bool {
    let uid = policy.uid();
    meta.owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| Some(&r.uid) == uid.as_ref()))
}

/// The policy's children as the API server holds them (read, not cached:
/// a child created a moment ago must not be created twice), and their
/// status summed. Read a page at a time: only each child's name, a digest
/// of its spec and the running tally are kept, never 10,000 statuses or
/// specs at once. A child being deleted is neither counted nor judged.
async fn list_children(ctx: &Context, policy: &PosturePolicy) -> Result<(Vec<Existing>, summary::Tally), Error> {
    let api: Api<DeserializeGuard<FunctionPosture>> =
        Api::namespaced(ctx.client.clone(), &policy.namespace().unwrap_or_default());
    let mut params = ListParams::default()
        .labels(&format!("{POLICY_LABEL}={}", policy.name_any()))
        .limit(PAGE);
    let (mut existing, mut tally) = (Vec::new(), summary::Tally::default());
    loop {
        let page = api.list(&params).await?;
        for item in page.items {
            let (meta, spec, status) = match item.0 {
                Ok(fp) => (fp.metadata, Some(fp.spec), fp.status),
                Err(invalid) => (invalid.metadata, None, None),
            };
            if !owned_by(&meta, policy) {
                continue;
            }
            let name = meta.name.clone().unwrap_or_default();
            let deleting = meta.deletion_timestamp.is_some();
            if !deleting {
                tally.add(&name, meta.generation, status.as_ref());
            }
            let digest = spec.as_ref().map(children::spec_digest);
            existing.push(Existing { name, digest, deleting });
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => return Ok((existing, tally)),
        }
    }
}

/// The child object: the policy's spec for one function, owned by the
/// policy and labelled with its name.
fn child_object(policy: &PosturePolicy, child: &children::Child) -> FunctionPosture {
    let mut fp = FunctionPosture::new(&child.name, policy.spec.posture_for(child.target.clone()));
    fp.metadata.namespace = policy.namespace();
    fp.metadata.labels = Some([(POLICY_LABEL.to_string(), policy.name_any())].into());
    fp.metadata.owner_references = policy.controller_owner_ref(&()).map(|r| vec![r]);
    fp
}

/// One write of a child.
enum Write {
    Create(Box<FunctionPosture>),
    Update(String, serde_json::Value),
    Delete(String),
}

async fn write(api: Api<FunctionPosture>, w: Write) -> Result<(), Error> {
    match w {
        Write::Create(fp) => match api.create(&PostParams::default(), &fp).await {
            Ok(_) => {}
            // A posture the policy does not own holds the child's name: it
            // is never taken over. The function stays without a child, so
            // the policy is not Ready and its message counts it.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tracing::warn!(child = ?fp.metadata.name, "a FunctionPosture the policy does not own has the child's name");
            }
            Err(e) => return Err(e.into()),
        },
        Write::Update(name, patch) => {
            let params = PatchParams::apply(CHILD_MANAGER).force();
            api.patch(&name, &params, &Patch::Apply(&patch)).await?;
        }
        Write::Delete(name) => match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

/// The apply patch of a child: its whole object, as this manager owns it.
fn child_patch(policy: &PosturePolicy, child: &children::Child) -> Result<serde_json::Value, Error> {
    let mut v = serde_json::to_value(child_object(policy, child))?;
    v["apiVersion"] = API_VERSION.into();
    v["kind"] = "FunctionPosture".into();
    Ok(v)
}

/// Create, update and delete children: one write each. A create never
/// overwrites a posture someone else wrote under the same name (it fails
/// instead, and the reconcile retries); an update forces only the spec this
/// manager owns.
async fn sync_children(ctx: &Context, policy: &PosturePolicy, changes: &Changes) -> Result<(), Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let api: Api<FunctionPosture> = Api::namespaced(ctx.client.clone(), &policy.namespace().unwrap_or_default());
    let mut writes = Vec::new();
    for c in &changes.create {
        writes.push(Write::Create(Box::new(child_object(policy, c))));
    }
    for c in &changes.update {
        writes.push(Write::Update(c.name.clone(), child_patch(policy, c)?));
    }
    writes.extend(changes.delete.iter().cloned().map(Write::Delete));
    futures::stream::iter(writes)
        .map(|w| write(api.clone(), w))
        .buffer_unordered(WRITES_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await?;
    let note = format!(
        "children: {} created, {} updated, {} deleted",
        changes.create.len(),
        changes.update.len(),
        changes.delete.len()
    );
    tracing::info!(policy = %policy_id(policy), "{note}");
    let event = Event {
        type_: EventType::Normal,
        reason: Reason::ChildrenChanged.to_string(),
        note: Some(note),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &policy.object_ref(&())).await {
        tracing::debug!(error = %e, "could not publish an event");
    }
    Ok(())
}

async fn write_status(ctx: &Context, policy: &PosturePolicy, status: PosturePolicyStatus) -> Result<(), Error> {
    if policy.status.as_ref().is_some_and(|s| summary::same(s, &status)) {
        return Ok(());
    }
    let api: Api<PosturePolicy> = Api::namespaced(ctx.client.clone(), &policy.namespace().unwrap_or_default());
    let patch = serde_json::json!({ "apiVersion": API_VERSION, "kind": "PosturePolicy", "status": status });
    api.patch_status(
        &policy.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Delete every child; the policy goes once they are gone (each child's
/// own finalizer releases its function's ownership marker first).
async fn cleanup(policy: &PosturePolicy, ctx: &Context) -> Result<Action, Error> {
    let (existing, _) = list_children(ctx, policy).await?;
    if existing.is_empty() {
        return Ok(Action::await_change());
    }
    let changes = Changes {
        delete: existing
            .iter()
            .filter(|e| !e.deleting)
            .map(|e| e.name.clone())
            .collect(),
        ..Changes::default()
    };
    sync_children(ctx, policy, &changes).await?;
    Err(Error::ChildrenRemain(existing.len()))
}

/// Every policy, for a posture's change: a hand-written posture may take a
/// function from a policy or give one back; a child's change shows in its
/// policy's status.
pub fn policies_to_requeue(policies: &Store<PosturePolicy>, meta: &ObjectMeta) -> Vec<ObjectRef<PosturePolicy>> {
    let ns = meta.namespace.clone().unwrap_or_default();
    if is_child(meta) {
        return meta
            .labels
            .as_ref()
            .and_then(|l| l.get(POLICY_LABEL))
            .map(|name| vec![ObjectRef::new(name).within(&ns)])
            .unwrap_or_default();
    }
    policies
        .state()
        .iter()
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

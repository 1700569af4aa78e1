//! zerofn end to end: the built binary as the controller, the Kubernetes API
//! stand-in, LocalStack, and `/usr/bin/kubectl`, one scenario per test.
#![forbid(unsafe_code)]

use std::time::Duration;
use zerofn_e2e::{CONTROLLER_USER, Controller, FAST, World, eventually};

const READY: Duration = Duration::from_secs(120);

fn single(world: &World, identity: &str) -> Controller {
    let mut args = FAST.to_vec();
    args.extend_from_slice(&["--leader-elect", "false"]);
    world.controller(identity, &args)
}

async fn wait_ready(world: &World, ns: &str, name: &str, c: &Controller) {
    let r = world.wait_for(ns, name, "Ready", READY).await;
    if !r.ok {
        // The whole log outlives the test's temporary directory.
        let kept = std::env::temp_dir().join(format!("zerofn-e2e-{}-{name}.log", c.identity));
        let mut log = c.log();
        for f in [&world.fleet.orders, &world.fleet.billing] {
            let cfg = world.function(f).await;
            log.push_str(&format!(
                "\n# {f}: State={:?} LastUpdateStatus={:?} reason={:?}\n",
                cfg.state(),
                cfg.last_update_status(),
                cfg.last_update_status_reason()
            ));
        }
        log.push_str("\n# Kubernetes API requests\n");
        for r in world.kube.requests() {
            log.push_str(&format!("{} {}?{} -> {}\n", r.method, r.path, r.query, r.status));
        }
        let _ = std::fs::write(&kept, &log);
        panic!(
            "fp/{name} not Ready: {}\nstatus: {}\ncontroller log (all of it in {}):\n{}",
            r.out,
            world
                .posture(ns, name)
                .map(|p| p["status"].to_string())
                .unwrap_or_default(),
            kept.display(),
            tail(&c.log())
        );
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// orders-api and billing-worker no longer share a role, and orders-api's
/// holds only zerofn's least-privilege policy. Which role is whose depends on
/// the order the two were fixed in: once one has moved to a role of its own,
/// the formerly shared role is the other's alone and is made least-privilege
/// in place — both end states are compliant.
async fn assert_own_least_privileged_roles(world: &World) {
    let role_of = |f: aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput| {
        f.role()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let orders_role = role_of(world.function(&world.fleet.orders).await);
    let billing_role = role_of(world.function(&world.fleet.billing).await);
    assert_ne!(orders_role, billing_role);
    let inline = world
        .aws
        .iam
        .list_role_policies()
        .role_name(&orders_role)
        .send()
        .await
        .expect("inline policies");
    assert_eq!(inline.policy_names(), ["zerofn-least-privilege"], "{orders_role}");
    let attached = world
        .aws
        .iam
        .list_attached_role_policies()
        .role_name(&orders_role)
        .send()
        .await
        .expect("attached policies");
    assert!(
        attached.attached_policies().is_empty(),
        "{:?}",
        attached.attached_policies()
    );
    // Nothing was made twice: at most one minted role per function.
    let roles = world.aws.iam.list_roles().send().await.expect("roles");
    for f in ["orders-api", "billing-worker"] {
        let minted: Vec<&str> = roles
            .roles()
            .iter()
            .map(|r| r.role_name())
            .filter(|n| n.starts_with("zerofn-") && n.contains(&format!("{}{f}", world.fleet.prefix)))
            .collect();
        assert!(minted.len() <= 1, "{f}: {minted:?}");
    }
}

async fn enforce_fleet(world: &World, c: &Controller) {
    world.apply_file(&world.manifests.account).await;
    world.apply_file(&world.manifests.enforce).await;
    wait_ready(world, "shop", "orders-api", c).await;
    wait_ready(world, "shop", "billing-worker", c).await;
    // The controller runs as the chart's ServiceAccount: a permission the
    // chart lacks would show here as a refused request.
    let forbidden = world.controller_forbidden();
    assert!(forbidden.is_empty(), "the chart lacks permissions: {forbidden:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postures_become_ready_and_the_cloud_is_fixed() {
    let world = World::start("ready").await;
    let c = single(&world, "zerofn-0");
    enforce_fleet(&world, &c).await;

    // The cloud is fixed: a dedicated role, IAM-authenticated URL, VPC,
    // tracing and structured logs, no public invoke, ownership claimed.
    let orders = world.function(&world.fleet.orders).await;
    assert_own_least_privileged_roles(&world).await;
    assert_eq!(
        orders.tracing_config().and_then(|t| t.mode()).map(|m| m.as_str()),
        Some("Active")
    );
    assert_eq!(
        orders.logging_config().and_then(|l| l.log_format()).map(|f| f.as_str()),
        Some("JSON")
    );
    let mut subnets = orders.vpc_config().map(|v| v.subnet_ids().to_vec()).unwrap_or_default();
    subnets.sort();
    let mut want = world.fleet.subnets.clone();
    want.sort();
    assert_eq!(subnets, want);
    let url = world
        .aws
        .lambda
        .get_function_url_config()
        .function_name(&world.fleet.orders)
        .send()
        .await
        .expect("the URL stays");
    assert_eq!(url.auth_type().as_str(), "AWS_IAM");
    let policy = world.resource_policy(&world.fleet.orders).await.unwrap_or_default();
    assert!(!policy.to_string().contains("\"Principal\":\"*\""), "{policy}");
    assert_eq!(
        world
            .tags(&world.fleet.orders)
            .await
            .get("zerofn.dev/owner")
            .map(String::as_str),
        Some("default/shop/orders-api")
    );
    assert!(c.writes() > 0);

    // kubectl shows the printer columns for every namespace...
    let table = world.kubectl_ok(&["get", "fp", "-A"]).await;
    let header = table.lines().next().unwrap_or_default();
    for col in [
        "NAMESPACE",
        "NAME",
        "CLOUD",
        "FUNCTION",
        "MODE",
        "READY",
        "COMPLIANT",
        "AGE",
    ] {
        assert!(header.contains(col), "column {col} missing:\n{table}");
    }
    let row = table.lines().find(|l| l.contains("orders-api")).unwrap_or_default();
    for cell in ["shop", "aws", &world.fleet.orders, "Enforce", "True"] {
        assert!(row.contains(cell), "{cell} missing in: {row}");
    }
    // ...and describe shows the conditions and the events of the enforcement.
    let described = world.kubectl_ok(&["describe", "fp", "orders-api", "-n", "shop"]).await;
    for needle in [
        "Conditions:",
        "Ready",
        "Synced",
        "IdentityCompliant",
        "Events:",
        "Enforced",
    ] {
        assert!(described.contains(needle), "{needle} missing:\n{described}");
    }
    // The controller reports itself ready and counts what it did.
    assert!(c.ready());
    assert!(c.metric("zerofn_reconciles_total") >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_behind_zerofns_back_is_reverted_within_one_resync() {
    let world = World::start("drift").await;
    let c = single(&world, "zerofn-0");
    enforce_fleet(&world, &c).await;

    // Someone turns tracing off and reopens the URL to anyone.
    let f = &world.fleet.orders;
    world
        .aws
        .lambda
        .update_function_configuration()
        .function_name(f)
        .tracing_config(
            aws_sdk_lambda::types::TracingConfig::builder()
                .mode(aws_sdk_lambda::types::TracingMode::PassThrough)
                .build(),
        )
        .send()
        .await
        .expect("drift applied");
    world.aws.wait_ready(f).await.expect("function settles");
    world
        .aws
        .lambda
        .update_function_url_config()
        .function_name(f)
        .auth_type(aws_sdk_lambda::types::FunctionUrlAuthType::None)
        .send()
        .await
        .expect("drift applied");

    // One resync (4s) plus the inventory TTL and the enforcement itself.
    let reverted = eventually(Duration::from_secs(30), || async {
        let cfg = world.function(f).await;
        let url = world.aws.lambda.get_function_url_config().function_name(f).send().await;
        cfg.tracing_config().and_then(|t| t.mode()).map(|m| m.as_str()) == Some("Active")
            && url.is_ok_and(|u| u.auth_type().as_str() == "AWS_IAM")
    })
    .await;
    assert!(reverted, "drift not reverted:\n{}", tail(&c.log()));
    let described = world.kubectl_ok(&["describe", "fp", "orders-api", "-n", "shop"]).await;
    assert!(described.contains("Enforced"), "{described}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_posture_reports_drift_and_changes_nothing() {
    let world = World::start("audit").await;
    let c = single(&world, "zerofn-0");
    let f = &world.fleet.reports;
    let before = world.function(f).await;
    let policy_before = world.resource_policy(f).await;
    world.apply_file(&world.manifests.account).await;
    world.apply_file(&world.manifests.audit).await;

    // Audit observes, reports the drift and stays not Ready.
    let reported = eventually(READY, || async {
        world.condition("shop", "reports", "Ready") == Some(("False".into(), "Drift".into()))
    })
    .await;
    assert!(reported, "no drift reported: {:?}", world.posture("shop", "reports"));
    assert_eq!(
        world.condition("shop", "reports", "Synced").map(|c| c.0),
        Some("True".into())
    );
    let status = world
        .posture("shop", "reports")
        .map(|p| p["status"].clone())
        .unwrap_or_default();
    let findings = status["findings"].to_string();
    assert!(
        findings.contains("tracing") || findings.contains("Tracing"),
        "{findings}"
    );
    let table = world.kubectl_ok(&["get", "fp", "reports", "-n", "shop"]).await;
    assert!(table.contains("Audit") && table.contains("False"), "{table}");

    // Let a few resyncs pass: still nothing written, nothing changed.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(c.writes(), 0, "{:?}", c.cloud_calls());
    assert!(c.total_calls() > 0, "the controller never looked");
    let after = world.function(f).await;
    assert_eq!(before.role(), after.role());
    assert_eq!(before.tracing_config(), after.tracing_config());
    assert_eq!(policy_before, world.resource_policy(f).await);
    assert!(!world.tags(f).await.contains_key("zerofn.dev/owner"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_posture_releases_ownership() {
    let world = World::start("delete").await;
    let c = single(&world, "zerofn-0");
    enforce_fleet(&world, &c).await;
    let f = &world.fleet.orders;
    assert!(world.tags(f).await.contains_key("zerofn.dev/owner"));
    let hardened = world.function(f).await;

    // kubectl delete waits for the finalizer: by the time it returns, the
    // marker is gone from the cloud and the object from the cluster.
    let out = world
        .kubectl_ok(&["delete", "fp", "orders-api", "-n", "shop", "--timeout=60s"])
        .await;
    assert!(out.contains("deleted"), "{out}");
    assert!(world.posture("shop", "orders-api").is_none());
    assert!(!world.tags(f).await.contains_key("zerofn.dev/owner"));
    // Hardening stays; nothing was deleted or reverted.
    let after = world.function(f).await;
    assert_eq!(hardened.role(), after.role());
    assert_eq!(hardened.tracing_config(), after.tracing_config());
    assert_eq!(
        hardened.vpc_config().map(|v| v.subnet_ids().len()),
        after.vpc_config().map(|v| v.subnet_ids().len())
    );
    let role = after
        .role()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        world.aws.iam.get_role().role_name(&role).send().await.is_ok(),
        "role {role} deleted"
    );
    // The other posture keeps its claim.
    assert!(world.tags(&world.fleet.billing).await.contains_key("zerofn.dev/owner"));
    let events = world
        .kubectl_ok(&["get", "events", "-n", "shop", "-o", "jsonpath={.items[*].reason}"])
        .await;
    assert!(events.split_whitespace().any(|r| r == "OwnershipReleased"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_posture_in_another_namespace_cannot_use_the_account() {
    let world = World::start("tenancy").await;
    let c = single(&world, "zerofn-0");
    world.apply_file(&world.manifests.account).await;
    let f = &world.fleet.orders;
    let before = world.function(f).await;
    world
        .apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: intruder}}\n---\n\
             apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: grab, namespace: intruder}}\n\
             spec:\n  accountRef: {{name: stand-in}}\n  function: {{aws: {{name: {f}}}}}\n  mode: Enforce\n  \
             observability: {{tracing: Active, structuredLogs: true}}\n---\n\
             apiVersion: zerofn.dev/v1alpha1\nkind: ClusterCloudAccount\nmetadata: {{name: shared}}\n\
             spec:\n  allowedNamespaces: [shop]\n  aws: {{accountId: \"000000000000\", region: eu-west-1, endpoint: {}, credentialsSecretRef: {{name: creds}}}}\n---\n\
             apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: grab-cluster, namespace: intruder}}\n\
             spec:\n  accountRef: {{name: shared, kind: ClusterCloudAccount}}\n  function: {{aws: {{name: {f}}}}}\n  mode: Enforce\n  \
             observability: {{tracing: Active, structuredLogs: true}}\n",
            world.aws.endpoint
        ))
        .await;

    // A CloudAccount of another namespace does not exist for this posture;
    // a ClusterCloudAccount that does not admit the namespace refuses it.
    for (name, reason) in [("grab", "AccountNotFound"), ("grab-cluster", "AccountNotAllowed")] {
        let refused = eventually(READY, || async {
            world.condition("intruder", name, "Ready") == Some(("False".into(), reason.into()))
        })
        .await;
        assert!(
            refused,
            "{name}: {:?}\n{}",
            world.posture("intruder", name),
            tail(&c.log())
        );
    }
    let r = world
        .wait_for("intruder", "grab", "Ready", Duration::from_secs(2))
        .await;
    assert!(!r.ok);
    // Nothing reached the cloud on their behalf.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(c.writes(), 0, "{:?}", c.cloud_calls());
    let after = world.function(f).await;
    assert_eq!(before.tracing_config(), after.tracing_config());
    assert!(!world.tags(f).await.contains_key("zerofn.dev/owner"));

    // No posture may use the ClusterCloudAccount, yet it has a status: its
    // Secret is not there, and it says so.
    let status = eventually(Duration::from_secs(20), || async {
        world
            .kube
            .get("zerofn.dev", "v1alpha1", "clustercloudaccounts", "", "shared")
            .is_some_and(|a| a["status"]["cloud"] == "aws" && a["status"]["conditions"][0]["status"] == "False")
    })
    .await;
    assert!(
        status,
        "{:?}",
        world
            .kube
            .get("zerofn.dev", "v1alpha1", "clustercloudaccounts", "", "shared")
    );

    // Their accounts never resolved, so zerofn never wrote a marker for
    // them: deleting them waits for no cloud.
    for name in ["grab", "grab-cluster"] {
        let started = std::time::Instant::now();
        let out = world
            .kubectl_ok(&["delete", "fp", name, "-n", "intruder", "--timeout=60s"])
            .await;
        let took = started.elapsed();
        assert!(out.contains("deleted"), "{out}");
        assert!(world.posture("intruder", name).is_none());
        assert!(took < Duration::from_secs(5), "deleting {name} took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn controller_killed_and_restarted_loses_nothing_and_repeats_no_write() {
    let world = World::start("restart").await;
    world.apply_file(&world.manifests.account).await;
    world.apply_file(&world.manifests.enforce).await;

    // Killed in the middle of enforcing: after it minted a role and recorded
    // it in status, before it could finish (the record is what lets the
    // next process prove the role is zerofn's and carry on with it).
    let mut first = single(&world, "zerofn-a");
    let recorded = |w: &World| {
        ["orders-api", "billing-worker"].iter().any(|n| {
            w.posture("shop", n)
                .and_then(|p| p["status"]["mintedIdentities"].as_array().map(|a| !a.is_empty()))
                .unwrap_or(false)
        })
    };
    let wrote = eventually(READY, || async { first.writes() > 0 && recorded(&world) }).await;
    assert!(wrote, "{}", tail(&first.log()));
    first.kill();
    assert!(!first.running());

    // The next process finishes the job from what is in the cloud and the
    // cluster: nothing lost, nothing duplicated.
    let mut second = single(&world, "zerofn-b");
    wait_ready(&world, "shop", "orders-api", &second).await;
    wait_ready(&world, "shop", "billing-worker", &second).await;
    assert_own_least_privileged_roles(&world).await;
    let policy = world.resource_policy(&world.fleet.orders).await.unwrap_or_default();
    let statements = policy["Statement"].as_array().map(Vec::len).unwrap_or_default();
    assert_eq!(statements, 1, "{policy}");
    let transitions = |w: &World| {
        w.posture("shop", "orders-api").map(|p| {
            p["status"]["conditions"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| c["lastTransitionTime"].to_string())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let settled = transitions(&world);

    // Killed when all is compliant: the restart repeats no write and keeps
    // the status as it was.
    second.kill();
    let third = single(&world, "zerofn-c");
    let looked = eventually(READY, || async {
        third.metric("zerofn_reconciles_total") >= 2.0 && third.total_calls() > 0
    })
    .await;
    assert!(looked, "{}", tail(&third.log()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(third.writes(), 0, "writes after restart: {:?}", third.cloud_calls());
    assert_eq!(
        world.condition("shop", "orders-api", "Ready").map(|c| c.0),
        Some("True".into())
    );
    assert_eq!(transitions(&world), settled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_both_write() {
    let world = World::start("replicas").await;
    let mut args = FAST.to_vec();
    args.extend_from_slice(&[
        "--leader-elect",
        "true",
        "--lease-duration",
        "6s",
        "--renew-deadline",
        "4s",
        "--retry-period",
        "1s",
    ]);
    let mut replicas = [world.controller("zerofn-a", &args), world.controller("zerofn-b", &args)];
    world.apply_file(&world.manifests.account).await;
    world.apply_file(&world.manifests.enforce).await;
    wait_ready(&world, "shop", "orders-api", &replicas[0]).await;
    wait_ready(&world, "shop", "billing-worker", &replicas[0]).await;

    let holder = || {
        world
            .kube
            .get("coordination.k8s.io", "v1", "leases", "zerofn-system", "zerofn-leader")
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    };
    let leader = holder().expect("a lease holder");
    let lead = replicas
        .iter()
        .position(|r| r.identity == leader)
        .expect("the holder is a replica");
    let standby = 1 - lead;
    // Exactly one replica touched the cloud; both are healthy, so the
    // standby can take over.
    assert!(replicas[lead].writes() > 0);
    assert_eq!(replicas[standby].total_calls(), 0, "the standby called the cloud");
    assert!(replicas[lead].ready() && replicas[standby].ready());

    // The leader dies; the standby takes the lease, carries on, and finds
    // nothing left to write.
    replicas[lead].kill();
    let next = replicas[standby].identity.clone();
    let took = eventually(Duration::from_secs(30), || async {
        holder().as_deref() == Some(next.as_str())
    })
    .await;
    assert!(took, "{:?}\n{}", holder(), tail(&replicas[standby].log()));
    let worked = eventually(READY, || async { replicas[standby].total_calls() > 0 }).await;
    assert!(worked, "{}", tail(&replicas[standby].log()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(replicas[standby].writes(), 0, "{:?}", replicas[standby].cloud_calls());
    // Leases, as the chart's leader-election Role grants them, and nothing
    // refused.
    let forbidden = world.controller_forbidden();
    assert!(forbidden.is_empty(), "the chart lacks permissions: {forbidden:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_controller_works_with_the_charts_rbac_and_cannot_list_secrets() {
    let world = World::start("rbac").await;
    let c = single(&world, "zerofn-0");

    // Postures whose account names a Secret become Ready all the same.
    enforce_fleet(&world, &c).await;

    // A tenant namespace the chart was not told about: its account's Secret
    // cannot be read, and both the posture and the account say why.
    world
        .apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: team}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: team}}\n\
             stringData: {{aws_access_key_id: test, aws_secret_access_key: test}}\n---\n\
             apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: team, namespace: team}}\n\
             spec:\n  aws: {{accountId: \"000000000000\", region: eu-west-1, endpoint: {}, credentialsSecretRef: {{name: creds}}}}\n---\n\
             apiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: reports, namespace: team}}\n\
             spec:\n  accountRef: {{name: team}}\n  function: {{aws: {{name: {}}}}}\n  \
             observability: {{tracing: Active, structuredLogs: true}}\n",
            world.aws.endpoint, world.fleet.reports
        ))
        .await;
    let refused = eventually(READY, || async {
        world.condition("team", "reports", "Synced") == Some(("False".into(), "SecretForbidden".into()))
    })
    .await;
    assert!(refused, "{:?}\n{}", world.posture("team", "reports"), tail(&c.log()));
    let message = world
        .posture("team", "reports")
        .map(|p| p["status"]["conditions"].to_string())
        .unwrap_or_default();
    assert!(message.contains("tenantNamespaces"), "{message}");
    let account_reason = eventually(Duration::from_secs(10), || async {
        world
            .kube
            .get("zerofn.dev", "v1alpha1", "cloudaccounts", "team", "team")
            .is_some_and(|a| a["status"]["conditions"][0]["reason"] == "SecretForbidden")
    })
    .await;
    assert!(account_reason, "the account's status names the refusal");

    // The controller asked for Secrets only by name, never listed or
    // watched them, and was refused nothing but the ungranted namespace.
    let requests = world.kube.requests();
    let secret_calls: Vec<String> = requests
        .iter()
        .filter(|r| r.user == CONTROLLER_USER && r.path.contains("/secrets"))
        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
        .collect();
    assert!(
        secret_calls
            .iter()
            .any(|r| r == "GET /api/v1/namespaces/shop/secrets/stand-in-credentials -> 200"),
        "{secret_calls:#?}"
    );
    assert!(
        secret_calls.iter().all(
            |r| r.starts_with("GET /api/v1/namespaces/shop/secrets/stand-in-credentials ")
                || r.starts_with("GET /api/v1/namespaces/team/secrets/creds ")
        ),
        "{secret_calls:#?}"
    );
    let forbidden: Vec<String> = world
        .controller_forbidden()
        .into_iter()
        .filter(|r| !r.starts_with("GET /api/v1/namespaces/team/secrets/creds"))
        .collect();
    assert!(forbidden.is_empty(), "the chart lacks permissions: {forbidden:#?}");

    // Tried directly as the chart's ServiceAccount (after the checks above,
    // which cannot tell these requests from the controller's): no Secret
    // can be listed or watched, cluster-wide or in a tenant namespace; a
    // named one can be read.
    for args in [
        &["get", "secrets", "-A"][..],
        &["get", "secrets", "-n", "shop"][..],
        &["get", "secrets", "-n", "shop", "--watch", "--request-timeout=2s"][..],
    ] {
        let r = world.kubectl_as_controller(args).await;
        assert!(!r.ok && r.out.contains("Forbidden"), "{args:?}: {}", r.out);
    }
    let named = world
        .kubectl_as_controller(&["get", "secret", "stand-in-credentials", "-n", "shop", "-o", "name"])
        .await;
    assert!(named.ok, "{}", named.out);
    let r = world.kubectl_as_controller(&["get", "secrets", "-A"]).await;
    assert!(
        r.out
            .contains("cannot list resource \"secrets\" in API group \"\" at the cluster scope"),
        "{}",
        r.out
    );
}

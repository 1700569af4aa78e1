//! Tenancy, through the built binary with a controller-like environment:
//! ambient credentials for every cloud are present (AWS keys in the
//! environment, a GCE metadata server and an Azure federated token file that
//! would answer on a loopback listener), and a tenant's CloudAccount tries to
//! use them. The listener must receive nothing; `-vv` must print no
//! credential.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use zerofn_e2e::{temp_dir, zerofn_bin};
use zerofn_sim::scripted::{Reply, Scripted};

const AMBIENT_KEY_ID: &str = "AKIAAMBIENTCONTROLLER";
const AMBIENT_SECRET: &str = "ambient-controller-secret-key";

/// `zerofn <args>` with the controller's ambient identity in its environment,
/// every ambient source pointing at `listener`.
fn zerofn_with_ambient_identity(args: &[&str], listener: &str, home: &Path) -> Output {
    let token_file = home.join("federated-token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.controller-federated-token.sig").expect("token file");
    Command::new(zerofn_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", AMBIENT_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", AMBIENT_SECRET)
        .env("AWS_ENDPOINT_URL", format!("http://{listener}"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .env("GCE_METADATA_HOST", listener)
        .env("GCE_METADATA_ROOT", listener)
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env("AZURE_FEDERATED_TOKEN_FILE", &token_file)
        .env("AZURE_TENANT_ID", "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0")
        .env("AZURE_CLIENT_ID", "c1c1c1c1-0000-4000-8000-000000000001")
        .env("AZURE_AUTHORITY_HOST", format!("https://{listener}"))
        .output()
        .expect("zerofn runs")
}

const POSTURE: &str = "---\napiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {name: p, namespace: team}\nspec:\n  accountRef: {name: acct}\n  function: FUNCTION\n  observability: {tracing: Active}\n";

/// (case, account documents, function, what stderr must name)
fn tenant_cases(l: &str) -> Vec<(&'static str, String, &'static str, &'static str)> {
    vec![
        (
            "AWS endpoint at the listener, the controller's keys",
            format!(
                "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: acct, namespace: team}}\nspec:\n  aws: {{region: eu-west-1, endpoint: \"http://{l}\"}}\n"
            ),
            "{aws: {name: f}}",
            "spec.aws.credentialsSecretRef",
        ),
        (
            "no Secret at all",
            "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {name: acct, namespace: team}\nspec:\n  aws: {region: eu-west-1}\n"
                .to_string(),
            "{aws: {name: f}}",
            "spec.aws.credentialsSecretRef",
        ),
        (
            "GCP endpoints at the listener, ADC",
            format!(
                "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: acct, namespace: team}}\nspec:\n  gcp:\n    projectId: shop-prod\n    endpoints: {{functions: \"http://{l}\", run: \"http://{l}\", iam: \"http://{l}\", resourceManager: \"http://{l}\"}}\n"
            ),
            "{gcp: {location: europe-west1, name: f}}",
            "spec.gcp.credentialsSecretRef",
        ),
        (
            "Azure authority host at the listener, workload identity",
            format!(
                "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: acct, namespace: team}}\nspec:\n  azure:\n    tenantId: 0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\n    subscriptionId: 5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b\n    clientId: c1c1c1c1-0000-4000-8000-000000000001\n    authorityHost: https://{l}\n    resourceManagerEndpoint: https://{l}\n"
            ),
            "{azure: {resourceGroup: rg, name: f}}",
            "spec.azure.credential",
        ),
    ]
}

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("listener");
    l.set_nonblocking(true).expect("nonblocking");
    let addr = format!("127.0.0.1:{}", l.local_addr().expect("addr").port());
    (l, addr)
}

fn assert_untouched(l: &TcpListener, case: &str) {
    match l.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, from)) => panic!("{case}: the listener received a connection from {from}"),
        Err(e) => panic!("{case}: {e}"),
    }
}

#[test]
fn a_tenant_account_never_sends_the_controllers_identity_to_a_listener() {
    let (l, addr) = listener();
    for (case, account, function, field) in tenant_cases(&addr) {
        let dir = temp_dir("tenant");
        std::fs::write(
            dir.path().join("all.yaml"),
            format!("{account}{}", POSTURE.replace("FUNCTION", function)),
        )
        .expect("manifests");
        for cmd in [&["plan"][..], &["enforce", "--once"][..]] {
            let out = zerofn_with_ambient_identity(
                &[cmd, &["-f", dir.path().to_str().unwrap_or_default()][..]].concat(),
                &addr,
                dir.path(),
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{case}: {cmd:?}\n{stderr}");
            assert!(stderr.contains(field), "{case}: must name {field}\n{stderr}");
            assert!(stderr.contains("nothing was sent to any cloud"), "{case}\n{stderr}");
        }
        assert_untouched(&l, case);
    }
}

#[test]
fn the_controllers_identity_is_never_pointed_at_loopback_even_by_the_admin() {
    let (l, addr) = listener();
    let dir = temp_dir("admin-loopback");
    std::fs::write(
        dir.path().join("all.yaml"),
        format!(
            "apiVersion: zerofn.dev/v1alpha1\nkind: ClusterCloudAccount\nmetadata: {{name: acct}}\nspec:\n  allowedNamespaces: [team]\n  aws: {{region: eu-west-1, endpoint: \"http://{addr}\"}}\n{}",
            POSTURE.replace("FUNCTION", "{aws: {name: f}}").replace("{name: acct}", "{name: acct, kind: ClusterCloudAccount}")
        ),
    )
    .expect("manifests");
    let out = zerofn_with_ambient_identity(
        &["plan", "-f", dir.path().to_str().unwrap_or_default()],
        &addr,
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("spec.aws.endpoint: a loopback endpoint is for test stand-ins"),
        "{stderr}"
    );
    assert_untouched(&l, "admin loopback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_output_holds_no_credential() {
    const KEY_ID: &str = "AKIAKNOWNTESTKEYID01";
    const SECRET: &str = "known-test-secret-access-key-0001";
    const CLIENT_SECRET: &str = "known-azure-client-secret-0001";
    let cloud = Scripted::start(
        vec![],
        Reply::new(
            403,
            "<ErrorResponse><Error><Code>AccessDenied</Code><Message>denied</Message></Error></ErrorResponse>",
        ),
    )
    .await
    .expect("stand-in");
    let refusing = zerofn_sim::process::free_port().expect("port");
    let dir = temp_dir("verbose");
    std::fs::write(
        dir.path().join("all.yaml"),
        format!(
            "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: aws, namespace: team}}\nspec:\n  aws: {{region: eu-west-1, endpoint: \"{}\", credentialsSecretRef: {{name: aws}}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: aws, namespace: team}}\nstringData: {{aws_access_key_id: {KEY_ID}, aws_secret_access_key: {SECRET}}}\n---\napiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: azure, namespace: team}}\nspec:\n  azure:\n    tenantId: 0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\n    subscriptionId: 5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b\n    clientId: c1c1c1c1-0000-4000-8000-000000000001\n    credential: ClientSecret\n    clientSecretRef: {{name: azure}}\n    authorityHost: https://127.0.0.1:{refusing}\n    resourceManagerEndpoint: https://127.0.0.1:{refusing}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: azure, namespace: team}}\nstringData: {{client_secret: {CLIENT_SECRET}}}\n{}{}",
            cloud.url(),
            POSTURE.replace("FUNCTION", "{aws: {name: f}}").replace("{name: acct}", "{name: aws}"),
            POSTURE
                .replace("FUNCTION", "{azure: {resourceGroup: rg, name: f}}")
                .replace("{name: acct}", "{name: azure}")
                .replace("name: p,", "name: q,"),
        ),
    )
    .expect("manifests");
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            Command::new(zerofn_bin())
                .args(["-vv", "plan", "-f", dir.to_str().unwrap_or_default()])
                .env_remove("RUST_LOG")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .output()
                .expect("zerofn runs")
        }
    })
    .await
    .expect("joined");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        !cloud.requests().is_empty(),
        "the stand-in was never called, so nothing was tested"
    );
    assert!(all.lines().count() > 10, "-vv printed almost nothing:\n{all}");
    for secret in [KEY_ID, SECRET, CLIENT_SECRET] {
        assert!(!all.contains(secret), "{secret} appears in the -vv output:\n{all}");
    }
}

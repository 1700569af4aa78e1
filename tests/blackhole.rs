//! Bounded waiting: an account that does not answer fails all its postures
//! at once, on every cloud, well within the 10 s the issue allows for 1,000
//! postures; the listener it points at either accepts and never answers (a
//! black hole) or refuses.

use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use zerofn_tests::{TempDir, zerofn};

/// Accepts every connection and never reads or answers.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("127.0.0.1:{}", addr.port()), task)
}

/// A loopback port nothing listens on.
fn refusing() -> String {
    format!("127.0.0.1:{}", zerofn_sim::process::free_port().expect("port"))
}

fn aws_account(addr: &str) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: prod, namespace: shop}}\nspec:\n  aws: {{region: eu-west-1, endpoint: \"http://{addr}\", credentialsSecretRef: {{name: creds}}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: shop}}\nstringData: {{aws_access_key_id: test, aws_secret_access_key: test}}\n"
    )
}

fn gcp_account(addr: &str) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: prod, namespace: shop}}\nspec:\n  gcp:\n    projectId: shop-prod\n    projectNumber: \"424242424242\"\n    anonymous: true\n    endpoints: {{functions: \"http://{addr}\", run: \"http://{addr}\", iam: \"http://{addr}\", resourceManager: \"http://{addr}\"}}\n"
    )
}

fn azure_account(addr: &str) -> String {
    format!(
        "apiVersion: zerofn.dev/v1alpha1\nkind: CloudAccount\nmetadata: {{name: prod, namespace: shop}}\nspec:\n  azure:\n    tenantId: 0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\n    subscriptionId: 5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b\n    clientId: c1c1c1c1-0000-4000-8000-000000000001\n    credential: ClientSecret\n    clientSecretRef: {{name: azure}}\n    resourceManagerEndpoint: https://{addr}\n    authorityHost: https://{addr}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: azure, namespace: shop}}\nstringData: {{client_secret: s3cret}}\n"
    )
}

fn postures(n: usize, function: impl Fn(usize) -> String) -> String {
    (0..n)
        .map(|i| {
            format!(
                "---\napiVersion: zerofn.dev/v1alpha1\nkind: FunctionPosture\nmetadata: {{name: p-{i}, namespace: shop}}\nspec:\n  accountRef: {{name: prod}}\n  function: {}\n  observability: {{tracing: Active}}\n",
                function(i)
            )
        })
        .collect()
}

/// Plan `n` postures against one account; exit 2 within the deadline, every
/// posture failing as unreachable. Returns each posture's error message.
async fn assert_fails_fast(case: &str, account: String, n: usize, function: impl Fn(usize) -> String) -> Vec<String> {
    let dir = TempDir::new("blackhole");
    dir.write("account.yaml", &account);
    dir.write("postures.yaml", &postures(n, function));
    let started = Instant::now();
    let run = zerofn(&["plan", "-o", "json", "-f", dir.path().to_str().unwrap()]).await;
    let took = started.elapsed();
    assert_eq!(run.code, 2, "{case}: {}", run.stderr);
    assert!(took < Duration::from_secs(10), "{case}: {n} postures took {took:?}");
    let report = run.json();
    let rows = report["postures"].as_array().expect("rows");
    assert_eq!(rows.len(), n, "{case}");
    for row in rows {
        assert_eq!(row["error"]["category"], "unreachable", "{case}: {row:#}");
    }
    eprintln!("{case}: {n} postures, exit 2 after {took:?}");
    rows.iter()
        .map(|r| r["error"]["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A refused connection is the account probe's answer, not a wait for its
/// deadline: every posture's error names it (and Azure's, whose token the
/// authority could not even be asked for, is unreachable, not a refused
/// credential).
fn assert_names_the_refusal(case: &str, messages: &[String]) {
    for m in messages {
        assert!(m.to_lowercase().contains("refused"), "{case}: {m}");
        assert!(
            !m.contains("did not answer within"),
            "{case}: waited for the deadline: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_aws_account_fails_1000_postures_at_once() {
    let (addr, _hole) = black_hole().await;
    assert_fails_fast("aws black hole", aws_account(&addr), 1000, |i| {
        format!("{{aws: {{name: f-{i}}}}}")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_aws_account_fails_1000_postures_at_once() {
    let messages = assert_fails_fast("aws refused", aws_account(&refusing()), 1000, |i| {
        format!("{{aws: {{name: f-{i}}}}}")
    })
    .await;
    assert_names_the_refusal("aws refused", &messages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_gcp_and_azure_accounts_fail_at_once() {
    let (addr, _hole) = black_hole().await;
    assert_fails_fast("gcp black hole", gcp_account(&addr), 300, |i| {
        format!("{{gcp: {{location: europe-west1, name: f-{i}}}}}")
    })
    .await;
    assert_fails_fast("azure black hole", azure_account(&addr), 300, |i| {
        format!("{{azure: {{resourceGroup: rg, name: f-{i}}}}}")
    })
    .await;
    let messages = assert_fails_fast("gcp refused", gcp_account(&refusing()), 300, |i| {
        format!("{{gcp: {{location: europe-west1, name: f-{i}}}}}")
    })
    .await;
    assert_names_the_refusal("gcp refused", &messages);
    let messages = assert_fails_fast("azure refused", azure_account(&refusing()), 300, |i| {
        format!("{{azure: {{resourceGroup: rg, name: f-{i}}}}}")
    })
    .await;
    assert_names_the_refusal("azure refused", &messages);
}

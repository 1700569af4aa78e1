//! `identity.unusedPermissions` on AWS: IAM's last-accessed job
//! (GenerateServiceLastAccessedDetails at action level, then
//! GetServiceLastAccessedDetails polled until COMPLETED or FAILED). The
//! LocalStack of the test world does not serve these calls, so a scripted
//! stand-in answers in order, with bodies in IAM's XML query protocol as the
//! API reference describes them.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;
use zerofn::api::{AwsAccount, Effect, PolicyStatement, UnusedPermissions};
use zerofn::metrics::Metrics;
use zerofn::providers::aws::model::LastAccessed;
use zerofn::providers::aws::usage::{self, ReportCache};
use zerofn::providers::aws::{AwsProvider, StaticCredentials, client, unused};
use zerofn::providers::{Cloud, ProviderError, Tuning};
use zerofn_sim::scripted::{Reply, Scripted};

const ROLE: &str = "arn:aws:iam::123456789012:role/orders-role";
const JOB: &str = "examplef-1305-c245-eba4-71fe298bcda7";
const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

fn account(url: &str) -> AwsAccount {
    AwsAccount {
        region: "eu-west-1".into(),
        endpoint: Some(url.into()),
        ..AwsAccount::default()
    }
}

fn creds() -> Option<StaticCredentials> {
    Some(StaticCredentials {
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        session_token: None,
    })
}

/// Polls every 20 ms, for at most `wait`.
fn tuning(wait: Duration) -> Tuning {
    Tuning {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        poll_interval: Duration::from_millis(20),
        operation_wait: wait,
        call_deadline: Duration::from_secs(10),
        attempt_timeout: Duration::from_secs(5),
        ..AwsProvider::default_tuning()
    }
}

fn xml(body: String) -> Reply {
    Reply::new(200, body).header("content-type", "text/xml")
}

fn generated() -> Reply {
    xml(format!(
        "<GenerateServiceLastAccessedDetailsResponse xmlns=\"{NS}\"><GenerateServiceLastAccessedDetailsResult><JobId>{JOB}</JobId></GenerateServiceLastAccessedDetailsResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GenerateServiceLastAccessedDetailsResponse>"
    ))
}

fn details(result: &str) -> Reply {
    xml(format!(
        "<GetServiceLastAccessedDetailsResponse xmlns=\"{NS}\"><GetServiceLastAccessedDetailsResult>{result}</GetServiceLastAccessedDetailsResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></GetServiceLastAccessedDetailsResponse>"
    ))
}

fn in_progress() -> Reply {
    details(
        "<JobStatus>IN_PROGRESS</JobStatus><JobType>ACTION_LEVEL</JobType><JobCreationDate>2026-12-01T00:00:00Z</JobCreationDate><ServicesLastAccessed/><IsTruncated>false</IsTruncated>",
    )
}

fn action(name: &str, last: Option<&str>) -> String {
    match last {
        Some(t) => format!(
            "<member><ActionName>{name}</ActionName><LastAccessedEntity>{ROLE}</LastAccessedEntity><LastAccessedRegion>eu-west-1</LastAccessedRegion><LastAccessedTime>{t}</LastAccessedTime></member>"
        ),
        None => format!("<member><ActionName>{name}</ActionName></member>"),
    }
}

const TEN: [&str; 10] = [
    "GetObject",
    "PutObject",
    "DeleteObject",
    "ListBucket",
    "GetBucketPolicy",
    "PutBucketPolicy",
    "GetBucketTagging",
    "PutBucketTagging",
    "GetBucketAcl",
    "PutBucketAcl",
];

/// S3 with the ten actions, three used within 90 days of the completion
/// date; page one of two (the second names DynamoDB).
fn completed_page_one() -> Reply {
    let used = ["GetObject", "PutObject", "ListBucket"];
    let actions: String = TEN
        .iter()
        .map(|a| action(a, used.contains(a).then_some("2026-11-20T10:00:00Z")))
        .collect();
    details(&format!(
        "<JobStatus>COMPLETED</JobStatus><JobType>ACTION_LEVEL</JobType><JobCreationDate>2026-12-01T00:00:00Z</JobCreationDate><JobCompletionDate>2026-12-01T00:00:05Z</JobCompletionDate><ServicesLastAccessed><member><ServiceName>Amazon S3</ServiceName><ServiceNamespace>s3</ServiceNamespace><LastAuthenticated>2026-11-20T10:00:00Z</LastAuthenticated><LastAuthenticatedEntity>{ROLE}</LastAuthenticatedEntity><LastAuthenticatedRegion>eu-west-1</LastAuthenticatedRegion><TotalAuthenticatedEntities>1</TotalAuthenticatedEntities><TrackedActionsLastAccessed>{actions}</TrackedActionsLastAccessed></member></ServicesLastAccessed><IsTruncated>true</IsTruncated><Marker>page-2</Marker>"
    ))
}

fn completed_page_two() -> Reply {
    details(
        "<JobStatus>COMPLETED</JobStatus><JobType>ACTION_LEVEL</JobType><JobCreationDate>2026-12-01T00:00:00Z</JobCreationDate><JobCompletionDate>2026-12-01T00:00:05Z</JobCompletionDate><ServicesLastAccessed><member><ServiceName>Amazon DynamoDB</ServiceName><ServiceNamespace>dynamodb</ServiceNamespace><TotalAuthenticatedEntities>0</TotalAuthenticatedEntities></member></ServicesLastAccessed><IsTruncated>false</IsTruncated>",
    )
}

fn failed() -> Reply {
    details(
        "<JobStatus>FAILED</JobStatus><JobType>ACTION_LEVEL</JobType><JobCreationDate>2026-12-01T00:00:00Z</JobCreationDate><JobCompletionDate>2026-12-01T00:00:03Z</JobCompletionDate><ServicesLastAccessed/><Error><Message>The job could not be completed</Message><Code>ServiceFailure</Code></Error>",
    )
}

fn s3_statement() -> PolicyStatement {
    PolicyStatement {
        sid: Some("Objects".into()),
        effect: Effect::Allow,
        actions: TEN.iter().map(|a| format!("s3:{a}")).collect(),
        resources: vec!["arn:aws:s3:::orders/*".into()],
        conditions: Default::default(),
    }
}

fn window() -> UnusedPermissions {
    UnusedPermissions {
        window: "90d".into(),
        refresh_interval: None,
    }
}

async fn clients(server: &Scripted) -> client::Clients {
    client::build(
        &account(&server.url()),
        creds(),
        Arc::new(Metrics::default()),
        &tuning(Duration::from_secs(5)),
    )
    .await
}

/// IN_PROGRESS, then COMPLETED over two pages: every page is read, and the
/// ten declared actions of which three were used give seven Low findings
/// and a proposal of the three. Only reads are sent.
#[tokio::test]
async fn a_completed_job_is_read_page_by_page_and_judged() {
    let server = Scripted::start(
        vec![generated(), in_progress(), completed_page_one(), completed_page_two()],
        Reply::new(500, ""),
    )
    .await
    .expect("stand-in starts");
    let c = clients(&server).await;
    let metrics = Metrics::default();
    let t = tuning(Duration::from_secs(5));
    let report = usage::report(&c.iam, ROLE, t.operation("aws", &metrics))
        .await
        .expect("the report");
    assert_eq!(report.as_of.to_string(), "2026-12-01T00:00:05Z");
    assert_eq!(report.services.keys().collect::<Vec<_>>(), vec!["dynamodb", "s3"]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    assert!(
        reqs[0].body.contains("Action=GenerateServiceLastAccessedDetails"),
        "{}",
        reqs[0].body
    );
    assert!(reqs[0].body.contains("Granularity=ACTION_LEVEL"), "{}", reqs[0].body);
    assert!(
        reqs[0]
            .body
            .contains("Arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Forders-role"),
        "{}",
        reqs[0].body
    );
    assert!(reqs[1].body.contains(&format!("JobId={JOB}")), "{}", reqs[1].body);
    assert!(reqs[3].body.contains("Marker=page-2"), "{}", reqs[3].body);
    assert!(reqs.iter().all(|r| r.method == "POST"), "only the job and its reads");

    let (findings, proposal) = unused::judge(&[s3_statement()], &window(), Some(&LastAccessed::Observed(report)));
    assert_eq!(findings.len(), 7, "{findings:#?}");
    let proposal = proposal.expect("a proposal");
    let back: Vec<PolicyStatement> = serde_saphyr::from_str(&proposal.declaration).expect("pasteable YAML");
    assert_eq!(back[0].actions, vec!["s3:GetObject", "s3:PutObject", "s3:ListBucket"]);
}

/// A FAILED job is an error of the CloudError kind, named with IAM's reason.
#[tokio::test]
async fn a_failed_job_is_a_cloud_error() {
    let server = Scripted::start(vec![generated(), in_progress(), failed()], Reply::new(500, ""))
        .await
        .expect("stand-in starts");
    let c = clients(&server).await;
    let metrics = Metrics::default();
    let err = usage::report(&c.iam, ROLE, tuning(Duration::from_secs(5)).operation("aws", &metrics))
        .await
        .expect_err("a failed job");
    assert!(matches!(err, ProviderError::Cloud(_)), "{err:?}");
    assert!(err.to_string().contains("FAILED: ServiceFailure"), "{err}");
}

/// A job that stays IN_PROGRESS is given up at the deadline, as a
/// CloudError, and the result is not kept: the next observation asks again.
#[tokio::test]
async fn a_job_that_never_completes_is_given_up_at_its_deadline() {
    let server = Scripted::start(vec![generated()], in_progress())
        .await
        .expect("stand-in starts");
    let c = clients(&server).await;
    let metrics = Metrics::default();
    let cache = ReportCache::default();
    let t = tuning(Duration::from_millis(300));
    let seen = usage::last_accessed(
        &c.iam,
        &cache,
        ROLE,
        Duration::from_secs(3600),
        t.operation("aws", &metrics),
    )
    .await;
    let LastAccessed::NotObserved(err) = &seen else {
        panic!("{seen:?}")
    };
    assert!(matches!(err, ProviderError::Cloud(_)), "{err:?}");
    assert!(err.to_string().contains("IN_PROGRESS at its deadline"), "{err}");
    assert!(server.requests().len() >= 3, "it polled before giving up");
    assert!(cache.fresh(ROLE, Duration::from_secs(3600)).is_none());

    let (findings, proposal) = unused::judge(&[s3_statement()], &window(), Some(&seen));
    assert_eq!(findings.len(), 1);
    assert!(
        findings[0].observed.starts_with("CloudError: "),
        "{}",
        findings[0].observed
    );
    assert!(proposal.is_none());
}

/// A completed report is reused for the refresh interval: no second job.
#[tokio::test]
async fn a_completed_report_is_reused_within_the_refresh_interval() {
    let server = Scripted::start(
        vec![generated(), completed_page_one(), completed_page_two()],
        Reply::new(500, ""),
    )
    .await
    .expect("stand-in starts");
    let c = clients(&server).await;
    let metrics = Metrics::default();
    let cache = ReportCache::default();
    let t = tuning(Duration::from_secs(5));
    for _ in 0..2 {
        let seen = usage::last_accessed(
            &c.iam,
            &cache,
            ROLE,
            Duration::from_secs(24 * 3600),
            t.operation("aws", &metrics),
        )
        .await;
        assert!(matches!(seen, LastAccessed::Observed(_)), "{seen:?}");
    }
    assert_eq!(server.requests().len(), 3, "one job, read once");
}

//! The GCP stand-in against the official google-cloud-rust clients zerofn's
//! GCP provider uses: what they send must be accepted, what the stand-in
//! answers must decode, and its refusals must surface as the clients report
//! Google's.
#![forbid(unsafe_code)]

// Test names start with gcp:: so that `cargo test gcp` selects them.
mod gcp {

    use google_cloud_auth::credentials::Credentials;
    use google_cloud_auth::credentials::anonymous::Builder as Anonymous;
    use google_cloud_functions_v2::client::FunctionService;
    use google_cloud_functions_v2::model::{Environment, function, service_config};
    use google_cloud_gax::error::rpc::Code as RpcCode;
    use google_cloud_gax::exponential_backoff::{ExponentialBackoff, ExponentialBackoffBuilder};
    use google_cloud_gax::retry_policy::{Aip194Strict, NeverRetry, RetryPolicyExt};
    use google_cloud_iam_admin_v1::client::Iam;
    use google_cloud_iam_v1::model::{Binding as IamBinding, GetPolicyOptions, Policy as IamPolicy};
    use google_cloud_lro::{Poller, PollingResult};
    use google_cloud_resourcemanager_v3::client::Projects;
    use google_cloud_run_v2::client::Services;
    use google_cloud_wkt::FieldMask;
    use serde_json::{Value, json};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use zerofn_sim::gcp::{Binding, Code, FunctionSeed, GcpStandIn, GcpWorld, IamResource};

    type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

    const PROJECT: &str = "zerofn-test";
    const NUMBER: u64 = 123_456_789_012;
    const EU: &str = "europe-west1";
    const US: &str = "us-central1";
    const RUNTIME_SA: &str = "fn-runtime-a@zerofn-test.iam.gserviceaccount.com";
    const OTHER_SA: &str = "fn-runtime-b@zerofn-test.iam.gserviceaccount.com";

    fn world() -> GcpWorld {
        GcpWorld::new()
            .project(PROJECT, NUMBER)
            .service_account(PROJECT, "fn-runtime-a", "Runtime A")
            .service_account(PROJECT, "fn-runtime-b", "Runtime B")
            .function(
                FunctionSeed::new(PROJECT, EU, "fn-a")
                    .service_account(RUNTIME_SA)
                    .label("team", "core")
                    .vpc_connector(
                        "projects/zerofn-test/locations/europe-west1/connectors/main",
                        "ALL_TRAFFIC",
                    ),
            )
            .function(
                FunctionSeed::new(PROJECT, US, "fn-b")
                    .ingress("ALLOW_INTERNAL_ONLY")
                    .service("fn-b-svc"),
            )
            .function(FunctionSeed::new(PROJECT, EU, "fn-c").pubsub_trigger("projects/zerofn-test/topics/events", None))
            .run_policy(
                PROJECT,
                EU,
                "fn-a",
                vec![Binding::new("roles/run.invoker", ["allUsers", "user:dev@example.com"])],
            )
            .project_policy(
                PROJECT,
                vec![
                    Binding::new("roles/owner", ["user:owner@example.com"]),
                    Binding::new("roles/logging.logWriter", [format!("serviceAccount:{RUNTIME_SA}")]),
                ],
            )
    }

    fn credentials() -> Credentials {
        Anonymous::new().build()
    }

    fn quick() -> Result<ExponentialBackoff, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ExponentialBackoffBuilder::new()
            .with_initial_delay(Duration::from_millis(5))
            .with_maximum_delay(Duration::from_millis(20))
            .build()?)
    }

    /// A client builder for `$service` pointed at the stand-in, anonymous,
    /// never retrying: a test sees every call it makes.
    macro_rules! client {
        ($service:ty, $gcp:expr) => {
            <$service>::builder()
                .with_endpoint($gcp.url())
                .with_credentials(credentials())
                .with_retry_policy(NeverRetry)
        };
    }

    async fn functions_client(gcp: &GcpStandIn) -> Result<FunctionService, Box<dyn std::error::Error + Send + Sync>> {
        Ok(client!(FunctionService, gcp)
            .with_backoff_policy(quick()?)
            .with_polling_backoff_policy(quick()?)
            .build()
            .await?)
    }

    async fn run_client(gcp: &GcpStandIn) -> Result<Services, Box<dyn std::error::Error + Send + Sync>> {
        Ok(client!(Services, gcp).build().await?)
    }

    async fn projects_client(gcp: &GcpStandIn) -> Result<Projects, Box<dyn std::error::Error + Send + Sync>> {
        Ok(client!(Projects, gcp).build().await?)
    }

    async fn iam_client(gcp: &GcpStandIn) -> Result<Iam, Box<dyn std::error::Error + Send + Sync>> {
        Ok(client!(Iam, gcp).build().await?)
    }

    fn fn_name(location: &str, id: &str) -> String {
        format!("projects/{PROJECT}/locations/{location}/functions/{id}")
    }

    fn service_name(location: &str, id: &str) -> String {
        format!("projects/{PROJECT}/locations/{location}/services/{id}")
    }

    /// The code and HTTP status a client error carries.
    fn status_of(e: &google_cloud_gax::error::Error) -> (Option<RpcCode>, Option<u16>) {
        (e.status().map(|s| s.code), e.http_status_code())
    }

    /// One plain HTTP/1.1 exchange, for what the clients cannot send.
    async fn raw(
        gcp: &GcpStandIn,
        method: &str,
        target: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), Box<dyn std::error::Error + Send + Sync>> {
        let host = gcp.url().trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&host).await?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await??;
        let status: u16 = response.get(9..12).ok_or("short response")?.parse()?;
        let (_, payload) = response.split_once("\r\n\r\n").ok_or("no body")?;
        Ok((status, serde_json::from_str(payload)?))
    }

    #[tokio::test]
    async fn get_function_decodes_into_the_official_model() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let client = functions_client(&gcp).await?;
        let f = client.get_function().set_name(fn_name(EU, "fn-a")).send().await?;
        assert_eq!(f.name, fn_name(EU, "fn-a"));
        assert_eq!(f.state, function::State::Active);
        assert_eq!(f.environment, Environment::Gen2);
        assert_eq!(f.labels.get("team").map(String::as_str), Some("core"));
        assert!(f.url.starts_with("https://"), "{}", f.url);
        assert!(f.update_time.is_some());
        let sc = f.service_config.ok_or("no serviceConfig")?;
        assert_eq!(sc.service, service_name(EU, "fn-a"));
        assert_eq!(sc.service_account_email, RUNTIME_SA);
        assert_eq!(sc.ingress_settings, service_config::IngressSettings::AllowAll);
        assert_eq!(
            sc.vpc_connector_egress_settings,
            service_config::VpcConnectorEgressSettings::AllTraffic
        );
        assert!(sc.uri.contains(".run.app"), "{}", sc.uri);
        let bc = f.build_config.ok_or("no buildConfig")?;
        assert_eq!(
            bc.docker_repository,
            "projects/zerofn-test/locations/europe-west1/repositories/gcf-artifacts"
        );
        assert_eq!(
            bc.service_account,
            format!("projects/{PROJECT}/serviceAccounts/{NUMBER}-compute@developer.gserviceaccount.com")
        );

        let trigger = client
            .get_function()
            .set_name(fn_name(EU, "fn-c"))
            .send()
            .await?
            .event_trigger
            .ok_or("no eventTrigger")?;
        assert_eq!(trigger.pubsub_topic, "projects/zerofn-test/topics/events");
        assert_eq!(
            trigger.service_account_email,
            format!("{NUMBER}-compute@developer.gserviceaccount.com")
        );
        assert!(
            trigger
                .trigger
                .starts_with("projects/zerofn-test/locations/europe-west1/triggers/fn-c-")
        );

        // What the client put on the wire.
        let sent = gcp.requests();
        let first = sent.first().ok_or("nothing logged")?;
        assert_eq!(
            (first.method.as_str(), first.path.as_str()),
            ("GET", "/v2/projects/zerofn-test/locations/europe-west1/functions/fn-a")
        );
        assert_eq!(first.query_param("$alt").as_deref(), Some("json;enum-encoding=int"));
        assert_eq!(first.query_param("revision").as_deref(), Some(""));
        Ok(())
    }

    #[tokio::test]
    async fn list_functions_pages_through_every_location_with_dash() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let client = functions_client(&gcp).await?;
        let mut names = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = client
                .list_functions()
                .set_parent(format!("projects/{PROJECT}/locations/-"))
                .set_page_size(2)
                .set_page_token(token.clone())
                .send()
                .await?;
            pages += 1;
            names.extend(page.functions.into_iter().map(|f| f.name));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(pages, 2);
        assert_eq!(names, [fn_name(EU, "fn-a"), fn_name(EU, "fn-c"), fn_name(US, "fn-b")]);

        let us = client
            .list_functions()
            .set_parent(format!("projects/{PROJECT}/locations/{US}"))
            .send()
            .await?;
        assert_eq!(us.functions.len(), 1);
        assert!(us.next_page_token.is_empty());

        let first = gcp.requests().into_iter().next().ok_or("nothing logged")?;
        for (k, v) in [("pageSize", "2"), ("pageToken", ""), ("filter", ""), ("orderBy", "")] {
            assert_eq!(first.query_param(k).as_deref(), Some(v), "{k}");
        }
        // A token only pages the listing it came from.
        let e = client
            .list_functions()
            .set_parent(format!("projects/{PROJECT}/locations/{US}"))
            .set_page_size(2)
            .set_page_token(first_token(&gcp)?)
            .send()
            .await
            .err()
            .ok_or("a foreign page token was accepted")?;
        assert_eq!(status_of(&e), (Some(RpcCode::InvalidArgument), Some(400)));
        Ok(())
    }

    fn first_token(gcp: &GcpStandIn) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let second = gcp.requests().into_iter().nth(1).ok_or("no second page request")?;
        Ok(second.query_param("pageToken").ok_or("no token")?)
    }

    #[tokio::test]
    async fn masked_patch_completes_through_the_poller_with_the_updated_function() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let client = functions_client(&gcp).await?;
        let mut f = client.get_function().set_name(fn_name(EU, "fn-a")).send().await?;
        let mut sc = f.service_config.take().ok_or("no serviceConfig")?;
        sc.service_account_email = OTHER_SA.to_string();
        sc.ingress_settings = service_config::IngressSettings::AllowInternalOnly;
        f.service_config = Some(sc);
        f.labels.insert("team".into(), "platform".into());
        let mask = FieldMask::default().set_paths(["service_config.service_account_email", "labels"]);
        let mut poller = client.update_function().set_function(f).set_update_mask(mask).poller();

        match poller.poll().await {
            Some(PollingResult::InProgress(Some(meta))) => {
                assert_eq!(meta.target, fn_name(EU, "fn-a"));
                assert_eq!(meta.verb, "update");
            }
            _ => return Err("the update did not start as an operation in progress with metadata".into()),
        }
        // Until the operation is done the function is deploying, unchanged.
        let during = gcp.function(PROJECT, EU, "fn-a").ok_or("gone")?;
        assert_eq!(during["serviceConfig"]["serviceAccountEmail"], RUNTIME_SA);
        let updated = poller.until_done().await?;

        let sc = updated.service_config.ok_or("no serviceConfig")?;
        assert_eq!(sc.service_account_email, OTHER_SA);
        // Not in the mask: ingress stays as it was.
        assert_eq!(sc.ingress_settings, service_config::IngressSettings::AllowAll);
        assert_eq!(updated.labels.get("team").map(String::as_str), Some("platform"));
        assert_eq!(updated.state, function::State::Active);
        assert!(sc.revision.starts_with("fn-a-00002-"), "{}", sc.revision);
        let stored = gcp.function(PROJECT, EU, "fn-a").ok_or("gone")?;
        assert_eq!(stored["serviceConfig"]["serviceAccountEmail"], OTHER_SA);
        assert_eq!(
            stored["serviceConfig"]["vpcConnector"],
            "projects/zerofn-test/locations/europe-west1/connectors/main"
        );

        let patch = gcp
            .requests()
            .into_iter()
            .find(|r| r.method == "PATCH")
            .ok_or("no PATCH sent")?;
        // snake_case paths in the FieldMask leave the client as camelCase.
        assert_eq!(
            patch.query_param("updateMask").as_deref(),
            Some("serviceConfig.serviceAccountEmail,labels")
        );
        let body = patch.body_json().ok_or("PATCH body is not JSON")?;
        // Enums go out as numbers under enum-encoding=int.
        assert_eq!(body["serviceConfig"]["ingressSettings"], json!(2));
        assert_eq!(
            gcp.count_requests("GET", "/v2/projects/zerofn-test/locations/europe-west1/operations/"),
            1
        );
        Ok(())
    }

    #[tokio::test]
    async fn an_update_in_flight_blocks_the_next_one_until_polled_done() -> TestResult {
        let gcp = GcpStandIn::start(world().operation_polls(2)).await?;
        let client = functions_client(&gcp).await?;
        let f = client.get_function().set_name(fn_name(US, "fn-b")).send().await?;
        let mask = FieldMask::default().set_paths(["labels"]);
        let op = client
            .update_function()
            .set_function(f.clone().set_labels([("owner", "zerofn")]))
            .set_update_mask(mask.clone())
            .send()
            .await?;
        assert!(!op.done);
        assert!(
            op.name
                .starts_with("projects/zerofn-test/locations/us-central1/operations/operation-")
        );
        let deploying = client.get_function().set_name(fn_name(US, "fn-b")).send().await?;
        assert_eq!(deploying.state, function::State::Deploying);
        assert!(deploying.labels.is_empty());

        let e = client
            .update_function()
            .set_function(f)
            .set_update_mask(mask)
            .send()
            .await
            .err()
            .ok_or("a second update ran while one was in flight")?;
        assert_eq!(status_of(&e), (Some(RpcCode::Aborted), Some(409)));

        let first = client.get_operation().set_name(op.name.clone()).send().await?;
        assert!(!first.done, "two polls were configured");
        let second = client.get_operation().set_name(op.name.clone()).send().await?;
        assert!(second.done);
        let done = client.get_function().set_name(fn_name(US, "fn-b")).send().await?;
        assert_eq!(done.labels.get("owner").map(String::as_str), Some("zerofn"));
        assert_eq!(done.state, function::State::Active);
        assert!(gcp.pending_operations().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn patch_without_a_mask_replaces_the_function() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let path = "/v2/projects/zerofn-test/locations/europe-west1/functions/fn-a";
        let (status, op) = raw(
            &gcp,
            "PATCH",
            path,
            Some(json!({
                "name": fn_name(EU, "fn-a"),
                "serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_AND_GCLB", "uri": "https://ignored.example"},
                "state": "FAILED"
            })),
        )
        .await?;
        assert_eq!(status, 200, "{op}");
        assert_eq!(op["done"], json!(false));
        assert_eq!(
            op["metadata"]["@type"],
            "type.googleapis.com/google.cloud.functions.v2.OperationMetadata"
        );
        let op_name = op["name"].as_str().ok_or("operation has no name")?;
        let (status, done) = raw(&gcp, "GET", &format!("/v2/{op_name}"), None).await?;
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["done"], json!(true));
        let f = &done["response"];
        assert_eq!(f["@type"], "type.googleapis.com/google.cloud.functions.v2.Function");
        // Replaced: labels and connector are gone, the runtime identity falls
        // back to the Compute Engine default, output-only fields are the server's.
        assert_eq!(f.get("labels"), None);
        assert_eq!(f["serviceConfig"].get("vpcConnector"), None);
        assert_eq!(
            f["serviceConfig"]["serviceAccountEmail"],
            format!("{NUMBER}-compute@developer.gserviceaccount.com")
        );
        assert_eq!(f["serviceConfig"]["ingressSettings"], "ALLOW_INTERNAL_AND_GCLB");
        assert_eq!(f["serviceConfig"]["service"], service_name(EU, "fn-a"));
        assert_ne!(f["serviceConfig"]["uri"], "https://ignored.example");
        assert_eq!(f["state"], "ACTIVE");
        assert_eq!(gcp.function(PROJECT, EU, "fn-a").ok_or("gone")?.get("labels"), None);
        Ok(())
    }

    #[tokio::test]
    async fn bad_masks_labels_and_references_are_invalid_argument() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let client = functions_client(&gcp).await?;
        let f = client.get_function().set_name(fn_name(EU, "fn-a")).send().await?;
        for paths in [
            vec!["service_config.no_such_field"],
            vec!["service_config.uri"],
            vec!["labels.team"],
        ] {
            let e = client
                .update_function()
                .set_function(f.clone())
                .set_update_mask(FieldMask::default().set_paths(paths.clone()))
                .send()
                .await
                .err()
                .ok_or(format!("mask {paths:?} was accepted"))?;
            assert_eq!(status_of(&e), (Some(RpcCode::InvalidArgument), Some(400)), "{paths:?}");
        }
        let labels_mask = FieldMask::default().set_paths(["labels"]);
        for (k, v) in [("Team", "core"), ("team", "Core"), ("team", "a.b")] {
            let e = client
                .update_function()
                .set_function(f.clone().set_labels([(k, v)]))
                .set_update_mask(labels_mask.clone())
                .send()
                .await
                .err()
                .ok_or(format!("label {k}={v} was accepted"))?;
            assert_eq!(status_of(&e), (Some(RpcCode::InvalidArgument), Some(400)), "{k}={v}");
        }
        let mut ghost = f.clone();
        let mut sc = ghost.service_config.take().ok_or("no serviceConfig")?;
        sc.service_account_email = "ghost@zerofn-test.iam.gserviceaccount.com".into();
        ghost.service_config = Some(sc);
        let e = client
            .update_function()
            .set_function(ghost)
            .set_update_mask(FieldMask::default().set_paths(["service_config.service_account_email"]))
            .send()
            .await
            .err()
            .ok_or("a service account that does not exist was accepted")?;
        assert_eq!(status_of(&e), (Some(RpcCode::InvalidArgument), Some(400)));
        // Nothing was written, nothing is pending.
        assert!(gcp.pending_operations().is_empty());
        assert_eq!(
            gcp.function(PROJECT, EU, "fn-a").ok_or("gone")?["labels"],
            json!({"team": "core"})
        );
        Ok(())
    }

    #[tokio::test]
    async fn service_accounts_are_created_once_with_valid_ids() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let iam = iam_client(&gcp).await?;
        let sa = iam
            .create_service_account()
            .set_name(format!("projects/{PROJECT}"))
            .set_account_id("zerofn-fn-a")
            .set_service_account(
                google_cloud_iam_admin_v1::model::ServiceAccount::new()
                    .set_display_name("zerofn: fn-a")
                    .set_description("Dedicated identity"),
            )
            .send()
            .await?;
        assert_eq!(sa.email, "zerofn-fn-a@zerofn-test.iam.gserviceaccount.com");
        assert_eq!(
            sa.name,
            "projects/zerofn-test/serviceAccounts/zerofn-fn-a@zerofn-test.iam.gserviceaccount.com"
        );
        assert_eq!(sa.project_id, PROJECT);
        assert_eq!(sa.unique_id.len(), 21);
        assert_eq!(sa.display_name, "zerofn: fn-a");

        let e = iam
            .create_service_account()
            .set_name(format!("projects/{PROJECT}"))
            .set_account_id("zerofn-fn-a")
            .send()
            .await
            .err()
            .ok_or("a duplicate was created")?;
        assert_eq!(status_of(&e), (Some(RpcCode::AlreadyExists), Some(409)));
        for bad in ["short", "Upper-case", "under_score", "ends-with-", "9starts-with-digit"] {
            let e = iam
                .create_service_account()
                .set_name(format!("projects/{PROJECT}"))
                .set_account_id(bad)
                .send()
                .await
                .err()
                .ok_or(format!("account id {bad} was accepted"))?;
            assert_eq!(status_of(&e), (Some(RpcCode::InvalidArgument), Some(400)), "{bad}");
        }

        let got = iam
            .get_service_account()
            .set_name(format!("projects/-/serviceAccounts/{}", sa.email))
            .send()
            .await?;
        assert_eq!(got.unique_id, sa.unique_id);
        let e = iam
            .get_service_account()
            .set_name(format!(
                "projects/{PROJECT}/serviceAccounts/nobody@zerofn-test.iam.gserviceaccount.com"
            ))
            .send()
            .await
            .err()
            .ok_or("a missing account was found")?;
        assert_eq!(status_of(&e), (Some(RpcCode::NotFound), Some(404)));

        let mut emails = Vec::new();
        let mut token = String::new();
        loop {
            let page = iam
                .list_service_accounts()
                .set_name(format!("projects/{PROJECT}"))
                .set_page_size(2)
                .set_page_token(token.clone())
                .send()
                .await?;
            emails.extend(page.accounts.into_iter().map(|a| a.email));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        emails.sort();
        assert_eq!(
            emails,
            [
                format!("{NUMBER}-compute@developer.gserviceaccount.com"),
                RUNTIME_SA.to_string(),
                OTHER_SA.to_string(),
                "zerofn-fn-a@zerofn-test.iam.gserviceaccount.com".to_string(),
                "zerofn-test@appspot.gserviceaccount.com".to_string(),
            ]
        );
        assert_eq!(gcp.write_requests().len(), 7);
        Ok(())
    }

    fn invoker_policy(members: &[&str], etag: Vec<u8>) -> IamPolicy {
        IamPolicy::new()
            .set_bindings([IamBinding::new()
                .set_role("roles/run.invoker")
                .set_members(members.iter().copied())])
            .set_etag(etag)
    }

    #[tokio::test]
    async fn run_service_iam_uses_etags() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let run = run_client(&gcp).await?;
        let resource = service_name(EU, "fn-a");
        let policy = run
            .get_iam_policy()
            .set_resource(&resource)
            .set_options(GetPolicyOptions::new().set_requested_policy_version(3))
            .send()
            .await?;
        assert_eq!(policy.bindings.len(), 1);
        assert_eq!(policy.bindings[0].members, ["allUsers", "user:dev@example.com"]);
        assert!(!policy.etag.is_empty());
        let get = gcp.requests().into_iter().next().ok_or("nothing logged")?;
        assert_eq!(get.method, "GET");
        assert_eq!(
            get.path,
            "/v2/projects/zerofn-test/locations/europe-west1/services/fn-a:getIamPolicy"
        );
        assert_eq!(get.query_param("options.requestedPolicyVersion").as_deref(), Some("3"));

        let written = run
            .set_iam_policy()
            .set_resource(&resource)
            .set_policy(invoker_policy(
                &[&format!("serviceAccount:{OTHER_SA}")],
                policy.etag.to_vec(),
            ))
            .send()
            .await?;
        assert_ne!(written.etag, policy.etag);
        assert_eq!(written.bindings[0].members, [format!("serviceAccount:{OTHER_SA}")]);
        let set = gcp.write_requests().pop().ok_or("no write logged")?;
        assert_eq!(
            set.path,
            "/v2/projects/zerofn-test/locations/europe-west1/services/fn-a:setIamPolicy"
        );
        let body = set.body_json().ok_or("body is not JSON")?;
        assert_eq!(body.get("resource"), None, "the resource travels in the path only");
        assert!(body["policy"]["etag"].is_string());

        // The etag read before that write is stale now.
        let e = run
            .set_iam_policy()
            .set_resource(&resource)
            .set_policy(invoker_policy(&["allUsers"], policy.etag.to_vec()))
            .send()
            .await
            .err()
            .ok_or("a stale etag was accepted")?;
        assert_eq!(status_of(&e), (Some(RpcCode::Aborted), Some(409)));
        let stored = gcp.run_policy(PROJECT, EU, "fn-a").ok_or("no policy")?;
        assert_eq!(
            stored.members("roles/run.invoker"),
            [format!("serviceAccount:{OTHER_SA}")]
        );

        // No etag: the write overwrites.
        run.set_iam_policy()
            .set_resource(&resource)
            .set_policy(IamPolicy::new())
            .send()
            .await?;
        assert!(
            gcp.run_policy(PROJECT, EU, "fn-a")
                .ok_or("no policy")?
                .bindings
                .is_empty()
        );

        // A service named apart from its function; nobody may invoke it yet.
        let empty = run
            .get_iam_policy()
            .set_resource(service_name(US, "fn-b-svc"))
            .send()
            .await?;
        assert!(empty.bindings.is_empty());
        assert!(!empty.etag.is_empty());

        let e = run
            .get_iam_policy()
            .set_resource(service_name(EU, "no-such-service"))
            .send()
            .await
            .err()
            .ok_or("a missing service was found")?;
        assert_eq!(status_of(&e), (Some(RpcCode::NotFound), Some(404)));
        Ok(())
    }

    #[tokio::test]
    async fn project_and_its_iam_policy_through_resource_manager() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let crm = projects_client(&gcp).await?;
        let project = crm.get_project().set_name(format!("projects/{PROJECT}")).send().await?;
        assert_eq!(project.name, format!("projects/{NUMBER}"));
        assert_eq!(project.project_id, PROJECT);
        assert_eq!(
            project.state,
            google_cloud_resourcemanager_v3::model::project::State::Active
        );

        let policy = crm
            .get_iam_policy()
            .set_resource(format!("projects/{NUMBER}"))
            .send()
            .await?;
        let get = gcp.requests().pop().ok_or("nothing logged")?;
        assert_eq!(
            (get.method.as_str(), get.path.as_str()),
            ("POST", "/v3/projects/123456789012:getIamPolicy")
        );
        assert!(!get.is_write());
        let roles: Vec<&str> = policy.bindings.iter().map(|b| b.role.as_str()).collect();
        assert_eq!(roles, ["roles/logging.logWriter", "roles/owner"]);

        let mut bindings = policy.bindings.clone();
        bindings.push(
            IamBinding::new()
                .set_role("roles/cloudsql.client")
                .set_members([format!("serviceAccount:{OTHER_SA}")]),
        );
        let written = crm
            .set_iam_policy()
            .set_resource(format!("projects/{PROJECT}"))
            .set_policy(
                IamPolicy::new()
                    .set_bindings(bindings.clone())
                    .set_etag(policy.etag.clone()),
            )
            .send()
            .await?;
        assert_eq!(written.bindings.len(), 3);
        let stored = gcp.project_policy(PROJECT).ok_or("no policy")?;
        assert_eq!(
            stored.roles_of(&format!("serviceAccount:{OTHER_SA}")),
            ["roles/cloudsql.client"]
        );

        let e = crm
            .set_iam_policy()
            .set_resource(format!("projects/{PROJECT}"))
            .set_policy(
                IamPolicy::new()
                    .set_bindings(bindings.clone())
                    .set_etag(policy.etag.clone()),
            )
            .send()
            .await
            .err()
            .ok_or("a stale etag was accepted")?;
        assert_eq!(status_of(&e), (Some(RpcCode::Aborted), Some(409)));

        let public = IamBinding::new().set_role("roles/viewer").set_members(["allUsers"]);
        let e = crm
            .set_iam_policy()
            .set_resource(format!("projects/{PROJECT}"))
            .set_policy(IamPolicy::new().set_bindings([public]))
            .send()
            .await
            .err()
            .ok_or("allUsers was accepted on a project")?;
        assert_eq!(status_of(&e), (Some(RpcCode::InvalidArgument), Some(400)));

        let e = crm
            .get_project()
            .set_name("projects/not-a-project")
            .send()
            .await
            .err()
            .ok_or("an unknown project was found")?;
        assert_eq!(status_of(&e), (Some(RpcCode::PermissionDenied), Some(403)));
        Ok(())
    }

    /// What a provider does to grant a role: read, modify, write, and on
    /// ABORTED start over from a fresh read.
    async fn grant_invoker(
        run: &Services,
        resource: &str,
        member: &str,
    ) -> Result<u32, google_cloud_gax::error::Error> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut policy = run.get_iam_policy().set_resource(resource).send().await?;
            match policy.bindings.iter_mut().find(|b| b.role == "roles/run.invoker") {
                Some(b) => b.members.push(member.to_string()),
                None => policy
                    .bindings
                    .push(IamBinding::new().set_role("roles/run.invoker").set_members([member])),
            }
            match run
                .set_iam_policy()
                .set_resource(resource)
                .set_policy(policy)
                .send()
                .await
            {
                Ok(_) => return Ok(attempts),
                Err(e) if e.status().is_some_and(|s| s.code == RpcCode::Aborted) && attempts < 5 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    #[tokio::test]
    async fn a_concurrent_change_makes_the_read_modify_write_retry() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let run = run_client(&gcp).await?;
        gcp.arm_concurrent_change(&IamResource::run_service(PROJECT, EU, "fn-a"), |p| {
            p.bindings
                .push(Binding::new("roles/run.developer", ["user:intruder@example.com"]));
        })?;
        let attempts = grant_invoker(&run, &service_name(EU, "fn-a"), &format!("serviceAccount:{OTHER_SA}")).await?;
        assert_eq!(attempts, 2);
        let failed_first = gcp
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with(":setIamPolicy"))
            .map(|r| r.status)
            .collect::<Vec<_>>();
        assert_eq!(failed_first, [409, 200]);
        let stored = gcp.run_policy(PROJECT, EU, "fn-a").ok_or("no policy")?;
        assert_eq!(stored.members("roles/run.developer"), ["user:intruder@example.com"]);
        assert!(
            stored
                .members("roles/run.invoker")
                .contains(&format!("serviceAccount:{OTHER_SA}"))
        );

        // The same on the project policy, through Resource Manager.
        let crm = projects_client(&gcp).await?;
        gcp.arm_concurrent_change(&IamResource::project(PROJECT), |p| {
            p.bindings.push(Binding::new("roles/editor", ["group:ops@example.com"]));
        })?;
        let before = crm
            .get_iam_policy()
            .set_resource(format!("projects/{PROJECT}"))
            .send()
            .await?;
        let e = crm
            .set_iam_policy()
            .set_resource(format!("projects/{PROJECT}"))
            .set_policy(before)
            .send()
            .await
            .err()
            .ok_or("the write after a concurrent change went through")?;
        assert_eq!(status_of(&e), (Some(RpcCode::Aborted), Some(409)));
        Ok(())
    }

    #[tokio::test]
    async fn errors_reach_the_client_as_google_rpc_status() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let client = functions_client(&gcp).await?;
        let e = client
            .get_function()
            .set_name(fn_name(EU, "missing"))
            .send()
            .await
            .err()
            .ok_or("a missing function was found")?;
        assert_eq!(status_of(&e), (Some(RpcCode::NotFound), Some(404)));
        assert!(e.status().is_some_and(|s| s.message.contains("missing")));

        let e = client
            .get_function()
            .set_name("projects/someone-else/locations/europe-west1/functions/fn-a")
            .send()
            .await
            .err()
            .ok_or("a function of an unknown project was found")?;
        assert_eq!(status_of(&e), (Some(RpcCode::PermissionDenied), Some(403)));

        gcp.fail_next(
            "GET",
            "/v2/projects/zerofn-test/locations/-/functions",
            1,
            Code::ResourceExhausted,
        );
        let e = client
            .list_functions()
            .set_parent(format!("projects/{PROJECT}/locations/-"))
            .send()
            .await
            .err()
            .ok_or("the injected 429 did not surface")?;
        assert_eq!(status_of(&e), (Some(RpcCode::ResourceExhausted), Some(429)));
        // Armed once: the next call goes through.
        client
            .list_functions()
            .set_parent(format!("projects/{PROJECT}/locations/-"))
            .send()
            .await?;

        // The clients' default policy retries UNAVAILABLE on idempotent calls,
        // and nothing else.
        let retrying = FunctionService::builder()
            .with_endpoint(gcp.url())
            .with_credentials(credentials())
            .with_retry_policy(Aip194Strict.with_attempt_limit(3))
            .with_backoff_policy(quick()?)
            .build()
            .await?;
        gcp.clear_requests();
        gcp.fail_next(
            "*",
            "/v2/projects/zerofn-test/locations/us-central1/functions/fn-b",
            2,
            Code::Unavailable,
        );
        retrying.get_function().set_name(fn_name(US, "fn-b")).send().await?;
        let statuses: Vec<u16> = gcp.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [503, 503, 200]);
        gcp.clear_requests();
        gcp.fail_next(
            "GET",
            "/v2/projects/zerofn-test/locations/us-central1/functions/fn-b",
            1,
            Code::ResourceExhausted,
        );
        let e = retrying
            .get_function()
            .set_name(fn_name(US, "fn-b"))
            .send()
            .await
            .err()
            .ok_or("429 was retried")?;
        assert_eq!(status_of(&e), (Some(RpcCode::ResourceExhausted), Some(429)));
        assert_eq!(gcp.requests().len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn unknown_routes_and_parameters_are_refused_in_the_error_shape() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let (status, body) = raw(&gcp, "GET", "/v2/projects/zerofn-test/locations/-/widgets", None).await?;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], json!(404));
        assert_eq!(body["error"]["status"], "NOT_FOUND");
        assert!(body["error"]["message"].is_string());

        let (status, body) = raw(
            &gcp,
            "DELETE",
            "/v2/projects/zerofn-test/locations/europe-west1/functions/fn-a",
            None,
        )
        .await?;
        assert_eq!((status, body["error"]["status"].as_str()), (404, Some("NOT_FOUND")));

        let (status, body) = raw(
            &gcp,
            "GET",
            "/v2/projects/zerofn-test/locations/europe-west1/functions/fn-a?view=FULL",
            None,
        )
        .await?;
        assert_eq!(
            (status, body["error"]["status"].as_str()),
            (400, Some("INVALID_ARGUMENT"))
        );

        let (status, body) = raw(
            &gcp,
            "PATCH",
            "/v2/projects/zerofn-test/locations/europe-west1/functions/fn-a?updateMask=labels",
            Some(json!({"labels": {"a": "b"}, "serviceConfig": {"ingress": "ALLOW_ALL"}})),
        )
        .await?;
        assert_eq!(
            (status, body["error"]["status"].as_str()),
            (400, Some("INVALID_ARGUMENT")),
            "{body}"
        );
        Ok(())
    }

    /// A function's Cloud Run service reports the ingress its function's
    /// deploy applied; an update masked to `ingress`, through the official
    /// client, sets it on the service alone (the function still says
    /// otherwise), until the function's next deploy applies its own
    /// setting again. An unknown value and a mask-less update are refused.
    #[tokio::test]
    async fn a_services_ingress_follows_its_function_until_set_on_the_service() -> TestResult {
        use google_cloud_run_v2::model::{IngressTraffic, Service};
        let gcp = GcpStandIn::start(world()).await?;
        let run = run_client(&gcp).await?;
        let b = run.get_service().set_name(service_name(US, "fn-b-svc")).send().await?;
        assert_eq!(b.ingress, IngressTraffic::InternalOnly);
        let a = service_name(EU, "fn-a");
        assert_eq!(
            run.get_service().set_name(&a).send().await?.ingress,
            IngressTraffic::All
        );

        let narrowed = run
            .update_service()
            .set_service(
                Service::new()
                    .set_name(&a)
                    .set_ingress(IngressTraffic::InternalLoadBalancer),
            )
            .set_update_mask(FieldMask::default().set_paths(["ingress"]))
            .poller()
            .until_done()
            .await?;
        assert_eq!(narrowed.ingress, IngressTraffic::InternalLoadBalancer);
        let patch = gcp.write_requests().pop().ok_or("no PATCH")?;
        assert_eq!(patch.query_param("updateMask").as_deref(), Some("ingress"));
        let body = patch.body_json().ok_or("PATCH body is not JSON")?;
        // The client sends the enum's number, which proto JSON allows.
        assert_eq!(body["ingress"], json!(3), "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER");
        assert_eq!(
            run.get_service().set_name(&a).send().await?.ingress,
            IngressTraffic::InternalLoadBalancer
        );
        let f = gcp.function(PROJECT, EU, "fn-a").ok_or("gone")?;
        assert_eq!(
            f["serviceConfig"]["ingressSettings"], "ALLOW_ALL",
            "the function is not told"
        );

        let functions = functions_client(&gcp).await?;
        let f = functions.get_function().set_name(fn_name(EU, "fn-a")).send().await?;
        functions
            .update_function()
            .set_function(f.set_labels([("team", "edge")]))
            .set_update_mask(FieldMask::default().set_paths(["labels"]))
            .poller()
            .until_done()
            .await?;
        assert_eq!(
            run.get_service().set_name(&a).send().await?.ingress,
            IngressTraffic::All,
            "the function's deploy applies its own setting again"
        );

        let (status, body) = raw(
            &gcp,
            "PATCH",
            &format!("/v2/{a}?updateMask=ingress"),
            Some(json!({"ingress": "INGRESS_TRAFFIC_SOMETIMES"})),
        )
        .await?;
        assert_eq!(status, 400, "{body}");
        let e = run
            .update_service()
            .set_service(Service::new().set_name(&a).set_ingress(IngressTraffic::InternalOnly))
            .poller()
            .until_done()
            .await
            .err()
            .ok_or("a mask-less update replaced the whole service")?;
        assert_eq!(status_of(&e), (Some(RpcCode::InvalidArgument), Some(400)));
        Ok(())
    }

    #[tokio::test]
    async fn clearing_a_masked_field_falls_back_to_the_service_default() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let client = functions_client(&gcp).await?;
        let mut f = client.get_function().set_name(fn_name(US, "fn-b")).send().await?;
        // The client cannot send an empty value: the mask alone clears it.
        if let Some(sc) = f.service_config.as_mut() {
            sc.ingress_settings = service_config::IngressSettings::Unspecified;
        }
        let updated = client
            .update_function()
            .set_function(f)
            .set_update_mask(FieldMask::default().set_paths(["service_config.ingress_settings"]))
            .poller()
            .until_done()
            .await?;
        let sc = updated.service_config.ok_or("no serviceConfig")?;
        assert_eq!(sc.ingress_settings, service_config::IngressSettings::AllowAll);
        let patch = gcp.write_requests().pop().ok_or("no PATCH")?;
        let body = patch.body_json().ok_or("PATCH body is not JSON")?;
        assert_eq!(body["serviceConfig"].get("ingressSettings"), None);
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_poll_leaves_the_operation_to_resume_by_name() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let client = functions_client(&gcp).await?;
        let f = client.get_function().set_name(fn_name(EU, "fn-c")).send().await?;
        gcp.fail_next(
            "GET",
            "/v2/projects/zerofn-test/locations/europe-west1/operations/",
            1,
            Code::ResourceExhausted,
        );
        let e = client
            .update_function()
            .set_function(f.set_labels([("owner", "zerofn")]))
            .set_update_mask(FieldMask::default().set_paths(["labels"]))
            .poller()
            .until_done()
            .await
            .err()
            .ok_or("the poller ignored a 429")?;
        // The default polling error policy gives up on anything but UNAVAILABLE.
        assert_eq!(status_of(&e), (Some(RpcCode::ResourceExhausted), Some(429)));
        let pending = gcp.pending_operations();
        assert_eq!(pending.len(), 1);
        let op = client.get_operation().set_name(pending[0].clone()).send().await?;
        assert!(op.done);
        let after = gcp.function(PROJECT, EU, "fn-c").ok_or("gone")?;
        assert_eq!(after["labels"], json!({"owner": "zerofn"}));
        Ok(())
    }

    #[tokio::test]
    async fn seeds_google_would_refuse_do_not_start() -> TestResult {
        let refused = [
            GcpWorld::new().project("Bad_Project", 1),
            world().function(FunctionSeed::new(PROJECT, EU, "fn-d").label("Team", "x")),
            world().function(FunctionSeed::new(PROJECT, EU, "fn-d").ingress("OPEN")),
            world().function(
                FunctionSeed::new(PROJECT, EU, "fn-d").service_account("ghost@zerofn-test.iam.gserviceaccount.com"),
            ),
            world().function(FunctionSeed::new(PROJECT, EU, "fn-a")),
            world().function(FunctionSeed::new(PROJECT, "europe_west1", "fn-d")),
            world().service_account(PROJECT, "fn-runtime-a", "again"),
            world().run_policy(PROJECT, EU, "no-such-service", vec![]),
            world().project_policy(PROJECT, vec![Binding::new("roles/viewer", ["nobody"])]),
            world().role("run.invoker", "no prefix", &[]),
            world().service_account_policy("ghost@zerofn-test.iam.gserviceaccount.com", vec![]),
        ];
        for (i, w) in refused.into_iter().enumerate() {
            match GcpStandIn::start(w).await {
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "seed {i}: {e}"),
                Ok(_) => return Err(format!("seed {i} was accepted").into()),
            }
        }
        Ok(())
    }

    #[tokio::test]
    async fn roles_get_answers_predefined_and_custom_roles_as_the_role_message() -> TestResult {
        let gcp = GcpStandIn::start(
            world()
                .role(
                    "roles/run.invoker",
                    "Cloud Run Invoker",
                    &["run.jobs.run", "run.routes.invoke"],
                )
                .role("projects/zerofn-test/roles/caller", "Caller", &["run.routes.invoke"])
                .role("organizations/42/roles/auditor", "Auditor", &["run.services.get"]),
        )
        .await?;
        let iam = iam_client(&gcp).await?;
        for (name, perms) in [
            ("roles/run.invoker", vec!["run.jobs.run", "run.routes.invoke"]),
            ("projects/zerofn-test/roles/caller", vec!["run.routes.invoke"]),
            ("organizations/42/roles/auditor", vec!["run.services.get"]),
        ] {
            let r = iam.get_role().set_name(name).send().await?;
            assert_eq!(r.name, name);
            assert_eq!(r.included_permissions, perms, "{name}");
            assert!(!r.etag.is_empty() && !r.deleted);
        }
        let (status, body) = raw(&gcp, "GET", "/v1/projects/zerofn-test/roles/caller", None).await?;
        assert_eq!(status, 200);
        assert_eq!(body["includedPermissions"], json!(["run.routes.invoke"]));
        assert_eq!(body["stage"], "GA");
        let e = iam
            .get_role()
            .set_name("projects/zerofn-test/roles/ghost")
            .send()
            .await
            .err()
            .ok_or("an unknown role was served")?;
        assert_eq!(status_of(&e), (Some(RpcCode::NotFound), Some(404)));
        Ok(())
    }

    #[tokio::test]
    async fn service_account_policies_are_read_through_the_iam_client() -> TestResult {
        let gcp = GcpStandIn::start(world().service_account_policy(
            RUNTIME_SA,
            vec![Binding::new("roles/iam.serviceAccountUser", ["user:ops@example.com"])],
        ))
        .await?;
        let iam = iam_client(&gcp).await?;
        let p = iam
            .get_iam_policy()
            .set_resource(format!("projects/{PROJECT}/serviceAccounts/{RUNTIME_SA}"))
            .set_options(GetPolicyOptions::new().set_requested_policy_version(3))
            .send()
            .await?;
        assert_eq!(p.bindings.len(), 1);
        assert_eq!(p.bindings[0].role, "roles/iam.serviceAccountUser");
        assert_eq!(p.bindings[0].members, ["user:ops@example.com"]);
        assert!(!p.etag.is_empty());
        // An account nobody was granted anything on: an empty policy.
        let empty = iam
            .get_iam_policy()
            .set_resource(format!("projects/{PROJECT}/serviceAccounts/{OTHER_SA}"))
            .send()
            .await?;
        assert!(empty.bindings.is_empty());
        let e = iam
            .get_iam_policy()
            .set_resource(format!(
                "projects/{PROJECT}/serviceAccounts/ghost@zerofn-test.iam.gserviceaccount.com"
            ))
            .send()
            .await
            .err()
            .ok_or("an unknown account's policy was served")?;
        assert_eq!(status_of(&e), (Some(RpcCode::NotFound), Some(404)));
        let reads = gcp
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with(":getIamPolicy"))
            .count();
        assert_eq!(reads, 3);
        assert!(gcp.write_requests().is_empty(), "getIamPolicy is a read");
        Ok(())
    }

    #[tokio::test]
    async fn dropping_the_stand_in_stops_it() -> TestResult {
        let gcp = GcpStandIn::start(world()).await?;
        let host = gcp.url().trim_start_matches("http://").to_string();
        raw(&gcp, "GET", "/v3/projects/zerofn-test", None).await?;
        drop(gcp);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&host).await.is_err() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("still accepting connections 2 s after the drop".into())
    }
}

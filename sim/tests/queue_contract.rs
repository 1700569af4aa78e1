//! The Azure stand-in's Queue Storage (path-style, as the Azurite emulator
//! serves it) against the Queue service REST reference: Get Messages, Put
//! Message, Delete Message, their XML bodies field by field, visibility
//! timeouts, and the storage error shape, over HTTPS with a storage token
//! from the stand-in's token endpoint.
#![forbid(unsafe_code)]

// Test names start with azure:: so that `cargo test azure` selects them.
mod azure {

    use reqwest::header::HeaderMap;
    use std::time::Duration;
    use zerofn_sim::azure::{Arm, AzureWorld};

    type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

    const TENANT: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    const SUB: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
    const CLIENT: &str = "c1c1c1c1-0000-4000-8000-000000000001";
    const SECRET: &str = "s3cret";
    const ACCOUNT: &str = "zerofnevents";
    const QUEUE: &str = "changes";
    const VERSION: &str = "2021-12-02";
    const STORAGE_SCOPE: &str = "https%3A%2F%2Fstorage.azure.com%2F.default";
    const ARM_SCOPE: &str = "https%3A%2F%2Fmanagement.azure.com%2F.default";

    struct Answer {
        status: u16,
        headers: HeaderMap,
        body: String,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }
    }

    struct Queue {
        http: reqwest::Client,
        url: String,
        token: String,
    }

    async fn start() -> Result<(Arm, Queue), Box<dyn std::error::Error + Send + Sync>> {
        let arm = Arm::start(
            AzureWorld::new(TENANT, SUB)
                .client(CLIENT, SECRET)
                .queue(ACCOUNT, QUEUE),
        )
        .await?;
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(arm.ca_pem().as_bytes())?])
            .build()?;
        let token = token(&arm, &http, STORAGE_SCOPE).await?;
        let url = arm.queue_url(ACCOUNT, QUEUE);
        Ok((arm, Queue { http, url, token }))
    }

    async fn token(
        arm: &Arm,
        http: &reqwest::Client,
        scope: &str,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let r = http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", arm.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "client_id={CLIENT}&client_secret={SECRET}&grant_type=client_credentials&scope={scope}"
            ))
            .send()
            .await?;
        assert_eq!(r.status().as_u16(), 200);
        let body: serde_json::Value = r.json().await?;
        Ok(body["access_token"].as_str().ok_or("no token")?.to_string())
    }

    impl Queue {
        /// Sends `method` to `{queue url}{suffix}` with the token and
        /// x-ms-version unless told otherwise.
        async fn send(
            &self,
            method: &str,
            suffix: &str,
            body: Option<String>,
            token: Option<&str>,
            version: bool,
        ) -> Result<Answer, reqwest::Error> {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
            let mut rb = self.http.request(method, format!("{}{suffix}", self.url));
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            if version {
                rb = rb.header("x-ms-version", VERSION);
            }
            if let Some(b) = body {
                rb = rb.header("content-type", "application/xml").body(b);
            }
            let r = rb.send().await?;
            Ok(Answer {
                status: r.status().as_u16(),
                headers: r.headers().clone(),
                body: r.text().await?,
            })
        }

        async fn call(&self, method: &str, suffix: &str, body: Option<String>) -> Result<Answer, reqwest::Error> {
            self.send(method, suffix, body, Some(&self.token), true).await
        }

        async fn put(&self, text: &str) -> Result<Answer, reqwest::Error> {
            let body = format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>");
            self.call("POST", "/messages", Some(body)).await
        }
    }

    /// The text of every `<name>` element, in order.
    fn all<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let mut out = Vec::new();
        let mut rest = xml;
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            let Some(end) = after.find(&close) else { break };
            out.push(&after[..end]);
            rest = &after[end + close.len()..];
        }
        out
    }

    fn one<'a>(xml: &'a str, name: &str) -> &'a str {
        all(xml, name).first().copied().unwrap_or_default()
    }

    /// The element names directly inside each `<QueueMessage>`, in order.
    fn message_fields(xml: &str) -> Vec<String> {
        all(xml, "QueueMessage")
            .first()
            .map(|m| {
                m.split('<')
                    .filter(|p| !p.is_empty() && !p.starts_with('/'))
                    .filter_map(|p| p.split('>').next().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn is_rfc1123(s: &str) -> bool {
        jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(s).is_ok() && s.ends_with(" GMT")
    }

    /// A pop receipt as sent back in a query string.
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    fn assert_error(a: &Answer, status: u16, code: &str) {
        assert_eq!(a.status, status, "{}", a.body);
        assert_eq!(a.header("x-ms-error-code"), Some(code));
        assert_eq!(a.header("content-type"), Some("application/xml"));
        assert!(
            a.body
                .starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>")
        );
        assert_eq!(one(&a.body, "Code"), code);
        assert!(one(&a.body, "Message").contains("RequestId:"), "{}", a.body);
    }

    #[tokio::test]
    async fn azure_queue_put_and_get_answer_the_reference_xml() -> TestResult {
        let (arm, q) = start().await?;
        let put = q.put("a &lt;change&gt; &amp; more").await?;
        assert_eq!(put.status, 201, "{}", put.body);
        assert_eq!(put.header("x-ms-version"), Some(VERSION));
        assert!(put.header("x-ms-request-id").is_some());
        assert_eq!(
            message_fields(&put.body),
            [
                "MessageId",
                "InsertionTime",
                "ExpirationTime",
                "PopReceipt",
                "TimeNextVisible"
            ]
        );
        let id = one(&put.body, "MessageId").to_string();
        assert_eq!(arm.queue_length(ACCOUNT, QUEUE), Some(1));

        let got = q
            .call("GET", "/messages?numofmessages=32&visibilitytimeout=5", None)
            .await?;
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(got.header("content-type"), Some("application/xml"));
        assert!(
            got.body
                .starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList><QueueMessage>")
        );
        assert_eq!(
            message_fields(&got.body),
            [
                "MessageId",
                "InsertionTime",
                "ExpirationTime",
                "PopReceipt",
                "TimeNextVisible",
                "DequeueCount",
                "MessageText"
            ]
        );
        assert_eq!(one(&got.body, "MessageId"), id);
        assert_eq!(one(&got.body, "DequeueCount"), "1");
        assert_eq!(
            one(&got.body, "MessageText"),
            "a &lt;change&gt; &amp; more",
            "escaped as sent"
        );
        for field in ["InsertionTime", "ExpirationTime", "TimeNextVisible"] {
            assert!(is_rfc1123(one(&got.body, field)), "{field}: {}", one(&got.body, field));
        }
        let inserted = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(one(&got.body, "InsertionTime"))?;
        let expires = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(one(&got.body, "ExpirationTime"))?;
        assert_eq!(
            expires.duration_since(inserted).as_secs(),
            7 * 24 * 3600,
            "7 days to live"
        );

        // Invisible now: an empty list.
        let empty = q.call("GET", "/messages", None).await?;
        assert_eq!(empty.status, 200);
        assert!(all(&empty.body, "QueueMessage").is_empty(), "{}", empty.body);
        assert!(empty.body.contains("<QueueMessagesList"));
        Ok(())
    }

    #[tokio::test]
    async fn azure_queue_redelivers_after_the_visibility_timeout_with_a_new_pop_receipt() -> TestResult {
        let (arm, q) = start().await?;
        q.put("m").await?;
        let first = q.call("GET", "/messages?visibilitytimeout=1", None).await?;
        let id = one(&first.body, "MessageId").to_string();
        let stale = one(&first.body, "PopReceipt").to_string();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let second = q.call("GET", "/messages?visibilitytimeout=30", None).await?;
        assert_eq!(one(&second.body, "MessageId"), id);
        assert_eq!(one(&second.body, "DequeueCount"), "2");
        let fresh = one(&second.body, "PopReceipt").to_string();
        assert_ne!(fresh, stale);

        let old = q
            .call("DELETE", &format!("/messages/{id}?popreceipt={}", encode(&stale)), None)
            .await?;
        assert_error(&old, 400, "PopReceiptMismatch");
        assert_eq!(
            arm.queue_length(ACCOUNT, QUEUE),
            Some(1),
            "a stale receipt deletes nothing"
        );
        let deleted = q
            .call("DELETE", &format!("/messages/{id}?popreceipt={}", encode(&fresh)), None)
            .await?;
        assert_eq!(deleted.status, 204, "{}", deleted.body);
        assert!(deleted.body.is_empty());
        assert_eq!(arm.queue_length(ACCOUNT, QUEUE), Some(0));
        let again = q
            .call("DELETE", &format!("/messages/{id}?popreceipt={}", encode(&fresh)), None)
            .await?;
        assert_error(&again, 404, "MessageNotFound");
        Ok(())
    }

    #[tokio::test]
    async fn azure_queue_refuses_requests_without_a_storage_token() -> TestResult {
        let (arm, q) = start().await?;
        let none = q.send("GET", "/messages", None, None, true).await?;
        assert_error(&none, 401, "NoAuthenticationInformation");
        let challenge = none.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer authorization_uri="), "{challenge}");
        assert!(challenge.contains("resource_id=https://storage.azure.com"));
        let made_up = q.send("GET", "/messages", None, Some("nope"), true).await?;
        assert_error(&made_up, 401, "InvalidAuthenticationInfo");
        let arm_token = token(&arm, &q.http, ARM_SCOPE).await?;
        let wrong_audience = q.send("GET", "/messages", None, Some(&arm_token), true).await?;
        assert_error(&wrong_audience, 401, "InvalidAuthenticationInfo");
        assert!(one(&wrong_audience.body, "AuthenticationErrorDetail").contains("Audience"));
        // ...and ARM refuses the storage token.
        let arm_call = q
            .http
            .get(format!(
                "{}/subscriptions/{SUB}/providers/Microsoft.Web/sites?api-version=2024-04-01",
                arm.url()
            ))
            .bearer_auth(&q.token)
            .send()
            .await?;
        assert_eq!(arm_call.status().as_u16(), 401);
        let no_version = q.send("GET", "/messages", None, Some(&q.token), false).await?;
        assert_error(&no_version, 400, "MissingRequiredHeader");
        assert_eq!(one(&no_version.body, "HeaderName"), "x-ms-version");
        Ok(())
    }

    #[tokio::test]
    async fn azure_queue_refuses_unknown_queues_and_out_of_range_parameters() -> TestResult {
        let (arm, q) = start().await?;
        let missing = Queue {
            url: arm.queue_url(ACCOUNT, "no-such-queue"),
            http: q.http.clone(),
            token: q.token.clone(),
        };
        assert_error(&missing.call("GET", "/messages", None).await?, 404, "QueueNotFound");
        assert_error(&missing.put("x").await?, 404, "QueueNotFound");
        for bad in [
            "numofmessages=0",
            "numofmessages=33",
            "visibilitytimeout=0",
            "visibilitytimeout=604801",
        ] {
            let a = q.call("GET", &format!("/messages?{bad}"), None).await?;
            assert_error(&a, 400, "OutOfRangeQueryParameterValue");
            assert_eq!(
                one(&a.body, "QueryParameterName"),
                bad.split('=').next().unwrap_or_default()
            );
        }
        let a = q.call("GET", "/messages?numofmessages=33", None).await?;
        assert_eq!(
            (
                one(&a.body, "QueryParameterValue"),
                one(&a.body, "MinimumAllowed"),
                one(&a.body, "MaximumAllowed")
            ),
            ("33", "1", "32")
        );
        let a = q
            .call(
                "POST",
                "/messages?messagettl=0",
                Some("<QueueMessage><MessageText>x</MessageText></QueueMessage>".into()),
            )
            .await?;
        assert_error(&a, 400, "OutOfRangeQueryParameterValue");
        let a = q
            .call(
                "POST",
                "/messages?messagettl=-1&visibilitytimeout=604800",
                Some("<QueueMessage><MessageText>x</MessageText></QueueMessage>".into()),
            )
            .await?;
        assert_eq!(a.status, 201, "never expires, visible in 7 days");
        assert_eq!(one(&a.body, "ExpirationTime"), "Fri, 31 Dec 9999 23:59:59 GMT");
        let a = q
            .call(
                "POST",
                "/messages?messagettl=9223372036854775807",
                Some("<QueueMessage><MessageText>x</MessageText></QueueMessage>".into()),
            )
            .await?;
        assert_eq!(a.status, 201, "a huge time to live is no error");
        let a = q.call("GET", "/messages?numofmessages=many", None).await?;
        assert_error(&a, 400, "InvalidQueryParameterValue");
        let a = q
            .call(
                "POST",
                "/messages",
                Some("<QueueMessage><Text>x</Text></QueueMessage>".into()),
            )
            .await?;
        assert_error(&a, 400, "InvalidXmlDocument");
        let a = q.call("DELETE", "/messages/some-id", None).await?;
        assert_error(&a, 400, "MissingRequiredQueryParameter");
        Ok(())
    }

    #[tokio::test]
    async fn azure_queue_test_side_api_and_faults() -> TestResult {
        let (arm, q) = start().await?;
        assert!(arm.queue_url(ACCOUNT, QUEUE).ends_with("/zerofnevents/changes"));
        let id = arm.put_message(ACCOUNT, QUEUE, "from the test").ok_or("no queue")?;
        assert!(arm.put_message(ACCOUNT, "missing", "x").is_none());
        assert!(arm.create_queue(ACCOUNT, QUEUE).is_err(), "exists");
        assert!(arm.create_queue(ACCOUNT, "Bad_Name").is_err());
        arm.create_queue(ACCOUNT, "second")?;
        assert_eq!(arm.queue_length(ACCOUNT, "second"), Some(0));

        arm.fail_next(
            "GET",
            &format!("/{ACCOUNT}/{QUEUE}/messages"),
            503,
            "ServerBusy",
            Some(1),
            1,
        );
        let busy = q.call("GET", "/messages", None).await?;
        assert_error(&busy, 503, "ServerBusy");
        assert_eq!(busy.header("retry-after"), Some("1"));
        let got = q.call("GET", "/messages", None).await?;
        assert_eq!(one(&got.body, "MessageId"), id, "the fault consumed nothing");
        assert_eq!(one(&got.body, "MessageText"), "from the test");
        let gets = arm
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == format!("/{ACCOUNT}/{QUEUE}/messages"))
            .count();
        assert_eq!(gets, 2);
        Ok(())
    }
}

//! The GCP stand-in's Pub/Sub pull subscriptions against the REST v1
//! reference (`projects.subscriptions.pull`, `acknowledge`,
//! `modifyAckDeadline`, `PullResponse`, `ReceivedMessage`, `PubsubMessage`),
//! field by field, over plain HTTP.
#![forbid(unsafe_code)]

// Test names start with gcp:: so that `cargo test gcp` selects them.
mod gcp {

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::{Value, json};
    use std::time::{Duration, Instant};
    use zerofn_sim::gcp::{Code, GcpStandIn, GcpWorld};

    type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

    const PROJECT: &str = "zerofn-test";
    const NUMBER: u64 = 123_456_789_012;
    const SUB: &str = "zerofn-events";

    async fn start(world: GcpWorld) -> std::io::Result<GcpStandIn> {
        GcpStandIn::start(world.project(PROJECT, NUMBER).subscription(PROJECT, SUB)).await
    }

    /// POSTs `body` to `v1/projects/{PROJECT}/subscriptions/{sub}:{verb}`.
    async fn call(gcp: &GcpStandIn, sub: &str, verb: &str, body: Value) -> Result<(u16, Value), reqwest::Error> {
        let r = reqwest::Client::new()
            .post(format!(
                "{}/v1/projects/{PROJECT}/subscriptions/{sub}:{verb}",
                gcp.url()
            ))
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    fn received(answer: &Value) -> Vec<Value> {
        answer["receivedMessages"].as_array().cloned().unwrap_or_default()
    }

    fn ack_id(m: &Value) -> String {
        m["ackId"].as_str().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn pubsub_pull_answers_received_messages_in_the_reference_shape() -> TestResult {
        let gcp = start(GcpWorld::new()).await?;
        let id = gcp.publish(PROJECT, SUB, b"{\"kind\":\"changed\"}", &[("source", "zerofn")])?;
        gcp.publish(PROJECT, SUB, b"", &[])?;
        let (status, answer) = call(&gcp, SUB, "pull", json!({"maxMessages": 1})).await?;
        assert_eq!(status, 200);
        let obj = answer.as_object().ok_or("not an object")?;
        assert_eq!(obj.keys().collect::<Vec<_>>(), ["receivedMessages"]);
        let got = received(&answer);
        assert_eq!(got.len(), 1, "maxMessages caps the answer");
        let m = &got[0];
        let mut keys: Vec<&String> = m.as_object().ok_or("not an object")?.keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["ackId", "message"],
            "no deliveryAttempt without a dead-letter policy"
        );
        assert!(!ack_id(m).is_empty());
        let msg = &m["message"];
        assert_eq!(msg["messageId"], id.as_str());
        assert_eq!(
            STANDARD.decode(msg["data"].as_str().ok_or("data")?)?,
            b"{\"kind\":\"changed\"}"
        );
        assert_eq!(msg["attributes"], json!({"source": "zerofn"}));
        let published = msg["publishTime"].as_str().ok_or("publishTime")?;
        assert!(published.parse::<jiff::Timestamp>().is_ok(), "RFC 3339: {published}");
        assert!(msg.get("orderingKey").is_none(), "empty fields are left out");

        // The second message: empty data and no attributes are left out too.
        let (_, answer) = call(&gcp, SUB, "pull", json!({"maxMessages": 10})).await?;
        let msg = &received(&answer)[0]["message"];
        assert!(msg.get("data").is_none_or(|d| d == ""), "{msg}");
        assert!(msg.get("attributes").is_none());

        // Nothing left to deliver, returnImmediately: `{}` at once.
        let (status, answer) = call(&gcp, SUB, "pull", json!({"maxMessages": 10, "returnImmediately": true})).await?;
        assert_eq!((status, answer), (200, json!({})));
        assert_eq!(gcp.unacknowledged(PROJECT, SUB), Some(2), "pulled is not acknowledged");
        Ok(())
    }

    #[tokio::test]
    async fn pubsub_acknowledge_removes_and_a_second_ack_is_no_error() -> TestResult {
        let gcp = start(GcpWorld::new()).await?;
        gcp.publish(PROJECT, SUB, b"a", &[])?;
        let (_, answer) = call(&gcp, SUB, "pull", json!({"maxMessages": 5})).await?;
        let ids = vec![ack_id(&received(&answer)[0])];
        let (status, body) = call(&gcp, SUB, "acknowledge", json!({"ackIds": ids})).await?;
        assert_eq!((status, body), (200, json!({})));
        assert_eq!(gcp.unacknowledged(PROJECT, SUB), Some(0));
        let (status, _) = call(&gcp, SUB, "acknowledge", json!({"ackIds": ids})).await?;
        assert_eq!(status, 200, "acknowledging twice is not an error");
        let (status, body) = call(&gcp, SUB, "acknowledge", json!({"ackIds": ["made-up"]})).await?;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(
            gcp.count_requests(
                "POST",
                &format!("/v1/projects/{PROJECT}/subscriptions/{SUB}:acknowledge")
            ),
            3
        );
        Ok(())
    }

    #[tokio::test]
    async fn pubsub_redelivers_after_the_deadline_and_ignores_the_expired_ack_id() -> TestResult {
        let gcp = start(GcpWorld::new()).await?;
        gcp.publish(PROJECT, SUB, b"a", &[])?;
        let (_, answer) = call(&gcp, SUB, "pull", json!({"maxMessages": 1})).await?;
        let first = ack_id(&received(&answer)[0]);
        // The subscription's 10 s deadline, shortened for this delivery.
        let (status, body) = call(
            &gcp,
            SUB,
            "modifyAckDeadline",
            json!({"ackIds": [first], "ackDeadlineSeconds": 1}),
        )
        .await?;
        assert_eq!((status, body), (200, json!({})));
        let (_, answer) = call(&gcp, SUB, "pull", json!({"maxMessages": 1, "returnImmediately": true})).await?;
        assert_eq!(answer, json!({}), "still leased");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (_, answer) = call(&gcp, SUB, "pull", json!({"maxMessages": 1, "returnImmediately": true})).await?;
        let second = ack_id(&received(&answer)[0]);
        assert_ne!(first, second, "a new delivery has a new ack id");
        let (status, _) = call(&gcp, SUB, "acknowledge", json!({"ackIds": [first]})).await?;
        assert_eq!(status, 200, "an expired ack id is accepted");
        assert_eq!(
            gcp.unacknowledged(PROJECT, SUB),
            Some(1),
            "... and acknowledges nothing"
        );
        call(&gcp, SUB, "acknowledge", json!({"ackIds": [second]})).await?;
        assert_eq!(gcp.unacknowledged(PROJECT, SUB), Some(0));
        Ok(())
    }

    #[tokio::test]
    async fn pubsub_modify_ack_deadline_zero_redelivers_at_once_with_the_attempt_count() -> TestResult {
        let gcp = GcpStandIn::start(GcpWorld::new().project(PROJECT, NUMBER).subscription_with(
            PROJECT,
            "dead-lettered",
            10,
            Some(5),
        ))
        .await?;
        gcp.publish(PROJECT, "dead-lettered", b"a", &[])?;
        let (_, answer) = call(&gcp, "dead-lettered", "pull", json!({"maxMessages": 1})).await?;
        let m = &received(&answer)[0];
        assert_eq!(m["deliveryAttempt"], 1);
        let (status, _) = call(
            &gcp,
            "dead-lettered",
            "modifyAckDeadline",
            json!({"ackIds": [ack_id(m)], "ackDeadlineSeconds": 0}),
        )
        .await?;
        assert_eq!(status, 200);
        let (_, answer) = call(
            &gcp,
            "dead-lettered",
            "pull",
            json!({"maxMessages": 1, "returnImmediately": true}),
        )
        .await?;
        assert_eq!(received(&answer)[0]["deliveryAttempt"], 2, "1 + one nack");
        let (status, body) = call(
            &gcp,
            "dead-lettered",
            "modifyAckDeadline",
            json!({"ackIds": [ack_id(&received(&answer)[0])], "ackDeadlineSeconds": 601}),
        )
        .await?;
        assert_eq!((status, &body["error"]["status"]), (400, &json!("INVALID_ARGUMENT")));
        Ok(())
    }

    #[tokio::test]
    async fn pubsub_an_empty_pull_is_held_until_a_message_is_published() -> TestResult {
        let gcp = start(GcpWorld::new().pull_hold(Duration::from_secs(5))).await?;
        let started = Instant::now();
        let pull = call(&gcp, SUB, "pull", json!({"maxMessages": 1}));
        let publish = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            gcp.publish(PROJECT, SUB, b"late", &[])
        };
        let (pulled, published) = tokio::join!(pull, publish);
        let (status, answer) = pulled?;
        assert_eq!(status, 200);
        assert_eq!(received(&answer)[0]["message"]["messageId"], published?.as_str());
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "answered on publish, not at the hold's end"
        );

        gcp.set_pull_hold(Duration::from_millis(200));
        let started = Instant::now();
        let (status, answer) = call(&gcp, SUB, "pull", json!({"maxMessages": 1})).await?;
        assert_eq!((status, answer), (200, json!({})));
        assert!(started.elapsed() >= Duration::from_millis(200), "held for the hold");
        Ok(())
    }

    #[tokio::test]
    async fn pubsub_refuses_a_missing_subscription_and_bad_max_messages() -> TestResult {
        let gcp = start(GcpWorld::new()).await?;
        let (status, body) = call(&gcp, "nope", "pull", json!({"maxMessages": 1})).await?;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], 404);
        assert_eq!(body["error"]["status"], "NOT_FOUND");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("nope")));
        for bad in [json!({}), json!({"maxMessages": 0}), json!({"maxMessages": -3})] {
            let (status, body) = call(&gcp, SUB, "pull", bad.clone()).await?;
            assert_eq!(
                (status, &body["error"]["status"]),
                (400, &json!("INVALID_ARGUMENT")),
                "{bad}"
            );
        }
        let (status, _) = call(&gcp, SUB, "pull", json!({"maxMessages": "x"})).await?;
        assert_eq!(status, 400, "wrong JSON type");
        let (status, _) = call(&gcp, SUB, "pull", json!({"maxMessages": 1, "bogus": 1})).await?;
        assert_eq!(status, 400, "unknown field");
        let (status, body) = call(&gcp, "nope", "acknowledge", json!({"ackIds": ["x"]})).await?;
        assert_eq!((status, &body["error"]["status"]), (404, &json!("NOT_FOUND")), "{body}");
        Ok(())
    }

    #[tokio::test]
    async fn pubsub_faults_and_the_journal_cover_the_new_paths() -> TestResult {
        let gcp = start(GcpWorld::new()).await?;
        gcp.publish(PROJECT, SUB, b"a", &[])?;
        gcp.fail_next(
            "POST",
            &format!("v1/projects/{PROJECT}/subscriptions/{SUB}:pull"),
            1,
            Code::Unavailable,
        );
        let (status, body) = call(&gcp, SUB, "pull", json!({"maxMessages": 1})).await?;
        assert_eq!((status, &body["error"]["status"]), (503, &json!("UNAVAILABLE")));
        let (status, answer) = call(&gcp, SUB, "pull", json!({"maxMessages": 1})).await?;
        assert_eq!(status, 200);
        assert_eq!(received(&answer).len(), 1, "the fault consumed nothing");
        let pulls = gcp.count_requests("POST", &format!("/v1/projects/{PROJECT}/subscriptions/{SUB}:pull"));
        assert_eq!(pulls, 2);
        assert!(gcp.write_requests().iter().all(|r| r.path.contains("/subscriptions/")));
        assert!(
            gcp.create_subscription(PROJECT, "other", 5, None).is_err(),
            "deadline below 10 s"
        );
        gcp.create_subscription(PROJECT, "other", 20, None)?;
        assert_eq!(gcp.unacknowledged(PROJECT, "other"), Some(0));
        assert!(gcp.publish(PROJECT, "missing", b"x", &[]).is_err());
        Ok(())
    }
}

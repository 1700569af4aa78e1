//! The Azure Resource Manager stand-in against the contract zerofn's Azure
//! provider relies on: azure_identity's ClientSecretCredential gets its
//! tokens from it, and plain HTTPS calls pin each ARM answer.
#![forbid(unsafe_code)]

// Test names start with azure:: so that `cargo test azure` selects them.
mod azure {

    use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
    use azure_core::credentials::{Secret, TokenCredential};
    use azure_core::http::{ClientOptions, Transport};
    use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
    use reqwest::header::HeaderMap;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use zerofn_sim::azure::{Arm, AzureWorld, BUILTIN_ROLES, SiteSeed};

    type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

    const TENANT: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    const SUB: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
    const CLIENT: &str = "c1c1c1c1-0000-4000-8000-000000000001";
    const SECRET: &str = "s3cret";
    const WEB: &str = "api-version=2024-04-01";
    const AUTHZ: &str = "api-version=2022-04-01";
    const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";

    fn world() -> AzureWorld {
        let w = AzureWorld::new(TENANT, SUB)
            .client(CLIENT, SECRET)
            .user_assigned_identity("rg-fn", "uai-a");
        let uai = w.uai_id("rg-fn", "uai-a");
        w.site(SiteSeed::new("rg-fn", "fn-a"))
            .site(SiteSeed {
                auth_enabled: true,
                require_authentication: true,
                system_assigned: true,
                user_assigned: vec![uai],
                ..SiteSeed::new("rg-fn", "fn-b")
            })
            .site(SiteSeed::new("rg-other", "fn-c"))
    }

    fn site_path(rg: &str, name: &str) -> String {
        format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}")
    }

    struct Client {
        http: reqwest::Client,
        base: String,
        token: String,
    }

    struct Answer {
        status: u16,
        headers: HeaderMap,
        body: Value,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }
    }

    fn http(arm: &Arm) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(arm.ca_pem().as_bytes())?])
            .build()
    }

    async fn token_form(arm: &Arm, http: &reqwest::Client, form: &str) -> Result<Answer, reqwest::Error> {
        let r = http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", arm.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await?;
        answer(r).await
    }

    async fn answer(r: reqwest::Response) -> Result<Answer, reqwest::Error> {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, headers, body })
    }

    async fn connect(arm: &Arm) -> Result<Client, Box<dyn std::error::Error + Send + Sync>> {
        let http = http(arm)?;
        let scope = "https%3A%2F%2Fmanagement.azure.com%2F.default";
        let a = token_form(
            arm,
            &http,
            &format!("client_id={CLIENT}&client_secret={SECRET}&grant_type=client_credentials&scope={scope}"),
        )
        .await?;
        assert_eq!(a.status, 200, "{}", a.body);
        let token = a.body["access_token"].as_str().ok_or("no token")?.to_string();
        Ok(Client {
            http,
            base: arm.url(),
            token,
        })
    }

    impl Client {
        async fn send(
            &self,
            method: &str,
            path_and_query: &str,
            body: Option<Value>,
        ) -> Result<Answer, reqwest::Error> {
            let url = if path_and_query.starts_with("https://") {
                path_and_query.to_string()
            } else {
                format!("{}{path_and_query}", self.base)
            };
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
            let mut rb = self.http.request(method, url).bearer_auth(&self.token);
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            answer(rb.send().await?).await
        }

        async fn get(&self, path_and_query: &str) -> Result<Answer, reqwest::Error> {
            self.send("GET", path_and_query, None).await
        }
    }

    #[tokio::test]
    async fn azure_identity_client_secret_credential_gets_a_token() -> TestResult {
        let arm = Arm::start(world()).await?;
        let mut custom = CustomConfiguration::default();
        custom.authority_host = arm.url();
        let options = |http: reqwest::Client| ClientSecretCredentialOptions {
            client_options: ClientOptions {
                cloud: Some(Arc::new(CloudConfiguration::Custom(custom.clone()))),
                transport: Some(Transport::new(Arc::new(http))),
                ..Default::default()
            },
        };
        let cred = ClientSecretCredential::new(
            TENANT,
            CLIENT.to_string(),
            Secret::new(SECRET),
            Some(options(http(&arm)?)),
        )?;
        let token = cred.get_token(&["https://management.azure.com/.default"], None).await?;
        // The token it got opens ARM.
        let c = Client {
            http: http(&arm)?,
            base: arm.url(),
            token: token.token.secret().to_string(),
        };
        let a = c.get(&format!("{}?{WEB}", site_path("rg-fn", "fn-a"))).await?;
        assert_eq!(a.status, 200, "{}", a.body);
        let wrong = ClientSecretCredential::new(
            TENANT,
            CLIENT.to_string(),
            Secret::new("nope"),
            Some(options(http(&arm)?)),
        )?;
        let err = wrong
            .get_token(&["https://management.azure.com/.default"], None)
            .await
            .err()
            .ok_or("a wrong secret got a token")?;
        assert!(err.to_string().contains("7000215"), "{err}");
        Ok(())
    }

    #[tokio::test]
    async fn token_endpoint_takes_client_assertions_and_refuses_strangers() -> TestResult {
        let arm = Arm::start(world()).await?;
        let h = http(&arm)?;
        let scope = format!("{}/.default", arm.url());
        let jwt_type = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
        let a = token_form(
            &arm,
            &h,
            &format!(
                "client_assertion=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln&client_assertion_type={jwt_type}&client_id={CLIENT}&grant_type=client_credentials&scope={scope}"
            ),
        )
        .await?;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["token_type"], "Bearer");
        assert_eq!(a.body["expires_in"], 3599);
        let a = token_form(
            &arm,
            &h,
            "client_id=c2c2c2c2-0000-4000-8000-000000000002&client_secret=x&grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
        )
        .await?;
        assert_eq!(a.status, 400);
        assert_eq!(a.body["error"], "unauthorized_client");
        let a = token_form(
            &arm,
            &h,
            &format!("client_id={CLIENT}&client_secret=wrong&grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.azure.com%2F.default"),
        )
        .await?;
        assert_eq!(a.status, 401);
        assert_eq!(a.body["error"], "invalid_client");
        Ok(())
    }

    #[tokio::test]
    async fn arm_needs_a_bearer_token_it_issued_and_an_api_version() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        let url = format!("{}{}?{WEB}", arm.url(), site_path("rg-fn", "fn-a"));
        let a = answer(c.http.get(&url).send().await?).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (401, Some("AuthenticationFailed"))
        );
        let a = answer(c.http.get(&url).bearer_auth("forged").send().await?).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (401, Some("InvalidAuthenticationToken"))
        );
        let a = c.get(&site_path("rg-fn", "fn-a")).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some("MissingApiVersionParameter"))
        );
        let a = c
            .get(&format!("{}?api-version=2015-08-01", site_path("rg-fn", "fn-a")))
            .await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some("InvalidApiVersionParameter"))
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("2024-04-01")
        );
        let a = c
            .get(&format!("{}?api-version=2023-12-01", site_path("rg-fn", "fn-a")))
            .await?;
        assert_eq!(a.status, 200);
        let a = c
            .get(&format!("/subscriptions/{TENANT}/providers/Microsoft.Web/sites?{WEB}"))
            .await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (404, Some("SubscriptionNotFound"))
        );
        let a = c.get(&format!("{}?{WEB}", site_path("rg-fn", "nope"))).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (404, Some("ResourceNotFound"))
        );
        let a = c.get(&format!("{}?{WEB}", site_path("rg-nope", "fn-a"))).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (404, Some("ResourceGroupNotFound"))
        );
        let a = c
            .get(&format!("{}/config/slotConfigNames?{WEB}", site_path("rg-fn", "fn-a")))
            .await?;
        assert_eq!(a.status, 404);
        let a = c
            .send("DELETE", &format!("{}?{WEB}", site_path("rg-fn", "fn-a")), None)
            .await?;
        assert_eq!(a.status, 405);
        let log = arm.requests();
        assert_eq!(log[1].authorization, None);
        assert_eq!(log[2].authorization.as_deref(), Some("Bearer"));
        Ok(())
    }

    #[tokio::test]
    async fn sites_list_pages_with_next_link_and_get_hides_config() -> TestResult {
        let arm = Arm::start(world().page_size(2)).await?;
        let c = connect(&arm).await?;
        let first = c
            .get(&format!("/subscriptions/{SUB}/providers/microsoft.web/SITES?{WEB}"))
            .await?;
        assert_eq!(first.status, 200);
        assert_eq!(first.body["value"].as_array().map(Vec::len), Some(2));
        let next = first.body["nextLink"].as_str().ok_or("no nextLink")?;
        assert!(next.starts_with(&arm.url()));
        let second = c.get(next).await?;
        assert_eq!(second.body["value"].as_array().map(Vec::len), Some(1));
        assert!(second.body.get("nextLink").is_none());
        let site = &first.body["value"][0];
        assert_eq!(site["type"], "Microsoft.Web/sites");
        assert_eq!(site["kind"], "functionapp,linux");
        assert_eq!(site["id"], site_path("rg-fn", "fn-a"));
        assert_eq!(site["properties"]["httpsOnly"], false);
        assert_eq!(site["properties"]["publicNetworkAccess"], Value::Null);
        assert_eq!(site["properties"]["siteConfig"]["minTlsVersion"], Value::Null);
        assert_eq!(site["properties"]["siteConfig"]["numberOfWorkers"], 1);
        let b = &first.body["value"][1];
        assert_eq!(b["identity"]["type"], "SystemAssigned, UserAssigned");
        assert_eq!(b["identity"]["tenantId"], TENANT);
        let uai = b["identity"]["userAssignedIdentities"]
            .as_object()
            .and_then(|m| m.values().next())
            .ok_or("no uai")?;
        assert_eq!(
            uai["principalId"].as_str(),
            arm.uai_principal_id("rg-fn", "uai-a").as_deref()
        );
        let rg = c
            .get(&format!(
                "/subscriptions/{SUB}/resourceGroups/rg-other/providers/Microsoft.Web/sites?{WEB}"
            ))
            .await?;
        assert_eq!(rg.body["value"][0]["name"], "fn-c");
        let mi = c
            .get(&format!("/subscriptions/{SUB}/resourceGroups/rg-fn/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai-a?api-version=2023-01-31"))
            .await?;
        assert_eq!(mi.status, 200, "{}", mi.body);
        assert_eq!(mi.body["properties"]["clientId"].as_str().map(str::len), Some(36));
        Ok(())
    }

    #[tokio::test]
    async fn config_web_patch_merges_put_replaces_and_enums_are_strict() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        let path = format!("{}/config/web?{WEB}", site_path("rg-fn", "fn-a"));
        let a = c
            .send(
                "PATCH",
                &path,
                Some(json!({"properties": {"ftpsState": "Disabled", "http20Enabled": true}})),
            )
            .await?;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["name"], "web");
        assert_eq!(a.body["properties"]["ftpsState"], "Disabled");
        assert_eq!(a.body["properties"]["minTlsVersion"], "1.2");
        let restriction = json!({"name": "office", "priority": 100, "action": "Allow", "ipAddress": "203.0.113.0/24"});
        let a = c
            .send(
                "PATCH",
                &path,
                Some(json!({"properties": {"ipSecurityRestrictions": [restriction], "ipSecurityRestrictionsDefaultAction": "Deny"}})),
            )
            .await?;
        assert_eq!(a.body["properties"]["ipSecurityRestrictions"][0]["name"], "office");
        // Like ARM, the list reads back with the implicit rule of its
        // default action at the end.
        assert_eq!(
            a.body["properties"]["ipSecurityRestrictions"][1],
            json!({"ipAddress": "Any", "action": "Deny", "priority": 2147483647, "name": "Deny all", "description": "Deny all access"})
        );
        assert_eq!(
            a.body["properties"]["ipSecurityRestrictions"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(a.body["properties"]["ftpsState"], "Disabled");
        // PUT is the whole document: ftpsState and restrictions revert.
        let a = c
            .send("PUT", &path, Some(json!({"properties": {"minTlsVersion": "1.3"}})))
            .await?;
        assert_eq!(a.status, 200);
        let cfg = arm.site_config("rg-fn", "fn-a").ok_or("no config")?;
        assert_eq!(cfg["properties"]["minTlsVersion"], "1.3");
        assert_eq!(cfg["properties"]["ftpsState"], "AllAllowed");
        assert_eq!(
            cfg["properties"]["ipSecurityRestrictions"],
            json!([{"ipAddress": "Any", "action": "Allow", "priority": 2147483647, "name": "Allow all", "description": "Allow all access"}])
        );
        let a = c
            .send("PATCH", &path, Some(json!({"properties": {"minTlsVersion": "1.4"}})))
            .await?;
        assert_eq!(a.status, 400);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("minTlsVersion")
        );
        let a = c
            .send("PATCH", &path, Some(json!({"properties": {"ftpsState": "ftpsonly"}})))
            .await?;
        assert_eq!(a.status, 400);
        let a = c
            .send("PATCH", &path, Some(json!({"properties": {"http20Enabled": "yes"}})))
            .await?;
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("http20Enabled")
        );
        let bad = json!({"name": "x", "priority": 1, "action": "Allow", "ipAddress": "10.0.0.1"});
        let a = c
            .send(
                "PATCH",
                &path,
                Some(json!({"properties": {"ipSecurityRestrictions": [bad]}})),
            )
            .await?;
        assert_eq!(a.status, 400);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("ipSecurityRestrictions[0].ipAddress")
        );
        let a = c.send("PATCH", &path, None).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some("InvalidRequestContent"))
        );
        // Refusals changed nothing.
        let cfg = arm.site_config("rg-fn", "fn-a").ok_or("no config")?;
        assert_eq!(cfg["properties"]["minTlsVersion"], "1.3");
        Ok(())
    }

    #[tokio::test]
    async fn site_patch_merges_properties_and_mirrors_vnet_route_all() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        let path = format!("{}?{WEB}", site_path("rg-fn", "fn-a"));
        let subnet = format!(
            "/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/fn"
        );
        let a = c
            .send(
                "PATCH",
                &path,
                Some(
                    json!({"properties": {"httpsOnly": true, "publicNetworkAccess": "Disabled",
                    "virtualNetworkSubnetId": subnet, "vnetRouteAllEnabled": true}, "tags": {"owner": "zerofn"}}),
                ),
            )
            .await?;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["properties"]["httpsOnly"], true);
        assert_eq!(a.body["properties"]["virtualNetworkSubnetId"], subnet.as_str());
        // SitePatchResource carries no tags: they are ignored, not written.
        assert_eq!(a.body["tags"], json!({}));
        let cfg = arm.site_config("rg-fn", "fn-a").ok_or("no config")?;
        assert_eq!(cfg["properties"]["vnetRouteAllEnabled"], true);
        assert_eq!(cfg["properties"]["publicNetworkAccess"], "Disabled");
        let a = c
            .send(
                "PATCH",
                &path,
                Some(json!({"properties": {"virtualNetworkSubnetId": "/subscriptions/x/vnet"}})),
            )
            .await?;
        assert_eq!(a.status, 400);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("virtualNetworkSubnetId")
        );
        // Drift behind zerofn's back shows in the next read.
        arm.mutate_site("rg-fn", "fn-a", |s| {
            s["properties"]["httpsOnly"] = json!(false);
            s["properties"]["siteConfig"]["minTlsVersion"] = json!("1.0");
        });
        let a = c.get(&path).await?;
        assert_eq!(a.body["properties"]["httpsOnly"], false);
        let a = c
            .get(&format!("{}/config/web?{WEB}", site_path("rg-fn", "fn-a")))
            .await?;
        assert_eq!(a.body["properties"]["minTlsVersion"], "1.0");
        Ok(())
    }

    #[tokio::test]
    async fn identity_patch_is_an_async_operation() -> TestResult {
        let arm = Arm::start(world().identity_operation_polls(2)).await?;
        let c = connect(&arm).await?;
        let path = format!("{}?{WEB}", site_path("rg-fn", "fn-a"));
        let a = c
            .send("PATCH", &path, Some(json!({"identity": {"type": "SystemAssigned"}})))
            .await?;
        assert_eq!(a.status, 202);
        let op = a
            .header("azure-asyncoperation")
            .ok_or("no Azure-AsyncOperation")?
            .to_string();
        let location = a.header("location").ok_or("no Location")?.to_string();
        assert!(
            op.contains("/providers/Microsoft.Web/locations/westeurope/operationResults/"),
            "{op}"
        );
        assert!(location.ends_with("&mode=location"));
        assert_eq!(a.header("retry-after"), Some("0"));
        // A second identity change while this one runs conflicts.
        let a = c
            .send("PATCH", &path, Some(json!({"identity": {"type": "None"}})))
            .await?;
        assert_eq!(a.status, 409);
        for _ in 0..2 {
            assert!(arm.principal_id("rg-fn", "fn-a").is_none());
            let a = c.get(&op).await?;
            assert_eq!(a.body["status"], "InProgress");
        }
        let a = c.get(&location).await?;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["identity"]["type"], "SystemAssigned");
        let a = c.get(&op).await?;
        assert_eq!(a.body["status"], "Succeeded");
        let principal = arm.principal_id("rg-fn", "fn-a").ok_or("no principal")?;
        assert_eq!(
            arm.site("rg-fn", "fn-a").ok_or("no site")?["identity"]["principalId"],
            principal.as_str()
        );
        // Dropping UserAssigned from fn-b's type detaches the identity.
        let path_b = format!("{}?{WEB}", site_path("rg-fn", "fn-b"));
        let a = c
            .send("PATCH", &path_b, Some(json!({"identity": {"type": "SystemAssigned"}})))
            .await?;
        assert_eq!(a.status, 202);
        let op = a.header("azure-asyncoperation").ok_or("no op")?.to_string();
        while c.get(&op).await?.body["status"] == "InProgress" {}
        let b = arm.site("rg-fn", "fn-b").ok_or("no site")?;
        assert_eq!(b["identity"]["type"], "SystemAssigned");
        assert!(b["identity"].get("userAssignedIdentities").is_none());
        // The same identity again is no change: 200.
        let a = c
            .send("PATCH", &path_b, Some(json!({"identity": {"type": "SystemAssigned"}})))
            .await?;
        assert_eq!(a.status, 200);
        let a = c
            .send("PATCH", &path_b, Some(json!({"identity": {"type": "Everything"}})))
            .await?;
        assert_eq!(a.status, 400);
        Ok(())
    }

    #[tokio::test]
    async fn authsettings_put_replaces_the_document() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        let path = format!("{}/config/authsettingsV2?{WEB}", site_path("rg-fn", "fn-b"));
        let a = c.get(&path).await?;
        assert_eq!(a.body["name"], "authsettingsV2");
        assert_eq!(a.body["properties"]["platform"]["enabled"], true);
        assert!(a.body["properties"]["identityProviders"]["azureActiveDirectory"].is_object());
        let careless = json!({"properties": {"platform": {"enabled": true},
            "globalValidation": {"requireAuthentication": true, "unauthenticatedClientAction": "Return401"}}});
        let a = c.send("PUT", &path, Some(careless)).await?;
        assert_eq!(a.status, 200);
        let now = arm.auth_settings("rg-fn", "fn-b").ok_or("no auth")?;
        assert!(now["properties"].get("identityProviders").is_none());
        let a = c
            .send(
                "PUT",
                &path,
                Some(json!({"properties": {"globalValidation": {"unauthenticatedClientAction": "Return500"}}})),
            )
            .await?;
        assert_eq!(a.status, 400);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("unauthenticatedClientAction")
        );
        Ok(())
    }

    #[tokio::test]
    async fn app_settings_list_is_a_read_and_publishing_policies_are_writes() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        let a = c
            .send(
                "POST",
                &format!("{}/config/appsettings/list?{WEB}", site_path("rg-fn", "fn-a")),
                None,
            )
            .await?;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["properties"]["FUNCTIONS_EXTENSION_VERSION"], "~4");
        assert_eq!(arm.writes(), 0);
        let ftp = format!(
            "{}/basicPublishingCredentialsPolicies/ftp?{WEB}",
            site_path("rg-fn", "fn-a")
        );
        assert_eq!(c.get(&ftp).await?.body["properties"]["allow"], true);
        let a = c
            .send("PUT", &ftp, Some(json!({"properties": {"allow": false}})))
            .await?;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["type"], "Microsoft.Web/sites/basicPublishingCredentialsPolicies");
        assert_eq!(arm.publishing_allowed("rg-fn", "fn-a", "ftp"), Some(false));
        assert_eq!(arm.publishing_allowed("rg-fn", "fn-a", "scm"), Some(true));
        let a = c
            .send("PUT", &ftp, Some(json!({"properties": {"allow": "no"}})))
            .await?;
        assert_eq!(a.status, 400);
        assert_eq!(arm.writes(), 1);
        arm.clear_requests();
        assert!(arm.requests().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn role_assignments_filter_create_conflict_delete() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        let principal = arm.uai_principal_id("rg-fn", "uai-a").ok_or("no uai")?;
        let rg_scope = format!("/subscriptions/{SUB}/resourceGroups/rg-fn");
        let role_id = format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}");
        let name = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        let put = format!("{rg_scope}/providers/Microsoft.Authorization/roleAssignments/{name}?{AUTHZ}");
        let body = json!({"properties": {"roleDefinitionId": role_id, "principalId": principal, "principalType": "ServicePrincipal"}});
        let a = c.send("PUT", &put, Some(body.clone())).await?;
        assert_eq!(a.status, 201, "{}", a.body);
        assert_eq!(a.body["properties"]["scope"], rg_scope.as_str());
        assert_eq!(a.body["type"], "Microsoft.Authorization/roleAssignments");
        // The same grant under another name conflicts.
        let other = format!(
            "{rg_scope}/providers/Microsoft.Authorization/roleAssignments/9a0c3f25-04e0-4f89-81d3-0305e82c3302?{AUTHZ}"
        );
        let a = c.send("PUT", &other, Some(body.clone())).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (409, Some("RoleAssignmentExists"))
        );
        let a = c
            .send(
                "PUT",
                &format!("{rg_scope}/providers/Microsoft.Authorization/roleAssignments/not-a-guid?{AUTHZ}"),
                Some(body),
            )
            .await?;
        assert_eq!(a.body["error"]["code"], "InvalidRoleAssignmentId");
        let stranger =
            json!({"properties": {"roleDefinitionId": role_id, "principalId": "00000000-1111-4222-8333-444444444444"}});
        let a = c.send("PUT", &other, Some(stranger)).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some("PrincipalNotFound"))
        );
        let no_role = json!({"properties": {"roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/00000000-1111-4222-8333-444444444444"), "principalId": principal}});
        let a = c.send("PUT", &other, Some(no_role)).await?;
        assert_eq!(a.body["error"]["code"], "RoleDefinitionDoesNotExist");
        // At subscription scope the principal filter reaches beneath it.
        let list = format!(
            "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments?{AUTHZ}&$filter=principalId%20eq%20'{principal}'"
        );
        let a = c.get(&list).await?;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["value"].as_array().map(Vec::len), Some(1));
        let a = c
            .get(&format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments?{AUTHZ}&$filter=roleName%20eq%20'x'"))
            .await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some("InvalidFilter"))
        );
        let del = format!("{rg_scope}/providers/Microsoft.Authorization/roleAssignments/{name}?{AUTHZ}");
        let a = c.send("DELETE", &del, None).await?;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["name"], name);
        let a = c.send("DELETE", &del, None).await?;
        assert_eq!(a.status, 204);
        assert!(arm.role_assignments().is_empty());
        assert_eq!(c.get(&list).await?.body["value"], json!([]));
        Ok(())
    }

    #[tokio::test]
    async fn seeded_assignments_and_role_definitions() -> TestResult {
        let w = world();
        let site_principal = w.site_principal_id("rg-fn", "fn-b").ok_or("no principal")?;
        let site_scope = site_path("rg-fn", "fn-b");
        let arm = Arm::start(w.role_assignment(&site_principal, "Key Vault Secrets User", &site_scope)).await?;
        let c = connect(&arm).await?;
        let a = c
            .get(&format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions?{AUTHZ}&$filter=roleName%20eq%20'Contributor'"))
            .await?;
        assert_eq!(a.status, 200);
        let defs = a.body["value"].as_array().ok_or("no value")?;
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0]["name"], CONTRIBUTOR);
        assert_eq!(defs[0]["properties"]["type"], "BuiltInRole");
        let kv = BUILTIN_ROLES
            .iter()
            .find(|(n, _)| *n == "Key Vault Secrets User")
            .ok_or("no role")?
            .1;
        let a = c
            .get(&format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{kv}?{AUTHZ}"
            ))
            .await?;
        assert_eq!(a.body["properties"]["roleName"], "Key Vault Secrets User");
        // Assignments at a site's scope are listed at the site and above it.
        let a = c
            .get(&format!(
                "{site_scope}/providers/Microsoft.Authorization/roleAssignments?{AUTHZ}&$filter=atScope()"
            ))
            .await?;
        assert_eq!(a.body["value"].as_array().map(Vec::len), Some(1));
        assert!(
            a.body["value"][0]["properties"]["roleDefinitionId"]
                .as_str()
                .unwrap_or_default()
                .ends_with(kv)
        );
        Ok(())
    }

    #[tokio::test]
    async fn injected_throttling_carries_retry_after() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        arm.fail_next("GET", "/config/web", 429, "TooManyRequests", Some(7), 1);
        let path = format!("{}/config/web?{WEB}", site_path("rg-fn", "fn-a"));
        let a = c.get(&path).await?;
        assert_eq!(a.status, 429);
        assert_eq!(a.body["error"]["code"], "TooManyRequests");
        assert_eq!(a.header("retry-after"), Some("7"));
        assert_eq!(c.get(&path).await?.status, 200);
        arm.fail_next("PATCH", "/config/web", 409, "Conflict", None, 1);
        let a = c
            .send("PATCH", &path, Some(json!({"properties": {"ftpsState": "Disabled"}})))
            .await?;
        assert_eq!(a.status, 409);
        assert_eq!(arm.writes(), 0);
        let a = c
            .send("PATCH", &path, Some(json!({"properties": {"ftpsState": "Disabled"}})))
            .await?;
        assert_eq!(a.status, 200);
        assert_eq!(arm.writes(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_new_system_principal_replicates_before_it_can_be_granted() -> TestResult {
        let arm = Arm::start(world().principal_propagation_delay(std::time::Duration::from_millis(300))).await?;
        let c = connect(&arm).await?;
        let uai = format!(
            "/subscriptions/{SUB}/resourceGroups/rg-fn/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai-a"
        );
        let path = format!("{}?{WEB}", site_path("rg-fn", "fn-a"));
        let patch =
            json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uai.clone(): {}}}});
        let a = c.send("PATCH", &path, Some(patch)).await?;
        assert_eq!(a.status, 202, "{}", a.body);
        let location = a.header("location").ok_or("no Location")?.to_string();
        assert_eq!(c.get(&location).await?.status, 202);
        let site = c.get(&location).await?;
        assert_eq!(site.status, 200);
        assert_eq!(site.body["identity"]["type"], "SystemAssigned, UserAssigned");
        assert!(site.body["identity"]["userAssignedIdentities"][uai.as_str()]["clientId"].is_string());
        let principal = arm.principal_id("rg-fn", "fn-a").ok_or("no principal")?;
        let put = format!(
            "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/7c9e6679-7425-40de-944b-e07fc1f90ae7?{AUTHZ}"
        );
        let body = json!({"properties": {"principalId": principal,
            "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}")}});
        let a = c.send("PUT", &put, Some(body.clone())).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some("PrincipalNotFound"))
        );
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        let a = c.send("PUT", &put, Some(body)).await?;
        assert_eq!(a.status, 201, "{}", a.body);
        assert_eq!(a.body["properties"]["principalType"], "ServicePrincipal");
        Ok(())
    }

    /// Written from Azure's published built-in role list, not from the
    /// stand-in's table, so a typo in both cannot pass.
    #[test]
    fn built_in_role_ids_are_the_published_ones() {
        let published = [
            ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
            ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
            ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
            ("User Access Administrator", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"),
            (
                "Role Based Access Control Administrator",
                "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
            ),
            ("Website Contributor", "de139f84-1756-47ae-9be6-808fbbe84772"),
            ("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"),
            ("Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"),
            ("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
            ("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88"),
            ("Storage Queue Data Reader", "19e7f393-937e-4f77-808e-94535e297925"),
            ("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"),
            ("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"),
            ("Monitoring Metrics Publisher", "3913510d-42f4-4e42-8a64-420c390055eb"),
        ];
        assert_eq!(BUILTIN_ROLES.len(), published.len());
        for (name, id) in published {
            let served = BUILTIN_ROLES.iter().find(|(n, _)| *n == name).map(|(_, g)| *g);
            assert_eq!(served, Some(id), "{name}");
        }
    }

    #[tokio::test]
    async fn slots_are_sites_of_their_own() -> TestResult {
        let arm = Arm::start(world().slot(
            "fn-a",
            SiteSeed {
                https_only: true,
                ..SiteSeed::new("rg-fn", "staging")
            },
        ))
        .await?;
        let c = connect(&arm).await?;
        let app = site_path("rg-fn", "fn-a");
        let a = c.get(&format!("{app}/slots?{WEB}")).await?;
        assert_eq!(a.status, 200, "{}", a.body);
        let slots = a.body["value"].as_array().cloned().unwrap_or_default();
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0]["id"], format!("{app}/slots/staging"));
        assert_eq!(slots[0]["name"], "fn-a/staging");
        assert_eq!(slots[0]["type"], "Microsoft.Web/sites/slots");
        assert_eq!(slots[0]["properties"]["httpsOnly"], true);
        assert_eq!(
            slots[0]["properties"]["defaultHostName"],
            "fn-a-staging.azurewebsites.net"
        );
        // Not in the app list; not under another app.
        let all = c
            .get(&format!("/subscriptions/{SUB}/providers/Microsoft.Web/sites?{WEB}"))
            .await?;
        assert!(
            all.body["value"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|s| s["type"] == "Microsoft.Web/sites")
        );
        let other = c.get(&format!("{}/slots?{WEB}", site_path("rg-fn", "fn-b"))).await?;
        assert_eq!(other.body["value"], json!([]));
        // Its own config/web and authsettingsV2; a write to it leaves the app alone.
        let slot = format!("{app}/slots/staging");
        let a = c
            .send(
                "PATCH",
                &format!("{slot}/config/web?{WEB}"),
                Some(json!({"properties": {"ipSecurityRestrictionsDefaultAction": "Deny", "scmIpSecurityRestrictionsDefaultAction": "Deny"}})),
            )
            .await?;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["id"], format!("{slot}/config/web"));
        assert_eq!(a.body["properties"]["ipSecurityRestrictions"][0]["name"], "Deny all");
        assert_eq!(a.body["properties"]["scmIpSecurityRestrictions"][0]["name"], "Deny all");
        let main = c.get(&format!("{app}/config/web?{WEB}")).await?;
        assert_eq!(
            main.body["properties"]["ipSecurityRestrictions"][0]["name"],
            "Allow all"
        );
        let a = c.get(&format!("{slot}/config/authsettingsV2?{WEB}")).await?;
        assert_eq!(a.status, 200);
        assert_eq!(a.body["properties"]["platform"]["enabled"], false);
        let a = c
            .send(
                "PATCH",
                &format!("{slot}?{WEB}"),
                Some(json!({"properties": {"publicNetworkAccess": "Disabled"}})),
            )
            .await?;
        assert_eq!(a.body["properties"]["publicNetworkAccess"], "Disabled");
        let a = c.get(&format!("{app}/slots/nope?{WEB}")).await?;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (404, Some("ResourceNotFound"))
        );
        Ok(())
    }

    #[tokio::test]
    async fn scm_restrictions_any_and_header_pins_are_validated() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        let path = format!("{}/config/web?{WEB}", site_path("rg-fn", "fn-a"));
        let pinned = json!({"name": "fd", "priority": 200, "action": "Allow", "ipAddress": "AzureFrontDoor.Backend",
                            "tag": "ServiceTag", "headers": {"x-azure-fdid": ["0d5f0c7b-93d1-4d43-8a53-2b8e4c52e5a1"]}});
        let any = json!({"name": "AllowAll", "priority": 100, "action": "Allow", "ipAddress": "Any"});
        let a = c
            .send(
                "PATCH",
                &path,
                Some(json!({"properties": {"ipSecurityRestrictions": [pinned.clone()],
                    "scmIpSecurityRestrictions": [any.clone()], "scmIpSecurityRestrictionsUseMain": false}})),
            )
            .await?;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["properties"]["ipSecurityRestrictions"][0], pinned);
        assert_eq!(a.body["properties"]["scmIpSecurityRestrictions"][0], any);
        assert_eq!(
            a.body["properties"]["scmIpSecurityRestrictions"][1]["name"],
            "Allow all"
        );
        assert_eq!(a.body["properties"]["scmIpSecurityRestrictionsUseMain"], false);
        // Writing back what was read keeps one list, not the implicit rule twice.
        let listed = a.body["properties"]["ipSecurityRestrictions"].clone();
        let a = c
            .send(
                "PATCH",
                &path,
                Some(json!({"properties": {"ipSecurityRestrictions": listed}})),
            )
            .await?;
        assert_eq!(
            a.body["properties"]["ipSecurityRestrictions"].as_array().map(Vec::len),
            Some(2)
        );
        for (bad, field) in [
            (
                json!({"name": "h", "priority": 1, "action": "Allow", "ipAddress": "10.0.0.0/8", "headers": {"x-custom": ["a"]}}),
                "headers.x-custom",
            ),
            (
                json!({"name": "h", "priority": 1, "action": "Allow", "ipAddress": "10.0.0.0/8", "headers": {"x-azure-fdid": []}}),
                "headers.x-azure-fdid",
            ),
            (
                json!({"name": "h", "priority": 1, "action": "Allow", "ipAddress": "10.0.0.0/8", "headers": "x"}),
                "headers",
            ),
        ] {
            let a = c
                .send(
                    "PATCH",
                    &path,
                    Some(json!({"properties": {"scmIpSecurityRestrictions": [bad]}})),
                )
                .await?;
            assert_eq!(a.status, 400, "{}", a.body);
            let msg = a.body["error"]["message"].as_str().unwrap_or_default().to_string();
            assert!(msg.contains(&format!("scmIpSecurityRestrictions[0].{field}")), "{msg}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn tags_go_through_the_resources_tags_api() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        let tags = format!(
            "{}/providers/Microsoft.Resources/tags/default",
            site_path("rg-fn", "fn-a")
        );
        let v = "api-version=2021-04-01";
        let a = c
            .send(
                "PATCH",
                &format!("{tags}?{v}"),
                Some(json!({"operation": "Merge", "properties": {"tags": {"team": "a", "owner": "x/y"}}})),
            )
            .await?;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["id"], tags);
        assert_eq!(a.body["name"], "default");
        assert_eq!(a.body["type"], "Microsoft.Resources/tags");
        assert_eq!(a.body["properties"]["tags"], json!({"team": "a", "owner": "x/y"}));
        // Merge keeps the others.
        let a = c
            .send(
                "PATCH",
                &format!("{tags}?{v}"),
                Some(json!({"operation": "Merge", "properties": {"tags": {"cost": "1"}}})),
            )
            .await?;
        assert_eq!(
            a.body["properties"]["tags"],
            json!({"team": "a", "owner": "x/y", "cost": "1"})
        );
        assert_eq!(arm.site("rg-fn", "fn-a").ok_or("site")?["tags"]["owner"], "x/y");
        // Delete by name and value: a value that no longer matches stays.
        let a = c
            .send(
                "PATCH",
                &format!("{tags}?{v}"),
                Some(json!({"operation": "Delete", "properties": {"tags": {"owner": "other", "cost": "1"}}})),
            )
            .await?;
        assert_eq!(a.body["properties"]["tags"], json!({"team": "a", "owner": "x/y"}));
        let a = c.get(&format!("{tags}?{v}")).await?;
        assert_eq!(a.body["properties"]["tags"], json!({"team": "a", "owner": "x/y"}));
        for (body, code) in [
            (
                json!({"operation": "Upsert", "properties": {"tags": {}}}),
                "InvalidRequestContent",
            ),
            (
                json!({"operation": "Merge", "properties": {"tags": {"a": 1}}}),
                "InvalidRequestContent",
            ),
            (
                json!({"operation": "Merge", "properties": {"tags": {"a/b": "1"}}}),
                "InvalidTagNameCharacters",
            ),
        ] {
            let a = c.send("PATCH", &format!("{tags}?{v}"), Some(body)).await?;
            assert_eq!(
                (a.status, a.body["error"]["code"].as_str()),
                (400, Some(code)),
                "{}",
                a.body
            );
        }
        let a = c.get(&format!("{tags}?api-version=2019-01-01")).await?;
        assert_eq!(a.body["error"]["code"], "InvalidApiVersionParameter");
        let a = c
            .get(&format!(
                "{}/providers/Microsoft.Resources/tags/default?{v}",
                site_path("rg-fn", "nope")
            ))
            .await?;
        assert_eq!(a.status, 404);
        Ok(())
    }

    #[tokio::test]
    async fn a_role_definition_is_served_by_id_with_its_permissions() -> TestResult {
        let arm = Arm::start(world()).await?;
        let c = connect(&arm).await?;
        let a = c
            .get(&format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}?{AUTHZ}"
            ))
            .await?;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["properties"]["roleName"], "Contributor");
        assert_eq!(a.body["properties"]["permissions"][0]["actions"], json!(["*"]));
        Ok(())
    }
}

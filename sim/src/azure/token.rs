//! The Microsoft identity platform v2 token endpoint, as azure_identity's
//! ClientSecretCredential and ClientAssertionCredential (and so
//! WorkloadIdentityCredential) call it: client credentials grant only.

use super::ids::{guid, now, parse_query};
use super::server::Reply;
use super::world::State;
use serde_json::json;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Whom a token was issued for, from the scope it was requested with: ARM
/// refuses storage tokens and the Queue service refuses ARM tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    Arm,
    Storage,
}

/// The audience a `.default` scope asks for, None when the stand-in issues
/// no tokens for it.
fn audience(scope: &str, base_url: &str) -> Option<Audience> {
    let base = base_url.trim_end_matches('/');
    let arm = [
        "https://management.azure.com/.default".to_string(),
        "https://management.azure.com//.default".to_string(),
        "https://management.core.windows.net/.default".to_string(),
        format!("{base}/.default"),
        format!("{base}//.default"),
    ];
    if arm.iter().any(|a| a == scope) {
        Some(Audience::Arm)
    } else if scope == "https://storage.azure.com/.default" {
        Some(Audience::Storage)
    } else {
        None
    }
}

/// An AAD refusal. The description carries no characters JSON must escape:
/// azure_identity borrows it straight from the body.
fn aad_error(status: u16, error: &str, code: u32, description: &str) -> Reply {
    Reply::new(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {}", guid()),
            "error_codes": [code],
            "timestamp": now(),
            "trace_id": guid(),
            "correlation_id": guid()
        }),
    )
}

pub(crate) fn handle(state: &mut State, tenant: &str, body: &[u8]) -> Reply {
    if !tenant.eq_ignore_ascii_case(&state.tenant) {
        return aad_error(
            400,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."),
        );
    }
    let form = std::str::from_utf8(body).ok().and_then(parse_query).unwrap_or_default();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return aad_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type; the stand-in serves client_credentials only.",
        );
    }
    let client_id = field("client_id");
    let Some((secret, _)) = state.clients.get(client_id) else {
        return aad_error(
            400,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
        );
    };
    if form.contains_key("client_assertion") || form.contains_key("client_assertion_type") {
        let assertion = field("client_assertion");
        let looks_like_jwt = assertion.split('.').count() == 3 && assertion.split('.').all(|p| !p.is_empty());
        if field("client_assertion_type") != JWT_BEARER || !looks_like_jwt {
            return aad_error(
                401,
                "invalid_client",
                50027,
                "JWT token is invalid or malformed: expected a signed client assertion of type jwt-bearer.",
            );
        }
    } else if field("client_secret") != secret {
        return aad_error(
            401,
            "invalid_client",
            7000215,
            &format!("Invalid client secret provided. Ensure the secret being sent is the one for app '{client_id}'."),
        );
    }
    let scope = field("scope");
    let Some(audience) = audience(scope, &state.base_url) else {
        return aad_error(
            400,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope '{scope}' is not valid: the stand-in issues Azure Resource Manager and storage tokens only."
            ),
        );
    };
    let token = format!("{}{}", guid().replace('-', ""), guid().replace('-', ""));
    state.tokens.insert(token.clone(), audience);
    Reply::new(
        200,
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
    )
}

//! The one HTTPS client builder for calls zerofn makes with reqwest (Azure's
//! pipeline transport, the Pub/Sub feed): the system's roots plus the run's
//! extra roots (a private endpoint, a TLS-inspecting proxy, a stand-in).

use super::ProviderError;

pub fn client(extra_roots: &[String], timeout: Option<std::time::Duration>) -> Result<reqwest::Client, ProviderError> {
    let mut certs = Vec::new();
    for pem in extra_roots {
        certs.push(
            reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| ProviderError::Config(format!("extra root certificate: {e}")))?,
        );
    }
    let mut builder = reqwest::Client::builder().tls_certs_merge(certs);
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    builder
        .build()
        .map_err(|e| ProviderError::Config(format!("HTTPS client: {e}")))
}

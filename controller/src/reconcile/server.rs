//! `/livez`, `/readyz` and `/metrics` for the kubelet and Prometheus.

use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the probes report.
#[derive(Default)]
pub struct Health {
    /// The controller's caches hold a first full list (or, on a standby,
    /// the API server answered).
    pub ready: AtomicBool,
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

fn route(path: &str, health: &Health, metrics: &Metrics) -> Response<Full<Bytes>> {
    match path {
        "/livez" | "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if health.ready.load(Ordering::Relaxed) => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n".into()),
        "/metrics" => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Serve until `stop` changes.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = stop.changed() => return Ok(()),
        };
        let (health, metrics) = (health.clone(), metrics.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let r = route(req.uri().path(), &health, &metrics);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_metrics() {
        let (h, m) = (Health::default(), Metrics::default());
        assert_eq!(route("/livez", &h, &m).status(), StatusCode::OK);
        assert_eq!(route("/readyz", &h, &m).status(), StatusCode::SERVICE_UNAVAILABLE);
        h.ready.store(true, Ordering::Relaxed);
        assert_eq!(route("/readyz", &h, &m).status(), StatusCode::OK);
        m.cloud_call("aws", "GetPolicy", crate::metrics::Outcome::ok);
        let r = route("/metrics", &h, &m);
        assert!(
            r.headers()[hyper::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        assert_eq!(route("/nope", &h, &m).status(), StatusCode::NOT_FOUND);
    }
}

//! The server plumbing every in-process stand-in shares, so that each of them
//! only holds its routes and its world: a listener on a free loopback port,
//! plain HTTP or HTTPS with a test CA, a journal of every request for tests to
//! assert on, armed faults, and a stop when the handle is dropped.
//!
//! A stand-in binds a [`Listener`] (it may need its URL while it builds its
//! state), then [`Listener::serve`]s its axum router; the [`Server`] it gets
//! back answers until dropped.

mod faults;
mod journal;
mod tls;

pub use faults::{Faults, PathMatch};
pub use journal::{BadEncoding, Journal, Principal, Recorded, percent_decode};
pub use tls::TestCa;

use axum::Router;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Locks `m` even if a panicking test thread poisoned it: one failed
/// assertion must not take every later request down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a method changes something by HTTP's definition (anything but
/// GET, HEAD and OPTIONS): the rule for stand-ins that have no POST that only
/// reads.
pub fn mutating_method(method: &str, _path: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// A bound loopback port, not answering yet.
pub struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
    ca: Option<TestCa>,
}

impl Listener {
    /// A free port of 127.0.0.1 for plain HTTP.
    pub async fn http() -> std::io::Result<Listener> {
        Listener::bind(None).await
    }

    /// A free port of 127.0.0.1 for HTTPS with a fresh test CA: for clients
    /// that send credentials over https only (kubectl, azure_identity).
    pub async fn https() -> std::io::Result<Listener> {
        Listener::bind(Some(TestCa::new()?)).await
    }

    async fn bind(ca: Option<TestCa>) -> std::io::Result<Listener> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        Ok(Listener { listener, addr, ca })
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Answers with `router` from now on, recording every exchange in the
    /// returned server's journal; `is_write` tells the stand-in's writes
    /// from its reads (method, decoded path).
    pub fn serve(self, router: Router, is_write: fn(&str, &str) -> bool) -> Server {
        let url = self.url();
        let journal = Journal::new(is_write);
        let router = journal.record(router);
        let acceptor = self
            .ca
            .as_ref()
            .map(|ca| tokio_rustls::TlsAcceptor::from(ca.server.clone()));
        let task = tokio::spawn(accept_loop(self.listener, router, acceptor));
        Server {
            url,
            ca_pem: self.ca.map(|ca| ca.ca_pem),
            journal,
            task,
        }
    }
}

/// A stand-in's running server. Dropping it closes the listener and every
/// open connection (watches included).
pub struct Server {
    url: String,
    ca_pem: Option<String>,
    journal: Journal,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PEM of the CA clients must trust; empty for plain HTTP.
    pub fn ca_pem(&self) -> &str {
        self.ca_pem.as_deref().unwrap_or_default()
    }

    /// Every request answered so far, oldest first.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts until aborted. The connections live in the loop's own set, so
/// aborting the loop drops them too: a dropped stand-in answers nothing more.
async fn accept_loop(listener: TcpListener, router: Router, tls: Option<tokio_rustls::TlsAcceptor>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    connections.spawn(serve_connection(tcp, router.clone(), tls.clone()));
                }
                // Out of file descriptors and the like: the stand-in has
                // nobody to report to, the test sees its requests fail; wait
                // rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(tcp: TcpStream, router: Router, tls: Option<tokio_rustls::TlsAcceptor>) {
    let service = hyper_util::service::TowerToHyperService::new(router);
    let http = hyper::server::conn::http1::Builder::new();
    // A connection that fails (a client hanging up, a handshake refused)
    // concerns that client only.
    let _ = match tls {
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(stream) => {
                http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await
            }
            Err(_) => return,
        },
        None => http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await,
    };
}

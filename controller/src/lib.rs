//! zerofn: a declared, continuously enforced Zero Trust posture for
//! serverless functions on AWS Lambda, Azure Functions and Google Cloud
//! Functions.
//!
//! Layers, each using only those below it: `cli` → `engine` (+ `accounts`,
//! `manifests` beside it) → `providers::{aws,...}` → `api`, `findings` and
//! `metrics` and `reason` at the ground.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod api;
pub mod ceiling;
pub mod cli;
pub mod engine;
pub mod events;
pub mod findings;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod fleet;
pub mod logging;
pub mod manifests;
pub mod metrics;
pub mod providers;
pub mod reason;
pub mod reconcile;

//! zerofn: a declared, continuously enforced Zero Trust posture for
//! serverless functions on AWS Lambda, Azure Functions and Google Cloud
//! Functions.
//!
//! Layers, each using only those below it: `cli` → `engine` →
//! `providers::{aws,...}` → `api` and `findings`. `manifests` reads YAML for
//! the CLI beside the engine.

pub mod api;
pub mod findings;
pub mod metrics;
pub mod providers;

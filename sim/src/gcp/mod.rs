//! Google Cloud stand-in: Cloud Functions v2, IAM v1 service accounts, Cloud Run v2
//! IAM policies, Cloud Resource Manager v3 project IAM and Pub/Sub v1 pull
//! subscriptions, to the published discovery documents.
//!
//! Seed a [`GcpWorld`], [`GcpStandIn::start`] it, and point the official
//! google-cloud-rust clients at [`GcpStandIn::url`] with anonymous
//! credentials. README.md beside this file lists the calls served and how
//! they differ from Google's.

mod audit;
mod errors;
mod fieldmask;
mod functions;
mod iam;
mod logging;
mod lro;
mod policy;
mod pubsub;
mod recommender;
mod request;
mod resourcemanager;
mod roles;
mod run;
mod schema;
mod server;
mod services;
mod world;

pub use audit::audit_entry;
pub use errors::{Code, GcpError};
pub use policy::{Binding, Condition, IamResource, Policy};
pub use recommender::InsightSeed;
pub use server::GcpStandIn;
pub use world::{FunctionSeed, GcpWorld};

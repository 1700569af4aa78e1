//! Stand-ins for the clouds and the Kubernetes API, for zerofn's tests and
//! demos. Never linked into the product binary.
#![forbid(unsafe_code)]

pub mod aws;
pub mod azure;
pub mod counting;
pub mod demo;
pub mod gcp;
pub mod kube;
pub mod kubetools;
pub mod localstack;
pub mod process;
pub mod quota;
pub mod repo;
pub mod scaffold;
pub mod scripted;

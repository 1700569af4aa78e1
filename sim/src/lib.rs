//! Stand-ins for the clouds and the Kubernetes API, for zerofn's tests.
//! Never linked into the product binary.

pub mod process;
pub mod scripted;

//! Azure Resource Manager stand-in over HTTPS: Microsoft.Web sites and their
//! config, role assignments and definitions, managed identities, a token
//! endpoint, and Queue Storage messages (path-style), to the published REST
//! API specs.
//!
//! Seed an [`AzureWorld`], [`Arm::start`] it, point the ARM endpoint and the
//! authority host at [`Arm::url`] and trust [`Arm::ca_pem`]. README.md
//! beside this file lists the calls served and how they differ from Azure's.

mod authorization;
mod errors;
mod eventgrid;
mod ids;
mod managed_identity;
mod network;
mod queue;
mod resources;
mod roles;
mod server;
mod token;
mod web;
mod webconfig;
mod world;

pub use errors::ArmError;
pub use eventgrid::resource_write_event;
pub use roles::BUILTIN_ROLES;
pub use server::Arm;
pub use world::{AzureWorld, SiteSeed};

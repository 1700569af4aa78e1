//! Fleet policies, pure: which functions a PosturePolicy selects, and what
//! governs each function of an account. No I/O; the listed functions come
//! from a provider's shared inventory.

pub mod assign;
pub mod select;

pub use assign::{Assignment, Candidate, Governor, PolicyId, Superseded, assign};
pub use select::{Listed, selects};

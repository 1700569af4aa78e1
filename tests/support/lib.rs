//! Shared helpers for zerofn's integration tests.

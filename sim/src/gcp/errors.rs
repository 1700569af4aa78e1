//! The `google.rpc.Status` error body every Google REST API answers with, and
//! the canonical codes with the HTTP status each one travels under.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::fmt;

/// A canonical `google.rpc.Code`, as it appears in `error.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    InvalidArgument,
    FailedPrecondition,
    NotFound,
    AlreadyExists,
    Aborted,
    ResourceExhausted,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    DeadlineExceeded,
    Unimplemented,
    Internal,
}

impl Code {
    /// The HTTP status Google's front end maps this code to.
    pub fn http_status(self) -> u16 {
        match self {
            Code::InvalidArgument | Code::FailedPrecondition => 400,
            Code::Unauthenticated => 401,
            Code::PermissionDenied => 403,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::ResourceExhausted => 429,
            Code::Internal => 500,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::DeadlineExceeded => 504,
        }
    }

    /// The enum spelling of `google.rpc.Code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::Aborted => "ABORTED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Unavailable => "UNAVAILABLE",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
        }
    }

    /// The numeric `google.rpc.Code`, used inside a failed operation's `error`.
    pub fn rpc_number(self) -> i32 {
        match self {
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::Unauthenticated => 16,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: `{"error":{"code":404,"message":"...","status":"NOT_FOUND"}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcpError {
    pub code: Code,
    pub message: String,
}

impl GcpError {
    pub fn new(code: Code, message: impl Into<String>) -> GcpError {
        GcpError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> GcpError {
        GcpError::new(Code::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> GcpError {
        GcpError::new(Code::NotFound, message)
    }

    pub fn unimplemented(message: impl Into<String>) -> GcpError {
        GcpError::new(
            Code::Unimplemented,
            format!("the GCP stand-in does not implement {}", message.into()),
        )
    }

    /// Google answers for a project that does not exist exactly as for one the
    /// caller may not see, so callers cannot probe for project ids.
    pub fn project_denied(permission: &str, resource: &str) -> GcpError {
        GcpError::new(
            Code::PermissionDenied,
            format!("Permission '{permission}' denied on resource '{resource}' (or it may not exist)."),
        )
    }

    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "code": self.code.http_status(),
                "message": self.message,
                "status": self.code.as_str(),
            }
        })
    }
}

impl fmt::Display for GcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code.http_status(), self.code, self.message)
    }
}

impl std::error::Error for GcpError {}

impl IntoResponse for GcpError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &self.body())
    }
}

/// JSON with the content type Google's front end uses.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) type GcpResult<T> = Result<T, GcpError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_google_rpc_status_shape() {
        let e = GcpError::not_found("Resource 'x' was not found");
        assert_eq!(
            e.body(),
            json!({"error": {"code": 404, "message": "Resource 'x' was not found", "status": "NOT_FOUND"}})
        );
        assert_eq!(GcpError::new(Code::Aborted, "x").body()["error"]["code"], 409);
        assert_eq!(GcpError::new(Code::ResourceExhausted, "x").body()["error"]["code"], 429);
        assert_eq!(
            GcpError::new(Code::Unauthenticated, "x").body()["error"]["status"],
            "UNAUTHENTICATED"
        );
    }
}

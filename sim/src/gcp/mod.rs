//! Google Cloud stand-in: Cloud Functions v2, IAM v1 service accounts, Cloud Run v2
//! IAM policies and Cloud Resource Manager v3 project IAM, to the published
//! discovery documents.

//! CloudTrail management events as EventBridge delivers them to an SQS
//! queue: the message body is the EventBridge event, whose `detail` is the
//! CloudTrail record (`detail-type` "AWS API Call via CloudTrail").

use super::{Decoded, Touched, Undecodable, parse, timestamp};
use crate::api::{AwsFunctionRef, FunctionTarget};
use serde_json::Value;

const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// Decode one message body. `home_region` is the Region a function named
/// without an ARN lives in: the event's own `awsRegion`, else the account's.
pub fn decode(body: &str, home_region: &str) -> Result<Decoded, Undecodable> {
    let event = parse(body)?;
    if event["detail-type"].as_str() != Some(DETAIL_TYPE) {
        return Err(Undecodable(format!(
            "detail-type {:?}, not {DETAIL_TYPE:?}",
            event["detail-type"].as_str().unwrap_or_default()
        )));
    }
    let detail = &event["detail"];
    let source = detail["eventSource"].as_str().unwrap_or_default();
    let name = detail["eventName"].as_str().unwrap_or_default();
    if detail["readOnly"].as_bool() == Some(true) || detail["errorCode"].is_string() {
        return Ok(Decoded::Unwatched(format!("{source} {name} (read or failed)")));
    }
    let region = detail["awsRegion"]
        .as_str()
        .or(event["region"].as_str())
        .unwrap_or(home_region);
    let params = &detail["requestParameters"];
    let touched = Touched {
        functions: functions(source, params, region),
        identities: roles(source, params),
        identity_wide: false,
        actor: detail["userIdentity"]["arn"].as_str().map(str::to_string),
        time: timestamp(detail["eventTime"].as_str().or(event["time"].as_str())),
    };
    if touched.functions.is_empty() && touched.identities.is_empty() {
        return Ok(Decoded::Unwatched(format!("{source} {name}")));
    }
    Ok(Decoded::Change(touched))
}

/// The function a Lambda call names: `functionName` (a name, an ARN, a
/// partial ARN, any of them with a qualifier) or, for an event source
/// mapping, the function it points at.
fn functions(source: &str, params: &Value, region: &str) -> Vec<FunctionTarget> {
    if source != "lambda.amazonaws.com" {
        return Vec::new();
    }
    ["functionName", "function"]
        .iter()
        .filter_map(|k| params[*k].as_str())
        .filter_map(|named| function_ref(named, region))
        .map(|aws| FunctionTarget {
            aws: Some(aws),
            azure: None,
            gcp: None,
        })
        .collect()
}

/// `orders`, `orders:prod`, `123456789012:function:orders`,
/// `arn:aws:lambda:eu-west-1:123456789012:function:orders:prod`.
fn function_ref(named: &str, region: &str) -> Option<AwsFunctionRef> {
    let parts: Vec<&str> = named.split(':').collect();
    let (name, region) = match parts.as_slice() {
        [name] | [name, _] => (*name, region),
        [_, "function", name] | [_, "function", name, _] => (*name, region),
        ["arn", _, "lambda", r, _, "function", name] | ["arn", _, "lambda", r, _, "function", name, _] => (*name, *r),
        _ => return None,
    };
    (!name.is_empty()).then(|| AwsFunctionRef {
        name: name.to_string(),
        region: Some(region.to_string()),
    })
}

/// The role an IAM call changes (its policies, trust or boundary).
fn roles(source: &str, params: &Value) -> Vec<String> {
    if source != "iam.amazonaws.com" {
        return Vec::new();
    }
    params["roleName"]
        .as_str()
        .map(|r| vec![r.rsplit('/').next().unwrap_or(r).to_string()])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EventBridge event carrying a CloudTrail record, shaped as the
    /// CloudTrail record contents reference and EventBridge's "AWS API Call
    /// via CloudTrail" envelope describe them.
    pub fn cloudtrail(source: &str, name: &str, params: Value, arn: &str) -> String {
        serde_json::json!({
            "version": "0",
            "id": "6f87d04b-9f74-4f04-a780-7acf4b0a9b38",
            "detail-type": DETAIL_TYPE,
            "source": format!("aws.{}", source.trim_end_matches(".amazonaws.com")),
            "account": "123456789012",
            "time": "2026-12-04T10:00:00Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": {
                "eventVersion": "1.09",
                "userIdentity": {
                    "type": "AssumedRole",
                    "principalId": "AROAEXAMPLE:someone",
                    "arn": arn,
                    "accountId": "123456789012"
                },
                "eventTime": "2026-12-04T09:59:58Z",
                "eventSource": source,
                "eventName": name,
                "awsRegion": "eu-west-1",
                "sourceIPAddress": "192.0.2.1",
                "userAgent": "aws-cli/2",
                "requestParameters": params,
                "responseElements": null,
                "readOnly": false,
                "eventType": "AwsApiCall",
                "managementEvent": true,
                "recipientAccountId": "123456789012",
                "eventCategory": "Management"
            }
        })
        .to_string()
    }

    const SOMEONE: &str = "arn:aws:sts::123456789012:assumed-role/admin/someone";

    fn change(body: &str) -> Touched {
        match decode(body, "us-east-1") {
            Ok(Decoded::Change(t)) => t,
            other => panic!("not a change: {other:?}"),
        }
    }

    fn names(t: &Touched) -> Vec<(String, String)> {
        t.functions
            .iter()
            .filter_map(|f| f.aws.as_ref())
            .map(|a| (a.name.clone(), a.region.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_lambda_call_names_its_function_in_every_spelling() {
        for named in [
            "orders",
            "orders:prod",
            "123456789012:function:orders",
            "arn:aws:lambda:eu-west-1:123456789012:function:orders",
            "arn:aws:lambda:eu-west-1:123456789012:function:orders:prod",
        ] {
            let t = change(&cloudtrail(
                "lambda.amazonaws.com",
                "AddPermission20150331v2",
                serde_json::json!({"functionName": named, "statementId": "sneaky", "principal": "*"}),
                SOMEONE,
            ));
            assert_eq!(names(&t), [("orders".to_string(), "eu-west-1".to_string())], "{named}");
            assert_eq!(t.actor.as_deref(), Some(SOMEONE));
            assert_eq!(t.time, "2026-12-04T09:59:58Z".parse().ok());
        }
    }

    #[test]
    fn an_arn_names_its_own_region() {
        let t = change(&cloudtrail(
            "lambda.amazonaws.com",
            "UpdateFunctionUrlConfig20211031",
            serde_json::json!({"functionName": "arn:aws:lambda:ap-south-1:123456789012:function:orders"}),
            SOMEONE,
        ));
        assert_eq!(names(&t), [("orders".to_string(), "ap-south-1".to_string())]);
    }

    #[test]
    fn an_iam_call_names_its_role() {
        let t = change(&cloudtrail(
            "iam.amazonaws.com",
            "PutRolePolicy",
            serde_json::json!({"roleName": "orders-runtime", "policyName": "wide"}),
            SOMEONE,
        ));
        assert!(t.functions.is_empty());
        assert_eq!(t.identities, ["orders-runtime"]);
    }

    #[test]
    fn reads_failures_and_other_services_are_unwatched() {
        let mut read: Value = serde_json::from_str(&cloudtrail(
            "lambda.amazonaws.com",
            "GetPolicy20150331v2",
            serde_json::json!({"functionName": "orders"}),
            SOMEONE,
        ))
        .expect("json");
        read["detail"]["readOnly"] = Value::Bool(true);
        assert!(matches!(
            decode(&read.to_string(), "eu-west-1"),
            Ok(Decoded::Unwatched(_))
        ));
        let mut failed = read.clone();
        failed["detail"]["readOnly"] = Value::Bool(false);
        failed["detail"]["errorCode"] = Value::String("AccessDenied".into());
        assert!(matches!(
            decode(&failed.to_string(), "eu-west-1"),
            Ok(Decoded::Unwatched(_))
        ));
        let s3 = cloudtrail(
            "s3.amazonaws.com",
            "PutBucketPolicy",
            serde_json::json!({"bucketName": "b"}),
            SOMEONE,
        );
        assert!(matches!(decode(&s3, "eu-west-1"), Ok(Decoded::Unwatched(_))));
    }

    #[test]
    fn what_is_not_a_cloudtrail_event_is_undecodable() {
        assert!(decode("not json", "eu-west-1").is_err());
        assert!(decode(r#"{"detail-type":"Scheduled Event","detail":{}}"#, "eu-west-1").is_err());
    }
}

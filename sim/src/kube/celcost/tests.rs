use super::decl::escape;
use super::*;
use serde_json::json;

fn cost(schema: Value, rule: &str) -> u64 {
    let d = Decl::from_schema(&schema, false).expect("schema has a CEL type");
    rule_cost(&d, rule).expect("rule is priced")
}

fn array(item: &str, max: Option<u64>) -> Value {
    let mut s = json!({"type": "array", "items": {"type": item}});
    if let Some(m) = max {
        s["maxItems"] = json!(m);
    }
    s
}

fn string(max: Option<u64>) -> Value {
    let mut s = json!({"type": "string"});
    if let Some(m) = max {
        s["maxLength"] = json!(m);
    }
    s
}

fn map(value: &str, max: Option<u64>) -> Value {
    let mut s = json!({"type": "object", "additionalProperties": {"type": value}});
    if let Some(m) = max {
        s["maxProperties"] = json!(m);
    }
    s
}

/// Expected figures from the API server's own cost tests
/// (apiextensions-apiserver, TestCostEstimation): unbounded, then bounded.
#[test]
fn costs_match_the_api_servers_estimates() {
    let cases: [(&str, Value, Value, &str, u64, u64); 11] = [
        (
            "number array",
            array("number", None),
            array("number", Some(10)),
            "self.all(x, true)",
            4718591,
            32,
        ),
        (
            "string array",
            array("string", None),
            array("string", Some(20)),
            "self.all(x, true)",
            3145727,
            62,
        ),
        (
            "boolean array",
            array("boolean", None),
            array("boolean", Some(5)),
            "self.all(x, true)",
            1887437,
            17,
        ),
        (
            "map of strings",
            map("string", None),
            map("string", Some(3)),
            "self.all(x, true)",
            1179647,
            11,
        ),
        (
            "contains",
            string(None),
            string(Some(10)),
            "self.contains('test')",
            314574,
            5,
        ),
        (
            "endsWith",
            string(None),
            string(Some(30)),
            "self.endsWith('test')",
            2,
            2,
        ),
        (
            "concat",
            string(None),
            string(Some(4)),
            r#"size(self + "hello") > size("hello")"#,
            314578,
            7,
        ),
        (
            "index of strings",
            array("string", None),
            array("string", Some(8)),
            "self[1] == self[1]",
            314577,
            314577,
        ),
        (
            "matches",
            string(None),
            string(Some(50)),
            r#"self.matches("x")"#,
            314574,
            22,
        ),
        ("string equality", string(None), string(Some(0)), r#"self == "x""#, 2, 1),
        (
            "O(n^2)",
            array("number", None),
            array("number", Some(10)),
            "self.all(x, self.all(y, true))",
            0,
            352,
        ),
    ];
    for (name, unbounded, bounded, rule, calc, set) in cases {
        // The O(n^2) rule has no unbounded figure there, only "over the limit".
        if calc > 0 {
            assert_eq!(cost(unbounded, rule), calc, "{name}, unbounded");
        }
        assert_eq!(cost(bounded, rule), set, "{name}, bounded");
    }
}

#[test]
fn map_values_and_keys_follow_the_schema() {
    let nested = json!({"type": "object", "maxProperties": 10, "additionalProperties": {"type": "string"}});
    assert_eq!(cost(nested, "self.all(x, x.contains(self[x]))"), 72);
}

fn crd(schema: Value) -> Value {
    json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": schema}}]}})
}

/// A deliberately unbounded rule: an unbounded list of unbounded strings,
/// under an unbounded list. The same rule with bounds passes.
#[test]
fn an_unbounded_rule_is_over_budget_and_bounds_bring_it_under() {
    let statement = |bounded: bool| {
        let mut actions = json!({"type": "array", "items": {"type": "string"}});
        let mut statements = json!({"type": "array", "items": {
            "type": "object", "required": ["actions"],
            "properties": {"actions": actions.clone()},
            "x-kubernetes-validations": [{"rule": "!self.actions.exists(a, a.endsWith('*') || a == 'iam:PassRole')"}],
        }});
        if bounded {
            actions["maxItems"] = json!(100);
            actions["items"]["maxLength"] = json!(128);
            statements["maxItems"] = json!(100);
            statements["items"]["properties"]["actions"] = actions;
        }
        crd(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"statements": statements}}}}),
        )
    };
    let refused = crd_refusals(&statement(false));
    let field = "spec.validation.openAPIV3Schema.properties[spec].properties[statements].items.x-kubernetes-validations[0].rule";
    assert!(
        refused.iter().any(|r| r.field == field
            && r.reason == "FieldValueForbidden"
            && r.message
                .contains("estimated rule cost exceeds budget by factor of more than 100x")),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|r| r.field == "spec.validation.openAPIV3Schema"),
        "the total is over too: {refused:?}"
    );
    assert_eq!(crd_refusals(&statement(true)), Vec::new());
    let rules = schema_rules(
        &statement(true)["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        "s",
    );
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].cardinality, 100);
}

#[test]
fn syntax_errors_and_unknown_fields_do_not_compile() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"a": {"type": "string", "maxLength": 5}},
        "x-kubernetes-validations": [{"rule": "self.a == "}, {"rule": "self.b == 'x'"}, {"rule": "self.a"}, {"rule": "self.a.lowerAscii() == 'x'"}]}}});
    let refused = crd_refusals(&crd(schema));
    let fields: Vec<&str> = refused.iter().map(|r| r.field.as_str()).collect();
    let at = |i: usize| format!("spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[{i}].rule");
    assert_eq!(fields, vec![at(0), at(1), at(2), at(3)]);
    assert!(
        refused[0].message.contains("compilation failed: ERROR: <input>:1:"),
        "{}",
        refused[0].message
    );
    assert!(
        refused[1].message.contains("undefined field 'b'"),
        "{}",
        refused[1].message
    );
    assert!(refused[2].message.contains("must evaluate to a bool"));
    assert!(refused[3].message.contains("cannot estimate the cost of `lowerAscii`"));
    assert!(refused.iter().all(|r| r.reason == "FieldValueInvalid"));
}

#[test]
fn reserved_words_are_escaped_and_cost_factors_are_worded_as_the_api_server_does() {
    let s = json!({"type": "object", "properties": {"function": {"type": "object", "properties": {"aws": {"type": "string"}}}}});
    // has() is free; reaching the field costs the variable and one lookup.
    assert_eq!(cost(s, "has(self.__function__.aws)"), 2);
    assert_eq!(
        escape("x-azure.id/a__b"),
        Some("x__dash__azure__dot__id__slash__a__underscores__b".into())
    );
    assert!(over_budget("c", 12_000_000, 10_000_000).contains("by factor of 1.200000x"));
    assert!(over_budget("c", 25_000_000, 10_000_000).contains("by factor of 2.5x"));
}

//! Whether a policy's selector matches a listed function.

use crate::api::{FunctionSelector, FunctionTarget, NameGlob, TagOperator, TagSelector};
use std::collections::BTreeMap;

/// One function of an account as its inventory lists it: where it is and
/// its tags (labels on GCP). No per-function read is needed to list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The function, with its Region filled in on AWS.
    pub target: FunctionTarget,
    pub tags: BTreeMap<String, String>,
    /// The ownership marker some zerofn set on the function (its
    /// `<cluster>/<namespace>/<name>`, as the cloud's marker holds it).
    pub owner: Option<String>,
    /// The identity it runs as, as change events name it (AWS role name,
    /// GCP service account email); None where the listing does not say.
    pub identity: Option<String>,
}

/// Whether `selector` selects `f`. A selector on another cloud selects
/// nothing. Azure compares resource groups and names without case, as ARM
/// does.
pub fn selects(selector: &FunctionSelector, f: &Listed) -> bool {
    let t = &f.target;
    if let (Some(s), Some(fun)) = (&selector.aws, &t.aws) {
        let region = fun.region.as_deref().unwrap_or_default();
        return (s.regions.is_empty() || s.regions.iter().any(|r| r.0 == region))
            && names_match(&s.names, &fun.name, false)
            && tags_match(&s.tags, &f.tags);
    }
    if let (Some(s), Some(fun)) = (&selector.azure, &t.azure) {
        return (s.resource_groups.is_empty()
            || s.resource_groups
                .iter()
                .any(|g| g.0.eq_ignore_ascii_case(&fun.resource_group)))
            && names_match(&s.names, &fun.name, true)
            && tags_match(&s.tags, &f.tags);
    }
    if let (Some(s), Some(fun)) = (&selector.gcp, &t.gcp) {
        return (s.locations.is_empty() || s.locations.iter().any(|l| l.0 == fun.location))
            && names_match(&s.names, &fun.name, false)
            && tags_match(&s.labels, &f.tags);
    }
    false
}

fn names_match(globs: &[NameGlob], name: &str, ignore_case: bool) -> bool {
    globs.is_empty() || globs.iter().any(|g| glob(&g.0, name, ignore_case))
}

/// Every `matchTags` entry and every expression holds.
fn tags_match(s: &TagSelector, tags: &BTreeMap<String, String>) -> bool {
    s.match_tags.iter().all(|(k, v)| tags.get(k) == Some(v))
        && s.match_expressions.iter().all(|e| {
            let value = tags.get(&e.key);
            match e.operator {
                TagOperator::In => value.is_some_and(|v| e.values.contains(v)),
                TagOperator::NotIn => value.is_none_or(|v| !e.values.contains(v)),
                TagOperator::Exists => value.is_some(),
                TagOperator::DoesNotExist => value.is_none(),
            }
        })
}

/// `*` matches any run of characters, `?` exactly one; everything else
/// itself. Iterative with one backtrack point, so linear in practice and
/// never exponential.
pub fn glob(pattern: &str, name: &str, ignore_case: bool) -> bool {
    let eq = |a: char, b: char| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || eq(c, n[ni]) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    pi = sp + 1;
                    ni = sn + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::*;

    fn aws(region: &str, name: &str, tags: &[(&str, &str)]) -> Listed {
        Listed {
            target: FunctionTarget {
                aws: Some(AwsFunctionRef {
                    name: name.into(),
                    region: Some(region.into()),
                }),
                azure: None,
                gcp: None,
            },
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            owner: None,
            identity: None,
        }
    }

    fn aws_selector(s: AwsSelector) -> FunctionSelector {
        FunctionSelector {
            aws: Some(s),
            azure: None,
            gcp: None,
        }
    }

    fn expr(key: &str, operator: TagOperator, values: &[&str]) -> TagRequirement {
        TagRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        for (p, n, m) in [
            ("orders-*", "orders-api", true),
            ("orders-*", "orders-", true),
            ("orders-*", "order-api", false),
            ("*-api", "orders-api", true),
            ("*-api", "orders-api-2", false),
            ("o?ders", "orders", true),
            ("o?ders", "oders", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob(p, n, false), m, "{p} vs {n}");
        }
        assert!(glob("Orders-*", "orders-API", true));
        assert!(!glob("Orders-*", "orders-API", false));
    }

    #[test]
    fn every_field_of_a_selector_narrows() {
        let f = aws("eu-west-1", "orders-api", &[("team", "shop"), ("tier", "web")]);
        let mut s = AwsSelector::default();
        assert!(selects(&aws_selector(s.clone()), &f), "an empty selector selects all");
        s.regions = vec![AwsRegion("us-east-1".into())];
        assert!(!selects(&aws_selector(s.clone()), &f));
        s.regions.push(AwsRegion("eu-west-1".into()));
        assert!(selects(&aws_selector(s.clone()), &f));
        s.names = vec![NameGlob("billing-*".into())];
        assert!(!selects(&aws_selector(s.clone()), &f));
        s.names.push(NameGlob("orders-*".into()));
        assert!(selects(&aws_selector(s.clone()), &f));
        s.tags.match_tags.insert("team".into(), "billing".into());
        assert!(!selects(&aws_selector(s.clone()), &f));
        s.tags.match_tags.insert("team".into(), "shop".into());
        assert!(selects(&aws_selector(s), &f));
    }

    #[test]
    fn tag_expressions_follow_kubernetes_label_selectors() {
        let tagged = aws("eu-west-1", "a", &[("tier", "web")]);
        let untagged = aws("eu-west-1", "b", &[]);
        let cases = [
            (expr("tier", TagOperator::In, &["web", "api"]), true, false),
            (expr("tier", TagOperator::In, &["batch"]), false, false),
            (expr("tier", TagOperator::NotIn, &["batch"]), true, true),
            (expr("tier", TagOperator::NotIn, &["web"]), false, true),
            (expr("tier", TagOperator::Exists, &[]), true, false),
            (expr("tier", TagOperator::DoesNotExist, &[]), false, true),
        ];
        for (e, on_tagged, on_untagged) in cases {
            let s = aws_selector(AwsSelector {
                tags: TagSelector {
                    match_expressions: vec![e.clone()],
                    ..TagSelector::default()
                },
                ..AwsSelector::default()
            });
            assert_eq!(selects(&s, &tagged), on_tagged, "{e:?} on a tagged function");
            assert_eq!(selects(&s, &untagged), on_untagged, "{e:?} on an untagged function");
        }
    }

    #[test]
    fn a_selector_on_another_cloud_selects_nothing() {
        let s = FunctionSelector {
            aws: None,
            azure: None,
            gcp: Some(GcpSelector::default()),
        };
        assert!(!selects(&s, &aws("eu-west-1", "orders", &[])));
    }

    #[test]
    fn azure_resource_groups_and_names_ignore_case() {
        let f = Listed {
            target: FunctionTarget {
                aws: None,
                azure: Some(AzureFunctionRef {
                    resource_group: "RG-Shop".into(),
                    name: "Orders-Api".into(),
                }),
                gcp: None,
            },
            tags: BTreeMap::new(),
            owner: None,
            identity: None,
        };
        let s = FunctionSelector {
            aws: None,
            azure: Some(AzureSelector {
                resource_groups: vec![AzureResourceGroup("rg-shop".into())],
                names: vec![NameGlob("orders-*".into())],
                tags: TagSelector::default(),
            }),
            gcp: None,
        };
        assert!(selects(&s, &f));
    }
}

//! `network.aws.egress`: what the function's security groups let it reach,
//! judged against what the posture declares. Pure. A group is narrowed
//! only when the posture names it exclusive and the account's evidence
//! agrees (no other function, no other network interface uses it): the
//! identity rule's blast radius, applied to security groups.

use super::action::AwsAction;
use super::model::{Destination, Egress, EgressRule, GroupEgress};
use crate::api::AwsEgress;
use crate::findings::{Control, Finding, Severity};
use crate::providers::assemble::{Phase, PlanBuilder};
use std::net::IpAddr;

/// Findings, and in Enforce the writes, for the declared egress.
pub fn plan(declared: &AwsEgress, observed: Option<&Egress>, b: &mut PlanBuilder<AwsAction>) {
    let unread = Egress::NotObserved("they were not read".into());
    match observed.unwrap_or(&unread) {
        Egress::NotObserved(why) => b.finding(
            Finding::builder(Control::Network, "aws.network.egressNotObserved", "VpcConfig.SecurityGroupIds")
                .observed("security groups not read")
                .desired("egress only to the declared destinations")
                .severity(Severity::Medium)
                .remediable(false)
                .message(format!(
                    "what the function may reach could not be judged: {why}; grant ec2:DescribeSecurityGroups and ec2:DescribeNetworkInterfaces"
                )),
        ),
        Egress::Observed(groups) => groups.iter().for_each(|g| group(declared, g, b)),
    }
}

fn group(declared: &AwsEgress, g: &GroupEgress, b: &mut PlanBuilder<AwsAction>) {
    let undeclared: Vec<&EgressRule> = g.rules.iter().filter(|r| !is_declared(declared, r)).collect();
    if undeclared.is_empty() {
        return;
    }
    let named = declared.exclusive_security_groups.contains(&g.group_id);
    let narrowed = named && g.also_used_by.is_empty();
    let why_kept = if narrowed {
        String::new()
    } else if named {
        format!(" (not narrowed: also used by {})", g.also_used_by.join(", "))
    } else {
        " (not narrowed: list it in egress.exclusiveSecurityGroups if it is the function's own)".into()
    };
    for rule in &undeclared {
        let open = is_open(rule);
        let check = if open {
            "aws.network.openEgress"
        } else {
            "aws.network.undeclaredEgress"
        };
        b.finding(
            Finding::builder(
                Control::Network,
                check,
                format!("SecurityGroups[{}].IpPermissionsEgress", g.group_id),
            )
            .observed(rule.to_string())
            .desired(desired_text(declared))
            .severity(if open { Severity::High } else { Severity::Medium })
            .remediable(narrowed)
            .message(format!(
                "{} allows {rule}, which the posture does not declare{why_kept}",
                g.group_id
            )),
        );
    }
    if !narrowed {
        return;
    }
    // The declared rules first, so the function never loses what it needs.
    for rule in wanted(declared).into_iter().filter(|w| !g.rules.contains(w)) {
        b.push(
            Phase::Grant,
            AwsAction::AuthorizeEgress {
                group_id: g.group_id.clone(),
                rule,
            },
        );
    }
    for rule in undeclared {
        b.push(
            Phase::Revoke,
            AwsAction::RevokeEgress {
                group_id: g.group_id.clone(),
                rule: rule.clone(),
            },
        );
    }
}

fn desired_text(d: &AwsEgress) -> String {
    let mut to: Vec<String> = d.cidrs.clone();
    to.extend(d.prefix_lists.iter().cloned());
    let ports = if d.ports.is_empty() {
        "any port".to_string()
    } else {
        let p: Vec<String> = d.ports.iter().map(u16::to_string).collect();
        format!("tcp/{}", p.join(","))
    };
    match to.is_empty() {
        true => "no egress".into(),
        false => format!("{ports} to {}", to.join(", ")),
    }
}

/// Everything to everywhere: every protocol, or every port, to 0.0.0.0/0
/// or ::/0.
fn is_open(r: &EgressRule) -> bool {
    let everywhere = matches!(&r.destination, Destination::Cidr(c) if c == "0.0.0.0/0" || c == "::/0");
    let every_port = r.protocol == "-1" || r.ports.is_none_or(|(a, b)| a <= 0 && b >= 65535);
    everywhere && every_port
}

/// The rules the declaration makes: each destination, on each declared TCP
/// port (or every protocol when no port is declared).
pub fn wanted(d: &AwsEgress) -> Vec<EgressRule> {
    let destinations = d
        .cidrs
        .iter()
        .map(|c| Destination::Cidr(c.clone()))
        .chain(d.prefix_lists.iter().map(|p| Destination::PrefixList(p.clone())));
    let mut out = Vec::new();
    for destination in destinations {
        if d.ports.is_empty() {
            out.push(EgressRule {
                protocol: "-1".into(),
                ports: None,
                destination,
            });
            continue;
        }
        for port in &d.ports {
            out.push(EgressRule {
                protocol: "tcp".into(),
                ports: Some((i32::from(*port), i32::from(*port))),
                destination: destination.clone(),
            });
        }
    }
    out
}

/// Whether a rule stays within the declaration: its destination inside a
/// declared CIDR or a declared prefix list, and every port it opens
/// declared (TCP only when ports are declared).
pub fn is_declared(d: &AwsEgress, r: &EgressRule) -> bool {
    let destination = match &r.destination {
        Destination::Cidr(c) => d.cidrs.iter().any(|outer| within(c, outer)),
        Destination::PrefixList(p) => d.prefix_lists.contains(p),
        Destination::Group(_) => false,
    };
    if !destination {
        return false;
    }
    if d.ports.is_empty() {
        return true;
    }
    let tcp = r.protocol.eq_ignore_ascii_case("tcp") || r.protocol == "6";
    match (tcp, r.ports) {
        (true, Some((from, to))) if from >= 1 && to <= 65535 && to - from < 65535 => {
            (from..=to).all(|p| u16::try_from(p).is_ok_and(|p| d.ports.contains(&p)))
        }
        _ => false,
    }
}

/// A CIDR and its address and prefix length.
fn parse(cidr: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    Some((ip.parse().ok()?, len.parse().ok()?))
}

/// Whether every address of `inner` lies in `outer`.
pub fn within(inner: &str, outer: &str) -> bool {
    let (Some((ia, il)), Some((oa, ol))) = (parse(inner), parse(outer)) else {
        return false;
    };
    if il < ol {
        return false;
    }
    match (ia, oa) {
        (IpAddr::V4(i), IpAddr::V4(o)) if ol <= 32 => {
            let mask = if ol == 0 { 0 } else { u32::MAX << (32 - ol) };
            u32::from(i) & mask == u32::from(o) & mask
        }
        (IpAddr::V6(i), IpAddr::V6(o)) if ol <= 128 => {
            let mask = if ol == 0 { 0 } else { u128::MAX << (128 - ol) };
            u128::from(i) & mask == u128::from(o) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sweep;
    use proptest::prelude::*;
    use proptest::sample::{select, subsequence};

    fn rule(protocol: &str, ports: Option<(i32, i32)>, to: Destination) -> EgressRule {
        EgressRule {
            protocol: protocol.into(),
            ports,
            destination: to,
        }
    }

    fn cidr(c: &str) -> Destination {
        Destination::Cidr(c.into())
    }

    fn all_open() -> EgressRule {
        rule("-1", None, cidr("0.0.0.0/0"))
    }

    fn declared(exclusive: &[&str]) -> AwsEgress {
        AwsEgress {
            cidrs: vec!["10.0.0.0/8".into()],
            prefix_lists: vec!["pl-6fa54006".into()],
            ports: vec![443],
            exclusive_security_groups: exclusive.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn group(id: &str, rules: Vec<EgressRule>, used_by: &[&str]) -> GroupEgress {
        GroupEgress {
            group_id: id.into(),
            rules,
            also_used_by: used_by.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn run(d: &AwsEgress, observed: Option<&Egress>) -> crate::providers::assemble::Assembled<AwsAction> {
        let mut b = PlanBuilder::default();
        plan(d, observed, &mut b);
        b.assemble(None)
    }

    #[test]
    fn all_traffic_anywhere_is_high_and_only_an_own_group_is_narrowed() {
        let open = Egress::Observed(vec![group("sg-0a1b2c3d", vec![all_open()], &[])]);
        let reported = run(&declared(&[]), Some(&open));
        assert_eq!(reported.findings[0].check, "aws.network.openEgress");
        assert_eq!(reported.findings[0].severity, Severity::High);
        assert!(
            reported.actions.is_empty(),
            "a group the posture does not name is never changed"
        );

        let fixed = run(&declared(&["sg-0a1b2c3d"]), Some(&open));
        let ops: Vec<&str> = fixed.actions.iter().map(|a| a.op()).collect();
        assert_eq!(
            ops,
            [
                "AuthorizeSecurityGroupEgress",
                "AuthorizeSecurityGroupEgress",
                "RevokeSecurityGroupEgress"
            ],
            "the declared rules go in before the open one goes"
        );

        let shared = Egress::Observed(vec![group(
            "sg-0a1b2c3d",
            vec![all_open()],
            &["network interface eni-1"],
        )]);
        let kept = run(&declared(&["sg-0a1b2c3d"]), Some(&shared));
        assert!(kept.actions.is_empty(), "a group something else uses is never narrowed");
        assert!(
            kept.findings[0].message.contains("eni-1"),
            "{}",
            kept.findings[0].message
        );
    }

    #[test]
    fn declared_rules_pass_and_unread_groups_are_never_passed() {
        let fine = Egress::Observed(vec![group(
            "sg-0a1b2c3d",
            vec![
                rule("tcp", Some((443, 443)), cidr("10.1.0.0/16")),
                rule("tcp", Some((443, 443)), Destination::PrefixList("pl-6fa54006".into())),
            ],
            &[],
        )]);
        assert!(run(&declared(&[]), Some(&fine)).findings.is_empty());
        for observed in [None, Some(&Egress::NotObserved("AccessDenied".into()))] {
            let unread = run(&declared(&[]), observed);
            assert_eq!(unread.findings[0].check, "aws.network.egressNotObserved");
        }
        let wide_port = Egress::Observed(vec![group(
            "sg-1",
            vec![rule("tcp", Some((0, 65535)), cidr("10.0.0.0/8"))],
            &[],
        )]);
        assert_eq!(
            run(&declared(&[]), Some(&wide_port)).findings[0].check,
            "aws.network.undeclaredEgress"
        );
    }

    #[test]
    fn a_cidr_is_within_another_only_when_all_its_addresses_are() {
        assert!(within("10.1.0.0/16", "10.0.0.0/8"));
        assert!(within("10.0.0.0/8", "10.0.0.0/8"));
        assert!(!within("10.0.0.0/7", "10.0.0.0/8"));
        assert!(!within("11.0.0.0/16", "10.0.0.0/8"));
        assert!(within("2001:db8:1::/48", "2001:db8::/32"));
        assert!(!within("::/0", "2001:db8::/32"));
        assert!(!within("10.0.0.0/8", "::/0"), "families never mix");
        assert!(within("192.0.2.7/32", "0.0.0.0/0"));
    }

    // ------------------------------------------- never widens (independent)

    /// A probe: a destination (an address or a prefix list or a group) and
    /// a TCP or UDP port.
    #[derive(Clone, Debug)]
    struct Probe {
        to: String,
        proto: &'static str,
        port: i32,
    }

    /// Bits of an IPv4 or IPv6 address, as text: containment below is a
    /// prefix test on these strings, not the planner's masks.
    fn bits(ip: &str) -> Option<String> {
        match ip.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => Some(a.octets().iter().map(|o| format!("{o:08b}")).collect()),
            IpAddr::V6(a) => Some(a.octets().iter().map(|o| format!("{o:08b}")).collect::<String>() + "v6"),
        }
    }

    fn in_cidr(ip: &str, cidr: &str) -> bool {
        let Some((net, len)) = cidr.split_once('/') else {
            return false;
        };
        let (Some(a), Some(n), Ok(len)) = (bits(ip), bits(net), len.parse::<usize>()) else {
            return false;
        };
        a.ends_with("v6") == n.ends_with("v6") && a.get(..len) == n.get(..len)
    }

    fn reaches(rules: &[EgressRule], p: &Probe) -> bool {
        rules.iter().any(|r| {
            let proto = r.protocol == "-1" || r.protocol == p.proto;
            let port = r.protocol == "-1" || r.ports.is_none_or(|(a, b)| a <= p.port && p.port <= b);
            let to = match &r.destination {
                Destination::Cidr(c) => in_cidr(&p.to, c),
                Destination::PrefixList(x) | Destination::Group(x) => *x == p.to,
            };
            proto && port && to
        })
    }

    fn declared_reach(d: &AwsEgress, p: &Probe) -> bool {
        let to = d.cidrs.iter().any(|c| in_cidr(&p.to, c)) || d.prefix_lists.contains(&p.to);
        let port = d.ports.is_empty() || (p.proto == "tcp" && d.ports.iter().any(|x| i32::from(*x) == p.port));
        to && port
    }

    const CIDRS: [&str; 7] = [
        "0.0.0.0/0",
        "::/0",
        "10.0.0.0/8",
        "10.1.0.0/16",
        "192.0.2.0/24",
        "2001:db8::/32",
        "10.0.0.0/7",
    ];

    fn probes() -> Vec<Probe> {
        let mut out = Vec::new();
        for to in [
            "10.1.2.3",
            "11.0.0.1",
            "192.0.2.9",
            "203.0.113.5",
            "2001:db8::1",
            "2001:db9::1",
            "pl-6fa54006",
            "pl-00000001",
            "sg-00000002",
        ] {
            for (proto, port) in [("tcp", 443), ("tcp", 5432), ("udp", 53), ("tcp", 1)] {
                out.push(Probe {
                    to: to.into(),
                    proto,
                    port,
                });
            }
        }
        out
    }

    fn any_rule() -> impl Strategy<Value = EgressRule> {
        let to = prop_oneof![
            select(CIDRS.to_vec()).prop_map(|c| Destination::Cidr(c.into())),
            select(vec!["pl-6fa54006", "pl-00000001"]).prop_map(|p| Destination::PrefixList(p.into())),
            Just(Destination::Group("sg-00000002".into())),
        ];
        let proto = select(vec![
            ("-1", None),
            ("tcp", Some((443, 443))),
            ("tcp", Some((0, 65535))),
            ("tcp", Some((400, 5500))),
            ("udp", Some((53, 53))),
        ]);
        (proto, to).prop_map(|((p, ports), to)| rule(p, ports, to))
    }

    fn any_case() -> impl Strategy<Value = (AwsEgress, Vec<GroupEgress>)> {
        let declared = (
            subsequence(CIDRS.to_vec(), 0..3),
            subsequence(vec!["pl-6fa54006", "pl-00000001"], 0..2),
            subsequence(vec![443u16, 5432, 53], 0..3),
            subsequence(vec!["sg-0000000a", "sg-0000000b"], 0..3),
        )
            .prop_map(|(c, p, ports, ex)| AwsEgress {
                cidrs: c.into_iter().map(String::from).collect(),
                prefix_lists: p.into_iter().map(String::from).collect(),
                ports,
                exclusive_security_groups: ex.into_iter().map(String::from).collect(),
            });
        let groups = proptest::collection::vec(
            (
                select(vec!["sg-0000000a", "sg-0000000b", "sg-0000000c"]),
                proptest::collection::vec(any_rule(), 0..5),
                proptest::bool::weighted(0.3),
            ),
            1..3,
        )
        .prop_map(|gs| {
            let mut seen = std::collections::BTreeSet::new();
            gs.into_iter()
                .filter(|(id, _, _)| seen.insert(*id))
                .map(|(id, rules, shared)| group(id, rules, if shared { &["function other"] } else { &[] }))
                .collect()
        });
        (declared, groups)
    }

    /// The writes as the cloud would apply them (exact rules).
    fn apply(groups: &[GroupEgress], actions: &[AwsAction]) -> Vec<GroupEgress> {
        let mut after = groups.to_vec();
        for a in actions {
            match a {
                AwsAction::AuthorizeEgress { group_id, rule } => {
                    if let Some(g) = after.iter_mut().find(|g| &g.group_id == group_id)
                        && !g.rules.contains(rule)
                    {
                        g.rules.push(rule.clone());
                    }
                }
                AwsAction::RevokeEgress { group_id, rule } => {
                    if let Some(g) = after.iter_mut().find(|g| &g.group_id == group_id) {
                        g.rules.retain(|r| r != rule);
                    }
                }
                other => panic!("egress planned {other:?}"),
            }
        }
        after
    }

    #[test]
    fn enforcing_egress_never_widens_never_touches_a_shared_group_and_settles() {
        let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
        sweep(3000, any_case(), |(d, groups)| {
            let plan = run(&d, Some(&Egress::Observed(groups.clone())));
            for a in &plan.actions {
                seen.borrow_mut().insert(a.op());
            }
            let after = apply(&groups, &plan.actions);
            for (b, a) in groups.iter().zip(&after) {
                let own = d.exclusive_security_groups.contains(&b.group_id) && b.also_used_by.is_empty();
                prop_assert!(own || b == a, "{} changed though not the function's own", b.group_id);
                for p in probes() {
                    let (was, is) = (reaches(&b.rules, &p), reaches(&a.rules, &p));
                    prop_assert!(
                        !is || was || declared_reach(&d, &p),
                        "{p:?} newly reachable through {}",
                        a.group_id
                    );
                    if own {
                        prop_assert!(
                            !is || declared_reach(&d, &p),
                            "{p:?} still reachable through {}",
                            a.group_id
                        );
                    }
                }
            }
            let again = run(&d, Some(&Egress::Observed(after)));
            prop_assert!(again.actions.is_empty(), "a second enforce writes: {:?}", again.actions);
            Ok(())
        });
        let seen = seen.into_inner();
        assert!(
            seen.contains("AuthorizeSecurityGroupEgress") && seen.contains("RevokeSecurityGroupEgress"),
            "the sweep produced {seen:?}"
        );
    }
}

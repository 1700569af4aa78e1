//! `network.azure.requireEgressControl`: the VNet integration subnet
//! controls the way out. Reads (Microsoft.Network) and the pure check;
//! report-only, because a subnet's security group and route table serve
//! everything in the subnet.

use super::arm::Arm;
use super::model::{EgressControl, ObservedApp, OutboundRule};
use crate::findings::{Control, Finding, Severity};
use crate::providers::assemble::PlanBuilder;
use serde_json::Value;

pub const NETWORK_API: &str = "2024-05-01";

/// The subnet, its security group's outbound rules and its routes; why not,
/// when any of them could not be read.
pub async fn observe(arm: &Arm, subnet: &str) -> EgressControl {
    match read(arm, subnet).await {
        Ok(c) => c,
        Err(why) => EgressControl::NotObserved(why),
    }
}

async fn read(arm: &Arm, subnet: &str) -> Result<EgressControl, String> {
    let get = |op: &'static str, id: String| async move {
        arm.get(op, &id, NETWORK_API, &[])
            .await
            .map_err(|e| e.provider().to_string())
    };
    let s = get("GetSubnet", subnet.to_string()).await?;
    let nsg = match s["properties"]["networkSecurityGroup"]["id"].as_str() {
        Some(id) => {
            let g = get("GetNetworkSecurityGroup", id.to_string()).await?;
            Some((id.to_string(), outbound_rules(&g)))
        }
        None => None,
    };
    let routes = match s["properties"]["routeTable"]["id"].as_str() {
        Some(id) => routes(&get("GetRouteTable", id.to_string()).await?),
        None => Vec::new(),
    };
    Ok(EgressControl::Observed {
        subnet: subnet.to_string(),
        nsg,
        routes,
    })
}

fn strings(one: &Value, many: &Value) -> Vec<String> {
    one.as_str()
        .map(str::to_string)
        .into_iter()
        .chain(
            many.as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string)),
        )
        .collect()
}

/// Outbound rules of a group, its own and the defaults ARM adds.
fn outbound_rules(group: &Value) -> Vec<OutboundRule> {
    let p = &group["properties"];
    p["securityRules"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(p["defaultSecurityRules"].as_array().into_iter().flatten())
        .filter(|r| r["properties"]["direction"].as_str() == Some("Outbound"))
        .map(|r| {
            let q = &r["properties"];
            let ports = strings(&q["destinationPortRange"], &q["destinationPortRanges"]);
            OutboundRule {
                name: r["name"].as_str().unwrap_or_default().to_string(),
                priority: q["priority"].as_i64().unwrap_or(i64::MAX),
                allow: q["access"].as_str() == Some("Allow"),
                destinations: strings(&q["destinationAddressPrefix"], &q["destinationAddressPrefixes"]),
                all_traffic: q["protocol"].as_str() == Some("*") && ports.iter().any(|p| p == "*"),
            }
        })
        .collect()
}

fn routes(table: &Value) -> Vec<(String, String)> {
    table["properties"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let q = &r["properties"];
            (
                q["addressPrefix"].as_str().unwrap_or_default().to_string(),
                q["nextHopType"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A destination that stands for the whole internet.
fn internet(prefix: &str) -> bool {
    matches!(prefix, "*" | "Internet" | "0.0.0.0/0")
}

/// What decides traffic to the internet: the first outbound rule, by
/// priority, whose destination is the whole internet. Denied is
/// controlled; an allow that comes first is not.
fn nsg_denies_internet(rules: &[OutboundRule]) -> Option<&OutboundRule> {
    let mut deciding: Vec<&OutboundRule> = rules
        .iter()
        .filter(|r| r.destinations.iter().any(|d| internet(d)))
        .collect();
    deciding.sort_by_key(|r| r.priority);
    let first = deciding.into_iter().find(|r| !r.allow || r.all_traffic)?;
    (!first.allow && first.all_traffic).then_some(first)
}

fn firewall_route(routes: &[(String, String)]) -> bool {
    routes
        .iter()
        .any(|(prefix, hop)| prefix == "0.0.0.0/0" && hop.eq_ignore_ascii_case("VirtualAppliance"))
}

pub fn plan<A>(o: &ObservedApp, b: &mut PlanBuilder<A>) {
    let finding = |observed: String, message: String| {
        Finding::builder(
            Control::Network,
            "azure.network.egressUncontrolled",
            "properties.virtualNetworkSubnetId",
        )
        .observed(observed)
        .desired("an outbound deny to Internet, or 0.0.0.0/0 to a virtual appliance")
        .severity(Severity::Medium)
        .remediable(false)
        .message(message)
    };
    let unread = EgressControl::NotObserved("it was not read".into());
    match o.egress_control.as_ref().unwrap_or(&unread) {
        EgressControl::NotObserved(why) => b.finding(finding(
            "the subnet's controls not read".into(),
            format!("whether the app's way out is controlled could not be judged: {why}; grant Microsoft.Network/*/read on the subnet"),
        )),
        EgressControl::Observed { subnet, nsg, routes } => {
            let denied = nsg.as_ref().and_then(|(_, rules)| nsg_denies_internet(rules));
            if denied.is_some() || firewall_route(routes) {
                return;
            }
            let observed = match nsg {
                None => "no network security group, no route to a virtual appliance".to_string(),
                Some((id, _)) => format!(
                    "{} allows the internet first, no route to a virtual appliance",
                    id.rsplit('/').next().unwrap_or(id)
                ),
            };
            b.finding(finding(
                observed.clone(),
                format!(
                    "the app's traffic leaves {} for the internet unchecked ({observed}); add an outbound Deny to Internet or route 0.0.0.0/0 through a firewall (zerofn does not change a subnet's rules)",
                    subnet.rsplit('/').next().unwrap_or(subnet)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, priority: i64, allow: bool, to: &str) -> OutboundRule {
        OutboundRule {
            name: name.into(),
            priority,
            allow,
            destinations: vec![to.into()],
            all_traffic: true,
        }
    }

    /// The defaults ARM adds to every group.
    fn defaults() -> Vec<OutboundRule> {
        vec![
            rule("AllowVnetOutBound", 65000, true, "VirtualNetwork"),
            rule("AllowInternetOutBound", 65001, true, "Internet"),
            rule("DenyAllOutBound", 65500, false, "*"),
        ]
    }

    fn judge(nsg: Option<Vec<OutboundRule>>, routes: Vec<(&str, &str)>) -> Vec<String> {
        let o = ObservedApp {
            egress_control: Some(EgressControl::Observed {
                subnet: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/fn"
                    .into(),
                nsg: nsg.map(|r| ("/x/networkSecurityGroups/nsg-fn".to_string(), r)),
                routes: routes.into_iter().map(|(a, b)| (a.into(), b.into())).collect(),
            }),
            ..Default::default()
        };
        let mut b: PlanBuilder<()> = PlanBuilder::default();
        plan(&o, &mut b);
        b.findings().iter().map(|f| f.check.clone()).collect()
    }

    #[test]
    fn the_way_out_is_controlled_by_an_early_deny_or_a_firewall_route() {
        let uncontrolled = vec!["azure.network.egressUncontrolled".to_string()];
        assert_eq!(judge(None, vec![]), uncontrolled, "no group, no route");
        assert_eq!(
            judge(Some(defaults()), vec![]),
            uncontrolled,
            "the defaults allow the internet"
        );
        let mut denied = defaults();
        denied.push(rule("deny-internet", 4000, false, "Internet"));
        assert!(judge(Some(denied.clone()), vec![]).is_empty());
        let mut allowed_first = denied.clone();
        allowed_first.push(rule("allow-all", 100, true, "*"));
        assert_eq!(
            judge(Some(allowed_first), vec![]),
            uncontrolled,
            "an earlier allow wins"
        );
        let mut narrow_allow_first = denied;
        narrow_allow_first.push(OutboundRule {
            all_traffic: false,
            ..rule("allow-443", 100, true, "Internet")
        });
        assert!(
            judge(Some(narrow_allow_first), vec![]).is_empty(),
            "a narrow allow ahead of the deny is a declared opening, not an open door"
        );
        assert!(judge(Some(defaults()), vec![("0.0.0.0/0", "VirtualAppliance")]).is_empty());
        assert_eq!(
            judge(Some(defaults()), vec![("0.0.0.0/0", "Internet")]),
            uncontrolled,
            "a route to the internet is no firewall"
        );
    }

    #[test]
    fn unread_controls_are_never_passed() {
        let mut b: PlanBuilder<()> = PlanBuilder::default();
        plan(&ObservedApp::default(), &mut b);
        assert_eq!(b.findings()[0].check, "azure.network.egressUncontrolled");
        let o = ObservedApp {
            egress_control: Some(EgressControl::NotObserved("AuthorizationFailed".into())),
            ..Default::default()
        };
        let mut b: PlanBuilder<()> = PlanBuilder::default();
        plan(&o, &mut b);
        assert!(b.findings()[0].message.contains("AuthorizationFailed"));
    }
}

//! The network a VPC-attached function sits in, read from EC2: whether its
//! subnets are private (what their route tables send to an internet
//! gateway; a subnet without a route table of its own uses its VPC's main
//! table), and whether anything records its traffic (flow logs).

use super::client::map_err;
use super::model::{Destination, Egress, EgressRule, FlowLogs, GroupEgress, InternetRoute, SubnetRoutes, Vpc};
use crate::providers::ProviderError;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, RouteState, RouteTable, UserIdGroupPair,
};
use std::collections::BTreeMap;

/// The internet routes of each of the VPC's subnets, or why they could not
/// be read (denied, throttled, timed out): never a guess.
pub async fn subnet_routes(ec2: &aws_sdk_ec2::Client, vpc: &Vpc) -> SubnetRoutes {
    match read(ec2, vpc).await {
        Ok(routes) => SubnetRoutes::Observed(routes),
        Err(e) => SubnetRoutes::NotObserved(e.to_string()),
    }
}

async fn read(ec2: &aws_sdk_ec2::Client, vpc: &Vpc) -> Result<BTreeMap<String, Vec<InternetRoute>>, ProviderError> {
    let subnets: Vec<String> = vpc.subnet_ids.iter().cloned().collect();
    let mut out = BTreeMap::new();
    for table in tables(ec2, vec![filter("association.subnet-id", subnets.clone())]).await? {
        for subnet in table.associations().iter().filter_map(|a| a.subnet_id()) {
            if vpc.subnet_ids.contains(subnet) {
                out.insert(subnet.to_string(), internet_routes(&table));
            }
        }
    }
    let implicit: Vec<&String> = subnets.iter().filter(|s| !out.contains_key(*s)).collect();
    if implicit.is_empty() {
        return Ok(out);
    }
    let vpc_id = vpc
        .vpc_id
        .clone()
        .ok_or_else(|| ProviderError::Cloud("the function's VpcConfig names no VpcId".into()))?;
    let main = tables(
        ec2,
        vec![
            filter("vpc-id", vec![vpc_id.clone()]),
            filter("association.main", vec!["true".into()]),
        ],
    )
    .await?;
    let Some(main) = main.first() else {
        return Err(ProviderError::Cloud(format!("{vpc_id} has no main route table")));
    };
    let routes = internet_routes(main);
    for subnet in implicit {
        out.insert(subnet.clone(), routes.clone());
    }
    Ok(out)
}

/// The VPC and subnets of `vpc` that have an active flow log.
pub async fn flow_logs(ec2: &aws_sdk_ec2::Client, vpc: &Vpc) -> FlowLogs {
    let mut resources: Vec<String> = vpc.subnet_ids.iter().cloned().collect();
    resources.extend(vpc.vpc_id.clone());
    let mut active = std::collections::BTreeSet::new();
    let mut token = None;
    loop {
        let page = match ec2
            .describe_flow_logs()
            .filter(filter("resource-id", resources.clone()))
            .set_next_token(token)
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) => return FlowLogs::NotObserved(map_err("DescribeFlowLogs", "", e).to_string()),
        };
        active.extend(
            page.flow_logs()
                .iter()
                .filter(|f| f.flow_log_status().is_some_and(|s| s.eq_ignore_ascii_case("ACTIVE")))
                .filter(|f| {
                    f.deliver_logs_status()
                        .is_none_or(|s| s.eq_ignore_ascii_case("SUCCESS"))
                })
                .filter_map(|f| f.resource_id().map(str::to_string)),
        );
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return FlowLogs::Observed(active);
        }
    }
}

/// The function's security groups, their egress rules, and whatever else
/// uses each: another function of the account (`users`, from the
/// inventory) or a network interface that is not Lambda's.
pub async fn egress(ec2: &aws_sdk_ec2::Client, groups: &[String], users: impl Fn(&str) -> Vec<String>) -> Egress {
    match read_egress(ec2, groups, users).await {
        Ok(g) => Egress::Observed(g),
        Err(e) => Egress::NotObserved(e.to_string()),
    }
}

async fn read_egress(
    ec2: &aws_sdk_ec2::Client,
    groups: &[String],
    users: impl Fn(&str) -> Vec<String>,
) -> Result<Vec<GroupEgress>, ProviderError> {
    let found = ec2
        .describe_security_groups()
        .set_group_ids(Some(groups.to_vec()))
        .send()
        .await
        .map_err(|e| map_err("DescribeSecurityGroups", "", e))?;
    let mut out = Vec::new();
    for g in found.security_groups() {
        let group_id = g.group_id().unwrap_or_default().to_string();
        let mut also_used_by = users(&group_id);
        also_used_by.extend(other_interfaces(ec2, &group_id).await?);
        out.push(GroupEgress {
            rules: g.ip_permissions_egress().iter().flat_map(rules_of).collect(),
            group_id,
            also_used_by,
        });
    }
    Ok(out)
}

/// Network interfaces in the group that are not Lambda's (an instance, a
/// database, an endpoint): narrowing the group would cut them off.
async fn other_interfaces(ec2: &aws_sdk_ec2::Client, group_id: &str) -> Result<Vec<String>, ProviderError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = ec2
            .describe_network_interfaces()
            .filters(filter("group-id", vec![group_id.to_string()]))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| map_err("DescribeNetworkInterfaces", group_id, e))?;
        out.extend(
            page.network_interfaces()
                .iter()
                .filter(|n| n.interface_type().is_none_or(|t| t.as_str() != "lambda"))
                .map(|n| format!("network interface {}", n.network_interface_id().unwrap_or("?"))),
        );
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// One SDK permission as rules of one destination each.
fn rules_of(p: &IpPermission) -> Vec<EgressRule> {
    let protocol = p.ip_protocol().unwrap_or("-1").to_string();
    let ports = match (p.from_port(), p.to_port()) {
        (Some(a), Some(b)) if protocol != "-1" && a >= 0 => Some((a, b)),
        _ => None,
    };
    let destinations = p
        .ip_ranges()
        .iter()
        .filter_map(|r| r.cidr_ip().map(|c| Destination::Cidr(c.to_string())))
        .chain(
            p.ipv6_ranges()
                .iter()
                .filter_map(|r| r.cidr_ipv6().map(|c| Destination::Cidr(c.to_string()))),
        )
        .chain(
            p.prefix_list_ids()
                .iter()
                .filter_map(|r| r.prefix_list_id().map(|c| Destination::PrefixList(c.to_string()))),
        )
        .chain(
            p.user_id_group_pairs()
                .iter()
                .filter_map(|r| r.group_id().map(|c| Destination::Group(c.to_string()))),
        );
    destinations
        .map(|destination| EgressRule {
            protocol: protocol.clone(),
            ports,
            destination,
        })
        .collect()
}

/// A rule as the SDK sends it.
pub fn ip_permission(rule: &EgressRule) -> IpPermission {
    let mut b = IpPermission::builder().ip_protocol(&rule.protocol);
    if let Some((from, to)) = rule.ports {
        b = b.from_port(from).to_port(to);
    }
    match &rule.destination {
        Destination::Cidr(c) if c.contains(':') => b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build()),
        Destination::Cidr(c) => b.ip_ranges(IpRange::builder().cidr_ip(c).build()),
        Destination::PrefixList(p) => b.prefix_list_ids(PrefixListId::builder().prefix_list_id(p).build()),
        Destination::Group(g) => b.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build()),
    }
    .build()
}

fn filter(name: &str, values: Vec<String>) -> Filter {
    Filter::builder().name(name).set_values(Some(values)).build()
}

/// Every route table the filters select, page by page.
async fn tables(ec2: &aws_sdk_ec2::Client, filters: Vec<Filter>) -> Result<Vec<RouteTable>, ProviderError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = ec2
            .describe_route_tables()
            .set_filters(Some(filters.clone()))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| map_err("DescribeRouteTables", "", e))?;
        out.extend(page.route_tables().iter().cloned());
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The routes of a table that send everything (0.0.0.0/0 or ::/0) to an
/// internet gateway and are not black holes. NAT gateways, endpoints,
/// egress-only gateways and peering are not internet gateways.
pub fn internet_routes(table: &RouteTable) -> Vec<InternetRoute> {
    table
        .routes()
        .iter()
        .filter(|r| r.state() != Some(&RouteState::Blackhole))
        .filter_map(|r| {
            let destination = r
                .destination_cidr_block()
                .filter(|d| *d == "0.0.0.0/0")
                .or(r.destination_ipv6_cidr_block().filter(|d| *d == "::/0"))?;
            let gateway = r.gateway_id().filter(|g| g.starts_with("igw-"))?;
            Some(InternetRoute {
                route_table: table.route_table_id().unwrap_or_default().to_string(),
                destination: destination.to_string(),
                gateway: gateway.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Route;

    fn table(routes: Vec<Route>) -> RouteTable {
        RouteTable::builder()
            .route_table_id("rtb-1")
            .set_routes(Some(routes))
            .build()
    }

    #[test]
    fn only_a_default_route_to_an_internet_gateway_makes_a_subnet_public() {
        let to = |dest: &str, gw: &str| Route::builder().destination_cidr_block(dest).gateway_id(gw).build();
        let public = table(vec![to("10.0.0.0/16", "local"), to("0.0.0.0/0", "igw-1")]);
        assert_eq!(
            internet_routes(&public),
            vec![InternetRoute {
                route_table: "rtb-1".into(),
                destination: "0.0.0.0/0".into(),
                gateway: "igw-1".into()
            }]
        );
        let v6 = table(vec![
            Route::builder()
                .destination_ipv6_cidr_block("::/0")
                .gateway_id("igw-2")
                .build(),
        ]);
        assert_eq!(internet_routes(&v6)[0].destination, "::/0");
        let nat = table(vec![
            Route::builder()
                .destination_cidr_block("0.0.0.0/0")
                .nat_gateway_id("nat-1")
                .build(),
        ]);
        assert!(internet_routes(&nat).is_empty(), "NAT is private egress");
        let narrow = table(vec![to("203.0.113.0/24", "igw-1")]);
        assert!(internet_routes(&narrow).is_empty(), "only a default route counts");
        let dead = table(vec![
            Route::builder()
                .destination_cidr_block("0.0.0.0/0")
                .gateway_id("igw-1")
                .state(RouteState::Blackhole)
                .build(),
        ]);
        assert!(internet_routes(&dead).is_empty(), "a black-hole route sends nothing");
        let egress_only = table(vec![
            Route::builder()
                .destination_ipv6_cidr_block("::/0")
                .egress_only_internet_gateway_id("eigw-1")
                .build(),
        ]);
        assert!(
            internet_routes(&egress_only).is_empty(),
            "egress-only gateways accept no inbound"
        );
    }
}

//! The network a VPC-attached function sits in, read from EC2: whether its
//! subnets are private (what their route tables send to an internet
//! gateway; a subnet without a route table of its own uses its VPC's main
//! table), and whether anything records its traffic (flow logs).

use super::client::map_err;
use super::model::{FlowLogs, InternetRoute, SubnetRoutes, Vpc};
use crate::providers::ProviderError;
use aws_sdk_ec2::types::{Filter, RouteState, RouteTable};
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

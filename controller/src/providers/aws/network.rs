//! Pure planning of where an AWS function's network traffic goes: the
//! declared subnets and security groups, whether those subnets are
//! private, whether anything records the traffic, and (through `egress`)
//! where it may go. No I/O.

use super::action::{AwsAction, VpcUpdate};
use super::model::{FlowLogs, ObservedFunction, SubnetRoutes};
use crate::api::AwsNetwork;
use crate::findings::{Control, Finding, Severity};
use crate::providers::assemble::{Phase, PlanBuilder};
use std::collections::BTreeSet;

/// Each subnet the function is in routes nothing to an internet gateway
/// (report-only: the route table is shared by whatever else is in the
/// subnet). Not attached to a VPC is the noVpc finding already.
fn private_subnets(o: &ObservedFunction, b: &mut PlanBuilder<AwsAction>) {
    if o.vpc.as_ref().is_none_or(|v| v.subnet_ids.is_empty()) {
        return;
    }
    let unread = SubnetRoutes::NotObserved("they were not read".into());
    match o.subnet_routes.as_ref().unwrap_or(&unread) {
        SubnetRoutes::NotObserved(why) => b.finding(
            Finding::builder(Control::Network, "aws.network.routesNotObserved", "VpcConfig.SubnetIds")
                .observed("route tables not read")
                .desired("no route to an internet gateway")
                .severity(Severity::Medium)
                .remediable(false)
                .message(format!(
                    "whether the subnets are private could not be judged: {why}; grant ec2:DescribeRouteTables"
                )),
        ),
        SubnetRoutes::Observed(subnets) => {
            for (subnet, routes) in subnets.iter().filter(|(_, r)| !r.is_empty()) {
                let shown = routes
                    .iter()
                    .map(|r| format!("{} → {} in {}", r.destination, r.gateway, r.route_table))
                    .collect::<Vec<_>>()
                    .join(", ");
                b.finding(
                    Finding::builder(Control::Network, "aws.network.publicSubnet", format!("VpcConfig.SubnetIds[{subnet}]"))
                        .observed(&shown)
                        .desired("no route to an internet gateway")
                        .severity(Severity::High)
                        .remediable(false)
                        .message(format!(
                            "subnet {subnet} is public: {shown}; move the function to a subnet that reaches the internet through NAT or endpoints (zerofn does not change route tables)"
                        )),
                );
            }
        }
    }
}

/// The VPC, or every attached subnet, has an active flow log. With a
/// declared destination, Enforce creates one on the VPC; an existing flow
/// log is never changed.
fn flow_logs(
    o: &ObservedFunction,
    destination: Option<&crate::api::FlowLogDestination>,
    b: &mut PlanBuilder<AwsAction>,
) {
    let Some(vpc) = o.vpc.as_ref().filter(|v| !v.subnet_ids.is_empty()) else {
        return;
    };
    let finding = |observed: String, message: String, remediable: bool| {
        Finding::builder(Control::Network, "aws.network.noFlowLogs", "VpcConfig.SubnetIds")
            .observed(observed)
            .desired("an active flow log on the VPC or on each subnet")
            .severity(Severity::Medium)
            .remediable(remediable)
            .message(message)
    };
    let unread = FlowLogs::NotObserved("they were not read".into());
    match o.flow_logs.as_ref().unwrap_or(&unread) {
        FlowLogs::NotObserved(why) => b.finding(finding(
            "flow logs not read".into(),
            format!(
                "whether the function's traffic is recorded could not be judged: {why}; grant ec2:DescribeFlowLogs"
            ),
            false,
        )),
        FlowLogs::Observed(active) => {
            let vpc_logged = vpc.vpc_id.as_ref().is_some_and(|id| active.contains(id));
            let unlogged: Vec<&String> = vpc.subnet_ids.iter().filter(|s| !active.contains(*s)).collect();
            if !vpc_logged && !unlogged.is_empty() {
                let list = unlogged.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
                let create = destination.zip(vpc.vpc_id.clone());
                b.finding(finding(
                    format!(
                        "no active flow log on {} or on {list}",
                        vpc.vpc_id.as_deref().unwrap_or("the VPC")
                    ),
                    format!("nothing records the function's traffic: create a flow log on the VPC or on {list}"),
                    create.is_some(),
                ));
                if let Some((destination, vpc_id)) = create {
                    b.push(
                        Phase::Configure,
                        AwsAction::CreateFlowLog {
                            vpc_id,
                            destination: destination.clone(),
                        },
                    );
                }
            }
        }
    }
}

/// The function's VPC attachment as declared, and the checks of the
/// network it sits in. Returns the VPC update the function's configuration
/// needs, if any.
pub fn plan(n: &AwsNetwork, o: &ObservedFunction, b: &mut PlanBuilder<AwsAction>) -> Option<VpcUpdate> {
    let subnets: BTreeSet<String> = n.subnet_ids.iter().cloned().collect();
    let groups: BTreeSet<String> = n.security_group_ids.iter().cloned().collect();
    let observed = o.vpc.clone().filter(|v| !v.subnet_ids.is_empty()).unwrap_or_default();
    let list = |s: &BTreeSet<String>| {
        if s.is_empty() {
            "none".to_string()
        } else {
            s.iter().cloned().collect::<Vec<_>>().join(",")
        }
    };
    let mut drift = false;
    if observed.subnet_ids.is_empty() {
        b.finding(
            Finding::builder(Control::Network, "aws.network.noVpc", "VpcConfig.SubnetIds")
                .observed("not attached to a VPC")
                .desired(list(&subnets))
                .severity(Severity::High)
                .remediable(true)
                .message("the function is not in a VPC, so its egress to the internet is unrestricted"),
        );
        drift = true;
    } else if observed.subnet_ids != subnets {
        b.finding(
            Finding::builder(Control::Network, "aws.network.subnets", "VpcConfig.SubnetIds")
                .observed(list(&observed.subnet_ids))
                .desired(list(&subnets))
                .severity(Severity::Medium)
                .remediable(true)
                .message("the function sits in other subnets than declared"),
        );
        drift = true;
    }
    if !observed.subnet_ids.is_empty() && observed.security_group_ids != groups {
        b.finding(
            Finding::builder(
                Control::Network,
                "aws.network.securityGroups",
                "VpcConfig.SecurityGroupIds",
            )
            .observed(list(&observed.security_group_ids))
            .desired(list(&groups))
            .severity(Severity::Medium)
            .remediable(true)
            .message("the function's security groups differ from the declared ones"),
        );
        drift = true;
    }
    if n.require_private_subnets {
        private_subnets(o, b);
    }
    if n.require_flow_logs {
        flow_logs(o, n.flow_log_destination.as_ref(), b);
    }
    if let Some(declared) = &n.egress
        && !observed.subnet_ids.is_empty()
    {
        super::egress::plan(declared, o.egress.as_ref(), b);
    }
    drift.then(|| VpcUpdate {
        subnet_ids: subnets,
        security_group_ids: groups,
        ipv6_allowed_for_dual_stack: o.vpc.as_ref().and_then(|v| v.ipv6_allowed_for_dual_stack),
    })
}

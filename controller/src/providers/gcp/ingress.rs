//! How far a GCP function can be reached, on one scale for the function's
//! `ingressSettings` (what its next deploy applies) and its Cloud Run
//! service's `ingress` (what Google enforces now): narrowing moves down the
//! scale, and zerofn never moves up it.

/// From narrowest to widest. `None` (no ingress at all) is narrower than
/// anything a posture declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    Nothing,
    Internal,
    InternalAndLoadBalancer,
    Everyone,
}

impl Reach {
    /// A function's `serviceConfig.ingressSettings`; unspecified is what
    /// Google applies for it, ALLOW_ALL. None: a value zerofn does not know.
    pub fn of_function(setting: &str) -> Option<Reach> {
        match setting {
            "ALLOW_INTERNAL_ONLY" => Some(Reach::Internal),
            "ALLOW_INTERNAL_AND_GCLB" => Some(Reach::InternalAndLoadBalancer),
            "ALLOW_ALL" | "INGRESS_SETTINGS_UNSPECIFIED" | "" => Some(Reach::Everyone),
            _ => None,
        }
    }

    /// A Cloud Run service's `ingress`; unspecified is what Cloud Run
    /// applies for it, INGRESS_TRAFFIC_ALL. None: a value zerofn does not know.
    pub fn of_service(ingress: &str) -> Option<Reach> {
        match ingress {
            "INGRESS_TRAFFIC_NONE" => Some(Reach::Nothing),
            "INGRESS_TRAFFIC_INTERNAL_ONLY" => Some(Reach::Internal),
            "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" => Some(Reach::InternalAndLoadBalancer),
            "INGRESS_TRAFFIC_ALL" | "INGRESS_TRAFFIC_UNSPECIFIED" | "" => Some(Reach::Everyone),
            _ => None,
        }
    }

    /// The service's `ingress` value for this reach.
    pub fn service_value(self) -> &'static str {
        match self {
            Reach::Nothing => "INGRESS_TRAFFIC_NONE",
            Reach::Internal => "INGRESS_TRAFFIC_INTERNAL_ONLY",
            Reach::InternalAndLoadBalancer => "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
            Reach::Everyone => "INGRESS_TRAFFIC_ALL",
        }
    }
}

/// The widest reach a posture that requires private ingress allows: the
/// declared ingress, or internal and Cloud Load Balancing (the function
/// behind a load balancer).
pub fn private_reach(declared: Option<&str>) -> Reach {
    declared
        .and_then(Reach::of_function)
        .filter(|r| *r < Reach::Everyone)
        .unwrap_or(Reach::InternalAndLoadBalancer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_settings_share_one_scale() {
        for (function, service) in [
            ("ALLOW_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_ONLY"),
            ("ALLOW_INTERNAL_AND_GCLB", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"),
            ("ALLOW_ALL", "INGRESS_TRAFFIC_ALL"),
            ("", "INGRESS_TRAFFIC_UNSPECIFIED"),
        ] {
            assert_eq!(Reach::of_function(function), Reach::of_service(service), "{function}");
        }
        assert!(Reach::of_service("INGRESS_TRAFFIC_NONE") < Reach::of_service("INGRESS_TRAFFIC_INTERNAL_ONLY"));
        assert_eq!(Reach::of_service("INGRESS_TRAFFIC_SOMETIMES"), None);
        for r in [
            Reach::Nothing,
            Reach::Internal,
            Reach::InternalAndLoadBalancer,
            Reach::Everyone,
        ] {
            assert_eq!(Reach::of_service(r.service_value()), Some(r));
        }
    }

    #[test]
    fn private_reach_never_allows_everyone() {
        assert_eq!(private_reach(None), Reach::InternalAndLoadBalancer);
        assert_eq!(private_reach(Some("ALLOW_INTERNAL_ONLY")), Reach::Internal);
        assert_eq!(private_reach(Some("ALLOW_ALL")), Reach::InternalAndLoadBalancer);
    }
}

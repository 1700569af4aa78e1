//! Armed faults: the next N requests that match get the answer a test armed,
//! before the stand-in reads or changes anything. The answer's type is the
//! stand-in's own (its error body, its status, its Retry-After).

/// Which request paths a fault catches.
#[derive(Clone, Debug)]
pub enum PathMatch {
    /// Paths starting with this (given with its leading `/`).
    Prefix(String),
    /// Paths containing this, compared in lower case (as ARM compares ids).
    ContainsIgnoreCase(String),
}

impl PathMatch {
    /// Paths starting with `prefix`; the leading `/` may be left out.
    pub fn prefix(prefix: &str) -> PathMatch {
        PathMatch::Prefix(super::journal::slash(prefix))
    }

    pub fn contains_ignore_case(part: &str) -> PathMatch {
        PathMatch::ContainsIgnoreCase(part.to_ascii_lowercase())
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::ContainsIgnoreCase(p) => path.to_ascii_lowercase().contains(p.as_str()),
        }
    }
}

struct Armed<A> {
    /// Upper case, or `*` for any.
    method: String,
    path: PathMatch,
    remaining: u32,
    answer: A,
}

/// The faults armed on a stand-in, oldest first.
pub struct Faults<A> {
    armed: Vec<Armed<A>>,
}

impl<A> Default for Faults<A> {
    fn default() -> Self {
        Faults { armed: Vec::new() }
    }
}

impl<A: Clone> Faults<A> {
    /// Answers `answer` to the next `times` requests with `method` (`*` for
    /// any; any case) whose path `path` matches.
    pub fn arm(&mut self, method: &str, path: PathMatch, times: u32, answer: A) {
        self.armed.push(Armed {
            method: method.to_ascii_uppercase(),
            path,
            remaining: times,
            answer,
        });
    }

    /// The answer of the oldest fault that catches this request, counted
    /// down; None when the request should be served.
    pub fn take(&mut self, method: &str, path: &str) -> Option<A> {
        let fault = self
            .armed
            .iter_mut()
            .find(|f| f.remaining > 0 && (f.method == "*" || f.method == method) && f.path.matches(path))?;
        fault.remaining -= 1;
        let answer = fault.answer.clone();
        self.armed.retain(|f| f.remaining > 0);
        Some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_answers_as_many_matching_requests_as_armed_then_none() {
        let mut faults = Faults::default();
        faults.arm("get", PathMatch::prefix("v1/a"), 2, 503);
        assert_eq!(faults.take("POST", "/v1/a/b"), None, "another method");
        assert_eq!(faults.take("GET", "/v2/a"), None, "another path");
        assert_eq!(faults.take("GET", "/v1/a/b"), Some(503));
        assert_eq!(faults.take("GET", "/v1/a"), Some(503));
        assert_eq!(faults.take("GET", "/v1/a"), None, "used up");
    }

    #[test]
    fn the_oldest_matching_fault_answers_first() {
        let mut faults = Faults::default();
        faults.arm("*", PathMatch::contains_ignore_case("/Config/"), 1, 429);
        faults.arm("PATCH", PathMatch::prefix("/"), 1, 409);
        assert_eq!(faults.take("PATCH", "/sites/x/config/web"), Some(429));
        assert_eq!(faults.take("PATCH", "/sites/x/config/web"), Some(409));
        assert_eq!(faults.take("PATCH", "/sites/x/config/web"), None);
    }
}

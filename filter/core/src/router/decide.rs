//! After a provider's error answer: retry within the plan, hand the request to a fallback
//! group, or give the client this answer. LiteLLM's rules (router's should_retry_this_error
//! and its fallbacks), applied to the attempt plan.

use switchyard_config::{ErrorClass, RequestInfo};

/// Which fallbacks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackKind {
    Regular,
    ContextWindow,
    ContentPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// This answer goes to the client.
    Deliver,
    /// The plan's next attempt.
    Retry,
    /// The next fallback group of this kind.
    Fallback(FallbackKind),
}

/// `attempt` is 1-based; `deployment` is the one that just failed.
pub fn after_error(info: &RequestInfo, attempt: u32, deployment: &str, class: ErrorClass) -> Next {
    let fallback = |kind: FallbackKind| -> Next {
        let list = match kind {
            FallbackKind::Regular => &info.fallbacks,
            FallbackKind::ContextWindow => &info.context_window_fallbacks,
            FallbackKind::ContentPolicy => &info.content_policy_fallbacks,
        };
        if list.is_empty() {
            Next::Deliver
        } else {
            Next::Fallback(kind)
        }
    };
    // The errors that go straight to their own fallbacks: retrying would fail the same way.
    match class {
        ErrorClass::ContextWindow if !info.context_window_fallbacks.is_empty() => {
            return Next::Fallback(FallbackKind::ContextWindow)
        }
        ErrorClass::ContentPolicy if !info.content_policy_fallbacks.is_empty() => {
            return Next::Fallback(FallbackKind::ContentPolicy)
        }
        _ => {}
    }
    let ahead = info.plan.get(attempt as usize..).unwrap_or_default();
    let another_deployment_ahead = ahead.iter().any(|d| d != deployment);
    let group_of_one = info.plan.iter().all(|d| d == deployment);
    let no_retry = match class {
        ErrorClass::NotFound => true,
        // Other deployments may have room; with none, the fallbacks come first.
        ErrorClass::RateLimit => !another_deployment_ahead && !info.fallbacks.is_empty(),
        // Another deployment may hold a valid key; the same one will not.
        ErrorClass::Authentication => group_of_one,
        _ => false,
    };
    let within_policy = info
        .retry_policy
        .get(class)
        .is_none_or(|limit| attempt.saturating_sub(1) < limit);
    if !no_retry && within_policy && !ahead.is_empty() {
        return Next::Retry;
    }
    fallback(FallbackKind::Regular)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(plan: &[&str], fallbacks: &[&str]) -> RequestInfo {
        let mut i = crate::testing::info(plan);
        i.fallbacks = fallbacks.iter().map(|s| s.to_string()).collect();
        i
    }

    #[test]
    fn retries_then_falls_back_then_delivers() {
        let i = info(&["a", "b", "a"], &["other"]);
        assert_eq!(
            after_error(&i, 1, "a", ErrorClass::InternalServer),
            Next::Retry
        );
        assert_eq!(after_error(&i, 2, "b", ErrorClass::BadRequest), Next::Retry);
        assert_eq!(
            after_error(&i, 3, "a", ErrorClass::InternalServer),
            Next::Fallback(FallbackKind::Regular)
        );
        let none = info(&["a"], &[]);
        assert_eq!(
            after_error(&none, 1, "a", ErrorClass::RateLimit),
            Next::Deliver
        );
    }

    #[test]
    fn litellm_exceptions_to_retrying() {
        let i = info(&["a", "a", "a"], &["other"]);
        assert_eq!(
            after_error(&i, 1, "a", ErrorClass::NotFound),
            Next::Fallback(FallbackKind::Regular)
        );
        assert_eq!(
            after_error(&i, 1, "a", ErrorClass::RateLimit),
            Next::Fallback(FallbackKind::Regular),
            "no other deployment and a fallback: go to the fallback"
        );
        assert_eq!(
            after_error(&i, 1, "a", ErrorClass::Authentication),
            Next::Fallback(FallbackKind::Regular),
            "one deployment: its key will not work on a retry"
        );
        let two = info(&["a", "b"], &[]);
        assert_eq!(
            after_error(&two, 1, "a", ErrorClass::Authentication),
            Next::Retry
        );
        assert_eq!(
            after_error(&two, 1, "a", ErrorClass::RateLimit),
            Next::Retry
        );
    }

    #[test]
    fn context_window_and_content_policy_have_their_own_fallbacks() {
        let mut i = info(&["a", "b"], &["reg"]);
        assert_eq!(
            after_error(&i, 1, "a", ErrorClass::ContextWindow),
            Next::Retry
        );
        i.context_window_fallbacks = vec!["big".into()];
        i.content_policy_fallbacks = vec!["lenient".into()];
        assert_eq!(
            after_error(&i, 1, "a", ErrorClass::ContextWindow),
            Next::Fallback(FallbackKind::ContextWindow)
        );
        assert_eq!(
            after_error(&i, 1, "a", ErrorClass::ContentPolicy),
            Next::Fallback(FallbackKind::ContentPolicy)
        );
    }

    #[test]
    fn retry_policy_limits_retries_per_class() {
        let mut i = info(&["a", "b", "c"], &[]);
        i.retry_policy.rate_limit = Some(1);
        i.retry_policy.bad_request = Some(0);
        assert_eq!(after_error(&i, 1, "a", ErrorClass::RateLimit), Next::Retry);
        assert_eq!(
            after_error(&i, 2, "b", ErrorClass::RateLimit),
            Next::Deliver
        );
        assert_eq!(
            after_error(&i, 1, "a", ErrorClass::BadRequest),
            Next::Deliver
        );
        assert_eq!(
            after_error(&i, 2, "b", ErrorClass::InternalServer),
            Next::Retry
        );
    }
}

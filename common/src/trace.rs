//! W3C trace context (`traceparent`) that follows an application across processes. The
//! trace id is the application id, so a log search for one finds the other.

use uuid::Uuid;

/// `00-<trace id>-<span id>-01` for a new span of `application_id`'s trace.
pub fn traceparent(application_id: Uuid) -> String {
    format!("00-{}-{:016x}-01", application_id.simple(), span_id())
}

/// A child of `parent`: the same trace, a new span. Falls back to a fresh trace of
/// `application_id` when `parent` is missing or malformed.
pub fn child(parent: Option<&str>, application_id: Uuid) -> String {
    match parent.and_then(trace_id) {
        Some(trace) => format!("00-{trace}-{:016x}-01", span_id()),
        None => traceparent(application_id),
    }
}

/// The trace id of a well-formed `traceparent`.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(version, 2) && hex(trace, 32) && hex(span, 16) && hex(flags, 2) && trace != "0".repeat(32)).then_some(trace)
}

fn span_id() -> u64 {
    // A zero span id is invalid in W3C trace context.
    rand::random::<u64>().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_keep_the_trace_and_change_the_span() {
        let id = Uuid::now_v7();
        let parent = traceparent(id);
        assert_eq!(trace_id(&parent), Some(id.simple().to_string().as_str()));
        let c = child(Some(&parent), Uuid::nil());
        assert_eq!(trace_id(&c), trace_id(&parent));
        assert_ne!(c, parent);
        assert_eq!(
            trace_id(&child(Some("garbage"), id)),
            Some(id.simple().to_string().as_str())
        );
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-0000000000000001-01"),
            None
        );
    }
}

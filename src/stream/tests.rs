//! The state machines against a fake host: every header-mode rule, the 413,
//! trailers, held requests, the response cases and the counters.

use super::*;
use crate::counters::{self, Counter};
use crate::host::fake::{Edit, FakeHost};
use ::base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ::base64::Engine;

const SECRET: &str = "admin-secret";

fn plugin(hold_headers: bool, extra: &str) -> Rc<Plugin> {
    let json = format!(
        r#"{{"upstream_clusters":["keycloak"],"hold_headers":{hold_headers},"max_body_bytes":2048,"max_response_bytes":1024,"clients":[
            {{"client_id":"admin","client_secret":"{SECRET}","allowed_callers":["mobile"]}}{extra}]}}"#
    );
    Rc::new(Plugin::new(crate::config::parse(json.as_bytes(), &|_| None).unwrap()))
}

fn streamed() -> Rc<Plugin> {
    plugin(false, "")
}

fn held() -> Rc<Plugin> {
    plugin(
        true,
        r#",{"client_id":"basic-admin","client_secret":"b-secret","auth_method":"client_secret_basic","allowed_callers":["mobile"]}"#,
    )
}

fn refresh_token(azp: &str) -> String {
    let payload = format!(r#"{{"iss":"http://kc/realms/demo","azp":"{azp}","typ":"Refresh"}}"#);
    format!("eyJhbGciOiJIUzUxMiJ9.{}.sig", URL_SAFE_NO_PAD.encode(payload))
}

fn refresh_body(azp: &str, caller_in_body: bool) -> Vec<u8> {
    let mut body = format!("grant_type=refresh_token&refresh_token={}", refresh_token(azp));
    if caller_in_body {
        body.push_str("&client_id=mobile");
    }
    body.into_bytes()
}

const TOKEN_PATH: &str = "/realms/demo/protocol/openid-connect/token";
const FORM: &str = "application/x-www-form-urlencoded";

/// The headers of a token request, with a declared length or not.
fn token_request(content_length: Option<usize>, extra: &[(&str, &str)]) -> FakeHost {
    let length = content_length.map(|n| n.to_string());
    let mut headers = vec![
        (":method", "POST"),
        (":path", TOKEN_PATH),
        (":authority", "kc"),
        ("content-type", FORM),
        ("x-request-id", "req-1"),
    ];
    if let Some(length) = &length {
        headers.push(("content-length", length));
    }
    headers.extend_from_slice(extra);
    FakeHost::with_headers(&headers)
}

/// Every counter's pending count that is not zero.
fn counted(plugin: &Plugin) -> Vec<(String, u64)> {
    Counter::all()
        .filter(|c| plugin.counts().pending(*c) > 0)
        .map(|c| (c.name(), plugin.counts().pending(c)))
        .collect()
}

fn once(counter: Counter) -> Vec<(String, u64)> {
    vec![(counter.name(), 1)]
}

fn rewritten_body() -> Vec<u8> {
    format!(
        "grant_type=refresh_token&refresh_token={}&client_id=admin&client_secret={SECRET}",
        refresh_token("admin")
    )
    .into_bytes()
}

/// Sends a whole token request body (in two pieces) through the stream.
fn send_body(stream: &mut Stream, host: &mut FakeHost, body: Vec<u8>) -> [Flow; 2] {
    let first = body.len() / 2;
    host.request_body = body.clone();
    [
        stream.on_request_body(host, first, false),
        stream.on_request_body(host, body.len(), true),
    ]
}

const TOKEN_RESPONSE: &str =
    r#"{"access_token":"a.b.c","refresh_token":"d.e.f","id_token":"g.h.i","token_type":"Bearer"}"#;
const WITHOUT_ID_TOKEN: &str = r#"{"access_token":"a.b.c","refresh_token":"d.e.f","token_type":"Bearer"}"#;

// --- what is not a token request costs one header read, or nothing ---

#[test]
fn a_request_without_body_is_not_read_at_all() {
    let plugin = streamed();
    let mut host = token_request(None, &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    assert_eq!(stream.on_request_headers(&mut host, true), Flow::Continue);
    assert_eq!(stream.on_response_headers(&mut host, false), Flow::Continue);
    assert_eq!(stream.on_response_body(&mut host, 10, true), Flow::Continue);
    assert_eq!((host.header_reads.get(), host.cluster_reads.get()), (0, 0));
    assert!(host.edits.is_empty());
    assert!(counted(&plugin).is_empty());
}

#[test]
fn a_request_that_is_not_a_token_request_costs_one_header_read() {
    let plugin = held();
    for headers in [
        &[(":method", "GET"), (":path", TOKEN_PATH)][..],
        &[(":method", "POST"), (":path", "/api/orders"), ("content-type", FORM)],
        &[
            (":method", "POST"),
            (":path", TOKEN_PATH),
            ("content-type", "application/json"),
        ],
    ] {
        let mut host = FakeHost::with_headers(headers);
        host.request_body = b"a=b".to_vec();
        let mut stream = Stream::new(Some(plugin.clone()), 1);
        assert_eq!(stream.on_request_headers(&mut host, false), Flow::Continue);
        assert_eq!(stream.on_request_body(&mut host, 3, true), Flow::Continue);
        assert_eq!(stream.on_request_trailers(&mut host), Flow::Continue);
        assert_eq!(stream.on_response_headers(&mut host, false), Flow::Continue);
        assert_eq!(stream.on_response_body(&mut host, 3, true), Flow::Continue);
        assert_eq!(
            (host.header_reads.get(), host.cluster_reads.get()),
            (1, 0),
            "{headers:?}"
        );
        assert!(host.edits.is_empty());
        assert_eq!(plugin.held_waiting(), 0);
    }
    assert!(counted(&plugin).is_empty());
}

#[test]
fn without_a_configuration_everything_passes() {
    let mut host = token_request(Some(10), &[]);
    let mut stream = Stream::new(None, 1);
    assert_eq!(stream.on_request_headers(&mut host, false), Flow::Continue);
    assert_eq!(
        send_body(&mut stream, &mut host, refresh_body("admin", true)),
        [Flow::Continue; 2]
    );
    assert_eq!(host.header_reads.get(), 0);
    assert!(host.edits.is_empty());
}

// --- default mode: headers streamed ---

#[test]
fn streamed_request_loses_content_length_in_the_headers_callback_and_nothing_else() {
    let plugin = streamed();
    let body = refresh_body("admin", true);
    let mut host = token_request(Some(body.len()), &[("authorization", "Bearer x")]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    assert_eq!(stream.on_request_headers(&mut host, false), Flow::Continue);
    assert_eq!(host.edits, [Edit::RequestHeader("content-length".to_owned(), None)]);
    assert_eq!(
        host.cluster_reads.get(),
        0,
        "the cluster is read once a rewrite is decided"
    );
    assert_eq!(plugin.held_waiting(), 0);
    assert_eq!(send_body(&mut stream, &mut host, body), [Flow::Pause, Flow::Continue]);
    assert_eq!(
        host.edits,
        [
            Edit::RequestHeader("content-length".to_owned(), None),
            Edit::RequestBody(rewritten_body())
        ],
        "no header edit after the body: they have left"
    );
    assert_eq!(host.cluster_reads.get(), 1);
    assert_eq!(
        host.header_reads.get(),
        1,
        "headers are never read after their callback"
    );
    assert_eq!(counted(&plugin), once(Counter::Rewritten));
}

#[test]
fn streamed_response_of_a_bridged_refresh_loses_content_length_and_its_id_token() {
    let plugin = streamed();
    let body = refresh_body("admin", true);
    let mut host = token_request(Some(body.len()), &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, false);
    send_body(&mut stream, &mut host, body);
    host.edits.clear();
    host.response_body = TOKEN_RESPONSE.as_bytes().to_vec();
    assert_eq!(stream.on_response_headers(&mut host, false), Flow::Continue);
    assert_eq!(host.edits, [Edit::ResponseHeader("content-length".to_owned(), None)]);
    assert_eq!(stream.on_response_body(&mut host, 10, false), Flow::Pause);
    assert_eq!(
        stream.on_response_body(&mut host, TOKEN_RESPONSE.len(), true),
        Flow::Continue
    );
    assert_eq!(
        host.edits,
        [
            Edit::ResponseHeader("content-length".to_owned(), None),
            Edit::ResponseBody(WITHOUT_ID_TOKEN.as_bytes().to_vec())
        ]
    );
    assert_eq!(
        counted(&plugin),
        [("rewritten".to_owned(), 1), ("id_token_dropped".to_owned(), 1)]
    );
}

// --- hold mode ---

#[test]
fn held_request_pauses_then_gets_its_exact_content_length_and_loses_the_callers_authorization() {
    let plugin = held();
    let body = refresh_body("admin", false);
    // The caller authenticates with Basic: its header goes with the swap.
    let mut host = token_request(Some(body.len()), &[("authorization", "Basic bW9iaWxlOg==")]);
    let mut stream = Stream::new(Some(plugin.clone()), 7);
    assert_eq!(stream.on_request_headers(&mut host, false), Flow::Pause);
    assert!(
        host.edits.is_empty(),
        "held headers are changed only once the body is known"
    );
    assert_eq!(plugin.held_waiting(), 1);
    assert_eq!(send_body(&mut stream, &mut host, body), [Flow::Pause, Flow::Continue]);
    assert_eq!(plugin.held_waiting(), 0, "released by its body");
    let new_body = rewritten_body();
    assert_eq!(
        host.edits,
        [
            Edit::RequestBody(new_body.clone()),
            Edit::RequestHeader("content-length".to_owned(), Some(new_body.len().to_string())),
            Edit::RequestHeader("authorization".to_owned(), None),
        ]
    );
    assert_eq!(counted(&plugin), once(Counter::Rewritten));
}

#[test]
fn held_request_without_content_length_gets_none_and_keeps_an_absent_authorization() {
    let plugin = held();
    let mut host = token_request(None, &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 7);
    assert_eq!(stream.on_request_headers(&mut host, false), Flow::Pause);
    send_body(&mut stream, &mut host, refresh_body("admin", true));
    assert_eq!(host.edits, [Edit::RequestBody(rewritten_body())]);
}

#[test]
fn held_request_for_a_basic_target_gets_its_authorization_set() {
    let plugin = held();
    let body = refresh_body("basic-admin", true);
    let mut host = token_request(Some(body.len()), &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 7);
    stream.on_request_headers(&mut host, false);
    send_body(&mut stream, &mut host, body);
    let expected_body = format!(
        "grant_type=refresh_token&refresh_token={}",
        refresh_token("basic-admin")
    );
    assert_eq!(
        host.edits,
        [
            Edit::RequestBody(expected_body.clone().into_bytes()),
            Edit::RequestHeader("content-length".to_owned(), Some(expected_body.len().to_string())),
            Edit::RequestHeader(
                "authorization".to_owned(),
                Some(crate::basic::header_value("basic-admin", "b-secret"))
            ),
        ]
    );
}

#[test]
fn held_response_waits_for_its_body_and_gets_its_exact_content_length() {
    let plugin = held();
    let body = refresh_body("admin", true);
    let mut host = token_request(Some(body.len()), &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 7);
    stream.on_request_headers(&mut host, false);
    send_body(&mut stream, &mut host, body);
    host.edits.clear();
    host.response_body = TOKEN_RESPONSE.as_bytes().to_vec();
    assert_eq!(stream.on_response_headers(&mut host, false), Flow::Pause);
    assert!(host.edits.is_empty());
    assert_eq!(
        stream.on_response_body(&mut host, TOKEN_RESPONSE.len(), true),
        Flow::Continue
    );
    assert_eq!(
        host.edits,
        [
            Edit::ResponseBody(WITHOUT_ID_TOKEN.as_bytes().to_vec()),
            Edit::ResponseHeader("content-length".to_owned(), Some(WITHOUT_ID_TOKEN.len().to_string())),
        ]
    );
}

// --- held requests are released whatever ends them ---

#[test]
fn a_held_request_is_released_by_its_body_its_trailers_or_the_end_of_the_stream() {
    let plugin = held();
    let mut host = token_request(None, &[]);
    host.request_body = refresh_body("admin", true);
    let mut by_body = Stream::new(Some(plugin.clone()), 1);
    by_body.on_request_headers(&mut host, false);
    let mut by_trailers = Stream::new(Some(plugin.clone()), 2);
    by_trailers.on_request_headers(&mut host, false);
    let mut by_drop = Stream::new(Some(plugin.clone()), 3);
    by_drop.on_request_headers(&mut host, false);
    assert_eq!(plugin.held_waiting(), 3);
    by_body.on_request_body(&mut host, 1, false);
    assert_eq!(plugin.held_waiting(), 2);
    by_trailers.on_request_trailers(&mut host);
    assert_eq!(plugin.held_waiting(), 1);
    drop(by_drop);
    assert_eq!(plugin.held_waiting(), 0);
}

#[test]
fn a_held_request_whose_body_never_comes_is_counted_by_the_tick() {
    let plugin = held();
    let mut host = token_request(None, &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, false);
    host.advance(std::time::Duration::from_millis(crate::held::STUCK_AFTER_MS + 1));
    plugin.tick(&host);
    assert_eq!(counted(&plugin), once(Counter::HeldWithoutBody));
}

// --- 413 ---

fn assert_413(host: &FakeHost) {
    assert_eq!(
        host.edits,
        [Edit::LocalResponse {
            status: 413,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("cache-control".to_owned(), "no-store".to_owned())
            ],
            body: br#"{"error":"invalid_request","error_description":"Request body exceeds the azp-bridge limit of 2048 bytes"}"#.to_vec(),
        }]
    );
}

#[test]
fn a_body_over_max_body_bytes_is_answered_413() {
    for plugin in [streamed(), held()] {
        let mut host = token_request(None, &[]);
        let mut stream = Stream::new(Some(plugin.clone()), 1);
        stream.on_request_headers(&mut host, false);
        host.edits.clear();
        assert_eq!(stream.on_request_body(&mut host, 2048, false), Flow::Pause);
        assert!(host.edits.is_empty());
        assert_eq!(stream.on_request_body(&mut host, 2049, false), Flow::Pause);
        assert_413(&host);
        assert_eq!(plugin.held_waiting(), 0);
        // The rest of the stream is not the filter's business.
        assert_eq!(stream.on_request_body(&mut host, 4000, true), Flow::Continue);
        assert_eq!(stream.on_request_trailers(&mut host), Flow::Continue);
        assert_eq!(host.edits.len(), 1);
        assert_eq!(counted(&plugin), once(Counter::RejectedBodyTooLarge));
    }
}

#[test]
fn a_declared_length_over_max_body_bytes_is_answered_413_at_once() {
    let plugin = held();
    let mut host = token_request(Some(2049), &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    assert_eq!(stream.on_request_headers(&mut host, false), Flow::Pause);
    assert_413(&host);
    assert_eq!(plugin.held_waiting(), 0, "not held: answered");
    assert_eq!(stream.on_request_body(&mut host, 10, true), Flow::Continue);
    assert_eq!(counted(&plugin), once(Counter::RejectedBodyTooLarge));
}

// --- trailers end a body ---

#[test]
fn trailers_end_a_request_body_and_a_response_body() {
    let plugin = streamed();
    let body = refresh_body("admin", true);
    let mut host = token_request(None, &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, false);
    host.request_body = body.clone();
    assert_eq!(stream.on_request_body(&mut host, body.len(), false), Flow::Pause);
    assert_eq!(stream.on_request_trailers(&mut host), Flow::Continue);
    assert_eq!(host.edits.last(), Some(&Edit::RequestBody(rewritten_body())));
    host.response_body = TOKEN_RESPONSE.as_bytes().to_vec();
    stream.on_response_headers(&mut host, false);
    assert_eq!(
        stream.on_response_body(&mut host, TOKEN_RESPONSE.len(), false),
        Flow::Pause
    );
    assert_eq!(stream.on_response_trailers(&mut host), Flow::Continue);
    assert_eq!(
        host.edits.last(),
        Some(&Edit::ResponseBody(WITHOUT_ID_TOKEN.as_bytes().to_vec()))
    );
    assert_eq!(
        counted(&plugin),
        [("rewritten".to_owned(), 1), ("id_token_dropped".to_owned(), 1)]
    );
}

// --- responses that pass ---

/// A bridged stream whose response is expected, edits cleared.
fn bridged(plugin: &Rc<Plugin>) -> (Stream, FakeHost) {
    let body = refresh_body("admin", true);
    let mut host = token_request(Some(body.len()), &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, false);
    send_body(&mut stream, &mut host, body);
    host.edits.clear();
    (stream, host)
}

fn response_passed_only(plugin: &Plugin) {
    assert_eq!(
        counted(plugin),
        [("rewritten".to_owned(), 1), ("response_passed".to_owned(), 1)]
    );
}

#[test]
fn a_bridged_response_passes_when_not_2xx_or_without_body() {
    for plugin in [streamed(), held()] {
        for (status, end_of_stream) in [
            (Some("400"), false),
            (Some("204"), true),
            (None, false),
            (Some("2000"), false),
        ] {
            let (mut stream, mut host) = bridged(&plugin);
            host.response_status = status.map(|s| s.as_bytes().to_vec());
            assert_eq!(stream.on_response_headers(&mut host, end_of_stream), Flow::Continue);
            assert_eq!(stream.on_response_body(&mut host, 10, true), Flow::Continue);
            assert!(host.edits.is_empty(), "{status:?}");
        }
    }
    let plugin = streamed();
    let (mut stream, mut host) = bridged(&plugin);
    host.response_status = Some(b"502".to_vec());
    stream.on_response_headers(&mut host, false);
    response_passed_only(&plugin);
}

#[test]
fn a_bridged_response_over_max_response_bytes_passes() {
    for plugin in [streamed(), held()] {
        let (mut stream, mut host) = bridged(&plugin);
        stream.on_response_headers(&mut host, false);
        host.edits.clear();
        assert_eq!(stream.on_response_body(&mut host, 1025, false), Flow::Continue);
        assert_eq!(stream.on_response_body(&mut host, 2000, true), Flow::Continue);
        assert!(host.edits.is_empty());
        response_passed_only(&plugin);
    }
}

#[test]
fn a_bridged_response_that_is_unreadable_or_not_a_token_response_passes() {
    for (served, len) in [
        (TOKEN_RESPONSE, TOKEN_RESPONSE.len() + 1),
        ("not json", 8),
        (WITHOUT_ID_TOKEN, WITHOUT_ID_TOKEN.len()),
    ] {
        let plugin = held();
        let (mut stream, mut host) = bridged(&plugin);
        host.response_body = served.as_bytes().to_vec();
        stream.on_response_headers(&mut host, false);
        assert_eq!(stream.on_response_body(&mut host, len, true), Flow::Continue);
        assert!(host.edits.is_empty(), "{served}");
        response_passed_only(&plugin);
    }
}

#[test]
fn a_response_body_the_host_refuses_to_replace_passes() {
    let plugin = streamed();
    let (mut stream, mut host) = bridged(&plugin);
    host.response_body = TOKEN_RESPONSE.as_bytes().to_vec();
    stream.on_response_headers(&mut host, false);
    host.refuse_edits = true;
    stream.on_response_body(&mut host, TOKEN_RESPONSE.len(), true);
    response_passed_only(&plugin);
}

#[test]
fn a_response_is_read_only_for_a_client_whose_id_token_drops() {
    let plugin = plugin(
        false,
        r#",{"client_id":"keeper","client_secret":"k","id_token":"keep","allowed_callers":["mobile"]}"#,
    );
    let mut host = token_request(None, &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, false);
    send_body(&mut stream, &mut host, refresh_body("keeper", true));
    host.edits.clear();
    assert_eq!(stream.on_response_headers(&mut host, false), Flow::Continue);
    assert!(host.edits.is_empty());
    assert_eq!(counted(&plugin), once(Counter::Rewritten));
}

// --- counters: exactly once per token request ---

#[test]
fn each_token_request_counts_exactly_once() {
    // Routed elsewhere: decided once the rewrite is, then trailers: once.
    let plugin = streamed();
    let mut host = token_request(Some(10), &[]);
    host.cluster = Some(b"elsewhere".to_vec());
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    assert_eq!(stream.on_request_headers(&mut host, false), Flow::Continue);
    let at_headers = host.edits.clone();
    assert_eq!(
        send_body(&mut stream, &mut host, refresh_body("admin", true)),
        [Flow::Pause, Flow::Continue]
    );
    stream.on_request_trailers(&mut host);
    assert_eq!(host.edits, at_headers);
    assert_eq!(counted(&plugin), once(Counter::Passed(PassReason::UpstreamNotAllowed)));

    // Decided by the body, then trailers: still once.
    for (body, reason) in [
        (
            b"grant_type=refresh_token&client_id=mobile".to_vec(),
            PassReason::NoToken,
        ),
        (refresh_body("mobile", true), PassReason::SameClient),
        (refresh_body("stranger", true), PassReason::UnknownAzp),
        (b"a=1&a=2".to_vec(), PassReason::DuplicateParameter),
    ] {
        let plugin = held();
        let mut host = token_request(None, &[]);
        let mut stream = Stream::new(Some(plugin.clone()), 1);
        stream.on_request_headers(&mut host, false);
        send_body(&mut stream, &mut host, body);
        stream.on_request_trailers(&mut host);
        stream.on_response_headers(&mut host, false);
        assert!(host.edits.is_empty(), "{reason:?}");
        assert_eq!(counted(&plugin), once(Counter::Passed(reason)));
    }
}

#[test]
fn a_request_body_the_host_refuses_to_replace_is_forwarded_uncounted() {
    let plugin = held();
    let mut host = token_request(Some(10), &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, false);
    host.refuse_edits = true;
    send_body(&mut stream, &mut host, refresh_body("admin", true));
    assert!(host.edits.is_empty());
    assert!(counted(&plugin).is_empty());
    // Nor is its response read.
    host.refuse_edits = false;
    stream.on_response_headers(&mut host, false);
    assert!(host.edits.is_empty());
}

#[test]
fn an_unreadable_request_body_is_forwarded_uncounted() {
    let plugin = streamed();
    let mut host = token_request(None, &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, false);
    host.edits.clear();
    host.request_body = b"short".to_vec();
    assert_eq!(stream.on_request_body(&mut host, 50, true), Flow::Continue);
    assert!(host.edits.is_empty());
    assert!(counted(&plugin).is_empty());
}

#[test]
fn a_signed_assertion_takes_the_hosts_clock_and_randomness() {
    let extra = r#",{"client_id":"jwt-admin","client_secret":"0123456789abcdef0123456789abcdef","auth_method":"client_secret_jwt","issuer":"http://kc","allowed_callers":["mobile"]}"#;
    let plugin = plugin(false, extra);
    let run = |host: &mut FakeHost| {
        let mut stream = Stream::new(Some(plugin.clone()), 1);
        stream.on_request_headers(host, false);
        send_body(&mut stream, host, refresh_body("jwt-admin", true));
    };
    let mut host = token_request(None, &[]);
    run(&mut host);
    let Some(Edit::RequestBody(body)) = host.edits.last() else {
        panic!("no rewrite: {:?}", host.edits);
    };
    assert!(String::from_utf8_lossy(body).contains("client_assertion="));
    // Without randomness, or without a clock: no assertion, no credential.
    for broken in [
        FakeHost {
            random_byte: None,
            ..token_request(None, &[])
        },
        FakeHost {
            now: None,
            ..token_request(None, &[])
        },
    ] {
        let mut host = broken;
        run(&mut host);
        assert_eq!(host.edits, [Edit::RequestHeader("content-length".to_owned(), None)]);
    }
    assert_eq!(
        counted(&plugin),
        [("rewritten".to_owned(), 1), ("passed.signing_failed".to_owned(), 2)]
    );
}

#[test]
fn every_counter_the_stream_counts_is_a_defined_name() {
    let names = counters::names();
    for counter in Counter::all() {
        assert!(names.contains(&counter.name()));
    }
}

// --- the routed cluster: read only when the filter is about to act ---

/// Issue 27: a refresh the filter passes does not pay for the cluster read.
#[test]
fn a_passing_refresh_does_not_read_the_cluster() {
    for plugin in [streamed(), held()] {
        for (azp, reason) in [("mobile", PassReason::SameClient), ("stranger", PassReason::UnknownAzp)] {
            let plugin = Rc::new(Plugin::new(plugin.config.clone()));
            let mut host = token_request(None, &[]);
            let mut stream = Stream::new(Some(plugin.clone()), 1);
            stream.on_request_headers(&mut host, false);
            send_body(&mut stream, &mut host, refresh_body(azp, true));
            assert_eq!(host.cluster_reads.get(), 0, "{azp}");
            assert_eq!(counted(&plugin), once(Counter::Passed(reason)), "{azp}");
        }
    }
}

/// The guard holds in both header modes although the cluster is read only
/// after the decision: a rewrite decided for a request routed to another
/// cluster (or to none) is not made, and the request goes as it came, with
/// none of the rewrite's header edits.
#[test]
fn a_decided_rewrite_routed_elsewhere_passes_unchanged_in_both_header_modes() {
    for (plugin, azp, authorization) in [
        (streamed(), "admin", None),
        (held(), "admin", Some("Basic bW9iaWxlOg==")),
        (held(), "basic-admin", Some("Basic bW9iaWxlOg==")),
    ] {
        for cluster in [Some(b"other-app".to_vec()), None] {
            let plugin = Rc::new(Plugin::new(plugin.config.clone()));
            let body = refresh_body(azp, authorization.is_none());
            let extra: Vec<(&str, &str)> = authorization.iter().map(|a| ("authorization", *a)).collect();
            let mut host = token_request(Some(body.len()), &extra);
            host.cluster = cluster.clone();
            let mut stream = Stream::new(Some(plugin.clone()), 1);
            stream.on_request_headers(&mut host, false);
            let at_headers = host.edits.clone();
            assert_eq!(send_body(&mut stream, &mut host, body)[1], Flow::Continue);
            assert_eq!(
                host.edits, at_headers,
                "{azp} {cluster:?}: nothing changed after the headers"
            );
            assert_eq!(host.cluster_reads.get(), 1);
            assert_eq!(
                counted(&plugin),
                once(Counter::Passed(PassReason::UpstreamNotAllowed)),
                "{azp} {cluster:?}"
            );
            // Its response is not the filter's business either.
            host.response_body = TOKEN_RESPONSE.as_bytes().to_vec();
            assert_eq!(stream.on_response_headers(&mut host, false), Flow::Continue);
            assert_eq!(host.edits, at_headers);
        }
    }
}

/// A 413 is the filter's own answer: a token request routed elsewhere is
/// never answered by it, whether its length is declared or found.
#[test]
fn a_token_request_over_max_body_bytes_routed_elsewhere_is_not_answered_413() {
    for plugin in [streamed(), held()] {
        let mut host = token_request(Some(2049), &[]);
        host.cluster = Some(b"other-app".to_vec());
        let mut stream = Stream::new(Some(plugin.clone()), 1);
        assert_eq!(stream.on_request_headers(&mut host, false), Flow::Continue);
        assert!(host.edits.is_empty());
        let mut host = token_request(None, &[]);
        host.cluster = Some(b"other-app".to_vec());
        let mut stream = Stream::new(Some(plugin.clone()), 2);
        stream.on_request_headers(&mut host, false);
        let at_headers = host.edits.clone();
        assert_eq!(stream.on_request_body(&mut host, 2049, false), Flow::Continue);
        assert_eq!(host.edits, at_headers);
        assert_eq!(plugin.held_waiting(), 0);
        assert_eq!(stream.on_request_body(&mut host, 4000, true), Flow::Continue);
        assert_eq!(
            counted(&plugin),
            vec![(Counter::Passed(PassReason::UpstreamNotAllowed).name(), 2)]
        );
    }
}

// --- the decision for the access log: one property per token request ---

/// The values of the access log property the stream set, in order.
fn decisions(host: &FakeHost) -> Vec<String> {
    host.properties
        .iter()
        .map(|(name, value)| {
            assert_eq!(name, crate::access_log::PROPERTY);
            String::from_utf8(value.clone()).unwrap()
        })
        .collect()
}

/// Runs one request through a fresh stream: headers, then (unless answered
/// at the headers) the body in two pieces and trailers.
fn run(plugin: &Rc<Plugin>, mut host: FakeHost, body: &[u8]) -> FakeHost {
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, body.is_empty());
    let answered = host.edits.iter().any(|e| matches!(e, Edit::LocalResponse { .. }));
    if !answered && !body.is_empty() {
        send_body(&mut stream, &mut host, body.to_vec());
        stream.on_request_trailers(&mut host);
    }
    host
}

#[test]
fn each_token_request_sets_its_decision_once_and_nothing_secret() {
    let rewrite = refresh_body("admin", true);
    let elsewhere = || FakeHost {
        cluster: Some(b"other-app".to_vec()),
        ..token_request(None, &[])
    };
    let cases: Vec<(FakeHost, Vec<u8>, &str)> = vec![
        (token_request(None, &[]), rewrite.clone(), "rewritten client=admin"),
        (
            token_request(None, &[]),
            refresh_body("mobile", true),
            "passed.same_client",
        ),
        (
            token_request(None, &[]),
            refresh_body("stranger", true),
            "passed.unknown_azp",
        ),
        (
            token_request(None, &[]),
            b"a=1&a=2".to_vec(),
            "passed.duplicate_parameter",
        ),
        (
            token_request(None, &[]),
            b"grant_type=password&client_id=mobile".to_vec(),
            "passed.not_refresh_grant",
        ),
        (
            token_request(None, &[("content-encoding", "gzip")]),
            rewrite.clone(),
            "passed.ambiguous",
        ),
        (elsewhere(), rewrite.clone(), "passed.upstream_not_allowed"),
        (
            token_request(Some(2049), &[]),
            rewrite.clone(),
            "rejected.body_too_large",
        ),
    ];
    for (host, body, expected) in cases {
        let plugin = streamed();
        let host = run(&plugin, host, &body);
        assert_eq!(decisions(&host), [expected]);
        let value = String::from_utf8_lossy(&host.properties[0].1).into_owned();
        for never in [SECRET, "mobile", "eyJ", "Basic"] {
            assert!(!value.contains(never), "{value}");
        }
        // The property and the counter are the same decision.
        let counter = counted(&plugin);
        assert_eq!(counter.len(), 1);
        assert!(expected.starts_with(&counter[0].0), "{expected} {counter:?}");
    }
}

#[test]
fn a_body_over_max_body_bytes_sets_rejected_or_passed_once() {
    let plugin = held();
    let mut host = token_request(None, &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, false);
    stream.on_request_body(&mut host, 2049, false);
    stream.on_request_body(&mut host, 4000, true);
    stream.on_request_trailers(&mut host);
    assert_eq!(decisions(&host), ["rejected.body_too_large"]);

    let mut host = FakeHost {
        cluster: None,
        ..token_request(None, &[])
    };
    let mut stream = Stream::new(Some(plugin), 2);
    stream.on_request_headers(&mut host, false);
    stream.on_request_body(&mut host, 2049, false);
    assert_eq!(decisions(&host), ["passed.upstream_not_allowed"]);
}

/// What is not a token request, or not decided, sets nothing: no host call.
#[test]
fn a_request_not_decided_sets_no_decision() {
    let plugin = held();
    let not_token = [
        FakeHost::with_headers(&[(":method", "GET"), (":path", TOKEN_PATH)]),
        FakeHost::with_headers(&[(":method", "POST"), (":path", "/api/orders"), ("content-type", FORM)]),
    ];
    for host in not_token {
        assert!(run(&plugin, host, b"a=b").properties.is_empty());
    }
    // A token request without a body, or whose body is not readable.
    assert!(run(&plugin, token_request(None, &[]), b"").properties.is_empty());
    let mut host = token_request(None, &[]);
    let mut stream = Stream::new(Some(plugin.clone()), 1);
    stream.on_request_headers(&mut host, false);
    host.request_body = b"short".to_vec();
    stream.on_request_body(&mut host, 50, true);
    assert!(host.properties.is_empty());
    // Without a configuration.
    let mut host = token_request(None, &[]);
    Stream::new(None, 1).on_request_headers(&mut host, false);
    assert!(host.properties.is_empty());
    assert!(counted(&plugin).is_empty());
}

#[test]
fn a_basic_target_is_named_and_its_header_is_not() {
    let plugin = held();
    let body = refresh_body("basic-admin", true);
    let host = run(&plugin, token_request(Some(body.len()), &[]), &body);
    assert_eq!(decisions(&host), ["rewritten client=basic-admin"]);
    assert!(host
        .edits
        .iter()
        .any(|e| matches!(e, Edit::RequestHeader(name, Some(_)) if name == "authorization")));
}

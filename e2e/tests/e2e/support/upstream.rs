//! An upstream that records exactly what Envoy forwarded and answers 200.

use super::http1::{self, Message};
use super::read_until;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const UPSTREAM_BODY: &str = r#"{"upstream":"answered"}"#;

#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Message>>,
    arrived: Condvar,
}

/// The raw HTTP/1.1 response an upstream sends for a request.
pub type Answer = fn(&Message) -> Vec<u8>;

/// 200 with [`UPSTREAM_BODY`].
pub fn default_answer(_: &Message) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{UPSTREAM_BODY}",
        UPSTREAM_BODY.len()
    )
    .into_bytes()
}

pub struct Upstream {
    pub port: u16,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    pub fn start() -> Self {
        Self::answering(default_answer)
    }

    /// An upstream that answers each request with `answer(request)`.
    pub fn answering(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Log::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_log, thread_stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let log = thread_log.clone();
                std::thread::spawn(move || serve(stream, &log, answer));
            }
        });
        Upstream { port, log, stop }
    }

    /// Everything recorded so far.
    pub fn requests(&self) -> Vec<Message> {
        self.log.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived and returns them.
    pub fn wait_for(&self, n: usize) -> Vec<Message> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut requests = self.log.requests.lock().unwrap();
        while requests.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "upstream got {} of {n} requests", requests.len());
            requests = self.log.arrived.wait_timeout(requests, left).unwrap().0;
        }
        requests.clone()
    }

    /// The only request that arrived.
    pub fn single(&self) -> Message {
        let requests = self.wait_for(1);
        assert_eq!(requests.len(), 1, "expected exactly one upstream request");
        requests.into_iter().next().unwrap()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut stream: TcpStream, log: &Log, answer: Answer) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    loop {
        let Some(used) = read_until(&mut stream, &mut buf, |b| http1::parse(b, false).map(|(_, n)| n)) else {
            return;
        };
        let Some((message, _)) = http1::parse(&buf, false) else {
            return;
        };
        buf.drain(..used);
        let response = answer(&message);
        log.requests.lock().unwrap().push(message);
        log.arrived.notify_all();
        if stream.write_all(&response).is_err() {
            return;
        }
    }
}

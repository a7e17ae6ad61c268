//! The fast stand-in for Keycloak that takes most of the soak's load: it
//! answers every request 200 at once and keeps nothing (a recording
//! upstream would grow for the whole run), or, while told to, resets: it
//! reads each request whole, then closes the connection without answering,
//! so that the filter has decided before Envoy sees the upstream go.

use crate::support::{http1, read_until};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ANSWER: &str = r#"{"access_token":"stand-in","token_type":"Bearer","expires_in":300}"#;

pub struct StandIn {
    pub port: u16,
    /// While set, connections are closed instead of answered.
    pub resetting: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl StandIn {
    pub fn start() -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (resetting, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (thread_resetting, thread_stop) = (resetting.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let resetting = thread_resetting.clone();
                std::thread::spawn(move || serve(stream, &resetting));
            }
        });
        StandIn { port, resetting, stop }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut stream: TcpStream, resetting: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = stream.set_nodelay(true);
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    let mut buf = Vec::new();
    loop {
        let Some(used) = read_until(&mut stream, &mut buf, |b| http1::parse(b, false).map(|(_, n)| n)) else {
            return;
        };
        buf.drain(..used);
        if resetting.load(Ordering::SeqCst) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

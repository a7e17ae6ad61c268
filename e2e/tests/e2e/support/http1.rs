//! A minimal HTTP/1.1 reader and client, byte-exact on purpose: the tests
//! assert on what went over the wire.

use super::read_until;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// One parsed HTTP/1.1 message (request or response).
#[derive(Debug, Clone)]
pub struct Message {
    pub start_line: String,
    /// Header names lower-cased, values as sent, in order.
    pub headers: Vec<(String, String)>,
    /// The body after de-chunking.
    pub body: Vec<u8>,
    pub chunked: bool,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn status(&self) -> u16 {
        self.start_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Response {
    pub status: u16,
    pub message: Message,
    pub body: Vec<u8>,
}

impl Response {
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses one complete message from the start of `buf`: the message and the
/// bytes it used, or `None` if more bytes are needed.
pub fn parse(buf: &[u8], head_only: bool) -> Option<(Message, usize)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end - 4]).ok()?;
    let mut lines = head.split("\r\n");
    let start_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let chunked = find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let rest = &buf[head_end..];
    let (body, used) = if head_only {
        (Vec::new(), 0)
    } else if chunked {
        dechunk(rest)?
    } else {
        let len: usize = find("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        if rest.len() < len {
            return None;
        }
        (rest[..len].to_vec(), len)
    };
    Some((
        Message {
            start_line,
            headers,
            body,
            chunked,
        },
        head_end + used,
    ))
}

fn dechunk(mut buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let start = buf.len();
    let mut body = Vec::new();
    loop {
        let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&buf[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf = &buf[line_end + 2..];
        if size == 0 {
            // Trailers (if any) end with an empty line.
            let end = buf.windows(2).position(|w| w == b"\r\n")?;
            if end == 0 {
                buf = &buf[2..];
            } else {
                let all = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
                buf = &buf[all + 4..];
            }
            return Some((body, start - buf.len()));
        }
        if buf.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

/// A client connection that can carry several requests (keep-alive).
pub struct Connection {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Connection {
    pub fn open(port: u16) -> std::io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            pending: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one response; `None` if the connection closed first.
    pub fn read_response(&mut self) -> Option<Response> {
        let mut buf = std::mem::take(&mut self.pending);
        let used = read_until(&mut self.stream, &mut buf, |b| parse(b, false).map(|(_, n)| n))?;
        let (message, _) = parse(&buf, false)?;
        self.pending = buf[used..].to_vec();
        Some(Response {
            status: message.status(),
            body: message.body.clone(),
            message,
        })
    }

    pub fn request(&mut self, bytes: &[u8]) -> Response {
        self.send(bytes).expect("request sent");
        self.read_response().expect("a response")
    }
}

/// Sends raw request bytes on a new connection and reads the response.
pub fn exchange(port: u16, request: &[u8]) -> Response {
    Connection::open(port).expect("connect").request(request)
}

pub fn get(port: u16, path: &str) -> std::io::Result<Response> {
    let mut conn = Connection::open(port)?;
    conn.send(format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").as_bytes())?;
    conn.read_response()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no response"))
}

/// A form POST with an exact Content-Length.
pub fn form_post(path: &str, extra_headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: keycloak.test\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    [head.as_bytes(), body].concat()
}

/// A form POST sent chunked, in chunks of `chunk` bytes.
pub fn chunked_form_post(path: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nhost: keycloak.test\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A form body: each name and value percent-encoded as the filter's own
/// encoder does, joined with `&`.
pub fn form_body(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        azp_bridge::form::encode_into(k.as_bytes(), &mut out);
        out.push(b'=');
        azp_bridge::form::encode_into(v.as_bytes(), &mut out);
    }
    out
}

//! An in-memory [`Host`] for native tests: it serves what a test puts in,
//! and records every read of the request headers and every edit, in order.

use super::{Host, Refused};
use crate::policy::HeaderPairs;
use std::cell::Cell;
use std::time::Duration;

/// One change the core asked of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    RequestHeader(String, Option<String>),
    RequestBody(Vec<u8>),
    LocalResponse {
        status: u32,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    ResponseHeader(String, Option<String>),
    ResponseBody(Vec<u8>),
}

#[derive(Debug)]
pub struct FakeHost {
    pub request_headers: Vec<(String, Vec<u8>)>,
    pub cluster: Option<Vec<u8>>,
    /// The clock; `None`: the host has none.
    pub now: Option<Duration>,
    /// Every random byte; `None`: the random source fails.
    pub random_byte: Option<u8>,
    pub env: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub response_status: Option<Vec<u8>>,
    pub response_body: Vec<u8>,
    /// Every edit is refused.
    pub refuse_edits: bool,
    /// What the core changed, in order.
    pub edits: Vec<Edit>,
    /// The stream properties set, in order (not edits of the request: a
    /// request forwarded unchanged may have one).
    pub properties: Vec<(String, Vec<u8>)>,
    /// How many times the request headers were read.
    pub header_reads: Cell<usize>,
    /// How many times the routed cluster was read.
    pub cluster_reads: Cell<usize>,
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost {
            request_headers: Vec::new(),
            cluster: Some(b"keycloak".to_vec()),
            now: Some(Duration::from_secs(1_700_000_000)),
            random_byte: Some(7),
            env: Vec::new(),
            request_body: Vec::new(),
            response_status: Some(b"200".to_vec()),
            response_body: Vec::new(),
            refuse_edits: false,
            edits: Vec::new(),
            properties: Vec::new(),
            header_reads: Cell::new(0),
            cluster_reads: Cell::new(0),
        }
    }
}

impl FakeHost {
    /// A request with these headers.
    pub fn with_headers(headers: &[(&str, &str)]) -> Self {
        FakeHost {
            request_headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            ..FakeHost::default()
        }
    }

    /// Moves the clock on.
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now.map(|now| now + by);
    }

    fn edit(&mut self, edit: Edit) -> Result<(), Refused> {
        if self.refuse_edits {
            return Err(Refused);
        }
        self.edits.push(edit);
        Ok(())
    }
}

impl Host for FakeHost {
    fn request_headers(&self) -> HeaderPairs {
        self.header_reads.set(self.header_reads.get() + 1);
        HeaderPairs(self.request_headers.clone())
    }

    fn routed_cluster(&self) -> Option<Vec<u8>> {
        self.cluster_reads.set(self.cluster_reads.get() + 1);
        self.cluster.clone()
    }

    fn now(&self) -> Option<Duration> {
        self.now
    }

    fn random(&self, bytes: &mut [u8]) -> Result<(), Refused> {
        let byte = self.random_byte.ok_or(Refused)?;
        bytes.fill(byte);
        Ok(())
    }

    fn env(&self, name: &str) -> Option<String> {
        self.env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    fn set_property(&mut self, name: &str, value: &[u8]) -> Result<(), Refused> {
        self.properties.push((name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn request_body(&self, len: usize) -> Vec<u8> {
        self.request_body.iter().take(len).copied().collect()
    }

    fn set_request_body(&mut self, len: usize, body: &[u8]) -> Result<(), Refused> {
        if len != self.request_body.len() {
            return Err(Refused);
        }
        self.edit(Edit::RequestBody(body.to_vec()))?;
        self.request_body = body.to_vec();
        Ok(())
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> Result<(), Refused> {
        self.edit(Edit::RequestHeader(name.to_owned(), value.map(str::to_owned)))
    }

    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), Refused> {
        self.edit(Edit::LocalResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
        })
    }

    fn response_status(&self) -> Option<Vec<u8>> {
        self.response_status.clone()
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) -> Result<(), Refused> {
        self.edit(Edit::ResponseHeader(name.to_owned(), value.map(str::to_owned)))
    }

    fn response_body(&self, len: usize) -> Vec<u8> {
        self.response_body.iter().take(len).copied().collect()
    }

    fn set_response_body(&mut self, len: usize, body: &[u8]) -> Result<(), Refused> {
        if len != self.response_body.len() {
            return Err(Refused);
        }
        self.edit(Edit::ResponseBody(body.to_vec()))?;
        self.response_body = body.to_vec();
        Ok(())
    }
}

//! An h2c (prior knowledge) client that can send a body in pieces and end it
//! with trailers, as gRPC-style clients do.

use bytes::Bytes;
use std::time::Duration;

pub struct H2Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POSTs `pieces` as separate DATA frames, then trailers if given.
pub fn post(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    pieces: &[&[u8]],
    trailers: Option<(&str, &str)>,
) -> H2Response {
    Post {
        authority: "keycloak.test",
        path,
        headers,
        pieces,
        trailers,
    }
    .send(port)
}

/// A POST as [`post`] sends it, with its own `:authority`.
pub struct Post<'a> {
    pub authority: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub pieces: &'a [&'a [u8]],
    pub trailers: Option<(&'a str, &'a str)>,
}

impl Post<'_> {
    pub fn send(&self, port: u16) -> H2Response {
        self.try_send(port).unwrap_or_else(|e| panic!("h2 exchange: {e}"))
    }

    /// [`Post::send`], saying what went wrong instead of panicking (for load
    /// that meets resets on purpose).
    pub fn try_send(&self, port: u16) -> Result<H2Response, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(15), self.exchange(port))
                .await
                .map_err(|_| "timed out".to_owned())?
        })
    }

    async fn exchange(&self, port: u16) -> Result<H2Response, String> {
        let Post {
            authority,
            path,
            headers,
            pieces,
            trailers,
        } = *self;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|x| e(&x))?;
        let (client, connection) = h2::client::handshake(tcp).await.map_err(|x| e(&x))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.map_err(|x| e(&x))?;
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{authority}{path}"))
            .header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (response, mut stream) = client
            .send_request(request.body(()).map_err(|x| e(&x))?, false)
            .map_err(|x| e(&x))?;
        for piece in pieces {
            stream
                .send_data(Bytes::copy_from_slice(piece), false)
                .map_err(|x| e(&x))?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match trailers {
            Some((name, value)) => {
                let mut map = http::HeaderMap::new();
                map.insert(
                    http::HeaderName::from_bytes(name.as_bytes()).map_err(|x| e(&x))?,
                    value.parse().map_err(|x: http::header::InvalidHeaderValue| e(&x))?,
                );
                stream.send_trailers(map).map_err(|x| e(&x))?;
            }
            None => stream.send_data(Bytes::new(), true).map_err(|x| e(&x))?,
        }
        let response = response.await.map_err(|x| e(&x))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut out = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|x| e(&x))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        Ok(H2Response { status, body: out })
    }
}

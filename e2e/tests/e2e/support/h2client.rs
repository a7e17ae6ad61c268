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
    post_to(port, "keycloak.test", path, headers, pieces, trailers)
}

/// [`post`] with this `:authority`.
pub fn post_to(
    port: u16,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    pieces: &[&[u8]],
    trailers: Option<(&str, &str)>,
) -> H2Response {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(15),
            exchange(port, authority, path, headers, pieces, trailers),
        )
        .await
        .expect("h2 exchange timed out")
    })
}

async fn exchange(
    port: u16,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    pieces: &[&[u8]],
    trailers: Option<(&str, &str)>,
) -> H2Response {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{authority}{path}"))
        .header("content-type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, mut stream) = client.send_request(request.body(()).unwrap(), false).unwrap();
    for piece in pieces {
        stream.send_data(Bytes::copy_from_slice(piece), false).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match trailers {
        Some((name, value)) => {
            let mut map = http::HeaderMap::new();
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            stream.send_trailers(map).unwrap();
        }
        None => stream.send_data(Bytes::new(), true).unwrap(),
    }
    let response = response.await.unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    H2Response { status, body: out }
}

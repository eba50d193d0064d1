//! A minimal HTTP/1.1 client over `std::net::TcpStream` (one request per
//! connection, `Connection: close`), enough to talk to the scrape targets and
//! to the Prometheus HTTP API: Content-Length, chunked and close-delimited
//! bodies; no TLS, no compression (we never send `Accept-Encoding`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The User-Agent of every request the test makes itself, so targets can tell
/// the test's reads from the monitoring server's scrapes.
pub const USER_AGENT: &str = "real-targets-test/1";

const MAX_RESPONSE: usize = 64 << 20;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.body).map_err(|e| format!("body is not UTF-8: {e}"))
    }
}

/// Sends one request to `addr` (`host:port`) and reads the whole response.
pub fn request(method: &str, addr: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, String> {
    let err = |e: std::io::Error| format!("{method} http://{addr}{path}: {e}");
    let sock = addr.to_socket_addrs().map_err(err)?.next().ok_or_else(|| format!("{addr}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5)).map_err(err)?;
    stream.set_read_timeout(Some(Duration::from_secs(15))).map_err(err)?;
    stream.set_write_timeout(Some(Duration::from_secs(15))).map_err(err)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(err)?;
    stream.write_all(body).map_err(err)?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE as u64 + 1).read_to_end(&mut raw).map_err(err)?;
    if raw.len() > MAX_RESPONSE {
        return Err(format!("{method} http://{addr}{path}: response larger than {MAX_RESPONSE} bytes"));
    }
    parse_response(&raw).map_err(|e| format!("{method} http://{addr}{path}: {e}"))
}

pub fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Result<Response, String> {
    request("GET", addr, path, headers, b"")
}

/// A Prometheus API `GET`: the `data` of a `"status": "success"` answer.
pub fn api_get(addr: &str, path: &str) -> Result<serde_json::Value, String> {
    let resp = get(addr, path, &[])?;
    let body = resp.text()?;
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("GET {path}: bad JSON ({e}): {body:.300}"))?;
    if resp.status != 200 || v["status"] != "success" {
        return Err(format!("GET {path}: HTTP {}: {body:.300}", resp.status));
    }
    Ok(v["data"].clone())
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts.next().unwrap_or_default().parse().map_err(|_| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line.split_once(':').ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let rest = &raw[end + 4..];
    let mut resp = Response { status, headers, body: Vec::new() };
    if let Some(enc) = resp.header("Content-Encoding")
        && !enc.eq_ignore_ascii_case("identity")
    {
        return Err(format!("unexpected Content-Encoding {enc}"));
    }
    resp.body = if resp.header("Transfer-Encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = resp.header("Content-Length") {
        let len: usize = len.parse().map_err(|_| format!("bad Content-Length {len:?}"))?;
        if rest.len() < len {
            return Err(format!("body cut short: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(resp)
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").ok_or("chunk size line without CRLF")?;
        let line = std::str::from_utf8(&data[..eol]).map_err(|_| "chunk size is not UTF-8")?;
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunk cut short".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Percent-encodes a query-string component (everything but RFC 3986's
/// unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_sized_bodies() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nhi").unwrap();
        assert_eq!((r.status, r.body.as_slice(), r.header("Content-Length")), (404, &b"hi"[..], Some("2")));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi").is_err());
        assert_eq!(encode("up{a=\"b c\"}"), "up%7Ba%3D%22b%20c%22%7D");
    }
}

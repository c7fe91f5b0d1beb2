//! A bare WebSocket client for the load generator: ten thousand of them share two
//! cores with the servers being measured, so frames are counted in place, without UTF-8
//! validation or copies, and the same client reads both servers.

use std::ops::Range;

use anyhow::{bail, ensure, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

pub struct RawSocket {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Where unread bytes start in `buffer`.
    read_at: usize,
}

impl RawSocket {
    /// Opens `ws://<address><path>` with extra request headers, and the kernel's
    /// receive buffer set to `receive_buffer` bytes when given.
    pub async fn connect(
        address: &str,
        path: &str,
        headers: &[(&str, &str)],
        receive_buffer: Option<u32>,
    ) -> anyhow::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        let mut stream = socket.connect(address.parse()?).await?;
        stream.set_nodelay(true)?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut socket = Self {
            stream,
            buffer: Vec::with_capacity(16 * 1024),
            read_at: 0,
        };
        let end = loop {
            if let Some(end) = socket.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            ensure!(
                socket.buffer.len() < 16 * 1024,
                "oversized handshake response"
            );
            socket.fill().await?;
        };
        let status = String::from_utf8_lossy(&socket.buffer[..end.min(32)]).into_owned();
        ensure!(status.contains(" 101 "), "upgrade refused: {status}");
        socket.read_at = end;
        Ok(socket)
    }

    /// Sends one masked frame (the mask key is zero: clients must mask, and a zero key
    /// leaves the payload as it is).
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        let mut frame = header(opcode, payload.len(), true);
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// The next frame's opcode and where its payload is (see [`RawSocket::payload`]);
    /// `None` when the connection ended.
    pub async fn next(&mut self) -> anyhow::Result<Option<(u8, Range<usize>)>> {
        loop {
            if let Some((opcode, payload)) = self.parse()? {
                self.read_at = payload.end;
                return Ok(Some((opcode, payload)));
            }
            if self.fill().await? == 0 {
                return Ok(None);
            }
        }
    }

    pub fn payload(&self, range: Range<usize>) -> &[u8] {
        &self.buffer[range]
    }

    fn parse(&self) -> anyhow::Result<Option<(u8, Range<usize>)>> {
        let data = &self.buffer[self.read_at..];
        if data.len() < 2 {
            return Ok(None);
        }
        if data[1] & 0x80 != 0 {
            bail!("servers must not mask frames");
        }
        let (length, header) = match data[1] & 0x7F {
            126 if data.len() >= 4 => (usize::from(u16::from_be_bytes([data[2], data[3]])), 4),
            127 if data.len() >= 10 => {
                let bytes: [u8; 8] = data[2..10].try_into().context("length")?;
                (usize::try_from(u64::from_be_bytes(bytes))?, 10)
            }
            126 | 127 => return Ok(None),
            length => (usize::from(length), 2),
        };
        if data.len() < header + length {
            return Ok(None);
        }
        let start = self.read_at + header;
        Ok(Some((data[0] & 0x0F, start..start + length)))
    }

    /// Reads more bytes, first dropping what has been read.
    async fn fill(&mut self) -> anyhow::Result<usize> {
        if self.read_at > 0 {
            self.buffer.drain(..self.read_at);
            self.read_at = 0;
        }
        if self.buffer.capacity() - self.buffer.len() < 8 * 1024 {
            self.buffer.reserve(16 * 1024);
        }
        Ok(self.stream.read_buf(&mut self.buffer).await?)
    }
}

/// One unmasked message, as a server sends it.
pub fn message(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = header(opcode, payload.len(), false);
    frame.extend_from_slice(payload);
    frame
}

/// A final frame's first bytes: the opcode, the mask bit and the payload length.
fn header(opcode: u8, length: usize, masked: bool) -> Vec<u8> {
    let mask = if masked { 0x80 } else { 0 };
    let mut header = Vec::with_capacity(10);
    header.push(0x80 | opcode);
    match length {
        length if length < 126 => header.push(mask | length as u8),
        length if length <= usize::from(u16::MAX) => {
            header.push(mask | 126);
            header.extend_from_slice(&(length as u16).to_be_bytes());
        }
        length => {
            header.push(mask | 127);
            header.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_header_carries_the_length_in_the_shortest_form() {
        assert_eq!(message(TEXT, b"hi"), vec![0x81, 2, b'h', b'i']);
        assert_eq!(message(BINARY, &[0; 300])[..4], [0x82, 126, 1, 44]);
        assert_eq!(
            message(BINARY, &vec![0; 70_000])[..10],
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
    }

    #[test]
    fn a_client_header_sets_the_mask_bit() {
        assert_eq!(header(TEXT, 5, true), vec![0x81, 0x85]);
    }
}

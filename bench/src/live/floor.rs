//! The floor: the least any server has to do to show a run to its viewers. It takes the
//! run's frames from the bus as a gateway does, frames each one as a WebSocket message
//! once, and writes it to every socket from two threads with blocking writes, nothing
//! else: no authentication, no queues, no heartbeats, no protection from a viewer that
//! stops reading (a floor, not a server). It runs as its own process
//! (`verdict-bench live-floor`), so what it costs beside the gateway, with the same
//! viewers on the same cores, is the kernel's sending and the bus's delivery.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};

use anyhow::ensure;
use futures::StreamExt;

use super::socket;

/// Serves the frames published on `subject` to every viewer that connects to `port`,
/// until the process is killed.
pub async fn serve(nats_url: &str, subject: &str, port: u16, deflate: bool) -> anyhow::Result<()> {
    super::raise_fd_limit()?;
    let client = async_nats::connect(nats_url).await?;
    let mut frames = client.subscribe(subject.to_owned()).await?;
    client.flush().await?;
    // Listening only once subscribed: a viewer that got in misses nothing.
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let viewers = Arc::new(Mutex::new(Vec::new()));
    let accepted = viewers.clone();
    std::thread::spawn(move || accept(&listener, &accepted));
    let (messages, outgoing) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || fan_out(&outgoing, &viewers));
    while let Some(frame) = frames.next().await {
        let message = if deflate {
            socket::message(socket::BINARY, &compress(&frame.payload))
        } else {
            socket::message(socket::TEXT, &frame.payload)
        };
        if messages.send(message).is_err() {
            break;
        }
    }
    Ok(())
}

/// Writes each message to every viewer, half of them on each of two threads; messages
/// that arrived during a round of writes go out together in the next, one write per
/// viewer (as a gateway's socket writes what queued up while it was busy).
fn fan_out(messages: &mpsc::Receiver<Vec<u8>>, viewers: &Mutex<Vec<TcpStream>>) {
    while let Ok(mut message) = messages.recv() {
        while let Ok(next) = messages.try_recv() {
            message.extend_from_slice(&next);
        }
        let viewers = viewers.lock().unwrap_or_else(|p| p.into_inner());
        crate::loopback::write_to_every(&viewers, &message);
    }
}

fn accept(listener: &TcpListener, viewers: &Mutex<Vec<TcpStream>>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // A connection that does not speak the viewers' handshake is dropped.
        if let Ok(stream) = handshake(stream) {
            viewers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(stream);
        }
    }
}

/// Upgrades the connection, takes the viewer's subscribe message and confirms it, as
/// the gateway's viewers expect.
fn handshake(mut stream: TcpStream) -> anyhow::Result<TcpStream> {
    stream.set_nodelay(true)?;
    let mut received = Vec::with_capacity(1024);
    let request_end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        ensure!(received.len() < 16 * 1024, "oversized upgrade request");
        read_more(&mut stream, &mut received)?;
    };
    stream.write_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )?;
    // The subscribe message: two header bytes, the mask key, a short payload. The floor
    // does not need to read it, only to wait for all of it.
    while received.len() < request_end + 2 {
        read_more(&mut stream, &mut received)?;
    }
    let length = usize::from(received[request_end + 1] & 0x7F);
    ensure!(length < 126, "a subscribe message is short");
    while received.len() < request_end + 2 + 4 + length {
        read_more(&mut stream, &mut received)?;
    }
    stream.write_all(&socket::message(
        socket::TEXT,
        br#"{"type":"subscribed","seq":0}"#,
    ))?;
    Ok(stream)
}

fn read_more(stream: &mut TcpStream, received: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0; 1024];
    let read = stream.read(&mut chunk)?;
    ensure!(read > 0, "closed during the handshake");
    received.extend_from_slice(&chunk[..read]);
    Ok(())
}

/// Raw DEFLATE of `json`, as the gateway compresses frames for `encoding=deflate`.
pub(super) fn compress(json: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Compressing into memory cannot fail.
    let _ = encoder.write_all(json);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::live::socket::RawSocket;

    #[tokio::test]
    async fn a_viewer_is_upgraded_and_told_it_is_subscribed() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = tokio::task::spawn_blocking(move || {
            let (stream, _) = listener.accept().unwrap();
            handshake(stream).map(|_| ())
        });
        let mut viewer = RawSocket::connect(&address, "/", &[], None).await.unwrap();
        viewer
            .send(socket::TEXT, br#"{"type":"subscribe","channel":"run:r"}"#)
            .await
            .unwrap();
        let (opcode, payload) = viewer.next().await.unwrap().unwrap();
        assert_eq!(opcode, socket::TEXT);
        assert!(viewer
            .payload(payload)
            .starts_with(br#"{"type":"subscribed""#));
        server.await.unwrap().unwrap();
    }

    #[test]
    fn compressed_frames_inflate_to_the_json() {
        let json = br#"{"type":"event","seq":1}"#.repeat(10);
        let mut text = Vec::new();
        flate2::read::DeflateDecoder::new(&compress(&json)[..])
            .read_to_end(&mut text)
            .unwrap();
        assert_eq!(text, json);
    }
}

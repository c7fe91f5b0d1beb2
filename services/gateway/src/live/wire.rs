//! Channel frames on the wire. A frame's bytes are shared by every viewer of its
//! channel; each socket sends them as they are, after a header of a few bytes of its
//! own, in one vectored write with whatever else is queued for it. Tungstenite would
//! first copy every frame into a buffer of every socket (150 MB per `test.finished`
//! wave of 15 KB frames to 10 000 viewers, and a buffer that large kept per socket);
//! it still handles everything else on the socket: reading, replies, pings and close.

use std::io::{self, IoSlice};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Binary,
}

/// A message as a socket sends it: its kind and the shared payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireMessage {
    pub kind: Kind,
    pub payload: Bytes,
}

/// The longest header of a final, unmasked frame: two bytes and a 64-bit length.
const MAX_HEADER: usize = 10;

/// The header of a final, unmasked (server) frame carrying the whole `message`.
fn header(message: &WireMessage) -> ([u8; MAX_HEADER], usize) {
    let opcode = match message.kind {
        Kind::Text => 0x1,
        Kind::Binary => 0x2,
    };
    let mut header = [0; MAX_HEADER];
    header[0] = 0x80 | opcode;
    let length = message.payload.len();
    let used = match (u8::try_from(length), u16::try_from(length)) {
        (Ok(short), _) if short < 126 => {
            header[1] = short;
            2
        }
        (_, Ok(medium)) => {
            header[1] = 126;
            header[2..4].copy_from_slice(&medium.to_be_bytes());
            4
        }
        _ => {
            header[1] = 127;
            header[2..10].copy_from_slice(&(length as u64).to_be_bytes());
            10
        }
    };
    (header, used)
}

/// Writes `messages` in order, each as one WebSocket frame, with as few writes as the
/// connection takes.
pub async fn write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    messages: &[WireMessage],
) -> io::Result<()> {
    let headers: Vec<_> = messages.iter().map(header).collect();
    let mut slices: Vec<IoSlice<'_>> = messages
        .iter()
        .zip(&headers)
        .flat_map(|(message, (header, used))| {
            [
                IoSlice::new(&header[..*used]),
                IoSlice::new(&message.payload),
            ]
        })
        .collect();
    let mut unwritten = &mut slices[..];
    while !unwritten.is_empty() {
        let written = io.write_vectored(unwritten).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut unwritten, written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    use super::*;

    fn message(kind: Kind, payload: impl Into<Bytes>) -> WireMessage {
        WireMessage {
            kind,
            payload: payload.into(),
        }
    }

    /// A connection that takes at most `limit` bytes per write.
    struct Trickle {
        written: Vec<u8>,
        limit: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let taken = buf.len().min(self.limit);
            self.written.extend_from_slice(&buf[..taken]);
            Poll::Ready(Ok(taken))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn headers_use_the_shortest_length_form() {
        let (short, used) = header(&message(Kind::Text, "hi"));
        assert_eq!(&short[..used], [0x81, 2]);
        let (medium, used) = header(&message(Kind::Binary, vec![0; 300]));
        assert_eq!(&medium[..used], [0x82, 126, 1, 44]);
        let (long, used) = header(&message(Kind::Text, vec![b'x'; 70_000]));
        assert_eq!(&long[..used], [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[tokio::test]
    async fn every_byte_is_written_even_when_the_connection_takes_a_few_at_a_time() {
        let messages = [
            message(Kind::Text, "a".repeat(200)),
            message(Kind::Binary, vec![7; 3]),
        ];
        let mut whole = Trickle {
            written: Vec::new(),
            limit: usize::MAX,
        };
        write_all(&mut whole, &messages).await.unwrap();
        let mut trickled = Trickle {
            written: Vec::new(),
            limit: 7,
        };
        write_all(&mut trickled, &messages).await.unwrap();
        assert_eq!(trickled.written, whole.written);
        assert_eq!(whole.written.len(), 4 + 200 + 2 + 3);
    }

    #[tokio::test]
    async fn a_websocket_client_reads_the_frames_as_messages() {
        let (server, client) = tokio::io::duplex(1 << 20);
        let mut server = server;
        let messages = [
            message(Kind::Text, r#"{"type":"event","seq":1}"#),
            message(Kind::Binary, vec![1, 2, 3]),
            message(Kind::Text, "x".repeat(70_000)),
        ];
        write_all(&mut server, &messages).await.unwrap();
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::text(r#"{"type":"event","seq":1}"#)
        );
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::binary(vec![1, 2, 3])
        );
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::text("x".repeat(70_000))
        );
    }
}

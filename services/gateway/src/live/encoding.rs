//! How server messages travel on a socket. JSON text by default. A viewer that opens
//! `/api/v1/live?encoding=deflate` gets every server message as a binary WebSocket
//! message holding its JSON compressed with raw DEFLATE (RFC 1951), which browsers
//! inflate with `DecompressionStream("deflate-raw")`. A channel's frames are compressed
//! once each, not once per socket; `test.finished` frames shrink to a third or less.

use std::io::Write;

use bytes::Bytes;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::wire::{Kind, WireMessage};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Text,
    Deflate,
}

impl Encoding {
    /// The value of the `encoding` query parameter.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "text" => Some(Encoding::Text),
            "deflate" => Some(Encoding::Deflate),
            _ => None,
        }
    }

    /// `json` as this encoding sends it.
    pub fn message(self, json: Utf8Bytes) -> Message {
        match self {
            Encoding::Text => Message::Text(json),
            Encoding::Deflate => Message::Binary(deflate(json.as_bytes())),
        }
    }

    /// A shared frame (`json`, valid UTF-8) as this encoding sends it: `deflated` is the
    /// frame compressed once for every socket that wants it.
    pub fn frame(self, json: Bytes, deflated: Option<Bytes>) -> WireMessage {
        match (self, deflated) {
            (Encoding::Text, _) => WireMessage {
                kind: Kind::Text,
                payload: json,
            },
            (Encoding::Deflate, deflated) => WireMessage {
                kind: Kind::Binary,
                payload: deflated.unwrap_or_else(|| deflate(&json)),
            },
        }
    }
}

/// Raw DEFLATE of `json`.
pub fn deflate(json: &[u8]) -> Bytes {
    let mut encoder = DeflateEncoder::new(
        Vec::with_capacity(json.len() / 4 + 64),
        Compression::default(),
    );
    // Compressing into memory cannot fail: the only errors are the writer's, and a Vec
    // does not refuse bytes.
    let _ = encoder.write_all(json);
    Bytes::from(encoder.finish().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::DeflateDecoder;

    use super::*;

    fn inflate(bytes: &[u8]) -> String {
        let mut text = String::new();
        DeflateDecoder::new(bytes)
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn deflated_messages_inflate_to_the_same_json() {
        let json = r#"{"type":"event","seq":1,"event":{"kind":"test.finished"}}"#.repeat(20);
        let Message::Binary(bytes) = Encoding::Deflate.message(Utf8Bytes::from(json.clone()))
        else {
            panic!("deflate sends binary messages");
        };
        assert!(bytes.len() < json.len() / 5);
        assert_eq!(inflate(&bytes), json);
    }

    #[test]
    fn text_sockets_get_the_json_even_when_a_compressed_copy_exists() {
        let json = Bytes::from_static(br#"{"type":"pong"}"#);
        let deflated = deflate(&json);
        assert_eq!(
            Encoding::Text.frame(json.clone(), Some(deflated.clone())),
            WireMessage {
                kind: Kind::Text,
                payload: json
            }
        );
        assert_eq!(
            Encoding::Deflate.frame(Bytes::from_static(b"ignored"), Some(deflated.clone())),
            WireMessage {
                kind: Kind::Binary,
                payload: deflated
            }
        );
    }

    #[test]
    fn a_frame_without_a_compressed_copy_is_compressed_for_a_deflate_socket() {
        let json = Bytes::from_static(br#"{"type":"event","seq":3}"#);
        let sent = Encoding::Deflate.frame(json.clone(), None);
        assert_eq!(sent.kind, Kind::Binary);
        assert_eq!(inflate(&sent.payload), r#"{"type":"event","seq":3}"#);
    }

    #[test]
    fn only_text_and_deflate_are_encodings() {
        assert_eq!(Encoding::parse("deflate"), Some(Encoding::Deflate));
        assert_eq!(Encoding::parse("text"), Some(Encoding::Text));
        assert_eq!(Encoding::parse("gzip"), None);
    }
}

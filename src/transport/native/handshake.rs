//! The one HTTP/1.1 response-head parser of the native transport: where a
//! head ends, and its status. The proxy's CONNECT answer, the 101 read by
//! the coalescer and the 101 read by the deflate layer all end where this
//! says, the way tungstenite reads it (`httparse`, same header limit): a
//! bare LF ends a line, a folded header line is refused, and the bytes
//! after the head are never part of it.

/// The most header lines read (tungstenite's own limit): a head with more
/// is refused here as it is there.
pub(crate) const MAX_HEADERS: usize = 124;

/// A complete response head at the start of some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// The status code.
    pub(crate) status: u16,
    /// The head's length in bytes, its final empty line included.
    pub(crate) len: usize,
}

/// The response head at the start of `data`: `Ok(None)` while it is not
/// whole, an error when it is not HTTP/1.x (or breaks its grammar).
pub(crate) fn response_head(data: &[u8]) -> Result<Option<Head>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(data)? {
        httparse::Status::Partial => Ok(None),
        httparse::Status::Complete(len) => Ok(Some(Head {
            status: response.code.unwrap_or(0),
            len,
        })),
    }
}

/// Follows a response head that arrives in pieces.
#[derive(Debug, Default)]
pub(crate) struct HeadReader {
    /// The pieces seen so far (kept only while the head is not whole).
    seen: Vec<u8>,
}

/// What [`HeadReader::feed`] learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Not whole yet: every byte of the piece belongs to the head.
    More,
    /// The head ends after this many bytes of the piece.
    Ends(usize),
    /// Not an HTTP response head (whoever reads it reports the error).
    Invalid,
}

impl HeadReader {
    /// Takes the next `piece` of the bytes; says where the head ends in it.
    pub(crate) fn feed(&mut self, piece: &[u8]) -> Fed {
        let before = self.seen.len();
        let parsed = if before == 0 {
            response_head(piece)
        } else {
            self.seen.extend_from_slice(piece);
            response_head(&self.seen)
        };
        match parsed {
            Ok(Some(head)) => {
                self.seen = Vec::new();
                Fed::Ends(head.len - before)
            }
            Ok(None) => {
                if before == 0 {
                    self.seen.extend_from_slice(piece);
                }
                Fed::More
            }
            Err(_) => {
                self.seen = Vec::new();
                Fed::Invalid
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_after_its_empty_line_crlf_or_bare_lf() {
        let crlf = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nrest";
        assert_eq!(
            response_head(crlf).unwrap(),
            Some(Head {
                status: 101,
                len: crlf.len() - 4
            })
        );
        let lf = b"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n\r\n\r\n";
        assert_eq!(response_head(lf).unwrap().unwrap().len, lf.len() - 4);
        assert_eq!(response_head(b"HTTP/1.1 101 OK\r\nA: b\r\n").unwrap(), None);
    }

    #[test]
    fn folded_headers_and_garbage_are_refused() {
        assert!(response_head(b"HTTP/1.1 101 OK\r\nA: b\r\n c\r\n\r\n").is_err());
        assert!(response_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    #[test]
    fn a_head_in_pieces_ends_where_it_ends_whole() {
        let wire = b"HTTP/1.1 101 OK\nUpgrade: websocket\n\n\x82\x7e\x00\x10";
        let whole = response_head(wire).unwrap().unwrap().len;
        for split in 1..wire.len() {
            let mut reader = HeadReader::default();
            let (a, b) = wire.split_at(split);
            let end = match reader.feed(a) {
                Fed::Ends(n) => n,
                Fed::More => match reader.feed(b) {
                    Fed::Ends(n) => a.len() + n,
                    other => panic!("split {split}: {other:?}"),
                },
                Fed::Invalid => panic!("split {split}: invalid"),
            };
            assert_eq!(end, whole, "split {split}");
        }
    }
}

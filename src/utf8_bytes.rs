//! [`Utf8Bytes`]: the text of a [`Frame::Text`](crate::Frame::Text), as
//! shared bytes that are valid UTF-8, so a received message reaches the
//! application without a copy and a sent one is never copied again.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::Utf8Error;

use bytes::Bytes;

/// Text that is valid UTF-8, held as cheaply cloned shared bytes
/// ([`Bytes`]): what a [`Frame::Text`](crate::Frame::Text) carries.
///
/// It dereferences to `&str`, compares with `str` and `String`, and is made
/// from a `String` without a copy:
///
/// ```
/// use wstether::{Frame, Utf8Bytes};
///
/// let text = Utf8Bytes::from(String::from("hello"));
/// assert_eq!(text, "hello");
/// assert!(text.starts_with("he")); // any `str` method
/// let copy = text.clone(); // shares the bytes
/// assert_eq!(copy.as_str(), "hello");
///
/// let frame = Frame::text("hello");
/// if let Frame::Text(text) = &frame {
///     let owned: String = text.to_string();
///     assert_eq!(owned, "hello");
/// }
/// // Bytes that are not UTF-8 are refused.
/// assert!(Utf8Bytes::try_from(vec![0xff, 0xfe]).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Text from a `'static` string, without a copy.
    pub const fn from_static(text: &'static str) -> Utf8Bytes {
        Utf8Bytes(Bytes::from_static(text.as_bytes()))
    }

    /// The text as a `&str`.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checks or inherits valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The bytes, shared (no copy).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Text from bytes the caller knows to be UTF-8 (checked by
    /// tungstenite, or made from a `str`).
    ///
    /// # Safety
    /// `bytes` must be valid UTF-8.
    pub(crate) unsafe fn from_bytes_unchecked(bytes: Bytes) -> Utf8Bytes {
        Utf8Bytes(bytes)
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Utf8Bytes {
    // As `str` hashes, so that `Borrow<str>` lookups find it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<String> for Utf8Bytes {
    /// Without a copy.
    fn from(text: String) -> Utf8Bytes {
        Utf8Bytes(Bytes::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    /// A copy of the text (see [`Utf8Bytes::from_static`] for none).
    fn from(text: &str) -> Utf8Bytes {
        Utf8Bytes(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<&String> for Utf8Bytes {
    /// A copy of the text.
    fn from(text: &String) -> Utf8Bytes {
        Utf8Bytes::from(text.as_str())
    }
}

impl From<Box<str>> for Utf8Bytes {
    fn from(text: Box<str>) -> Utf8Bytes {
        Utf8Bytes::from(String::from(text))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Bytes {
        text.0
    }
}

impl From<Utf8Bytes> for String {
    /// Without a copy when the bytes are not shared and came from a
    /// `String` or a `Vec`.
    fn from(text: Utf8Bytes) -> String {
        // SAFETY: the bytes are valid UTF-8.
        unsafe { String::from_utf8_unchecked(Vec::from(text.0)) }
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = Utf8Error;
    /// Checks that the bytes are UTF-8.
    fn try_from(bytes: Bytes) -> Result<Utf8Bytes, Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Utf8Bytes(bytes))
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = Utf8Error;
    /// Checks that the bytes are UTF-8; no copy.
    fn try_from(bytes: Vec<u8>) -> Result<Utf8Bytes, Utf8Error> {
        Utf8Bytes::try_from(Bytes::from(bytes))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for &str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for String {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_becomes_text_without_a_copy_and_back() {
        let text = String::from("héllo");
        let pointer = text.as_ptr();
        let bytes = Utf8Bytes::from(text);
        assert_eq!(bytes.as_ptr(), pointer);
        let back = String::from(bytes);
        assert_eq!(back, "héllo");
    }

    #[test]
    fn invalid_utf8_is_refused_with_where_it_fails() {
        let error = Utf8Bytes::try_from(Bytes::from_static(b"ok\xff")).unwrap_err();
        assert_eq!(error.valid_up_to(), 2);
        assert_eq!(Utf8Bytes::try_from(b"ok".to_vec()).unwrap(), "ok");
    }

    #[test]
    fn compares_and_hashes_as_str() {
        use std::collections::HashSet;
        let text = Utf8Bytes::from_static("key");
        assert_eq!(text, "key");
        assert_eq!("key", text);
        assert_eq!(String::from("key"), text);
        let set: HashSet<Utf8Bytes> = [text].into_iter().collect();
        assert!(set.contains("key"));
        assert_eq!(
            format!("{} {:?}", Utf8Bytes::from("a\"b"), Utf8Bytes::from("a\"b")),
            "a\"b \"a\\\"b\""
        );
    }
}

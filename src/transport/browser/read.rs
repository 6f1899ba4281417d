//! A message's data into wasm memory, with the fewest crossings of the
//! JS ↔ wasm boundary: a string in one (plus wasm-bindgen's `malloc`), an
//! `ArrayBuffer` in three (a view, its length, one copy) where js-sys's
//! `Uint8Array::to_vec` makes five (it asks the length three times).

use bytes::Bytes;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsValue;

use crate::frame::Frame;

#[wasm_bindgen]
extern "C" {
    /// `Uint8Array.prototype.set.call(dst, src)`: `src` copied into wasm
    /// memory at `dst` (the same binding js-sys uses inside `copy_to`).
    #[wasm_bindgen(js_namespace = Uint8Array, js_name = "prototype.set.call")]
    fn copy_into(dst: &mut [u8], src: &js_sys::Uint8Array);
}

/// The frame a `message` event's `data` holds. `binaryType` is
/// `"arraybuffer"`, so what is not a string is an `ArrayBuffer` (no
/// `instanceof` crossing to ask).
pub(super) fn frame(data: &JsValue) -> Frame {
    if let Some(text) = data.as_string() {
        return Frame::Text(text.into());
    }
    let view = js_sys::Uint8Array::new(data);
    let mut bytes = vec![0; view.length() as usize];
    copy_into(&mut bytes, &view);
    Frame::Binary(Bytes::from(bytes))
}

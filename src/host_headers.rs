//! The request headers in one host call, in the host's own serialization
//! (read in place by `header_map.rs`). A file of its own so that the
//! benchmark's header-read floor (`bench/buffer-filter`, feature
//! `read-headers`) runs exactly this code.

use proxy_wasm::types::MapType;

/// The serialized request header map, or `None` when the host gives none.
/// The SDK's `get_map_bytes` would allocate two vectors per header and
/// unwraps on a name that is not UTF-8; this keeps the host's buffer as is.
pub fn request_header_bytes() -> Option<Vec<u8>> {
    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_pairs(map_type: u32, return_data: *mut *mut u8, return_size: *mut usize) -> u32;
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a length into the two locals.
    let status = unsafe { proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size) };
    if status != 0 || data.is_null() {
        return None;
    }
    // SAFETY: the host allocated `size` bytes through the SDK's
    // `proxy_on_memory_allocate` (a boxed slice of exactly that length) and
    // hands their ownership over, as the SDK's own `get_map_bytes` assumes.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}
